//! Automatic failover on the local runtime (PostgreSQL; Redis in replication mode the same way,
//! with `master_link_status`, replication offsets and `REPLICAOF`). A watcher looks at every eligible
//! service each second. Its primary is *lost* when FireCamp cannot reach it as a writable
//! primary **and** no replica is receiving from it — the replicas are asked, so a primary that
//! only FireCamp cannot reach (a partition between the runtime and a healthy primary) is never
//! replaced. Once lost for `spec.failover.delaySeconds` (30 by default; a hung server counts as
//! soon as its replicas stop hearing from it), the runtime records an operation of kind
//! `failover` and runs it like any other (durable, resumed after a daemon restart):
//!
//! 1. **fence**: the replica that has received the most WAL becomes the primary in the service's
//!    record and in every member's files, so the lost member can only start as its replica (its
//!    start script rewinds it with pg_rewind first); its server is stopped (a hung one killed);
//! 2. **promote**: that replica is promoted, gets slots for the others, the other replicas are
//!    re-pointed (reload, else restart), and the fenced member is started again: it rejoins as a
//!    replica as soon as it can start.
//!
//! With `replication: sync` a commit waits for one replica, and the most advanced one is chosen:
//! no acknowledged write is lost. With `async` the operation's message reports the window: the
//! primary's WAL position last seen against what the new primary had received.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use firecamp_api::Role;
use firecamp_catalog::postgresql;
use firecamp_core::EngineKind;
use firecamp_core::operation::{DEFAULT_STEP_TIMEOUT_SECONDS, Operation, OperationKind, OperationPhase, OperationStep, StepAction};

use crate::runtime::Runtime;
use crate::status;
use crate::store::{Desired, OperationRecord, ServiceRecord};

const TICK: Duration = Duration::from_secs(1);
/// A replica whose last message from the primary is older than this no longer hears it (the
/// primary's keepalives come every `wal_sender_timeout / 2`, 30 s by default).
const HEARD_WITHIN_SECONDS: u32 = 40;

/// What the watcher remembers of one service's primary between looks.
#[derive(Debug, Default)]
struct Watch {
    lost_since: Option<Instant>,
    /// The primary's WAL position last seen (`pg_current_wal_lsn`).
    last_lsn: Option<String>,
    /// The last reason logged, so a long outage is logged once.
    said: Option<String>,
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

pub(crate) use firecamp_probe::postgresql::lsn;

/// A connection as the superuser, given up after 3 s whatever hangs (a listener that accepts
/// and never answers, a stopped server).
async fn pg(rec: &ServiceRecord, member: &str) -> Result<tokio_postgres::Client, String> {
    let mut t = status::target(rec, member).ok_or_else(|| format!("{member} has no address"))?;
    t.timeout = Duration::from_secs(2);
    match tokio::time::timeout(Duration::from_secs(3), firecamp_probe::postgresql::connect(&t, postgresql::SUPERUSER)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("{member}: no answer within 3 s")),
    }
}

/// Redis `INFO replication` of a member, given up after 3 s.
async fn redis_info(rec: &ServiceRecord, member: &str) -> Result<BTreeMap<String, String>, String> {
    let t = status::target(rec, member).ok_or_else(|| format!("{member} has no address"))?;
    match tokio::time::timeout(Duration::from_secs(3), firecamp_probe::redis::replication(&t)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("{member}: no answer within 3 s")),
    }
}

/// The primary answering as a writable primary: its position (PostgreSQL's WAL, Redis's
/// replication offset).
async fn primary_position(rec: &ServiceRecord, member: &str) -> Result<String, String> {
    match rec.spec.engine {
        EngineKind::Mariadb => {
            let t = status::target(rec, member).ok_or_else(|| format!("{member} has no address"))?;
            let admin = firecamp_catalog::mariadb::ADMIN_USER;
            match firecamp_probe::mariadb::role(&t, admin).await.map_err(|e| e.to_string())? {
                Role::Primary => firecamp_probe::mariadb::gtid_binlog_pos(&t, admin).await.map_err(|e| e.to_string()),
                other => Err(format!("it answers as {other:?}")),
            }
        }
        EngineKind::Redis => {
            let info = redis_info(rec, member).await?;
            match info.get("role").map(String::as_str) {
                Some("master") => Ok(info.get("master_repl_offset").cloned().unwrap_or_default()),
                other => Err(format!("it answers as {}", other.unwrap_or("?"))),
            }
        }
        _ => primary_lsn(rec, member).await,
    }
}

/// A position as a number: an LSN `X/Y`, or a Redis offset.
fn position(engine: EngineKind, text: &str) -> Option<u64> {
    match engine {
        EngineKind::Redis => text.parse().ok(),
        EngineKind::Mariadb => crate::mariadb::gtid_seq(text),
        _ => lsn(text),
    }
}

