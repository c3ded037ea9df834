//! Each engine's dump into a staged backup directory: PostgreSQL's base backup
//! (`pg_basebackup`, tar format, WAL streamed) and Redis's snapshot (`redis-cli --rdb`, the
//! RDB a replica's full sync would receive), taken from a replica where one is up, so the
//! primary serves clients undisturbed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::record::manifest_wal;
use crate::runtime::Runtime;
use crate::store::ServiceRecord;

/// What a dump says of itself beside its files (PostgreSQL's WAL range; empty for Redis).
pub(super) struct Dumped {
    pub member: String,
    pub timeline: u32,
    pub start_lsn: String,
    pub end_lsn: String,
    pub start_wal: String,
}

/// The file a Redis backup holds.
pub(crate) const RDB: &str = "dump.rdb";

impl Runtime {
    pub(super) async fn dump_postgresql(
        &self,
        rec: &ServiceRecord,
        id: &str,
        planned: &str,
        partial: &Path,
        owner: Option<(u32, u32)>,
        deadline: Instant,
    ) -> Result<Dumped, String> {
        let member = pg_source(rec, planned, deadline).await?;
        let installed = self.installed(rec).map_err(|e| e.to_string())?;
        let plan = self.plan_of(rec, &installed).map_err(|e| e.to_string())?;
        let m = plan.member(&member).ok_or_else(|| format!("{member} is not in the plan of {}", rec.name))?;
        let ip = rec.ips.get(&member).ok_or_else(|| format!("{member} has no address"))?;
        self.log_sink(&rec.name, &member).line(&format!("firecamp: base backup {id} from {member}"));
        let mut cmd = tokio::process::Command::new(Path::new(&installed.bin_dir).join("pg_basebackup"));
        cmd.args(["-h", &ip.to_string(), "-p", &firecamp_catalog::postgresql::PORT.to_string(), "-U", firecamp_catalog::postgresql::REPLICATION_USER])
            .args(["-w", "-Ft", "-X", "stream", "-c", "fast", "-D"])
            .arg(partial)
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
        let (timeline, start_lsn, end_lsn, start_wal) = manifest_wal(partial)?;
        Ok(Dumped { member, timeline, start_lsn, end_lsn, start_wal })
    }

    /// `redis-cli --rdb` from `planned` (a replica), else from the primary: the snapshot of
    /// one moment (the server forks for it), over TLS, the password in REDISCLI_AUTH. A cluster:
    /// one snapshot per shard (`shard-<k>.rdb`), each from a replica of the shard where one is
    /// up, else from its primary; each shard's is of its own moment (Redis has no cluster-wide one).
    pub(super) async fn dump_redis(&self, rec: &ServiceRecord, id: &str, planned: &str, partial: &Path, deadline: Instant) -> Result<Dumped, String> {
        let installed = self.installed(rec).map_err(|e| e.to_string())?;
        let plan = self.plan_of(rec, &installed).map_err(|e| e.to_string())?;
        let mut shards: BTreeMap<Option<u32>, Vec<String>> = BTreeMap::new();
        if crate::status::is_redis_cluster(rec) {
            for m in &plan.members {
                shards.entry(m.shard).or_default().push(m.member.name.to_string());
            }
        } else {
            shards.insert(None, vec![planned.to_string(), rec.current_primary()]);
        }
        let mut from = Vec::new();
        for (shard, members) in shards {
            let file = match shard {
                Some(k) => partial.join(format!("shard-{k}.rdb")),
                None => partial.join(RDB),
            };
            // Replicas first (a cluster's roles are asked: failovers swap them within a shard).
            let mut order = Vec::new();
            for m in members {
                let replica = (shard.is_none() && m == planned) || matches!(crate::status::probe_role(rec, &m).await, Ok(firecamp_api::Role::Replica));
                if replica { order.insert(0, m) } else { order.push(m) }
            }
            order.dedup();
            from.push(self.rdb_from(rec, &installed.bin_dir, &plan, id, &order, &file, deadline).await?);
        }
        Ok(Dumped { member: from.join(","), timeline: 0, start_lsn: String::new(), end_lsn: String::new(), start_wal: String::new() })
    }

