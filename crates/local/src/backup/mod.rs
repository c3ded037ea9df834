//! Backups of the local runtime's PostgreSQL services (docs/backup.md). Every member archives
//! WAL through the catalog's `wal.sh` into `<target>/<service>/<uid>/wal` (the primary does;
//! `archive_mode = on`), a `backup` operation takes a base backup with `pg_basebackup` (tar
//! format, WAL streamed) from a streaming replica into `…/base/<id>`, checked and described by
//! `backup.json`, and a restore makes a new service whose first member starts from one. The
//! target is the state directory or an S3 bucket (`repo`).
//!
//! Durable: a backup is staged in `.<id>.partial` and kept (renamed into place, or uploaded
//! with its record last) only when complete; an interrupted one is started over when the
//! operation resumes. The operation's id fixes the backup's, so a resumed backup keeps its name.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use firecamp_api::{Backup, CreateService, RestoreRequest, Service};
use firecamp_core::EngineKind;
use rand::distr::{Alphanumeric, SampleString};

use crate::config::Config;
use crate::error::{LocalError, Result};
use crate::runtime::Runtime;
use crate::store::{OperationRecord, RestoreRecord, ServiceRecord};

#[cfg(feature = "s3")]
pub mod cluster;
mod dump;
#[cfg(feature = "s3")]
pub mod job;
mod record;
pub mod redis_load;
mod repo;
#[cfg(feature = "s3")]
mod s3;

use record::{BackupRecord, FORMAT, LATEST, RECORD, backup_id, id_problem, now, sums, view, write_durably};
pub(crate) use repo::{Loc, Repo};

/// A new incarnation id (12 lowercase letters and digits).
pub(crate) fn new_uid() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 12).to_ascii_lowercase()
}

/// A service name from a request, checked before it becomes part of a path (`..` and slashes,
/// which a percent-encoded path segment can carry, never reach one).
fn check_service(service: &str) -> Result<()> {
    match firecamp_core::names::dns1035_label_problem(service) {
        Some(p) => Err(LocalError::invalid("name", format!("{service:?} is not a service name: {p}"))),
        None => Ok(()),
    }
}

/// The service's incarnation as a directory or key name (records made before backups existed
/// have no uid; none of them archives yet).
fn inc_name(rec: &ServiceRecord) -> &str {
    if rec.uid.is_empty() { "0" } else { rec.uid.as_str() }
}

fn backed_up_engine(engine: EngineKind) -> bool {
    matches!(engine, EngineKind::Postgresql | EngineKind::Redis | EngineKind::Zookeeper)
}

fn backed_up(rec: &ServiceRecord) -> bool {
    rec.spec.backup.is_some() && backed_up_engine(rec.spec.engine)
}

/// Whether the service archives WAL (PostgreSQL with `spec.backup`).
fn archives(rec: &ServiceRecord) -> bool {
    backed_up(rec) && rec.spec.engine == EngineKind::Postgresql
}

/// Where a restore's downloaded backup waits until the restored service's first start is done.
fn restore_staging(cfg: &Config, service: &str) -> PathBuf {
    cfg.dir.join("restores").join(service)
}

/// Drops a restore's downloaded backup (its service started, or was deleted).
pub(crate) fn forget_restore(cfg: &Config, service: &str) {
    let _ = std::fs::remove_dir_all(restore_staging(cfg, service));
}

/// Why a restore failed for good, as its first member's start script recorded it
/// (`firecamp-restore-failed` beside its data): the service is FAILED then.
pub(crate) fn restore_failure(cfg: &Config, rec: &ServiceRecord) -> Option<String> {
    let r = rec.restore.as_ref()?;
    let first = firecamp_core::MemberName::new(&rec.name, 0).to_string();
    let path = cfg.service_dir(&rec.name).join(first).join("data").join("pgdata").join("firecamp-restore-failed");
    let why = std::fs::read_to_string(path).ok()?;
    Some(format!("the restore of backup {} of {} failed: {}; delete this service and restore again (another time or backup)", r.backup, r.source, why.trim()))
}

impl Runtime {
    /// The service's WAL archive (a directory or an `s3://` URL), when it is backed up.
    pub(crate) fn archive(&self, rec: &ServiceRecord) -> Option<String> {
        archives(rec).then(|| self.repo.archive(&rec.name, inc_name(rec)))
    }