async fn primary_lsn(rec: &ServiceRecord, member: &str) -> Result<String, String> {
    let c = pg(rec, member).await?;
    let q = c.query_one("SELECT pg_is_in_recovery(), pg_current_wal_lsn()::text", &[]);
    let row = tokio::time::timeout(Duration::from_secs(2), q).await.map_err(|_| "no answer within 2 s".to_string())?.map_err(|e| e.to_string())?;
    if row.get::<_, bool>(0) { Err("it answers as a replica".into()) } else { Ok(row.get(1)) }
}

/// A replica that still receives from the primary, if any: its WAL receiver is connected
/// (`sender_host` is set only then; a receiver still connecting already says `streaming` with a
/// fresh receipt time) and heard from it lately.
async fn heard_by(rec: &ServiceRecord, replicas: &[String]) -> Option<String> {
    if rec.spec.engine == EngineKind::Mariadb {
        // MariaDB: a replica whose I/O thread is connected (`Connecting` once the primary is
        // gone, after `slave_net_timeout` when it hangs).
        for r in replicas {
            if let Some(t) = status::target(rec, r)
                && let Ok(Some(st)) = firecamp_probe::mariadb::replica_status(&t, firecamp_catalog::mariadb::ADMIN_USER).await
                && st.io_running
            {
                return Some(r.clone());
            }
        }
        return None;
    }
    if rec.spec.engine == EngineKind::Redis {
        // Redis: a replica whose link to its primary is up (it drops at once when the primary
        // dies, after `repl-timeout` when it hangs).
        for r in replicas {
            if let Ok(info) = redis_info(rec, r).await
                && info.get("master_link_status").map(String::as_str) == Some("up")
            {
                return Some(r.clone());
            }
        }
        return None;
    }
    for r in replicas {
        let Ok(c) = pg(rec, r).await else { continue };
        let sql = format!(
            "SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming' AND sender_host IS NOT NULL \
             AND last_msg_receipt_time > now() - interval '{HEARD_WITHIN_SECONDS} seconds'"
        );
        let q = c.query_opt(&sql, &[]);
        if let Ok(Ok(Some(_))) = tokio::time::timeout(Duration::from_secs(2), q).await {
            return Some(r.clone());
        }
    }
    None
}

impl Runtime {
    /// Watches every eligible service's primary until the runtime stops.
    pub(crate) async fn watch_primaries(self: Arc<Self>) {
        let mut watches: BTreeMap<String, Watch> = BTreeMap::new();
        loop {
            tokio::time::sleep(TICK).await;
            let Ok(recs) = self.store.list() else { continue };
            watches.retain(|name, _| recs.iter().any(|r| &r.name == name));
            for rec in recs {
                if !self.eligible(&rec) {
                    watches.remove(&rec.name);
                    continue;
                }
                let w = watches.entry(rec.name.clone()).or_default();
                if let Err(e) = self.look(&rec, w).await {
                    tracing::warn!(service = %rec.name, error = %e, "failover watch");
                }
            }
        }
    }

    /// PostgreSQL or Redis (replication mode) with replicas, running, created, failover not
    /// disabled, no operation under way.
    fn eligible(&self, rec: &ServiceRecord) -> bool {
        let engine = match rec.spec.engine {
            EngineKind::Postgresql => true,
            EngineKind::Redis => !status::is_redis_cluster(rec),
            // MariaDB: failover by the most advanced GTID is not done yet (docs/mariadb.md).
            EngineKind::Mariadb => true,
            EngineKind::Zookeeper | EngineKind::Kafka | EngineKind::Cassandra => false,
        };
        engine
            && rec.spec.replicas > 1
            && rec.desired == Desired::Running
            && rec.init.done
            && !rec.spec.failover.disabled
            && matches!(self.unfinished_operation(&rec.name), Ok(None))
    }

