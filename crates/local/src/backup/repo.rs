//! Where backups are kept: the state directory's `backups/` or an S3 bucket and prefix
//! (`firecamp local up --backup-target s3://bucket/prefix`). Both hold the same tree,
//! `<service>/<incarnation>/{wal/<file>, base/<id>/<file>}`, and a backup counts only once its
//! `backup.json` is there: a directory is renamed into place whole, and in S3 the record is
//! the last object written.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use firecamp_catalog::layout::S3Access;

use super::record::{BackupRecord, RECORD, check_files, sync_dir};
use crate::config::Config;
use crate::error::{LocalError, Result};

/// One backup's place: its service, incarnation and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Loc {
    pub service: String,
    pub inc: String,
    pub id: String,
}

pub(crate) enum Repo {
    Dir(PathBuf),
    #[cfg(feature = "s3")]
    S3(super::s3::S3Repo),
}

/// The state directory remembers where its backups go (`backup-target`): a runtime started
/// later with another target would lose sight of every backup and archive already made.
/// `Some(text)`: nothing is pinned yet, to be written once the target works. Local backups are
/// pinned by being there: a runtime that never kept any may still move to S3.
fn pin(cfg: &Config) -> Result<Option<String>> {
    let want = cfg.backup_target.as_ref().map(|t| t.url.trim_end_matches('/').to_string()).unwrap_or_else(|| "local".to_string());
    let path = cfg.dir.join("backup-target");
    let had = match std::fs::read_to_string(&path) {
        Ok(s) => Some(s.trim().to_string()),
        // Before targets existed every backup was local.
        Err(_) if std::fs::read_dir(cfg.backup_dir()).is_ok_and(|mut d| d.next().is_some()) => Some("local".to_string()),
        Err(_) => None,
    };
    match had {
        Some(had) if had != want => {
            let flag = |t: &str| if t == "local" { "without --backup-target".to_string() } else { format!("with --backup-target {t}") };
            Err(LocalError::BadRequest(format!(
                "the state directory {} keeps its backups {}, not {}: start the runtime {}, or use another state directory (docs/backup.md, Backups in S3)",
                cfg.dir.display(),
                if had == "local" { format!("in {}", cfg.backup_dir().display()) } else { format!("in {had}") },
                if want == "local" { "in the state directory".to_string() } else { want.clone() },
                flag(&had)
            )))
        }
        Some(_) => Ok(None),
        None if want == "local" => Ok(None),
        None => Ok(Some(want)),
    }
}

impl Repo {
    pub(crate) async fn open(cfg: &Config) -> Result<Repo> {
        let new_pin = pin(cfg)?;
        let repo = match &cfg.backup_target {
            None => Ok(Repo::Dir(cfg.backup_dir())),
            #[cfg(feature = "s3")]
            Some(t) => super::s3::S3Repo::open(cfg, t).await.map(Repo::S3),
            #[cfg(not(feature = "s3"))]
            Some(t) => Err(LocalError::BadRequest(format!(
                "--backup-target {}: this firecamp was built without S3 support (cargo's `aws` feature of the firecamp crate)",
                t.url
            ))),
        }?;
        if let Some(want) = new_pin {
            let path = cfg.dir.join("backup-target");
            std::fs::write(&path, format!("{want}\n")).map_err(LocalError::io(format!("writing {}", path.display())))?;
        }
        Ok(repo)
    }

    /// `backups/<service>/<inc>` when backups are local; staged backups are written here too.
    pub(crate) fn local_incarnation(cfg: &Config, service: &str, inc: &str) -> PathBuf {
        cfg.backup_dir().join(service).join(inc)
    }

    /// An incarnation's WAL archive as `wal.sh` reads it: a directory or an `s3://` URL.
    pub(crate) fn archive(&self, service: &str, inc: &str) -> String {
        match self {
            Repo::Dir(root) => root.join(service).join(inc).join("wal").display().to_string(),
            #[cfg(feature = "s3")]
            Repo::S3(s) => s.url(&format!("{service}/{inc}/wal")),
        }
    }

    pub(crate) fn is_local(&self) -> bool {
        matches!(self, Repo::Dir(_))
    }

    /// How members reach an S3 archive.
    pub(crate) fn s3_access(&self) -> Option<S3Access> {
        match self {
            Repo::Dir(_) => None,
            #[cfg(feature = "s3")]
            Repo::S3(s) => Some(s.access()),
        }
    }

    /// The members' `aws-credentials` file, when the runtime was given keys.
    pub(crate) fn member_credentials(&self) -> Option<String> {
        match self {
            Repo::Dir(_) => None,
            #[cfg(feature = "s3")]
            Repo::S3(s) => s.credentials_file(),
        }
    }

    /// Every complete backup of a service name (all its incarnations), oldest first.
    pub(crate) async fn records(&self, service: &str) -> Result<Vec<(Loc, BackupRecord)>> {
        let mut out = match self {
            Repo::Dir(root) => dir_records(root, service),
            #[cfg(feature = "s3")]
            Repo::S3(s) => s.records(service).await?,
        };
        out.sort_by(|a, b| a.1.id.cmp(&b.1.id));
        Ok(out)
    }