    /// How members reach an S3 archive (their own, or a restore's source).
    pub(crate) fn s3_access(&self, rec: &ServiceRecord) -> Option<firecamp_catalog::layout::S3Access> {
        let pg = rec.spec.engine == EngineKind::Postgresql;
        (archives(rec) || (pg && rec.restore.is_some())).then(|| self.repo.s3_access()).flatten()
    }

    /// The members' secret files: the service's, and the runtime's S3 keys where members archive.
    pub(crate) fn member_secrets(&self, rec: &ServiceRecord) -> BTreeMap<String, String> {
        let mut secrets = rec.secrets.clone();
        if self.s3_access(rec).is_some()
            && let Some(creds) = self.repo.member_credentials()
        {
            secrets.insert("aws-credentials".into(), creds);
        }
        secrets
    }

    /// The local backup directories of a backed-up service, owned by the engine's user (the
    /// server writes the archive, a restored member reads base backups): the archive only when
    /// backups are local, base backups staged here in any case.
    pub(crate) fn prepare_backups(&self, rec: &ServiceRecord, owner: Option<(u32, u32)>) -> Result<()> {
        if !backed_up(rec) {
            return Ok(());
        }
        let inc = Repo::local_incarnation(&self.cfg, &rec.name, inc_name(rec));
        for d in [self.cfg.backup_dir(), self.cfg.backup_dir().join(&rec.name), inc.clone()] {
            crate::materialize::mkdir(&d, 0o711, None)?;
        }
        if self.repo.is_local() && archives(rec) {
            crate::materialize::mkdir(&inc.join("wal"), 0o700, owner)?;
        }
        crate::materialize::mkdir(&inc.join("base"), 0o700, owner)
    }

    /// The `backup` step: a base backup of `planned` (a replica), or of the primary when that
    /// replica does not stream now; then the retention of `spec.backup`.
    pub(crate) async fn backup(&self, rec: &ServiceRecord, r: &OperationRecord, planned: &str, deadline: Instant) -> Result<(), String> {
        if !backed_up(rec) {
            return Err(format!("{} has no spec.backup", rec.name));
        }
        let loc = Loc { service: rec.name.clone(), inc: inc_name(rec).to_string(), id: backup_id(&rec.name, &r.operation.id) };
        if !self.repo.has(&loc).await.map_err(|e| e.to_string())? {
            self.take_backup(rec, &loc, planned, deadline).await?;
        }
        self.apply_retention(rec).await.map_err(|e| format!("retention: {e}"))
    }

    async fn take_backup(&self, rec: &ServiceRecord, loc: &Loc, planned: &str, deadline: Instant) -> Result<(), String> {
        let id = loc.id.as_str();
        let owner = self.member_user(rec.spec.engine).map_err(|e| e.to_string())?;
        let partial = Repo::local_incarnation(&self.cfg, &loc.service, &loc.inc).join("base").join(format!(".{id}.partial"));
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(|e| format!("removing {}: {e}", partial.display()))?;
        }
        crate::materialize::mkdir(&partial, 0o700, owner).map_err(|e| e.to_string())?;
        let started = now();
        let dumped = match rec.spec.engine {
            EngineKind::Postgresql => self.dump_postgresql(rec, id, planned, &partial, owner, deadline).await?,
            EngineKind::Redis => self.dump_redis(rec, id, planned, &partial, deadline).await?,
            EngineKind::Zookeeper => self.dump_zookeeper(rec, id, planned, &partial).await?,
            EngineKind::Kafka => return Err("Kafka services have no backups yet".into()),
            EngineKind::Mariadb => return Err("MariaDB services have no backups yet".into()),
            EngineKind::Cassandra => return Err("Cassandra services have no backups yet".into()),
        };
        // The files are the engine user's, whoever wrote them: a restored member reads them.
        if let Some((uid, gid)) = owner {
            for e in std::fs::read_dir(&partial).map_err(|e| format!("reading {}: {e}", partial.display()))?.flatten() {
                std::os::unix::fs::chown(e.path(), Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", partial.display()))?;
            }
        }
        let dir = partial.clone();
        let files = tokio::task::spawn_blocking(move || sums(&dir)).await.map_err(|e| e.to_string())?.map_err(|e| format!("checksums: {e}"))?;
        let record = BackupRecord {
            format: FORMAT,
            id: id.to_string(),
            service: rec.name.clone(),
            uid: rec.uid.clone(),
            engine: rec.spec.engine,
            server_version: rec.server_version.clone(),
            member: dumped.member.clone(),
            started,
            finished: now(),
            timeline: dumped.timeline,
            start_lsn: dumped.start_lsn,
            end_lsn: dumped.end_lsn,
            start_wal: dumped.start_wal,
            files,
            spec: rec.spec.clone(),
        };
        let json = serde_json::to_vec_pretty(&record).map_err(|e| e.to_string())?;
        write_durably(&partial.join(RECORD), &json).map_err(|e| format!("writing the backup record: {e}"))?;
        self.repo.commit(loc, &partial, &record).await?;
        tracing::info!(service = %rec.name, backup = id, member = %dumped.member, bytes = record.files.values().map(|f| f.size).sum::<u64>(), "backup taken");
        Ok(())
    }