    async fn look(self: &Arc<Self>, rec: &ServiceRecord, w: &mut Watch) -> crate::error::Result<()> {
        let primary = rec.current_primary();
        // A loss counts from the look that found it, not from the end of its timeouts.
        let looked = Instant::now();
        let why = match primary_position(rec, &primary).await {
            Ok(lsn) => {
                if w.lost_since.is_some() {
                    tracing::info!(service = %rec.name, %primary, "the primary answers again");
                }
                *w = Watch { last_lsn: Some(lsn), ..Watch::default() };
                return Ok(());
            }
            Err(e) => e,
        };
        let replicas: Vec<String> = rec.ips.keys().filter(|m| **m != primary).cloned().collect();
        if let Some(r) = heard_by(rec, &replicas).await {
            // Only FireCamp lost it: a partition, not a failure.
            let say = format!("FireCamp cannot reach the primary {primary} ({why}), but {r} still receives from it: no failover");
            if w.said.as_deref() != Some(say.as_str()) {
                tracing::warn!(service = %rec.name, "{say}");
                self.log_sink(&rec.name, &primary).line(&format!("firecamp: {say}"));
                w.said = Some(say);
            }
            w.lost_since = None;
            return Ok(());
        }
        let since = *w.lost_since.get_or_insert(looked);
        let delay = Duration::from_secs(u64::from(rec.spec.failover.delay_seconds()));
        let say = format!("the primary {primary} is lost ({why}) and no replica receives from it");
        if w.said.as_deref() != Some(say.as_str()) {
            tracing::warn!(service = %rec.name, delay_s = delay.as_secs(), "{say}");
            self.log_sink(&rec.name, &primary).line(&format!("firecamp: {say}; failover after {} s", delay.as_secs()));
            w.said = Some(say);
        }
        if since.elapsed() < delay {
            return Ok(());
        }
        let lost_for = since.elapsed().as_secs();
        let candidates = self.received(rec, &replicas).await;
        let engine = rec.spec.engine;
        let Some((heir, heir_lsn)) = candidates.into_iter().max_by_key(|(_, l)| position(engine, l).unwrap_or(0)) else {
            let say = format!("the primary {primary} is lost and no replica answers: nothing to promote");
            if w.said.as_deref() != Some(say.as_str()) {
                tracing::error!(service = %rec.name, "{say}");
                w.said = Some(say);
            }
            return Ok(());
        };
        let what = match engine {
            EngineKind::Redis => "bytes of replication stream",
            EngineKind::Mariadb => "transactions",
            _ => "bytes of WAL",
        };
        let semi_sync = rec.spec.mariadb.as_ref().is_some_and(|m| m.semi_sync);
        let window = match (&w.last_lsn, rec.spec.postgresql.as_ref().map(|p| p.replication)) {
            (_, Some(firecamp_core::spec::PostgresReplication::Sync)) => "synchronous replication: no acknowledged write is lost".to_string(),
            _ if semi_sync => "semi-synchronous replication: no acknowledged write is lost unless a commit waited longer than its timeout".to_string(),
            (Some(last), _) => match (position(engine, last), position(engine, &heir_lsn)) {
                (Some(a), Some(b)) if a > b => format!("asynchronous replication: up to {} {what} the primary had at {last} may be lost", a - b),
                _ => format!("asynchronous replication: {heir} had received everything seen on the primary ({last})"),
            },
            (None, _) => "asynchronous replication: the primary's last position is unknown".to_string(),
        };
        let message = format!("{primary} lost for {lost_for} s ({why}); {heir} had received up to {heir_lsn}; {window}");
        self.start_failover(rec, &primary, &heir, message)?;
        *w = Watch::default();
        Ok(())
    }

    /// The replicas that answer, with the WAL position each has received.
    async fn received(&self, rec: &ServiceRecord, replicas: &[String]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if rec.spec.engine == EngineKind::Mariadb {
            for r in replicas {
                if let Some(t) = status::target(rec, r)
                    && let Ok(Some(st)) = firecamp_probe::mariadb::replica_status(&t, firecamp_catalog::mariadb::ADMIN_USER).await
                {
                    out.push((r.clone(), st.gtid_io_pos));
                }
            }
            return out;
        }
        if rec.spec.engine == EngineKind::Redis {
            for r in replicas {
                if let Ok(info) = redis_info(rec, r).await
                    && let Some(o) = info.get("slave_repl_offset")
                {
                    out.push((r.clone(), o.clone()));
                }
            }
            return out;
        }
        for r in replicas {
            let Ok(c) = pg(rec, r).await else { continue };
            let q = c.query_one("SELECT coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::text", &[]);
            if let Ok(Ok(row)) = tokio::time::timeout(Duration::from_secs(2), q).await
                && let Some(l) = row.get::<_, Option<String>>(0)
            {
                out.push((r.clone(), l));
            }
        }
        out
    }

