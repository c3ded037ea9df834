//! Kubernetes label and annotation keys and values, validated before they reach an API server.

use crate::names::{MAX_LABEL, dns1123_subdomain_problem};

/// Label and annotation prefixes FireCamp sets itself; users may not set them.
pub const RESERVED_PREFIXES: &[&str] = &["firecamp.dev/", "app.kubernetes.io/", "kubernetes.io/", "k8s.io/"];

/// Why `key` is not a valid label or annotation key (`[prefix/]name`).
pub fn key_problem(key: &str) -> Option<String> {
    if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| key.starts_with(**p)) {
        return Some(format!("the prefix {prefix:?} is reserved for FireCamp and Kubernetes"));
    }
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix.and_then(dns1123_subdomain_problem) {
        return Some(format!("the prefix {p}"));
    }
    name_problem(name).map(|p| format!("the name part {p}"))
}

/// Why `value` is not a valid label value (empty, or a name of at most 63 characters).
pub fn value_problem(value: &str) -> Option<String> {
    if value.is_empty() { None } else { name_problem(value) }
}

fn name_problem(s: &str) -> Option<String> {
    if s.is_empty() || s.len() > MAX_LABEL {
        return Some(format!("must be 1 to {MAX_LABEL} characters"));
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Some("may contain only letters, digits, '-', '_' and '.'".into());
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) || !s.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return Some("must start and end with a letter or digit".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values() {
        assert_eq!(key_problem("team"), None);
        assert_eq!(key_problem("example.com/team"), None);
        assert!(key_problem("firecamp.dev/service").unwrap().contains("reserved"));
        assert!(key_problem("bad key").unwrap().contains("only letters"));
        assert!(key_problem("Bad_Domain/x").unwrap().contains("prefix"));
        assert_eq!(value_problem(""), None);
        assert!(value_problem(&"v".repeat(64)).unwrap().contains("1 to 63"));
    }
}
