//! Issue #19 item 6: every shell example of the README's quickstart, run as written against the
//! local runtime (real PostgreSQL, Redis and ZooKeeper), so the README cannot drift from what
//! FireCamp does. The lines come from README.md itself; `firecamp` is this build and
//! `scripts/quickstart.sh` gets it through `FIRECAMP_BIN`. The runtime keeps its state in a
//! temporary directory and serves its API on a free port; its DNS server and member addresses
//! are the defaults the README promises. Run as root (the runtime starts servers as their users).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The README's quickstart section: from its heading to the next `## `.
fn quickstart_section(readme: &str) -> &str {
    let start = readme.find("\n## Quickstart").expect("README.md has a Quickstart section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map(|i| i + 3).unwrap_or(rest.len());
    &rest[..end]
}

/// The command lines of the section's ```sh blocks, in order (blank lines left out).
fn shell_lines(section: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut inside = false;
    for line in section.lines() {
        match (inside, line.trim()) {
            (false, "```sh") => inside = true,
            (true, "```") => inside = false,
            (true, l) if !l.is_empty() && !l.starts_with('#') => lines.push(l.to_string()),
            _ => {}
        }
    }
    lines
}

struct Quickstart {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Quickstart {
    /// `bash -c` on one README line, in the temporary directory, with `sudo` as a no-op for
    /// root (the README writes `sudo firecamp …` for users who are not).
    fn command(&self, line: &str) -> Command {
        let mut c = Command::new("bash");
        c.arg("-c").arg(format!("set -o pipefail; sudo() {{ \"$@\"; }}; {line}")).current_dir(&self.dir).stdin(Stdio::null());
        c.env_remove("FIRECAMP_TOKEN").env_remove("FIRECAMP_CA_CERT").env_remove("FIRECAMP_KUBE").env_remove("FIRECAMP_ZONES");
        c.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    }

    fn run(&self, line: &str) -> Output {
        eprintln!("$ {line}");
        let out = self.command(line).output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        eprintln!("{stdout}{stderr}");
        assert!(out.status.success(), "the README's `{line}` failed ({}):\n{stdout}\n{stderr}", out.status);
        out
    }

    /// A line that follows a log until stopped: it must print, and is then stopped (SIGTERM to
    /// its process group), as a user would press Ctrl-C.
    fn run_until_first_line(&self, line: &str) -> String {
        eprintln!("$ {line}   (until its first line)");
        let mut child = {
            let mut c = self.command(line);
            std::os::unix::process::CommandExt::process_group(&mut c, 0);
            c.stdout(Stdio::piped()).spawn().unwrap()
        };
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        let _ = Command::new("kill").args(["-TERM", "--", &format!("-{}", child.id())]).status();
        let _ = child.wait();
        assert!(!first.trim().is_empty(), "the README's `{line}` printed nothing");
        first
    }
}

impl Drop for Quickstart {
    /// Whatever happened: the runtime stopped, its state and its block in /etc/hosts gone.
    fn drop(&mut self) {
        let _ = self.command("firecamp local down").output();
        let _ = firecamp_local::hosts::write_block(Path::new("/etc/hosts"), firecamp_local::config::DEFAULT_CLUSTER, &Default::default());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn the_readme_quickstart_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let lines = shell_lines(quickstart_section(&readme));
    assert!(lines.first().is_some_and(|l| l == "scripts/quickstart.sh"), "the quickstart starts with its script: {lines:?}");
    assert!(lines.iter().any(|l| l.contains("service create redis")) && lines.last().is_some_and(|l| l.contains("local down")), "{lines:?}");
    let uid = Command::new("id").arg("-u").output().unwrap().stdout;
    assert_eq!(String::from_utf8_lossy(&uid).trim(), "0", "the README's quickstart runs as root (or with sudo): run this test as root");
    // The runtime's DNS server takes the README's address: another runtime must not hold it.
    let dns = firecamp_local::config::DEFAULT_DNS_ADDR;
    assert!(std::net::UdpSocket::bind(dns).is_ok(), "{dns} is taken: a local runtime already runs here (firecamp local down first)");

    let dir = std::env::temp_dir().join(format!("firecamp-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Members run as postgres, redis and zookeeper, which must pass through the state directory.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_firecamp"));
    let path = format!("{}:{}", bin.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let env = [
        ("PATH", path),
        ("FIRECAMP_BIN", bin.display().to_string()),
        ("FIRECAMP_LOCAL_DIR", dir.join("state").display().to_string()),
        ("FIRECAMP_LOCAL_LISTEN", format!("127.0.0.1:{port}")),
        ("FIRECAMP_SERVER", format!("http://127.0.0.1:{port}")),
    ];
    let q = Quickstart { dir: dir.clone(), env: env.into_iter().map(|(k, v)| (k.to_string(), v)).collect() };

    for line in &lines {
        let line = if line == "scripts/quickstart.sh" { format!("{}/scripts/quickstart.sh", root.display()) } else { line.clone() };
        if line.contains("--follow") {
            q.run_until_first_line(&line);
            continue;
        }
        let out = q.run(&line);
        let stdout = String::from_utf8_lossy(&out.stdout);
        // What the README says these lines show.
        if line.ends_with("quickstart.sh") {
            assert!(stdout.contains("PostgreSQL cluster \"pg\" is up"), "{stdout}");
        }
        if line.contains("service backups pg") {
            assert!(stdout.contains("pg-1") && stdout.contains("pg-20"), "a backup taken from the replica pg-1: {stdout}");
        }
        if line.contains("pg_is_in_recovery") {
            // pg-1 is a replica; the restored pg-copy's primary has left recovery.
            let want = if line.contains("pg-copy") { "f" } else { "t" };
            assert_eq!(stdout.lines().map(str::trim).find(|l| *l == "t" || *l == "f"), Some(want), "{line}: {stdout}");
        }
        if line.contains("service members pg") {
            assert!(["pg-0", "pg-1", "pg-2"].iter().all(|m| stdout.contains(m)), "{stdout}");
        }
    }
}

#[test]
fn the_quickstart_lines_are_read_from_the_readme() {
    let readme = "# X\n\n## Quickstart: here\n\n```sh\nscripts/quickstart.sh\n```\n\ntext `inline`\n\n```sh\n# a comment\nfirecamp a   # b\n\nfirecamp c\n```\n\n## Next\n\n```sh\nnot this\n```\n";
    assert_eq!(shell_lines(quickstart_section(readme)), ["scripts/quickstart.sh", "firecamp a   # b", "firecamp c"]);
}
