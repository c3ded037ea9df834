//! A Kubernetes cluster's backups as its manage service lists and deletes them
//! (docs/backup.md): the bucket of `manage --backup-target`, each namespace's services below
//! `<prefix>/<namespace>/`, in the layout and with the records the local runtime and the
//! backup Jobs (`job`) write.

use std::collections::BTreeMap;
use std::time::SystemTime;

use firecamp_api::Backup;
use firecamp_aws::s3::{Bucket, S3Url};
use firecamp_catalog::layout::RestoreSource;
use firecamp_core::{EngineKind, ServiceSpec};

use super::Loc;
use super::record::{BackupRecord, LATEST, id_problem, view};
use super::s3::S3Repo;
use crate::error::{LocalError, Result};

/// The cluster's bucket, checked when the manage service started.
#[derive(Clone)]
pub struct ClusterBackups {
    bucket: Bucket,
    root: S3Url,
}

impl ClusterBackups {
    pub async fn new(url: &str, region: Option<String>, endpoint: Option<String>) -> std::result::Result<ClusterBackups, String> {
        let root = S3Url::parse(url)?;
        let settings = firecamp_aws::AwsSettings { region, endpoint_url: endpoint, ..Default::default() };
        let bucket = Bucket::new(&settings, &root.bucket, None).await;
        Ok(ClusterBackups { bucket, root })
    }

    /// The repository of one namespace (a tenant sees only its own tree).
    fn of(&self, namespace: &str) -> Result<S3Repo> {
        if let Some(p) = firecamp_core::names::dns1123_label_problem(namespace) {
            return Err(LocalError::invalid("namespace", p));
        }
        Ok(S3Repo::with(self.bucket.clone(), self.root.join(namespace)))
    }

    /// The backups of `service` (every incarnation), newest first, each with the newest moment
    /// its incarnation's archive reaches.
    pub async fn list(&self, namespace: &str, service: &str) -> Result<Vec<Backup>> {
        super::check_service(service)?;
        let repo = self.of(namespace)?;
        let found = repo.records(service).await?;
        let mut until: BTreeMap<String, Option<SystemTime>> = BTreeMap::new();
        for (loc, _) in &found {
            if !until.contains_key(&loc.inc) {
                until.insert(loc.inc.clone(), repo.newest_archived(service, &loc.inc).await);
            }
        }
        Ok(found.iter().rev().map(|(loc, r)| view(r, until.get(&loc.inc).copied().flatten())).collect())
    }

    /// Deletes backup `id` (record first) and, when it is of the running incarnation `current`,
    /// the archived WAL only it needed.
    pub async fn delete(&self, namespace: &str, service: &str, id: &str, current: Option<&str>) -> Result<Backup> {
        super::check_service(service)?;
        let repo = self.of(namespace)?;
        let (loc, r) = find(&repo, service, id).await?;
        let shown = view(&r, repo.newest_archived(service, &loc.inc).await);
        repo.remove(&loc).await?;
        if current == Some(r.uid.as_str())
            && let Some((_, oldest)) = repo.records(service).await?.into_iter().find(|(_, o)| o.uid == r.uid)
        {
            repo.clean_archive(service, &r.uid, &oldest.start_wal).await?;
        }
        Ok(shown)
    }
}

impl ClusterBackups {
    /// What a restore of backup `id` of `service` (up to `to_time`, PostgreSQL) starts from,
    /// and the spec the new service gets (the source's, running): refused unless the record is
    /// of that service, every file is there with its size, and the time is within the backup's
    /// reach.
    pub async fn restore_source(&self, namespace: &str, service: &str, id: &str, to_time: Option<&str>) -> Result<(RestoreSource, ServiceSpec)> {
        super::check_service(service)?;
        let repo = self.of(namespace)?;
        let (loc, r) = find(&repo, service, id).await?;
        if r.format != super::record::FORMAT || r.service != service || r.spec.engine != r.engine {
            return Err(LocalError::invalid(
                "backup",
                format!(
                    "backup {} of {service:?} holds a backup of {} service {:?} (record format {}), not of service {service:?}",
                    loc.id, r.engine, r.service, r.format
                ),
            ));
        }
        if r.engine != EngineKind::Postgresql && to_time.is_some() {
            return Err(LocalError::invalid("toTime", format!("a {} snapshot is restored as it was taken: leave toTime out", r.engine)));
        }
        repo.check_sizes(&loc, &r).await.map_err(|why| LocalError::invalid("backup", format!("backup {} is damaged and cannot be restored: {why}", r.id)))?;
        let target_time = to_time.map(|t| super::check_target(&r, t)).transpose()?;
        let mut spec = r.spec.clone();
        spec.stopped = false;
        Ok((RestoreSource { service: service.to_string(), uid: r.uid.clone(), backup: r.id.clone(), target_time }, spec))
    }
}

async fn find(repo: &S3Repo, service: &str, id: &str) -> Result<(Loc, BackupRecord)> {
    if id != LATEST
        && let Some(p) = id_problem(id)
    {
        return Err(LocalError::invalid("backup", p));
    }
    let mut all = repo.records(service).await?;
    let found = if id == LATEST { all.pop() } else { all.into_iter().find(|(loc, _)| loc.id == id) };
    found.ok_or_else(|| LocalError::Missing(format!("service {service:?} has no backup {id:?}; `firecamp service backups {service}` lists them")))
}