    /// The snapshot of the first of `members` that gives one, into `file`; the member it came from.
    #[allow(clippy::too_many_arguments)]
    async fn rdb_from(
        &self,
        rec: &ServiceRecord,
        bin_dir: &str,
        plan: &firecamp_catalog::ServicePlan,
        id: &str,
        members: &[String],
        file: &Path,
        deadline: Instant,
    ) -> Result<String, String> {
        let mut failures = Vec::new();
        for member in members {
            let (Some(m), Some(ip)) = (plan.member(member), rec.ips.get(member)) else { continue };
            let cacert = format!("{}/{}", m.paths.tls_dir, firecamp_catalog::tls::CA_FILE);
            let _ = std::fs::remove_file(file);
            self.log_sink(&rec.name, member).line(&format!("firecamp: snapshot {id} from {member}"));
            let args: Vec<String> =
                vec!["-h".into(), ip.to_string(), "-p".into(), firecamp_catalog::redis::PORT.to_string(), "--rdb".into(), file.display().to_string()];
            match tokio::time::timeout_at(deadline.into(), crate::init::redis_cli(rec, bin_dir, &cacert, &args)).await {
                Ok(Ok(())) => return Ok(member.clone()),
                Ok(Err(e)) => failures.push(format!("{member}: {e}")),
                Err(_) => return Err("redis-cli --rdb did not finish within the step's timeout (--step-timeout)".into()),
            }
        }
        Err(format!("no member gave a snapshot: {}", failures.join("; ")))
    }

    /// A copy of the leader's database files (the most current member; copying loads no
    /// server), else of `planned`'s.
    pub(super) async fn dump_zookeeper(&self, rec: &ServiceRecord, id: &str, planned: &str, partial: &Path) -> Result<Dumped, String> {
        let mut member = planned.to_string();
        for m in rec.ips.keys() {
            let t = crate::status::target(rec, m);
            if let Some(t) = t
                && matches!(firecamp_probe::zookeeper::role(&t).await, Ok(firecamp_api::Role::Leader))
            {
                member = m.clone();
                break;
            }
        }
        let installed = self.installed(rec).map_err(|e| e.to_string())?;
        let plan = self.plan_of(rec, &installed).map_err(|e| e.to_string())?;
        let m = plan.member(&member).ok_or_else(|| format!("{member} is not in the plan of {}", rec.name))?;
        let snaps = Path::new(&m.paths.data_dir).join(firecamp_catalog::zookeeper::DATABASE_DIR);
        let logs = if rec.spec.volumes.journal.is_some() {
            self.cfg.service_dir(&rec.name).join(&member).join("journal").join(firecamp_catalog::zookeeper::DATABASE_DIR)
        } else {
            snaps.clone()
        };
        self.log_sink(&rec.name, &member).line(&format!("firecamp: copy of the database {id} from {member}"));
        let into = partial.to_path_buf();
        tokio::task::spawn_blocking(move || copy_zookeeper(&snaps, &logs, &into)).await.map_err(|e| e.to_string())??;
        Ok(Dumped { member, timeline: 0, start_lsn: String::new(), end_lsn: String::new(), start_wal: String::new() })
    }
}

/// Its copy of a ZooKeeper database: the newest snapshots (ZooKeeper loads the newest that is
/// whole; one being written is not) and every transaction log from the oldest of them on,
/// snapshots first, so the logs reach at least as far as any snapshot taken.
const ZK_SNAPSHOTS: usize = 3;

fn zxid_files(dir: &Path, prefix: &str) -> Result<Vec<(u64, std::path::PathBuf)>, String> {
    let mut out: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let zxid = u64::from_str_radix(name.strip_prefix(prefix)?, 16).ok()?;
            Some((zxid, e.path()))
        })
        .collect();
    out.sort();
    Ok(out)
}

pub(super) fn copy_zookeeper(snaps: &Path, logs: &Path, into: &Path) -> Result<(), String> {
    let copy = |from: &Path| {
        let name = from.file_name().unwrap_or_default();
        std::fs::copy(from, into.join(name)).map(|_| ()).map_err(|e| format!("copying {}: {e}", from.display()))
    };
    let all = zxid_files(snaps, "snapshot.")?;
    let newest = &all[all.len().saturating_sub(ZK_SNAPSHOTS)..];
    let Some((oldest, _)) = newest.first() else { return Err(format!("{} holds no snapshot yet", snaps.display())) };
    for (_, p) in newest {
        copy(p)?;
    }
    let logs = zxid_files(logs, "log.")?;
    // The log holding the transaction after the oldest snapshot, and every later one.
    let first = logs.iter().rposition(|(z, _)| *z <= oldest + 1).unwrap_or(0);
    for (_, p) in &logs[first..] {
        copy(p)?;
    }
    Ok(())
}

/// The member to back up: `planned` once it streams (members may still be starting, after a
/// daemon restart), else, after 30 s, the primary once it answers.
async fn pg_source(rec: &ServiceRecord, planned: &str, deadline: Instant) -> Result<String, String> {
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