    /// Whether the backup is complete where it is kept.
    pub(crate) async fn has(&self, loc: &Loc) -> Result<bool> {
        match self {
            Repo::Dir(root) => Ok(dir_of(root, loc).join(RECORD).exists()),
            #[cfg(feature = "s3")]
            Repo::S3(s) => s.has(loc).await,
        }
    }

    /// Keeps a backup staged (whole, its record written) in `staged`: renamed into place, or
    /// uploaded (the record last) and the staged copy removed.
    pub(crate) async fn commit(&self, loc: &Loc, staged: &Path, record: &BackupRecord) -> Result<(), String> {
        #[cfg(not(feature = "s3"))]
        let _ = record;
        match self {
            Repo::Dir(root) => {
                let done = dir_of(root, loc);
                std::fs::rename(staged, &done).map_err(|e| format!("renaming {} into place: {e}", staged.display()))?;
                sync_dir(done.parent().unwrap_or(root)).map_err(|e| e.to_string())
            }
            #[cfg(feature = "s3")]
            Repo::S3(s) => {
                s.upload(loc, staged, record).await?;
                std::fs::remove_dir_all(staged).map_err(|e| format!("removing {}: {e}", staged.display()))
            }
        }
    }

    pub(crate) async fn remove(&self, loc: &Loc) -> Result<()> {
        match self {
            Repo::Dir(root) => {
                let dir = dir_of(root, loc);
                std::fs::remove_dir_all(&dir).map_err(LocalError::io(format!("removing {}", dir.display())))
            }
            #[cfg(feature = "s3")]
            Repo::S3(s) => s.remove(loc).await,
        }
    }

    /// When the newest file of an incarnation's archive was written.
    pub(crate) async fn newest_archived(&self, service: &str, inc: &str) -> Option<SystemTime> {
        match self {
            Repo::Dir(root) => std::fs::read_dir(root.join(service).join(inc).join("wal"))
                .ok()?
                .flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .filter_map(|e| e.metadata().ok()?.modified().ok())
                .max(),
            #[cfg(feature = "s3")]
            Repo::S3(s) => s.newest_archived(service, inc).await,
        }
    }

    /// Removes the archived WAL only backups older than the one starting at `oldest` need
    /// (`pg_archivecleanup` in a directory; the same rule in S3).
    pub(crate) async fn clean_archive(&self, service: &str, inc: &str, oldest: &str, bin_dir: &str) -> Result<()> {
        match self {
            Repo::Dir(root) => {
                let wal = root.join(service).join(inc).join("wal");
                let out = std::process::Command::new(Path::new(bin_dir).join("pg_archivecleanup"))
                    .arg(&wal)
                    .arg(oldest)
                    .output()
                    .map_err(LocalError::io("running pg_archivecleanup"))?;
                if !out.status.success() {
                    return Err(LocalError::Internal(format!("pg_archivecleanup: {}", String::from_utf8_lossy(&out.stderr).trim())));
                }
                Ok(())
            }
            #[cfg(feature = "s3")]
            Repo::S3(s) => s.clean_archive(service, inc, oldest).await,
        }
    }

    /// A local directory holding the backup's files, each checked against its record (size and
    /// SHA-256): the backup's own directory, or `into` downloaded from S3 (removed again when
    /// the check fails).
    pub(crate) async fn fetch(&self, loc: &Loc, r: &BackupRecord, into: &Path, owner: Option<(u32, u32)>) -> Result<PathBuf, String> {
        let dir = match self {
            Repo::Dir(root) => dir_of(root, loc),
            #[cfg(feature = "s3")]
            Repo::S3(_) => into.to_path_buf(),
        };
        #[cfg(not(feature = "s3"))]
        let _ = owner;
        let got = async {
            #[cfg(feature = "s3")]
            if let Repo::S3(s) = self {
                s.download(loc, r, into, owner).await?;
            }
            let (checked, record) = (dir.clone(), r.clone());
            tokio::task::spawn_blocking(move || check_files(&checked, &record)).await.map_err(|e| e.to_string())?
        }
        .await;
        if got.is_err() && !self.is_local() {
            let _ = std::fs::remove_dir_all(into);
        }
        got.map(|()| dir)
    }
}

fn dir_of(root: &Path, loc: &Loc) -> PathBuf {
    root.join(&loc.service).join(&loc.inc).join("base").join(&loc.id)
}

fn read_record(dir: &Path) -> Result<BackupRecord> {
    let path = dir.join(RECORD);
    let text = std::fs::read_to_string(&path).map_err(LocalError::io(format!("reading {}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| LocalError::Conflict(format!("{} is not a FireCamp backup record: {e}", path.display())))
}

fn dir_records(root: &Path, service: &str) -> Vec<(Loc, BackupRecord)> {
    let mut out = Vec::new();
    let Ok(incs) = std::fs::read_dir(root.join(service)) else { return out };
    for inc in incs.flatten() {
        let Ok(bases) = std::fs::read_dir(inc.path().join("base")) else { continue };
        for b in bases.flatten() {
            let id = b.file_name().to_string_lossy().into_owned();
            if id.starts_with('.') {
                continue;
            }
            if let Ok(r) = read_record(&b.path()) {
                out.push((Loc { service: service.to_string(), inc: inc.file_name().to_string_lossy().into_owned(), id }, r));
            }
        }
    }
    out
}
