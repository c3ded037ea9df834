//! A backup taken by a Kubernetes Job (`firecamp backup-job`, docs/backup.md): the same backup
//! as the local runtime's — PostgreSQL's base backup (`pg_basebackup`, tar, WAL streamed) or
//! Redis's snapshot (`redis-cli --rdb`) from a member, checked into `backup.json`, uploaded
//! file by file with the record last — into the cluster's bucket under
//! `<namespace>/<service>/<uid>/base/<id>/` (beside the WAL PostgreSQL's members archive);
//! then the retention of `spec.backup`. Idempotent: a backup already recorded is not taken
//! again, so a Job retried (or a step resumed) ends the same.

use std::path::{Path, PathBuf};

use firecamp_aws::s3::S3Url;
use firecamp_core::{EngineKind, ServiceSpec};

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
    /// The password file: PostgreSQL's replication user's, Redis's (none for ZooKeeper).
    pub password_file: Option<PathBuf>,
    /// A Redis Cluster: each shard and its members' hosts, the first tried first (replicas
    /// before the primary); its snapshot is `shard-<k>.rdb`. Empty for other services.
    pub shards: Vec<(u32, Vec<String>)>,
    /// ZooKeeper: the member's snapshots and transaction logs (its volumes, mounted read-only).
    pub snapshots: Option<PathBuf>,
    pub logs: Option<PathBuf>,
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
        let wal = if r.start_lsn.is_empty() { String::new() } else { format!(", WAL {} – {}", r.start_lsn, r.end_lsn) };
        format!("backup {id} taken from {} ({bytes} bytes{wal})", r.member)
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
    if let Some((_, oldest)) = oldest_kept.and_then(|i| mine.get(i)).filter(|_| b.spec.engine == EngineKind::Postgresql) {
        repo.clean_archive(&b.service, &b.uid, &oldest.start_wal).await.map_err(|e| format!("retention: {e}"))?;
    }
    Ok(said)
}

