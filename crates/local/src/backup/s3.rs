//! Backups in an S3 bucket (`firecamp local up --backup-target s3://bucket/prefix`, feature
//! `s3`): the daemon uploads base backups and reads records, lists and deletes; members archive
//! and fetch WAL themselves through `wal.sh` → `firecamp wal push|fetch`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use firecamp_aws::AwsSettings;
use firecamp_aws::s3::{Bucket, Keys, S3Url};
use firecamp_catalog::layout::S3Access;

use super::record::{BackupRecord, RECORD, file_name_problem, wal_older_than};
use super::repo::Loc;
use crate::config::{Config, S3Target, StaticCredentials};
use crate::error::{LocalError, Result};

pub(crate) struct S3Repo {
    bucket: Bucket,
    root: S3Url,
    access: S3Access,
    credentials: Option<StaticCredentials>,
}

impl S3Repo {
    /// Checks the target (its URL, that the bucket answers) and puts the `firecamp` executable
    /// where members' users can run it.
    pub(crate) async fn open(cfg: &Config, t: &S3Target) -> Result<S3Repo> {
        let root = S3Url::parse(&t.url).map_err(|e| LocalError::BadRequest(format!("--backup-target: {e}")))?;
        let settings = AwsSettings { region: t.region.clone(), endpoint_url: t.endpoint.clone(), ..AwsSettings::default() };
        let keys = t.credentials.as_ref().map(|c| Keys {
            access_key_id: c.access_key_id.clone(),
            secret_access_key: c.secret_access_key.clone(),
            session_token: c.session_token.clone(),
        });
        let bucket = Bucket::new(&settings, &root.bucket, keys).await;
        let listed = if root.key.is_empty() { String::new() } else { format!("{}/", root.key) };
        bucket.check(&listed).await.map_err(|e| LocalError::Unavailable(format!("the backup target {}: {e}", t.url)))?;
        let tool = install_tool(cfg)?;
        let access = S3Access { tool: tool.display().to_string(), region: bucket.region.clone(), endpoint: bucket.endpoint.clone().unwrap_or_default() };
        tracing::info!(target = %root, region = %access.region, "backups go to S3");
        Ok(S3Repo { bucket, root, access, credentials: t.credentials.clone() })
    }

    /// The repository under `root` for a Kubernetes backup Job (`job`): the bucket through the
    /// SDK's chain (the Job's credentials file or its pod's identity); no tool to install.
    pub(crate) async fn at(root: S3Url, region: Option<String>, endpoint: Option<String>) -> S3Repo {
        let settings = AwsSettings { region, endpoint_url: endpoint, ..AwsSettings::default() };
        S3Repo::with(Bucket::new(&settings, &root.bucket, None).await, root)
    }

    /// The repository under `root` of a bucket already made (the manage service's).
    pub(crate) fn with(bucket: Bucket, root: S3Url) -> S3Repo {
        let access = S3Access { tool: String::new(), region: bucket.region.clone(), endpoint: bucket.endpoint.clone().unwrap_or_default() };
        S3Repo { bucket, root, access, credentials: None }
    }

    pub(crate) fn url(&self, rel: &str) -> String {
        self.root.join(rel).to_string()
    }

    fn key(&self, rel: &str) -> String {
        self.root.join(rel).key
    }

    fn loc_key(&self, loc: &Loc, file: &str) -> String {
        self.key(&format!("{}/{}/base/{}/{file}", loc.service, loc.inc, loc.id))
    }

    pub(crate) fn access(&self) -> S3Access {
        self.access.clone()
    }

    /// An AWS shared-credentials file of the runtime's keys.
    pub(crate) fn credentials_file(&self) -> Option<String> {
        let c = self.credentials.as_ref()?;
        let mut s = format!("[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n", c.access_key_id, c.secret_access_key);
        if let Some(t) = &c.session_token {
            s.push_str(&format!("aws_session_token = {t}\n"));
        }
        Some(s)
    }

    fn failed(&self, e: firecamp_aws::AwsError) -> LocalError {
        LocalError::Unavailable(format!("the backup target {}: {e}", self.root))
    }

    pub(crate) async fn records(&self, service: &str) -> Result<Vec<(Loc, BackupRecord)>> {
        let prefix = format!("{}/", self.key(service));
        let mut out = Vec::new();
        for o in self.bucket.list(&prefix).await.map_err(|e| self.failed(e))? {
            // <prefix>/<service>/<inc>/base/<id>/backup.json
            let parts: Vec<&str> = o.key[prefix.len()..].split('/').collect();
            let [inc, "base", id, RECORD] = parts.as_slice() else { continue };
            let Some(bytes) = self.bucket.get_bytes(&o.key).await.map_err(|e| self.failed(e))? else { continue };
            if let Ok(r) = serde_json::from_slice::<BackupRecord>(&bytes) {
                out.push((Loc { service: service.to_string(), inc: inc.to_string(), id: id.to_string() }, r));
            }
        }
        Ok(out)
    }

    pub(crate) async fn has(&self, loc: &Loc) -> Result<bool> {
        Ok(self.bucket.head(&self.loc_key(loc, RECORD)).await.map_err(|e| self.failed(e))?.is_some())
    }