    /// The restores under way from `service`'s backups: new service → backup id (a restored
    /// service's record names its backup until its first start is done).
    fn restores_from(&self, service: &str) -> Result<BTreeMap<String, String>> {
        Ok(self.store.list()?.into_iter().filter_map(|r| Some((r.name, r.restore?))).filter(|(_, x)| x.source == service).map(|(n, x)| (n, x.backup)).collect())
    }

    /// Keeps the newest `spec.backup.retention` backups of this incarnation, and any a restore
    /// under way starts from, and the archived WAL from the oldest kept one's start on.
    async fn apply_retention(&self, rec: &ServiceRecord) -> Result<()> {
        let keep = rec.spec.backup.as_ref().map(|b| b.retention()).unwrap_or(firecamp_core::spec::BackupSpec::DEFAULT_RETENTION) as usize;
        let mine: Vec<(Loc, BackupRecord)> = self.repo.records(&rec.name).await?.into_iter().filter(|(_, r)| r.uid == rec.uid).collect();
        let restoring: Vec<String> = self.restores_from(&rec.name)?.into_values().collect();
        let ids: Vec<&str> = mine.iter().map(|(_, r)| r.id.as_str()).collect();
        let (remove, oldest_kept) = retention_plan(&ids, keep, &restoring);
        for i in remove {
            let (loc, r) = &mine[i];
            self.repo.remove(loc).await?;
            tracing::info!(service = %rec.name, backup = %r.id, "backup removed by retention");
        }
        if let Some((_, oldest)) = oldest_kept.and_then(|i| mine.get(i)).filter(|_| archives(rec)) {
            self.clean_archive(rec, &oldest.start_wal).await?;
        }
        Ok(())
    }

    async fn clean_archive(&self, rec: &ServiceRecord, oldest_needed: &str) -> Result<()> {
        let installed = self.installed(rec)?;
        self.repo.clean_archive(&rec.name, inc_name(rec), oldest_needed, &installed.bin_dir).await
    }

    /// `GET …/backups`: newest first; also for a deleted service whose backups are kept.
    pub async fn backups(&self, service: &str) -> Result<Vec<Backup>> {
        check_service(service)?;
        let found = self.repo.records(service).await?;
        if found.is_empty() && self.store.get(service)?.is_none() {
            return Err(LocalError::NotFound(service.into()));
        }
        let mut until: BTreeMap<String, Option<SystemTime>> = BTreeMap::new();
        for (loc, _) in &found {
            if !until.contains_key(&loc.inc) {
                until.insert(loc.inc.clone(), self.repo.newest_archived(service, &loc.inc).await);
            }
        }
        Ok(found.iter().rev().map(|(loc, r)| view(r, until.get(&loc.inc).copied().flatten())).collect())
    }

    /// One backup of `service` by id, or its newest by `latest`.
    async fn find(&self, service: &str, id: &str) -> Result<(Loc, BackupRecord)> {
        check_service(service)?;
        if id == LATEST {
            return self
                .repo
                .records(service)
                .await?
                .pop()
                .ok_or_else(|| LocalError::Missing(format!("service {service:?} has no backups; take one with `firecamp service backup {service}`")));
        }
        if let Some(p) = id_problem(id) {
            return Err(LocalError::invalid("backup", p));
        }
        self.repo
            .records(service)
            .await?
            .into_iter()
            .find(|(loc, _)| loc.id == id)
            .ok_or_else(|| LocalError::Missing(format!("service {service:?} has no backup {id:?}; `firecamp service backups {service}` lists them")))
    }