/// The engine's dump into `<staging>/.<id>.partial` (started over when a try left one), and
/// the record written beside the files.
async fn dump(b: &BaseBackup, id: &str) -> Result<BackupRecord, String> {
    let partial = b.staging.join(format!(".{id}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| format!("removing {}: {e}", partial.display()))?;
    }
    std::fs::create_dir_all(&partial).map_err(|e| format!("creating {}: {e}", partial.display()))?;
    let password = || {
        let p = b.password_file.as_ref().ok_or("--password-file is needed")?;
        std::fs::read_to_string(p).map(|s| s.trim().to_string()).map_err(|e| format!("reading {}: {e}", p.display()))
    };
    let started = now();
    let none = || (0, String::new(), String::new(), String::new());
    let mut member = b.member.clone();
    let (timeline, start_lsn, end_lsn, start_wal) = match b.spec.engine {
        EngineKind::Postgresql => dump_postgresql(b, &partial, &password()?).await?,
        EngineKind::Redis if b.shards.is_empty() => {
            rdb(b, &b.host, &partial.join(super::dump::RDB), &password()?).await?;
            none()
        }
        EngineKind::Redis => {
            member = dump_shards(b, &partial, &password()?).await?;
            none()
        }
        EngineKind::Zookeeper => {
            let (Some(snaps), Some(logs)) = (b.snapshots.clone(), b.logs.clone()) else {
                return Err("--snapshots and --logs are needed for ZooKeeper".into());
            };
            let into = partial.clone();
            tokio::task::spawn_blocking(move || super::dump::copy_zookeeper(&snaps, &logs, &into)).await.map_err(|e| e.to_string())??;
            none()
        }
        EngineKind::Kafka => return Err("Kafka services have no backups yet".into()),
        EngineKind::Cassandra => return Err("Cassandra services have no backups yet".into()),
        EngineKind::Mariadb => return Err("MariaDB services have no backups yet".into()),
    };
    let dir = partial.clone();
    let files = tokio::task::spawn_blocking(move || sums(&dir)).await.map_err(|e| e.to_string())?.map_err(|e| format!("checksums: {e}"))?;
    let record = BackupRecord {
        format: FORMAT,
        id: id.to_string(),
        service: b.service.clone(),
        uid: b.uid.clone(),
        engine: b.spec.engine,
        server_version: b.server_version.clone(),
        member,
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

/// A Redis Cluster: each shard's snapshot from the first of its hosts that gives one (each of
/// its own moment: Redis has no cluster-wide one); the members they came from.
async fn dump_shards(b: &BaseBackup, partial: &Path, password: &str) -> Result<String, String> {
    let mut from = Vec::new();
    for (k, hosts) in &b.shards {
        let file = partial.join(format!("shard-{k}.rdb"));
        let mut failures = Vec::new();
        let mut got = None;
        for host in hosts {
            match rdb(b, host, &file, password).await {
                Ok(()) => {
                    // A member's DNS name starts with its name.
                    got = Some(host.split('.').next().unwrap_or(host).to_string());
                    break;
                }
                Err(e) => failures.push(e),
            }
        }
        from.push(got.ok_or_else(|| format!("shard {k}: no member gave its snapshot: {}", failures.join("; ")))?);
    }
    Ok(from.join(","))
}

/// `redis-cli --rdb` from `host` into `file`: the snapshot of one moment (the server forks for
/// it, as for a replica's full sync), over verify-full TLS, the password in REDISCLI_AUTH
/// (never an argument).
async fn rdb(b: &BaseBackup, host: &str, file: &Path, password: &str) -> Result<(), String> {
    let ca = b.ca_file.as_ref().ok_or("a Redis member serves TLS only: --ca-file is needed")?;
    let _ = std::fs::remove_file(file);
    let out = tokio::process::Command::new("redis-cli")
        .args(["--tls", "--cacert"])
        .arg(ca)
        .args(["-h", host, "-p", &b.port.to_string(), "--rdb"])
        .arg(file)
        .env("REDISCLI_AUTH", password)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("running redis-cli: {e}"))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        return Err(format!("redis-cli --rdb from {host} failed: {}", text.trim()));
    }
    Ok(())
}

/// `pg_basebackup` into `partial`; its WAL range (timeline, start and end LSN, first WAL file)
/// from the manifest.
async fn dump_postgresql(b: &BaseBackup, partial: &Path, password: &str) -> Result<(u32, String, String, String), String> {
    let pgpass = b.staging.join("pgpass");
    let user = firecamp_catalog::postgresql::REPLICATION_USER;
    write_private(&pgpass, &format!("*:*:*:{user}:{password}\n"))?;
    let mut cmd = tokio::process::Command::new("pg_basebackup");
    cmd.args(["-h", &b.host, "-p", &b.port.to_string(), "-U", user, "-w", "-Ft", "-X", "stream", "-c", "fast", "-D"])
        .arg(partial)
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
    manifest_wal(partial)
}

fn write_private(path: &Path, content: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(|e| format!("writing {}: {e}", path.display()))?;
    f.write_all(content.as_bytes()).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Kubernetes, `firecamp member-init` of a restored service's first member: the base backup at
/// `from` downloaded into `into` (on the member's data volume) and checked against its record —
/// every file's size and SHA-256, the files PostgreSQL needs — before the first start unpacks
/// it. Done once: a `.complete` marker says so; an interrupted download starts over. `creds`:
/// an AWS shared-credentials file (the tenant's), else the pod's identity.
pub async fn fetch(from: &firecamp_catalog::layout::RestoreFetch, creds: Option<&Path>, into: &Path) -> Result<(), String> {
    let done = into.join(".complete");
    if done.exists() {
        return Ok(());
    }
    let url = S3Url::parse(&from.url)?;
    let keys = match creds {
        Some(p) => Some(shared_credentials(&std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))?)?),
        None => None,
    };
    let endpoint = (!from.endpoint.is_empty()).then(|| from.endpoint.clone());
    let settings = firecamp_aws::AwsSettings { region: Some(from.region.clone()), endpoint_url: endpoint, ..Default::default() };
    let bucket = firecamp_aws::s3::Bucket::new(&settings, &url.bucket, keys).await;
    let record_key = url.join(RECORD).key;
    let bytes = bucket.get_bytes(&record_key).await.map_err(|e| format!("reading {}: {e}", url.join(RECORD)))?;
    let bytes = bytes.ok_or_else(|| format!("{from} holds no backup (no {RECORD})", from = from.url))?;
    let record: BackupRecord = serde_json::from_slice(&bytes).map_err(|e| format!("{}: not a backup record: {e}", url.join(RECORD)))?;
    if into.exists() {
        std::fs::remove_dir_all(into).map_err(|e| format!("removing {}: {e}", into.display()))?;
    }
    std::fs::create_dir_all(into).map_err(|e| format!("creating {}: {e}", into.display()))?;
    std::fs::set_permissions(into, std::os::unix::fs::PermissionsExt::from_mode(0o700)).map_err(|e| format!("chmod {}: {e}", into.display()))?;
    for name in record.files.keys() {
        if let Some(p) = super::record::file_name_problem(name) {
            return Err(p);
        }
        match bucket.get_file(&url.join(name).key, &into.join(name)).await {
            Ok(true) => {}
            Ok(false) => return Err(format!("{name} is missing ({})", url.join(name))),
            Err(e) => return Err(format!("downloading {name}: {e}")),
        }
    }
    super::record::check_files(into, &record).map_err(|why| format!("backup {} is damaged and cannot be restored: {why}", record.id))?;
    write_durably(&done, record.id.as_bytes()).map_err(|e| format!("writing {}: {e}", done.display()))
}

/// The default profile's keys of an AWS shared-credentials file.
fn shared_credentials(text: &str) -> Result<firecamp_aws::s3::Keys, String> {
    let mut in_default = false;
    let mut get = std::collections::BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_default = line == "[default]";
        } else if in_default && let Some((k, v)) = line.split_once('=') {
            get.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    let key = |k: &str| get.get(k).cloned().ok_or_else(|| format!("the credentials file's [default] profile has no {k}"));
    Ok(firecamp_aws::s3::Keys {
        access_key_id: key("aws_access_key_id")?,
        secret_access_key: key("aws_secret_access_key")?,
        session_token: get.get("aws_session_token").cloned(),
    })
}
