//! The member names in /etc/hosts: one marked block per cluster, so the engines (which resolve
//! through the system resolver) and clients on the machine find `<member>.<cluster>-firecamp.com`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn begin(cluster: &str) -> String {
    format!("# BEGIN firecamp {cluster}")
}
fn end(cluster: &str) -> String {
    format!("# END firecamp {cluster}")
}

/// DNS name → its addresses (one per member; several for a replicas endpoint).
pub type Names = BTreeMap<String, Vec<Ipv4Addr>>;

/// The block for `entries`, a line per address, or nothing when there are none.
pub fn render_block(cluster: &str, entries: &Names) -> String {
    if entries.is_empty() {
        return String::new();
    }
    let mut out = begin(cluster) + " (managed by `firecamp local`; do not edit)\n";
    for (name, ips) in entries {
        for ip in ips {
            out.push_str(&format!("{ip}\t{name}\n"));
        }
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

/// The lock shared by every runtime that edits `hosts` (the file itself is replaced, so it
/// cannot carry the lock): `.<name>.firecamp.lock` beside it, e.g. `/etc/.hosts.firecamp.lock`.
fn lock_path(hosts: &Path) -> PathBuf {
    let name = hosts.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "hosts".into());
    hosts.with_file_name(format!(".{name}.firecamp.lock"))
}

/// Rewrites the cluster's block in the hosts file, under an exclusive lock so runtimes of other
/// clusters can share it. The new content is written to a temp file in the same directory
/// (same mode and owner), fsynced and renamed over the old one, so a crash leaves either the
/// old file or the new one, never an empty or half-written one.
pub fn write_block(path: &Path, cluster: &str, entries: &Names) -> std::io::Result<()> {
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(lock_path(path))?;
    lock.lock()?;
    let current = std::fs::read_to_string(path)?;
    let next = replace_block(&current, cluster, &render_block(cluster, entries));
    if next != current {
        replace(path, next.as_bytes())?;
    }
    lock.unlock()
}

fn replace(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    let tmp = path.with_file_name(format!(".{}.firecamp.tmp", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(content)?;
        // Whoever could read the old file reads the new one.
        std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid()))?;
        f.set_permissions(std::fs::Permissions::from_mode(meta.permissions().mode() & 0o7777))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename itself is durable once the directory is.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Names {
        BTreeMap::from([
            ("pg-0.local-firecamp.com".to_string(), vec![Ipv4Addr::new(127, 0, 100, 1)]),
            ("pg-1.local-firecamp.com".to_string(), vec![Ipv4Addr::new(127, 0, 100, 2)]),
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

    /// Issue #12: the file is replaced by a rename (a new inode each time, same mode), so a
    /// reader sees the old content or the new, never an empty file; no temp file is left.
    #[test]
    fn replaces_the_file_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hosts");
        std::fs::write(&p, "127.0.0.1 localhost\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        // Held open across the writes: a rename leaves it on the old content, a rewrite in place
        // would change what it reads (inode numbers alone are reused once freed).
        let mut held = std::fs::File::open(&p).unwrap();
        // A reader polling all along never sees the file empty or missing.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (p, stop) = (p.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let text = std::fs::read_to_string(&p).expect("the hosts file always exists");
                    assert!(text.starts_with("127.0.0.1 localhost\n"), "read {text:?}");
                    reads += 1;
                }
                reads
            })
        };
        for _ in 0..50 {
            write_block(&p, "local", &entries()).unwrap();
            write_block(&p, "local", &BTreeMap::new()).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(reader.join().unwrap() > 0);
        write_block(&p, "local", &entries()).unwrap();
        assert!(std::fs::read_to_string(&p).unwrap().contains("127.0.100.2\tpg-1.local-firecamp.com"));
        let mut old = String::new();
        std::io::Read::read_to_string(&mut held, &mut old).unwrap();
        assert_eq!(old, "127.0.0.1 localhost\n", "replaced by a rename, not rewritten in place");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644, "mode kept");
        write_block(&p, "local", &BTreeMap::new()).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "127.0.0.1 localhost\n");
        let left: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).filter(|n| n.ends_with(".tmp")).collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