    /// Records the failover operation and starts its task (the ordinary executor runs it).
    fn start_failover(self: &Arc<Self>, rec: &ServiceRecord, lost: &str, heir: &str, message: String) -> crate::error::Result<()> {
        let mut fence = OperationStep::new(StepAction::Fence, lost);
        fence.to = Some(heir.to_string());
        let op = Operation {
            id: format!("op-{}", SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default()),
            kind: OperationKind::Failover,
            policy: firecamp_core::operation::UpdatePolicy::PrimaryLast,
            target: Some(format!("{heir} replaces {lost}")),
            ca: None,
            phase: OperationPhase::Pending,
            steps: vec![fence, OperationStep::new(StepAction::Promote, heir)],
            step_timeout_seconds: DEFAULT_STEP_TIMEOUT_SECONDS,
            message: Some(message.clone()),
            created: now(),
            finished: None,
            cancel_requested: false,
        };
        self.store.put_operation(&OperationRecord {
            service: rec.name.clone(),
            operation: op.clone(),
            spec: rec.spec.clone(),
            server_version: rec.server_version.clone(),
            changed_keys: Vec::new(),
            tls: None,
        })?;
        tracing::warn!(service = %rec.name, operation = %op.id, %lost, %heir, "failover: {message}");
        self.log_sink(&rec.name, lost).line(&format!("firecamp: failover {}: {message}", op.id));
        self.spawn_operation(&rec.name, &op.id);
        Ok(())
    }

    /// Step 1: `heir` is the primary in the record, the endpoints and every member's files; `lost`
    /// is killed (no clean stop: it is lost, perhaps hung).
    pub(crate) async fn fence(&self, rec: &ServiceRecord, lost: &str, heir: &str) -> Result<(), String> {
        if rec.primary.as_deref() != Some(heir) {
            let updated = self.set_primary(&rec.name, heir).await.map_err(|e| e.to_string())?;
            let installed = self.installed(&updated).map_err(|e| e.to_string())?;
            let plan = self.plan_of(&updated, &installed).map_err(|e| e.to_string())?;
            for m in &plan.members {
                self.write_member(&updated, &plan, m.member.name.as_str()).map_err(|e| e.to_string())?;
            }
        }
        self.kill_member(&rec.name, lost).await;
        self.log_sink(&rec.name, lost).line(&format!("firecamp: {lost} fenced: {heir} is the primary; {lost} can only rejoin it as a replica"));
        Ok(())
    }

    /// Step 2: `heir` promoted, slots for the others, replicas re-pointed, `lost` started again.
    pub(crate) async fn promote(&self, rec: &ServiceRecord, heir: &str, lost: &str, deadline: Instant) -> Result<(), String> {
        if rec.spec.engine == EngineKind::Redis {
            return self.promote_redis(rec, heir, lost, deadline).await;
        }
        if rec.spec.engine == EngineKind::Mariadb {
            return self.promote_mariadb(rec, heir, lost, deadline).await;
        }
        // The heir may be starting (this step resumed after a daemon restart, which restarts
        // every member): wait for it to answer, with a growing pause.
        let mut pause = Duration::from_millis(100);
        let c = loop {
            match pg(rec, heir).await {
                Ok(c) => break c,
                Err(e) if Instant::now() + pause > deadline => return Err(format!("{heir} does not answer: {e}")),
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        };
        crate::operations::promote(&c, heir, deadline).await?;
        // The new timeline reaches the control file only with a checkpoint; pg_rewind of the
        // fenced member reads it there.
        c.batch_execute("CHECKPOINT").await.map_err(|e| format!("CHECKPOINT on {heir}: {e}"))?;
        self.after_promotion(rec, heir, Some(lost), deadline).await?;
        if !self.is_running(&rec.name, lost).await {
            self.start_member(rec, lost).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Redis: `REPLICAOF NO ONE` on the heir, the other replicas `REPLICAOF` it, the fenced
    /// member started again (its files name the heir: it syncs from it, dropping what it had
    /// that the heir has not).
    async fn promote_redis(&self, rec: &ServiceRecord, heir: &str, lost: &str, deadline: Instant) -> Result<(), String> {
        let port = firecamp_catalog::redis::PORT;
        let target = |m: &str| status::target(rec, m).ok_or_else(|| format!("{m} has no address"));
        let mut pause = Duration::from_millis(100);
        loop {
            match redis_info(rec, heir).await {
                Ok(info) if info.get("role").map(String::as_str) == Some("master") => break,
                Ok(_) => {
                    firecamp_probe::redis::command(&target(heir)?, &["REPLICAOF", "NO", "ONE"])
                        .await
                        .map_err(|e| format!("REPLICAOF NO ONE on {heir}: {e}"))?;
                }
                Err(e) if Instant::now() + pause > deadline => return Err(format!("{heir} does not answer: {e}")),
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
        let heir_ip = rec.ips.get(heir).ok_or("no address")?.to_string();
        for m in rec.ips.keys().filter(|m| m.as_str() != heir && m.as_str() != lost) {
            firecamp_probe::redis::replicate_from(&target(m)?, &heir_ip, port).await.map_err(|e| format!("REPLICAOF on {m}: {e}"))?;
        }
        self.start_member(rec, lost).await.map_err(|e| e.to_string())?;
        Ok(())
    }
}