    /// `DELETE …/backups/{id}`: the backup and the archived WAL only it needed.
    pub async fn delete_backup(&self, service: &str, id: &str) -> Result<Backup> {
        let _op = self.ops.lock().await;
        if let Some(busy) = self.unfinished_operation(service)? {
            return Err(busy);
        }
        let (loc, r) = self.find(service, id).await?;
        if let Some((by, _)) = self.restores_from(service)?.into_iter().find(|(_, backup)| *backup == r.id) {
            return Err(LocalError::Busy(format!("backup {} of {service} is being restored as {by}; delete it once {by} has started or is deleted", r.id)));
        }
        let shown = view(&r, self.repo.newest_archived(service, &loc.inc).await);
        self.repo.remove(&loc).await?;
        if let Some(rec) = self.store.get(service)?.filter(|rec| rec.uid == r.uid && archives(rec))
            && let Some((_, oldest)) = self.repo.records(service).await?.into_iter().find(|(_, o)| o.uid == r.uid)
        {
            self.clean_archive(&rec, &oldest.start_wal).await?;
        }
        Ok(shown)
    }

    /// `POST …/restore`: a new service from a backup of `source`, recovered up to `toTime`.
    /// Everything is checked before anything is made: the backup's id, its record (of this
    /// service, of PostgreSQL), its files (sizes and checksums) and the time.
    pub async fn restore(self: &Arc<Self>, source: &str, req: RestoreRequest) -> Result<Service> {
        let _op = self.ops.lock().await;
        let (loc, r) = self.find(source, &req.backup).await?;
        let engine_ok = backed_up_engine(r.engine) && r.spec.engine == r.engine;
        if r.format != FORMAT || r.service != source || !engine_ok {
            return Err(LocalError::invalid(
                "backup",
                format!(
                    "backup {} of {source:?} holds a backup of {} service {:?} (record format {}), not of the service {source:?}",
                    loc.id, r.engine, r.service, r.format
                ),
            ));
        }
        let target_time = match req.to_time.as_deref() {
            None => None,
            Some(_) if r.engine != EngineKind::Postgresql => {
                return Err(LocalError::invalid("toTime", format!("a {} backup restores to the moment it was taken; leave toTime out", r.engine)));
            }
            Some(t) => Some(self.check_target(&r, t)?),
        };
        if self.store.get(&req.name)?.is_some() {
            return Err(LocalError::AlreadyExists(req.name));
        }
        let owner = self.member_user(r.engine)?;
        let dir = self
            .repo
            .fetch(&loc, &r, &restore_staging(&self.cfg, &req.name), owner)
            .await
            .map_err(|why| LocalError::invalid("backup", format!("backup {} is damaged and cannot be restored: {why}", r.id)))?;
        if r.engine == EngineKind::Postgresql
            && let Err(e) = self.flush_source_wal(source, &r.uid).await
        {
            forget_restore(&self.cfg, &req.name);
            return Err(e);
        }
        let restore = RestoreRecord {
            source: source.to_string(),
            backup: r.id.clone(),
            base_dir: dir.display().to_string(),
            wal_dir: if r.engine == EngineKind::Postgresql { self.repo.archive(&loc.service, &loc.inc) } else { String::new() },
            target_time,
        };
        let mut spec = r.spec.clone();
        spec.stopped = false;
        tracing::info!(service = %req.name, from = %r.id, to_time = ?restore.target_time, "restoring");
        let name = req.name.clone();
        let made = self.create_locked(CreateService { name: req.name, spec }, Some(restore)).await;
        if made.is_err() {
            forget_restore(&self.cfg, &name);
        }
        made
    }

    /// The target time in the form PostgreSQL reads, if a restore of `r` can reach it.
    fn check_target(&self, r: &BackupRecord, t: &str) -> Result<String> {
        check_target(r, t)
    }
}

