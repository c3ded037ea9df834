//! A PostgreSQL base backup taken by a Kubernetes Job (`firecamp backup-job`, docs/backup.md):
//! the same backup as the local runtime's — `pg_basebackup` (tar, WAL streamed) from a member,
//! checked into `backup.json`, uploaded file by file with the record last — into the cluster's
//! bucket under `<namespace>/<service>/<uid>/base/<id>/`, beside the WAL the members archive;
//! then the retention of `spec.backup`. Idempotent: a backup already recorded is not taken
//! again, so a Job retried (or a step resumed) ends the same.

use std::path::{Path, PathBuf};

use firecamp_aws::s3::S3Url;
use firecamp_core::ServiceSpec;

use super::Loc;
use super::record::{BackupRecord, FORMAT, RECORD, backup_id, manifest_wal, now, sums, write_durably};
use super::retention_plan;
use super::s3::S3Repo;

/// What the Job is told (its arguments and environment; the password is a file).
#[derive(Debug, Clone)]
pub struct BaseBackup {
    /// `s3://bucket/prefix/<namespace>`: the service's tree is below it.
    pub root: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub service: String,
    /// The service's incarnation (its FireCampService's uid).
    pub uid: String,
    /// The operation's id (`op-<millis>`): the backup's id comes from it.
    pub operation: String,
    /// The member to copy, by a name its certificate carries.
    pub host: String,
    pub port: u16,
    pub member: String,
    /// The replication user's password file.
    pub password_file: PathBuf,
    /// The service's CA (verify-full); `None`: the service has no TLS.
    pub ca_file: Option<PathBuf>,
    /// Where the backup is staged (an emptyDir of the Job's pod).
    pub staging: PathBuf,
    pub spec: ServiceSpec,
    pub server_version: String,
}

/// Takes the backup unless it is recorded, then applies the retention; says what it did.
pub async fn take(b: &BaseBackup) -> Result<String, String> {
    let root = S3Url::parse(&b.root).map_err(|e| format!("--root: {e}"))?;
    let repo = S3Repo::at(root, b.region.clone(), b.endpoint.clone()).await;
    let id = backup_id(&b.service, &b.operation);
    let loc = Loc { service: b.service.clone(), inc: b.uid.clone(), id: id.clone() };
    let mut said = if repo.has(&loc).await.map_err(|e| e.to_string())? {
        format!("backup {id} is already taken")
    } else {
        let r = dump(b, &id).await?;
        let partial = b.staging.join(format!(".{id}.partial"));
        repo.upload(&loc, &partial, &r).await?;
        let _ = std::fs::remove_dir_all(&partial);
        let bytes: u64 = r.files.values().map(|f| f.size).sum();
        format!("backup {id} taken from {} ({bytes} bytes, WAL {} – {})", r.member, r.start_lsn, r.end_lsn)
    };
    let keep = b.spec.backup.as_ref().map(|s| s.retention()).unwrap_or(firecamp_core::spec::BackupSpec::DEFAULT_RETENTION) as usize;
    let mine: Vec<(Loc, BackupRecord)> = repo.records(&b.service).await.map_err(|e| e.to_string())?.into_iter().filter(|(_, r)| r.uid == b.uid).collect();
    let ids: Vec<&str> = mine.iter().map(|(_, r)| r.id.as_str()).collect();
    // No restores on Kubernetes yet: none pins a backup.
    let (remove, oldest_kept) = retention_plan(&ids, keep, &[]);
    for i in &remove {
        repo.remove(&mine[*i].0).await.map_err(|e| format!("retention: {e}"))?;
        said.push_str(&format!("; {} removed by the retention of {keep}", mine[*i].1.id));
    }
    if let Some((_, oldest)) = oldest_kept.and_then(|i| mine.get(i)) {
        repo.clean_archive(&b.service, &b.uid, &oldest.start_wal).await.map_err(|e| format!("retention: {e}"))?;
    }
    Ok(said)
}

/// `pg_basebackup` into `<staging>/.<id>.partial` (started over when a try left one), its WAL
/// range from the manifest, and the record written beside the files.
async fn dump(b: &BaseBackup, id: &str) -> Result<BackupRecord, String> {
    let partial = b.staging.join(format!(".{id}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| format!("removing {}: {e}", partial.display()))?;
    }
    std::fs::create_dir_all(&partial).map_err(|e| format!("creating {}: {e}", partial.display()))?;
    let password = std::fs::read_to_string(&b.password_file).map_err(|e| format!("reading {}: {e}", b.password_file.display()))?;
    let pgpass = b.staging.join("pgpass");
    let user = firecamp_catalog::postgresql::REPLICATION_USER;
    write_private(&pgpass, &format!("*:*:*:{user}:{}\n", password.trim()))?;
    let started = now();
    let mut cmd = tokio::process::Command::new("pg_basebackup");
    cmd.args(["-h", &b.host, "-p", &b.port.to_string(), "-U", user, "-w", "-Ft", "-X", "stream", "-c", "fast", "-D"])
        .arg(&partial)
        .env("PGPASSFILE", &pgpass)
        .env("PGAPPNAME", "firecamp-backup")
        // libpq looks for a client certificate under $HOME.
        .env("HOME", &b.staging)
        .kill_on_drop(true);
    match &b.ca_file {
        Some(ca) => cmd.env("PGSSLMODE", "verify-full").env("PGSSLROOTCERT", ca),
        None => cmd.env("PGSSLMODE", "disable"),
    };
    let out = cmd.output().await.map_err(|e| format!("running pg_basebackup: {e}"))?;
    let _ = std::fs::remove_file(&pgpass);
    if !out.status.success() {
        return Err(format!("pg_basebackup from {} failed: {}", b.member, String::from_utf8_lossy(&out.stderr).trim()));
    }
    let (timeline, start_lsn, end_lsn, start_wal) = manifest_wal(&partial)?;
    let dir = partial.clone();
    let files = tokio::task::spawn_blocking(move || sums(&dir)).await.map_err(|e| e.to_string())?.map_err(|e| format!("checksums: {e}"))?;
    let record = BackupRecord {
        format: FORMAT,
        id: id.to_string(),
        service: b.service.clone(),
        uid: b.uid.clone(),
        engine: b.spec.engine,
        server_version: b.server_version.clone(),
        member: b.member.clone(),
        started,
        finished: now(),
        timeline,
        start_lsn,
        end_lsn,
        start_wal,
        files,
        spec: b.spec.clone(),
    };
    let json = serde_json::to_vec_pretty(&record).map_err(|e| e.to_string())?;
    write_durably(&partial.join(RECORD), &json).map_err(|e| format!("writing the backup record: {e}"))?;
    Ok(record)
}

fn write_private(path: &Path, content: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(|e| format!("writing {}: {e}", path.display()))?;
    f.write_all(content.as_bytes()).map_err(|e| format!("writing {}: {e}", path.display()))
}
