//! Puts a member on disk: its directories (owned by the OS user its server runs as), the
//! catalog's rendered files and its secret files. Run at create and at every start, so the
//! files always match the catalog.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::Path;

use firecamp_catalog::{MemberPlan, ServicePlan};

use crate::error::{LocalError, Result};

pub(crate) fn mkdir(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<()> {
    std::fs::create_dir_all(path).map_err(LocalError::io(format!("creating {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(LocalError::io(format!("chmod {}", path.display())))?;
    if let Some((uid, gid)) = owner {
        chown(path, Some(uid), Some(gid)).map_err(LocalError::io(format!("chown {}", path.display())))?;
    }
    Ok(())
}

fn write(path: &Path, content: &str, mode: u32, owner: Option<(u32, u32)>) -> Result<()> {
    // Remove first: a file left read-only or owned by another user is replaced, not reused.
    let _ = std::fs::remove_file(path);
    std::fs::write(path, content).map_err(LocalError::io(format!("writing {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(LocalError::io(format!("chmod {}", path.display())))?;
    if let Some((uid, gid)) = owner {
        chown(path, Some(uid), Some(gid)).map_err(LocalError::io(format!("chown {}", path.display())))?;
    }
    Ok(())
}

/// Replaces every member DNS name by its address, for a machine where /etc/hosts cannot carry
/// the names (longest names first, so no name is replaced inside a longer one).
pub fn names_to_ips(content: &str, names: &BTreeMap<String, Ipv4Addr>) -> String {
    let mut by_len: Vec<_> = names.iter().collect();
    by_len.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    by_len.into_iter().fold(content.to_string(), |acc, (n, ip)| acc.replace(n.as_str(), &ip.to_string()))
}

/// Gives `path` and everything under it to `owner` when the directory itself is not theirs yet
/// (data written by a runtime that ran the server as another user, e.g. root before #12).
fn own_tree(path: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, lchown};
    let Some((uid, gid)) = owner else { return Ok(()) };
    let meta = std::fs::symlink_metadata(path).map_err(LocalError::io(format!("reading {}", path.display())))?;
    if meta.uid() == uid && meta.gid() == gid {
        return Ok(());
    }
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        lchown(&p, Some(uid), Some(gid)).map_err(LocalError::io(format!("chown {}", p.display())))?;
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            let entries = std::fs::read_dir(&p).map_err(LocalError::io(format!("reading {}", p.display())))?;
            stack.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
        }
    }
    Ok(())
}

pub struct MemberFiles<'a> {
    pub member_dir: &'a Path,
    pub plan: &'a MemberPlan,
    pub secret_dir: &'a Path,
    pub secrets: &'a BTreeMap<String, String>,
    /// The member's TLS files, written to its plan's `tls_dir` (none when the engine has no TLS).
    pub tls: &'a BTreeMap<String, String>,
    pub has_journal: bool,
    pub owner: Option<(u32, u32)>,
    /// When set, DNS names in the files are replaced by these addresses.
    pub ip_fallback: Option<&'a BTreeMap<String, Ipv4Addr>>,
}

pub fn member(m: &MemberFiles) -> Result<()> {
    let dir = m.member_dir;
    // The member directory is the runtime's; servers only need to pass through it.
    mkdir(dir, 0o711, None)?;
    let config = Path::new(&m.plan.paths.config_dir);
    mkdir(config, 0o755, None)?;
    for f in &m.plan.files {
        let content = match m.ip_fallback {
            Some(ips) => names_to_ips(&f.content, ips),
            None => f.content.clone(),
        };
        write(&config.join(f.name), &content, f.mode, None)?;
    }
    mkdir(m.secret_dir, 0o700, m.owner)?;
    for (k, v) in m.secrets {
        write(&m.secret_dir.join(k), v, 0o600, m.owner)?;
    }
    if !m.tls.is_empty() {
        let tls = Path::new(&m.plan.paths.tls_dir);
        mkdir(tls, 0o700, m.owner)?;
        for (k, v) in m.tls {
            write(&tls.join(k), v, 0o600, m.owner)?;
        }
    }
    for d in [Path::new(&m.plan.paths.data_dir), Path::new(&m.plan.paths.run_dir)] {
        own_tree_if_exists(d, m.owner)?;
        mkdir(d, 0o700, m.owner)?;
    }
    if m.has_journal {
        own_tree_if_exists(&dir.join("journal"), m.owner)?;
        mkdir(&dir.join("journal"), 0o700, m.owner)?;
    }
    Ok(())
}

fn own_tree_if_exists(path: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    if path.exists() { own_tree(path, owner) } else { Ok(()) }
}

/// Makes a service's directory passable for member users. Its parent (`services/`) is chmodded
/// only when the runtime creates it: a directory it did not create keeps its mode.
pub fn service_dir(service_dir: &Path) -> Result<()> {
    if let Some(parent) = service_dir.parent()
        && !parent.exists()
    {
        mkdir(parent, 0o711, None)?;
    }
    mkdir(service_dir, 0o711, None)
}

/// A revision of the member's files: what changes when its configuration changes.
pub fn revision(plan: &ServicePlan, member: &MemberPlan) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(plan.spec.version.as_deref().unwrap_or_default());
    for f in &member.files {
        h.update(f.name);
        h.update(&f.content);
    }
    h.finalize().iter().take(5).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_names_by_addresses() {
        let names = BTreeMap::from([
            ("pg-1.local-firecamp.com".to_string(), Ipv4Addr::new(127, 0, 100, 2)),
            ("pg-11.local-firecamp.com".to_string(), Ipv4Addr::new(127, 0, 100, 12)),
        ]);
        let s = "host=pg-1.local-firecamp.com x pg-11.local-firecamp.com";
        assert_eq!(names_to_ips(s, &names), "host=127.0.100.2 x 127.0.100.12");
    }
}
