//! Backups of the local runtime's PostgreSQL services (docs/backup.md). Every member archives
//! WAL through the catalog's `wal.sh` into `<backups>/<service>/<uid>/wal` (the primary does;
//! `archive_mode = on`), a `backup` operation takes a base backup with `pg_basebackup` (tar
//! format, WAL streamed) from a streaming replica into `…/base/<id>`, checked and described by
//! `backup.json`, and a restore makes a new service whose first member starts from one.
//!
//! Durable: a backup is written into `.<id>.partial` and renamed when complete, so a backup
//! directory without a dot is whole; an interrupted one is started over when the operation
//! resumes. The operation's id fixes the backup's, so a resumed backup keeps its name.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use firecamp_api::{Backup, CreateService, RestoreRequest, Service};
use firecamp_core::{EngineKind, ServiceSpec};
use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{LocalError, Result};
use crate::runtime::Runtime;
use crate::store::{OperationRecord, RestoreRecord, ServiceRecord};

const RECORD: &str = "backup.json";
const FORMAT: u32 = 1;
/// What `--from` may say instead of an id: the newest backup.
const LATEST: &str = "latest";

/// What `backup.json` says of a backup: enough to list it, check it and restore it without the
/// service it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BackupRecord {
    format: u32,
    id: String,
    service: String,
    uid: String,
    engine: EngineKind,
    server_version: String,
    member: String,
    started: String,
    finished: String,
    timeline: u32,
    start_lsn: String,
    end_lsn: String,
    /// The first WAL file the backup needs (older archived files are only for older backups).
    start_wal: String,
    files: BTreeMap<String, FileSum>,
    /// The service's spec when it was taken: a restore makes a service of the same shape.
    spec: ServiceSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FileSum {
    size: u64,
    sha256: String,
}

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

fn service_root(cfg: &Config, service: &str) -> PathBuf {
    cfg.backup_dir().join(service)
}

fn incarnation(cfg: &Config, rec: &ServiceRecord) -> PathBuf {
    // Records made before backups existed have no uid; none of them archives yet.
    service_root(cfg, &rec.name).join(if rec.uid.is_empty() { "0" } else { rec.uid.as_str() })
}

/// The service's WAL archive, when it is backed up.
pub(crate) fn archive_dir(cfg: &Config, rec: &ServiceRecord) -> Option<PathBuf> {
    (rec.spec.backup.is_some() && rec.spec.engine == EngineKind::Postgresql).then(|| incarnation(cfg, rec).join("wal"))
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

/// The backup directories of a backed-up service, its archive and base backups owned by the
/// engine's user (the server writes the one, a restored member reads the other).
pub(crate) fn prepare(cfg: &Config, rec: &ServiceRecord, owner: Option<(u32, u32)>) -> Result<()> {
    let Some(wal) = archive_dir(cfg, rec) else { return Ok(()) };
    let inc = incarnation(cfg, rec);
    for d in [cfg.backup_dir(), service_root(cfg, &rec.name), inc.clone()] {
        crate::materialize::mkdir(&d, 0o711, None)?;
    }
    crate::materialize::mkdir(&wal, 0o700, owner)?;
    crate::materialize::mkdir(&inc.join("base"), 0o700, owner)
}

/// `<service>-<YYYYMMDDTHHMMSSmmmZ>` from the operation's id (`op-<unix millis>`, unique in the
/// service: two backups within a second keep apart).
fn backup_id(service: &str, op_id: &str) -> String {
    let millis: u64 = op_id.strip_prefix("op-").and_then(|m| m.parse().ok()).unwrap_or_default();
    let t = SystemTime::UNIX_EPOCH + Duration::from_millis(millis);
    let stamp: String = humantime::format_rfc3339_millis(t).to_string().chars().filter(|c| !matches!(c, '-' | ':' | '.')).collect();
    format!("{service}-{stamp}")
}

/// A backup id as FireCamp makes them, checked before it reaches a path.
fn id_problem(id: &str) -> Option<String> {
    let ok = id.len() <= 80
        && id.rsplit_once('-').is_some_and(|(svc, stamp)| {
            !svc.is_empty()
                && svc.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && stamp.len() == 19
                && stamp.bytes().enumerate().all(|(i, b)| match i {
                    8 => b == b'T',
                    18 => b == b'Z',
                    _ => b.is_ascii_digit(),
                })
        });
    (!ok).then(|| format!("{id:?} is not a backup id (`<service>-<YYYYMMDDTHHMMSSmmmZ>`, as `firecamp service backups` lists them)"))
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// `<timeline><log><seg>` of the WAL file holding `lsn` (16 MiB segments, PostgreSQL's default).
fn wal_file(timeline: u32, lsn: &str) -> Option<String> {
    let (hi, lo) = lsn.split_once('/')?;
    let (hi, lo) = (u64::from_str_radix(hi, 16).ok()?, u64::from_str_radix(lo, 16).ok()?);
    Some(format!("{timeline:08X}{hi:08X}{:08X}", lo >> 24))
}

/// Timeline and LSN range from `backup_manifest`.
fn wal_range(manifest: &serde_json::Value) -> Option<(u32, String, String)> {
    let ranges = manifest.get("WAL-Ranges")?.as_array()?;
    let first = ranges.first()?;
    let timeline = u32::try_from(first.get("Timeline")?.as_u64()?).ok()?;
    let start = first.get("Start-LSN")?.as_str()?.to_string();
    let end = ranges.last()?.get("End-LSN")?.as_str()?.to_string();
    Some((timeline, start, end))
}

fn sum(path: &Path) -> std::io::Result<FileSum> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok(FileSum { size, sha256: h.finalize().iter().map(|b| format!("{b:02x}")).collect() })
}

fn sums(dir: &Path) -> std::io::Result<BTreeMap<String, FileSum>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type()?.is_file() && name != RECORD {
            out.insert(name, sum(&e.path())?);
        }
    }
    Ok(out)
}

