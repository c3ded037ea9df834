//! Small helpers for writing config files by hand: plain text we can golden-test line by line.

use crate::plan::ConfigFile;

/// Builds a `key<sep>value` config file with `#` comments.
pub(crate) struct Conf {
    sep: &'static str,
    out: String,
}

impl Conf {
    pub fn new(sep: &'static str, header: &str) -> Self {
        let mut c = Conf { sep, out: String::new() };
        for line in header.lines() {
            c.out.push_str(&format!("# {line}\n"));
        }
        c
    }

    /// Starts a section with a blank line and a comment saying why.
    pub fn section(&mut self, comment: &str) -> &mut Self {
        self.out.push('\n');
        for line in comment.lines() {
            self.out.push_str(&format!("# {line}\n"));
        }
        self
    }

    /// A line as it is (an INI section header).
    pub fn line(&mut self, line: &str) -> &mut Self {
        self.out.push_str(line);
        self.out.push('\n');
        self
    }

    pub fn set(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Self {
        self.out.push_str(&format!("{key}{}{value}\n", self.sep));
        self
    }

    pub fn build(&self) -> String {
        self.out.clone()
    }
}

pub(crate) fn file(name: &'static str, content: String, mode: u32) -> ConfigFile {
    ConfigFile { name, content, mode }
}

/// Single-quotes a value for a POSIX shell (`'` becomes `'\''`).
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A `KEY='value'` file sourced by the start scripts.
pub(crate) fn env_file(header: &str, vars: &[(&str, String)]) -> String {
    let mut out: String = header.lines().map(|l| format!("# {l}\n")).collect();
    for (k, v) in vars {
        out.push_str(&format!("{k}={}\n", sh_quote(v)));
    }
    out
}

pub(crate) fn header(what: &str, member: &str, service: &str) -> String {
    format!("{what} of member {member} (service {service}), rendered by FireCamp.\nDo not edit: FireCamp rewrites this file.")
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(super::sh_quote("a'b"), r"'a'\''b'");
    }
}