    /// Every file, then the record: a backup is listed only once it is whole. Objects an
    /// interrupted attempt left under the backup's prefix (no record: not a backup) are removed
    /// first, since this attempt's files have other bytes and are never written over others.
    pub(crate) async fn upload(&self, loc: &Loc, staged: &Path, record: &BackupRecord) -> Result<(), String> {
        let prefix = self.loc_key(loc, "");
        let left: Vec<String> = self.bucket.list(&prefix).await.map_err(|e| e.to_string())?.into_iter().map(|o| o.key).collect();
        if !left.is_empty() {
            tracing::info!(backup = %loc.id, objects = left.len(), "removing what an interrupted upload left");
            self.bucket.delete(&left).await.map_err(|e| format!("removing what an interrupted upload left: {e}"))?;
        }
        for (name, sum) in &record.files {
            self.bucket.put_file(&self.loc_key(loc, name), &staged.join(name), &sum.sha256).await.map_err(|e| format!("uploading {name}: {e}"))?;
        }
        let json = std::fs::read(staged.join(RECORD)).map_err(|e| format!("reading the backup record: {e}"))?;
        self.bucket.put_bytes(&self.loc_key(loc, RECORD), &json).await.map_err(|e| format!("uploading {RECORD}: {e}"))
    }

    /// The record first, so a removal cut short leaves no backup that looks whole.
    pub(crate) async fn remove(&self, loc: &Loc) -> Result<()> {
        let record = self.loc_key(loc, RECORD);
        self.bucket.delete(std::slice::from_ref(&record)).await.map_err(|e| self.failed(e))?;
        let prefix = self.loc_key(loc, "");
        let rest: Vec<String> = self.bucket.list(&prefix).await.map_err(|e| self.failed(e))?.into_iter().map(|o| o.key).collect();
        self.bucket.delete(&rest).await.map_err(|e| self.failed(e))
    }

    pub(crate) async fn newest_archived(&self, service: &str, inc: &str) -> Option<SystemTime> {
        let prefix = format!("{}/", self.key(&format!("{service}/{inc}/wal")));
        self.bucket.list(&prefix).await.ok()?.into_iter().filter_map(|o| o.modified).max()
    }

    pub(crate) async fn clean_archive(&self, service: &str, inc: &str, oldest: &str) -> Result<()> {
        let prefix = format!("{}/", self.key(&format!("{service}/{inc}/wal")));
        let old: Vec<String> = self
            .bucket
            .list(&prefix)
            .await
            .map_err(|e| self.failed(e))?
            .into_iter()
            .filter(|o| wal_older_than(&o.key[prefix.len()..], oldest))
            .map(|o| o.key)
            .collect();
        self.bucket.delete(&old).await.map_err(|e| self.failed(e))
    }

    /// Every file of the backup is in the bucket with the size its record gives (a restore
    /// that fetches it later checks the checksums too).
    pub(crate) async fn check_sizes(&self, loc: &Loc, r: &BackupRecord) -> std::result::Result<(), String> {
        for (name, want) in &r.files {
            if let Some(p) = file_name_problem(name) {
                return Err(p);
            }
            match self.bucket.head(&self.loc_key(loc, name)).await.map_err(|e| format!("{name}: {e}"))? {
                None => return Err(format!("{name} is missing")),
                Some(o) if o.size != want.size => return Err(format!("{name} has {} bytes, its record says {}", o.size, want.size)),
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The backup's files into `into` (private to the engine's user, who unpacks them).
    pub(crate) async fn download(&self, loc: &Loc, r: &BackupRecord, into: &Path, owner: Option<(u32, u32)>) -> Result<(), String> {
        if let Some(parent) = into.parent() {
            crate::materialize::mkdir(parent, 0o711, None).map_err(|e| e.to_string())?;
        }
        if into.exists() {
            std::fs::remove_dir_all(into).map_err(|e| format!("removing {}: {e}", into.display()))?;
        }
        crate::materialize::mkdir(into, 0o700, owner).map_err(|e| e.to_string())?;
        for name in r.files.keys() {
            // The record is read from the bucket: its names never leave `into`.
            if let Some(p) = file_name_problem(name) {
                return Err(p);
            }
            let key = self.loc_key(loc, name);
            match self.bucket.get_file(&key, &into.join(name)).await {
                Ok(true) => {
                    // The engine's user reads it (a restored member's start script).
                    if let Some((uid, gid)) = owner {
                        std::os::unix::fs::chown(into.join(name), Some(uid), Some(gid)).map_err(|e| format!("chown {name}: {e}"))?;
                    }
                }
                Ok(false) => return Err(format!("{name} is missing (s3://{}/{key})", self.root.bucket)),
                Err(e) => return Err(format!("downloading {name}: {e}")),
            }
        }
        Ok(())
    }
}

/// A copy (or a hard link) of the `firecamp` executable in the runtime's `bin/`, which member
/// users can reach wherever the executable itself lives.
fn install_tool(cfg: &Config) -> Result<PathBuf> {
    let src = match &cfg.firecamp_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(LocalError::io("finding the firecamp executable"))?,
    };
    if !src.is_file() {
        return Err(LocalError::Unavailable(format!("{} (the firecamp executable members run for `firecamp wal`) does not exist", src.display())));
    }
    crate::materialize::mkdir(&cfg.bin_dir(), 0o755, None)?;
    let dst = cfg.bin_dir().join("firecamp");
    let tmp = cfg.bin_dir().join(".firecamp.tmp");
    let _ = std::fs::remove_file(&tmp);
    if std::fs::hard_link(&src, &tmp).is_err() {
        std::fs::copy(&src, &tmp).map_err(LocalError::io(format!("copying {} to {}", src.display(), tmp.display())))?;
    }
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755)).map_err(LocalError::io(format!("chmod {}", tmp.display())))?;
    std::fs::rename(&tmp, &dst).map_err(LocalError::io(format!("renaming {}", tmp.display())))?;
    Ok(dst)
}