/// Writes `path` whole or not at all, on disk before it is renamed into place.
fn write_durably(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(content)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new("/")))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn read_record(dir: &Path) -> Result<BackupRecord> {
    let path = dir.join(RECORD);
    let text = std::fs::read_to_string(&path).map_err(LocalError::io(format!("reading {}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| LocalError::Conflict(format!("{} is not a FireCamp backup record: {e}", path.display())))
}

/// Every complete backup of a service name (all its incarnations), oldest first, with the
/// directory it is in.
fn records(cfg: &Config, service: &str) -> Vec<(PathBuf, BackupRecord)> {
    let mut out = Vec::new();
    let Ok(incs) = std::fs::read_dir(service_root(cfg, service)) else { return out };
    for inc in incs.flatten() {
        let Ok(bases) = std::fs::read_dir(inc.path().join("base")) else { continue };
        for b in bases.flatten() {
            let dir = b.path();
            if b.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if let Ok(r) = read_record(&dir) {
                out.push((dir, r));
            }
        }
    }
    out.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    out
}

/// When the newest file of an archive was written.
fn newest_archived(wal: &Path) -> Option<SystemTime> {
    std::fs::read_dir(wal)
        .ok()?
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
}

fn view(dir: &Path, r: &BackupRecord) -> Backup {
    let wal = dir.parent().and_then(Path::parent).map(|inc| inc.join("wal"));
    Backup {
        id: r.id.clone(),
        service: r.service.clone(),
        member: r.member.clone(),
        started: r.started.clone(),
        finished: r.finished.clone(),
        size_bytes: r.files.values().map(|f| f.size).sum(),
        timeline: r.timeline,
        wal_start: r.start_lsn.clone(),
        wal_end: r.end_lsn.clone(),
        recoverable_until: wal.as_deref().and_then(newest_archived).map(|t| humantime::format_rfc3339_seconds(t).to_string()),
    }
}

/// Checks a backup's files against its record: a missing, truncated or altered file is named.
fn check_files(dir: &Path, r: &BackupRecord) -> Result<(), String> {
    for (name, want) in &r.files {
        let got = sum(&dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        if got.size != want.size {
            return Err(format!("{name} has {} bytes, its record says {}", got.size, want.size));
        }
        if got.sha256 != want.sha256 {
            return Err(format!("{name} does not have the checksum its record gives"));
        }
    }
    for f in ["base.tar", "pg_wal.tar"] {
        if !r.files.contains_key(f) {
            return Err(format!("its record lists no {f}"));
        }
    }
    Ok(())
}

impl Runtime {
    /// The `backup` step: a base backup of `planned` (a replica), or of the primary when that
    /// replica does not stream now; then the retention of `spec.backup`.
    pub(crate) async fn backup(&self, rec: &ServiceRecord, r: &OperationRecord, planned: &str, deadline: Instant) -> Result<(), String> {
        let inc = incarnation(&self.cfg, rec);
        archive_dir(&self.cfg, rec).ok_or_else(|| format!("{} has no spec.backup", rec.name))?;
        let id = backup_id(&rec.name, &r.operation.id);
        let done = inc.join("base").join(&id);
        if !done.join(RECORD).exists() {
            self.take_backup(rec, &id, planned, &inc, deadline).await?;
        }
        self.apply_retention(rec).map_err(|e| format!("retention: {e}"))
    }

    async fn take_backup(&self, rec: &ServiceRecord, id: &str, planned: &str, inc: &Path, deadline: Instant) -> Result<(), String> {
        let member = source(rec, planned, deadline).await?;
        let installed = self.installed(rec).map_err(|e| e.to_string())?;
        let plan = self.plan_of(rec, &installed).map_err(|e| e.to_string())?;
        let m = plan.member(&member).ok_or_else(|| format!("{member} is not in the plan of {}", rec.name))?;
        let ip = rec.ips.get(&member).ok_or_else(|| format!("{member} has no address"))?;
        let owner = self.member_user(rec.spec.engine).map_err(|e| e.to_string())?;
        let partial = inc.join("base").join(format!(".{id}.partial"));
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(|e| format!("removing {}: {e}", partial.display()))?;
        }
        crate::materialize::mkdir(&partial, 0o700, owner).map_err(|e| e.to_string())?;
        let started = now();
        self.log_sink(&rec.name, &member).line(&format!("firecamp: base backup {id} from {member}"));
        let mut cmd = tokio::process::Command::new(Path::new(&installed.bin_dir).join("pg_basebackup"));
        cmd.args(["-h", &ip.to_string(), "-p", &firecamp_catalog::postgresql::PORT.to_string(), "-U", firecamp_catalog::postgresql::REPLICATION_USER])
            .args(["-w", "-Ft", "-X", "stream", "-c", "fast", "-D"])
            .arg(&partial)
            // The passfile the member's start script makes from the service's secret (never argv).
            .env("PGPASSFILE", Path::new(&m.paths.run_dir).join("pgpass"))
            .env("PGSSLMODE", "verify-full")
            .env("PGSSLROOTCERT", Path::new(&m.paths.tls_dir).join(firecamp_catalog::tls::CA_FILE))
            .env("PGAPPNAME", "firecamp-backup")
            // Not the daemon's (root's) home: libpq looks for a client certificate there.
            .env("HOME", &m.paths.run_dir)
            .kill_on_drop(true);
        if let Some((uid, gid)) = owner {
            cmd.uid(uid).gid(gid);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let out = tokio::time::timeout(left, cmd.output())
            .await
            .map_err(|_| "pg_basebackup did not finish within the step's timeout (--step-timeout)".to_string())?
            .map_err(|e| format!("running pg_basebackup: {e}"))?;
        if !out.status.success() {
            return Err(format!("pg_basebackup from {member} failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        let manifest_path = partial.join("backup_manifest");
        let manifest: serde_json::Value = std::fs::read(&manifest_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| format!("{} is missing or unreadable", manifest_path.display()))?;
        let (timeline, start_lsn, end_lsn) = wal_range(&manifest).ok_or("backup_manifest has no WAL range")?;
        let start_wal = wal_file(timeline, &start_lsn).ok_or_else(|| format!("the start LSN {start_lsn} is not one"))?;
        let dir = partial.clone();
        let files = tokio::task::spawn_blocking(move || sums(&dir)).await.map_err(|e| e.to_string())?.map_err(|e| format!("checksums: {e}"))?;
        let record = BackupRecord {
            format: FORMAT,
            id: id.to_string(),
            service: rec.name.clone(),
            uid: rec.uid.clone(),
            engine: rec.spec.engine,
            server_version: rec.server_version.clone(),
            member: member.clone(),
            started,
            finished: now(),
            timeline,
            start_lsn,
            end_lsn,
            start_wal,
            files,
            spec: rec.spec.clone(),
        };
        let json = serde_json::to_vec_pretty(&record).map_err(|e| e.to_string())?;
        write_durably(&partial.join(RECORD), &json).map_err(|e| format!("writing the backup record: {e}"))?;
        let done = inc.join("base").join(id);
        std::fs::rename(&partial, &done).map_err(|e| format!("renaming {} into place: {e}", partial.display()))?;
        sync_dir(&inc.join("base")).map_err(|e| e.to_string())?;
        tracing::info!(service = %rec.name, backup = id, member = %member, bytes = record.files.values().map(|f| f.size).sum::<u64>(), "base backup taken");
        Ok(())
    }

    /// Keeps the newest `spec.backup.retention` backups of this incarnation and the archived
    /// WAL from the oldest kept one's start on (`pg_archivecleanup`).
    fn apply_retention(&self, rec: &ServiceRecord) -> Result<()> {
        let keep = rec.spec.backup.as_ref().map(|b| b.retention()).unwrap_or(firecamp_core::spec::BackupSpec::DEFAULT_RETENTION) as usize;
        let mine: Vec<(PathBuf, BackupRecord)> = records(&self.cfg, &rec.name).into_iter().filter(|(_, r)| r.uid == rec.uid).collect();
        let excess = mine.len().saturating_sub(keep);
        for (dir, r) in &mine[..excess] {
            std::fs::remove_dir_all(dir).map_err(LocalError::io(format!("removing {}", dir.display())))?;
            tracing::info!(service = %rec.name, backup = %r.id, "backup removed by retention");
        }
        if let (Some((_, oldest)), Some(wal)) = (mine.get(excess), archive_dir(&self.cfg, rec)) {
            self.clean_archive(rec, &wal, &oldest.start_wal)?;
        }
        Ok(())
    }

    fn clean_archive(&self, rec: &ServiceRecord, wal: &Path, oldest_needed: &str) -> Result<()> {
        let installed = self.installed(rec)?;
        let out = std::process::Command::new(Path::new(&installed.bin_dir).join("pg_archivecleanup"))
            .arg(wal)
            .arg(oldest_needed)
            .output()
            .map_err(LocalError::io("running pg_archivecleanup"))?;
        if !out.status.success() {
            return Err(LocalError::Internal(format!("pg_archivecleanup: {}", String::from_utf8_lossy(&out.stderr).trim())));
        }
        Ok(())
    }

    /// `GET …/backups`: newest first; also for a deleted service whose backups are kept.
    pub fn backups(&self, service: &str) -> Result<Vec<Backup>> {
        check_service(service)?;
        let found = records(&self.cfg, service);
        if found.is_empty() && self.store.get(service)?.is_none() {
            return Err(LocalError::NotFound(service.into()));
        }
        Ok(found.iter().rev().map(|(dir, r)| view(dir, r)).collect())
    }

    /// One backup of `service` by id, or its newest by `latest`.
    fn find(&self, service: &str, id: &str) -> Result<(PathBuf, BackupRecord)> {
        check_service(service)?;
        if id == LATEST {
            return records(&self.cfg, service)
                .pop()
                .ok_or_else(|| LocalError::Missing(format!("service {service:?} has no backups; take one with `firecamp service backup {service}`")));
        }
        if let Some(p) = id_problem(id) {
            return Err(LocalError::invalid("backup", p));
        }
        records(&self.cfg, service)
            .into_iter()
            .find(|(dir, _)| dir.file_name().is_some_and(|n| n == id))
            .ok_or_else(|| LocalError::Missing(format!("service {service:?} has no backup {id:?}; `firecamp service backups {service}` lists them")))
    }

    /// `DELETE …/backups/{id}`: the backup and the archived WAL only it needed.
    pub async fn delete_backup(&self, service: &str, id: &str) -> Result<Backup> {
        let _op = self.ops.lock().await;
        if let Some(busy) = self.unfinished_operation(service)? {
            return Err(busy);
        }
        let (dir, r) = self.find(service, id)?;
        let shown = view(&dir, &r);
        std::fs::remove_dir_all(&dir).map_err(LocalError::io(format!("removing {}", dir.display())))?;
        if let Some(rec) = self.store.get(service)?.filter(|rec| rec.uid == r.uid)
            && let Some(wal) = archive_dir(&self.cfg, &rec)
            && let Some((_, oldest)) = records(&self.cfg, service).into_iter().find(|(_, o)| o.uid == r.uid)
        {
            self.clean_archive(&rec, &wal, &oldest.start_wal)?;
        }
        Ok(shown)
    }

    /// `POST …/restore`: a new service from a backup of `source`, recovered up to `toTime`.
    /// Everything is checked before anything is made: the backup's id, its record (of this
    /// service, of PostgreSQL), its files (sizes and checksums) and the time.
    pub async fn restore(self: &Arc<Self>, source: &str, req: RestoreRequest) -> Result<Service> {
        let _op = self.ops.lock().await;
        let (dir, r) = self.find(source, &req.backup)?;
        if r.format != FORMAT || r.service != source || r.engine != EngineKind::Postgresql {
            return Err(LocalError::invalid(
                "backup",
                format!(
                    "{} holds a backup of {} service {:?} (record format {}), not of this PostgreSQL service {source:?}",
                    dir.display(),
                    r.engine,
                    r.service,
                    r.format
                ),
            ));
        }
        let target_time = match req.to_time.as_deref() {
            None => None,
            Some(t) => Some(self.check_target(&r, t)?),
        };
        let checked = dir.clone();
        let record = r.clone();
        tokio::task::spawn_blocking(move || check_files(&checked, &record))
            .await
            .map_err(|e| LocalError::Internal(e.to_string()))?
            .map_err(|why| LocalError::invalid("backup", format!("backup {} is damaged and cannot be restored: {why}", r.id)))?;
        if self.store.get(&req.name)?.is_some() {
            return Err(LocalError::AlreadyExists(req.name));
        }
        self.flush_source_wal(source, &r.uid).await?;
        let inc = dir.parent().and_then(Path::parent).ok_or_else(|| LocalError::Internal(format!("{} has no archive beside it", dir.display())))?;
        let restore = RestoreRecord {
            source: source.to_string(),
            backup: r.id.clone(),
            base_dir: dir.display().to_string(),
            wal_dir: inc.join("wal").display().to_string(),
            target_time,
        };
        let mut spec = r.spec.clone();
        spec.stopped = false;
        tracing::info!(service = %req.name, from = %r.id, to_time = ?restore.target_time, "restoring");
        self.create_locked(CreateService { name: req.name, spec }, Some(restore)).await
    }

    /// The target time in the form PostgreSQL reads, if a restore of `r` can reach it.
    fn check_target(&self, r: &BackupRecord, t: &str) -> Result<String> {
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

/// The member to back up: `planned` once it streams (members may still be starting, after a
/// daemon restart), else, after 30 s, the primary once it answers.
async fn source(rec: &ServiceRecord, planned: &str, deadline: Instant) -> Result<String, String> {
    let replica_by = deadline.min(Instant::now() + Duration::from_secs(30));
    let waited = crate::operations::poll(replica_by, &format!("{planned} does not stream"), || async {
        if streams(rec, planned).await { Ok(()) } else { Err("not streaming".to_string()) }
    })
    .await;
    if waited.is_ok() {
        return Ok(planned.to_string());
    }
    let primary = rec.current_primary();
    crate::operations::poll(deadline, &format!("neither {planned} streams nor the primary {primary} answers"), || async {
        crate::operations::pg(rec, &primary).await.map(|_| ())
    })
    .await?;
    Ok(primary)
}

/// Whether `member` is a replica streaming from its primary now.
async fn streams(rec: &ServiceRecord, member: &str) -> bool {
    let Ok(c) = crate::operations::pg(rec, member).await else { return false };
    c.query_opt("SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'", &[]).await.is_ok_and(|r| r.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_operation_and_are_checked_before_they_reach_a_path() {
        let id = backup_id("pg", "op-1764706500042");
        assert_eq!(id, "pg-20251202T201500042Z");
        assert_eq!(id_problem(&id), None);
        assert_ne!(backup_id("pg", "op-1764706500043"), id, "two backups within a second");
        for bad in [
            "../pg-20251202T201500042Z",
            "pg-20251202T201500042Z/..",
            "pg",
            "pg-2025120XT201500042Z",
            "PG-20251202T201500042Z",
            "pg-20251202T201500042Z\n",
            "pg-20251202T201500Z",
            "",
        ] {
            assert!(id_problem(bad).is_some(), "{bad:?} accepted");
        }
    }

    #[test]
    fn target_times_are_written_as_postgresql_reads_them() {
        let t = humantime::parse_rfc3339("2026-12-02T20:08:37.365879Z").unwrap();
        assert_eq!(pg_time(t), "2026-12-02 20:08:37.365879+00");
    }

    #[test]
    fn wal_file_names_follow_postgresql() {
        assert_eq!(wal_file(1, "0/2000028").as_deref(), Some("000000010000000000000002"));
        assert_eq!(wal_file(3, "1A/FF000000").as_deref(), Some("000000030000001A000000FF"));
        assert_eq!(wal_file(1, "nonsense"), None);
    }

    #[test]
    fn the_wal_range_is_read_from_the_manifest() {
        let m = serde_json::json!({"WAL-Ranges": [{"Timeline": 2, "Start-LSN": "0/5000028", "End-LSN": "0/5000138"}]});
        assert_eq!(wal_range(&m), Some((2, "0/5000028".into(), "0/5000138".into())));
        assert_eq!(wal_range(&serde_json::json!({})), None);
    }
}
