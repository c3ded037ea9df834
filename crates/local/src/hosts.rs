//! The member names in /etc/hosts: one marked block per cluster, so the engines (which resolve
//! through the system resolver) and clients on the machine find `<member>.<cluster>-firecamp.com`.

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::net::Ipv4Addr;
use std::path::Path;

fn begin(cluster: &str) -> String {
    format!("# BEGIN firecamp {cluster}")
}
fn end(cluster: &str) -> String {
    format!("# END firecamp {cluster}")
}

/// The block for `entries` (DNS name → address), or nothing when there are none.
pub fn render_block(cluster: &str, entries: &BTreeMap<String, Ipv4Addr>) -> String {
    if entries.is_empty() {
        return String::new();
    }
    let mut out = begin(cluster) + " (managed by `firecamp local`; do not edit)\n";
    for (name, ip) in entries {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    out + &end(cluster) + "\n"
}

/// `hosts` with the cluster's block replaced by `block` (removed when empty), everything else
/// kept as it was.
pub fn replace_block(hosts: &str, cluster: &str, block: &str) -> String {
    let (b, e) = (begin(cluster), end(cluster));
    let mut out = String::new();
    let mut inside = false;
    for line in hosts.lines() {
        if !inside && (line == b || line.starts_with(&format!("{b} "))) {
            inside = true;
            continue;
        }
        if inside {
            if line == e {
                inside = false;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out + block
}

/// Rewrites the cluster's block in the hosts file in place (it may be a bind mount that cannot
/// be replaced by a rename), under an exclusive lock so runtimes of other clusters can share it.
pub fn write_block(path: &Path, cluster: &str, entries: &BTreeMap<String, Ipv4Addr>) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
    f.lock()?;
    let mut current = String::new();
    f.read_to_string(&mut current)?;
    let next = replace_block(&current, cluster, &render_block(cluster, entries));
    if next != current {
        f.set_len(0)?;
        f.rewind()?;
        f.write_all(next.as_bytes())?;
        f.sync_all()?;
    }
    f.unlock()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> BTreeMap<String, Ipv4Addr> {
        BTreeMap::from([
            ("pg-0.local-firecamp.com".to_string(), Ipv4Addr::new(127, 0, 100, 1)),
            ("pg-1.local-firecamp.com".to_string(), Ipv4Addr::new(127, 0, 100, 2)),
        ])
    }

    #[test]
    fn adds_replaces_and_removes_only_its_block() {
        let hosts = "127.0.0.1 localhost\n";
        let with = replace_block(hosts, "local", &render_block("local", &entries()));
        assert_eq!(
            with,
            "127.0.0.1 localhost\n# BEGIN firecamp local (managed by `firecamp local`; do not edit)\n\
             127.0.100.1\tpg-0.local-firecamp.com\n127.0.100.2\tpg-1.local-firecamp.com\n# END firecamp local\n"
        );
        let other = replace_block(&with, "dev", &render_block("dev", &entries()));
        let again = replace_block(&other, "local", &render_block("local", &entries()));
        assert_eq!(again.matches("# BEGIN firecamp local").count(), 1);
        assert!(again.contains("# BEGIN firecamp dev"));
        let removed = replace_block(&again, "local", "");
        assert!(!removed.contains("# BEGIN firecamp local"));
        assert!(removed.starts_with("127.0.0.1 localhost\n"));
        assert_eq!(replace_block(&removed, "dev", ""), hosts);
    }

    #[test]
    fn a_cluster_named_like_a_prefix_of_another_is_not_confused() {
        let hosts = replace_block("", "local2", &render_block("local2", &entries()));
        assert_eq!(replace_block(&hosts, "local", ""), hosts);
    }

    #[test]
    fn writes_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hosts");
        std::fs::write(&p, "127.0.0.1 localhost\n").unwrap();
        write_block(&p, "local", &entries()).unwrap();
        assert!(std::fs::read_to_string(&p).unwrap().contains("127.0.100.2\tpg-1.local-firecamp.com"));
        write_block(&p, "local", &BTreeMap::new()).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "127.0.0.1 localhost\n");
    }
}