/// The target time in the form PostgreSQL reads, if a restore of `r` can reach it.
pub(crate) fn check_target(r: &BackupRecord, t: &str) -> Result<String> {
    let at = humantime::parse_rfc3339(t)
        .map_err(|e| LocalError::invalid("toTime", format!("{t:?} is not an RFC 3339 time in UTC such as 2026-12-02T20:15:00Z ({e})")))?;
    let finished = humantime::parse_rfc3339(&r.finished).map_err(|e| LocalError::Internal(format!("backup {}: finished {:?}: {e}", r.id, r.finished)))?;
    if at < finished {
        return Err(LocalError::invalid(
            "toTime",
            format!("{t} is before backup {} finished ({}), the earliest moment it restores to; choose an older backup", r.id, r.finished),
        ));
    }
    if at > SystemTime::now() {
        return Err(LocalError::invalid("toTime", format!("{t} is in the future")));
    }
    Ok(pg_time(at))
}

impl Runtime {
    /// When the source incarnation runs, its latest transactions are archived before the
    /// restore reads the archive: one more commit (so recovery finds one after any target up to
    /// now) and a WAL switch, waited for until the archiver has the file.
    async fn flush_source_wal(&self, source: &str, uid: &str) -> Result<()> {
        let Some(rec) = self.store.get(source)?.filter(|rec| rec.uid == uid && rec.desired == crate::store::Desired::Running && rec.init.done) else {
            return Ok(());
        };
        let primary = rec.current_primary();
        let c = crate::operations::pg(&rec, &primary).await.map_err(|e| LocalError::Unavailable(format!("archiving the latest WAL of {source}: {e}")))?;
        let fail = |e: tokio_postgres::Error| LocalError::Unavailable(format!("archiving the latest WAL of {source} on {primary}: {e}"));
        c.execute("SELECT txid_current()", &[]).await.map_err(fail)?;
        let file: String = c.query_one("SELECT pg_walfile_name(pg_switch_wal())", &[]).await.map_err(fail)?.get(0);
        let deadline = Instant::now() + Duration::from_secs(60);
        crate::operations::poll(deadline, &format!("{source} did not archive {file} within 60 s"), || async {
            let row = c.query_one("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver", &[]).await.map_err(|e| e.to_string())?;
            let last: String = row.get(0);
            if last.as_str() >= file.as_str() { Ok(()) } else { Err(format!("last archived {last:?}")) }
        })
        .await
        .map_err(LocalError::Unavailable)
    }
}

/// A moment as `recovery_target_time` reads it (`2026-12-02 20:15:00.000000+00`; PostgreSQL
/// refuses the `T…Z` form there).
fn pg_time(t: SystemTime) -> String {
    let s = humantime::format_rfc3339_micros(t).to_string();
    format!("{}+00", s.replacen('T', " ", 1).trim_end_matches('Z'))
}

/// Which of `ids` (oldest first) retention removes, keeping the newest `keep` and every one in
/// `restoring` (a restore under way reads it, and the WAL archived since its start); and the
/// index of the oldest kept, from whose start the archive must stay.
pub(crate) fn retention_plan(ids: &[&str], keep: usize, restoring: &[String]) -> (Vec<usize>, Option<usize>) {
    let excess = ids.len().saturating_sub(keep);
    let pinned = |i: usize| restoring.iter().any(|r| r == ids[i]);
    let remove: Vec<usize> = (0..excess).filter(|i| !pinned(*i)).collect();
    let oldest_kept = (0..ids.len()).find(|i| !remove.contains(i));
    (remove, oldest_kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_keeps_the_newest_and_any_backup_a_restore_reads() {
        let ids = ["a", "b", "c", "d", "e"];
        assert_eq!(retention_plan(&ids, 2, &[]), (vec![0, 1, 2], Some(3)));
        assert_eq!(retention_plan(&ids, 2, &["b".into()]), (vec![0, 2], Some(1)), "b is being restored: kept, with the WAL from its start");
        assert_eq!(retention_plan(&ids, 2, &["e".into(), "x".into()]), (vec![0, 1, 2], Some(3)));
        assert_eq!(retention_plan(&ids, 9, &[]), (vec![], Some(0)));
        assert_eq!(retention_plan(&[], 2, &[]), (vec![], None));
    }

    #[test]
    fn target_times_are_written_as_postgresql_reads_them() {
        let t = humantime::parse_rfc3339("2026-12-02T20:08:37.365879Z").unwrap();
        assert_eq!(pg_time(t), "2026-12-02 20:08:37.365879+00");
    }
}
