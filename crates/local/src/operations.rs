//! Day-2 operations on the local runtime: upgrades, restarts, config and resource changes, stop
//! and start, as durable records in the store, one at a time per service, each run by a task.
//! Steps come from `firecamp_catalog::operation` with the members' roles as the engines report
//! them when the operation starts; a step is done only when the engine says the member is back
//! (PostgreSQL streaming, Redis link up or cluster ok, ZooKeeper leader or follower). A daemon
//! restart resumes an unfinished operation at its first unfinished step. See docs/operations.md.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use firecamp_api::Role;
use firecamp_catalog::operation::{change, steps};
use firecamp_catalog::{KubernetesLayout, ServicePlan, plan_mid_scale, plan_with_primary, postgresql};
use firecamp_core::operation::{CaStage, DEFAULT_STEP_TIMEOUT_SECONDS, MemberRole, Operation, OperationKind, OperationPhase, OperationRequest, StepAction};
use firecamp_core::{EngineKind, ValidationErrors};

use crate::error::{LocalError, Result};
use crate::runtime::Runtime;
use crate::store::{Desired, OperationRecord, ServiceRecord};
use crate::{servers, status};

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn busy(service: &str, op: &Operation) -> LocalError {
    let at = op.current_step().map(|i| format!(", step {} of {}: {}", i + 1, op.steps.len(), op.steps[i].describe())).unwrap_or_default();
    LocalError::Busy(format!(
        "operation {} ({}{at}) of service {service} is {}; wait until it ends (GET /v1/services/{service}/operations/{})",
        op.id,
        op.kind,
        op.phase.as_str(),
        op.id
    ))
}

/// Polls `check` with a growing pause (100 ms doubling to 1 s) until it holds or `deadline`
/// passes; the error says what was last seen.
pub(crate) async fn poll<F, Fut>(deadline: Instant, what: &str, mut check: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut pause = Duration::from_millis(100);
    loop {
        match check().await {
            Ok(()) => return Ok(()),
            Err(why) => {
                if Instant::now() + pause > deadline {
                    return Err(format!("{what}: {why}"));
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

async fn in_recovery(c: &tokio_postgres::Client) -> Result<bool, String> {
    c.query_one("SELECT pg_is_in_recovery()", &[]).await.map(|r| r.get(0)).map_err(|e| e.to_string())
}

/// Promotes `member` (nothing if it is a primary already) and returns once it takes writes:
/// `pg_promote(false)` watched every 10 ms, not `pg_promote(true, …)`, which looks every 100 ms
/// while the writes wait.
pub(crate) async fn promote(c: &tokio_postgres::Client, member: &str, deadline: Instant) -> Result<(), String> {
    if !in_recovery(c).await? {
        return Ok(());
    }
    c.query_one("SELECT pg_promote(false)", &[]).await.map_err(|e| format!("pg_promote on {member}: {e}"))?;
    let within = deadline.min(Instant::now() + Duration::from_secs(60));
    poll_fast(within, &format!("{member} did not finish its promotion within 60 s"), || async {
        if in_recovery(c).await? { Err("still in recovery".to_string()) } else { Ok(()) }
    })
    .await
}

/// [`poll`] in steps of 10 ms, for what a switchover waits on while writes stop (a replica's
/// replay, a promotion): done within milliseconds, where [`poll`]'s first pause alone is 100 ms.
pub(crate) async fn poll_fast<F, Fut>(deadline: Instant, what: &str, mut check: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    const STEP: Duration = Duration::from_millis(10);
    loop {
        match check().await {
            Ok(()) => return Ok(()),
            Err(why) if Instant::now() + STEP > deadline => return Err(format!("{what}: {why}")),
            Err(_) => tokio::time::sleep(STEP).await,
        }
    }
}

fn redis_cluster(rec: &ServiceRecord) -> bool {
    status::is_redis_cluster(rec)
}

pub(crate) async fn pg(rec: &ServiceRecord, member: &str) -> Result<tokio_postgres::Client, String> {
    let mut t = status::target(rec, member).ok_or_else(|| format!("{member} has no address"))?;
    t.timeout = Duration::from_secs(5);
    firecamp_probe::postgresql::connect(&t, postgresql::SUPERUSER).await.map_err(|e| format!("{member}: {e}"))
}

pub(crate) async fn redis_cmd(rec: &ServiceRecord, member: &str, args: &[&str]) -> Result<redis::Value, String> {
    let t = status::target(rec, member).ok_or_else(|| format!("{member} has no address"))?;
    firecamp_probe::redis::command(&t, args).await.map_err(|e| e.to_string())
}

async fn redis_link_up(rec: &ServiceRecord, member: &str) -> Result<(), String> {
    let t = status::target(rec, member).ok_or_else(|| format!("{member} has no address"))?;
    let info = firecamp_probe::redis::replication(&t).await.map_err(|e| e.to_string())?;
    match info.get("master_link_status").map(String::as_str) {
        Some("up") => Ok(()),
        other => Err(format!("{member}: master_link_status {}", other.unwrap_or("absent"))),
    }
}

/// The line number (1-based) of the last `key<sep>` line of a config file.
fn last_line_of(content: &str, key: &str, sep: &str) -> Option<(usize, String)> {
    let prefix = format!("{key}{sep}");
    content.lines().enumerate().filter(|(_, l)| l.starts_with(&prefix)).last().map(|(i, l)| (i + 1, l[prefix.len()..].to_string()))
}

/// `pg_controldata`'s cluster state and latest checkpoint location of a stopped data directory.
fn controldata(bin_dir: &str, pgdata: &str) -> Result<(String, String), String> {
    let out = std::process::Command::new(format!("{bin_dir}/pg_controldata"))
        .arg("-D")
        .arg(pgdata)
        .env("LANG", "C")
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| format!("running pg_controldata: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string());
    match (field("Database cluster state:"), field("Latest checkpoint location:")) {
        (Some(state), Some(lsn)) => Ok((state, lsn)),
        _ => Err(format!("pg_controldata -D {pgdata} said: {text}{}", String::from_utf8_lossy(&out.stderr))),
    }
}

impl Runtime {
    pub(crate) fn unfinished_operation(&self, service: &str) -> Result<Option<LocalError>> {
        Ok(self.store.operations(service)?.into_iter().find(|r| !r.operation.phase.is_terminal()).map(|r| busy(service, &r.operation)))
    }

    /// The service's operations, newest first.
    pub fn operations(&self, service: &str) -> Result<Vec<Operation>> {
        self.store.get(service)?.ok_or_else(|| LocalError::NotFound(service.into()))?;
        let mut ops: Vec<Operation> = self.store.operations(service)?.into_iter().map(|r| self.with_cancel(r.operation)).collect();
        ops.reverse();
        Ok(ops)
    }

    /// An operation as the API shows it: a cancel asked for and not yet written shows too.
    fn with_cancel(&self, mut op: Operation) -> Operation {
        if !op.phase.is_terminal() && self.cancels.lock().unwrap_or_else(|p| p.into_inner()).contains(&op.id) {
            op.cancel_requested = true;
        }
        op
    }

    /// Asks to cancel an unfinished operation: the step under way ends (a step is never cut in
    /// half: a switchover stopped midway would leave no primary), no further step starts.
    pub fn cancel_operation(&self, service: &str, id: &str) -> Result<Operation> {
        let mut r = self.store.operation(service, id)?.ok_or_else(|| LocalError::Missing(format!("service {service:?} has no operation {id:?}")))?;
        if r.operation.phase.is_terminal() {
            return Err(LocalError::invalid("id", format!("operation {id} already ended ({})", r.operation.phase.as_str())));
        }
        // The executor's next write carries the request (see `save`); nothing is written here,
        // so the record never goes back to an older state of its steps.
        self.cancels.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string());
        self.op_changed.send_modify(|n| *n += 1);
        r.operation.cancel_requested = true;
        Ok(r.operation)
    }

    pub fn operation(&self, service: &str, id: &str) -> Result<Operation> {
        self.store.get(service)?.ok_or_else(|| LocalError::NotFound(service.into()))?;
        self.store
            .operation(service, id)?
            .map(|r| self.with_cancel(r.operation))
            .ok_or_else(|| LocalError::Missing(format!("service {service:?} has no operation {id:?}")))
    }

    /// A plan for names, indexes, shards and bootstrap roles (no paths needed).
    fn shape(&self, rec: &ServiceRecord) -> Option<ServicePlan> {
        let layout = self.layout(rec, None);
        plan_mid_scale(&rec.name, &rec.spec, &self.cluster(), &layout, &rec.ips, rec.primary.as_deref()).ok()
    }

    /// Members in index order with their roles: as the engines report them now, else (a stopped
    /// service, nobody answering as primary) as the runtime renders them.
    async fn member_roles(&self, rec: &ServiceRecord) -> Vec<MemberRole> {
        let Some(shape) = self.shape(rec) else {
            return Vec::new();
        };
        let probed = if rec.desired == Desired::Stopped { BTreeMap::new() } else { status::probe_all(rec).await };
        let is_primary = |r: &Result<Role, firecamp_probe::ProbeError>| matches!(r, Ok(Role::Primary | Role::Leader));
        let any = probed.values().any(is_primary);
        shape
            .members
            .iter()
            .map(|m| {
                let name = m.member.name.to_string();
                let primary = if any { probed.get(&name).is_some_and(is_primary) } else { m.role == firecamp_catalog::Role::Primary };
                MemberRole { member: name, primary, shard: m.shard }
            })
            .collect()
    }

    /// Engine parameters the running engine does not know are refused before anything changes
    /// (PostgreSQL would not start with them; Redis would refuse them).
    async fn check_parameters(&self, rec: &ServiceRecord, keys: &[String], errs: &mut ValidationErrors) {
        if keys.is_empty() || rec.desired == Desired::Stopped {
            return;
        }
        let primary = rec.current_primary();
        match rec.spec.engine {
            EngineKind::Postgresql => {
                let Ok(c) = pg(rec, &primary).await else {
                    return;
                };
                for k in keys {
                    let known = c.query_opt("SELECT 1 FROM pg_settings WHERE name = $1", &[k]).await.map(|r| r.is_some()).unwrap_or(true);
                    // Parameters of a library (`x.y`) are custom: PostgreSQL accepts them.
                    if !known && !k.contains('.') {
                        errs.push(format!("config.{k}"), format!("PostgreSQL {} has no parameter {k:?}", rec.server_version));
                    }
                }
            }
            EngineKind::Redis => {
                for k in keys {
                    if let Ok(redis::Value::Array(v)) = redis_cmd(rec, &primary, &["CONFIG", "GET", k]).await
                        && v.is_empty()
                    {
                        errs.push(format!("config.{k}"), format!("Redis {} has no parameter {k:?}", rec.server_version));
                    }
                }
            }
            // MariaDB refuses an unknown key at the restart that applies it (the member does
            // not start, the operation fails naming it).
            EngineKind::Zookeeper | EngineKind::Kafka | EngineKind::Mariadb | EngineKind::Cassandra => {}
        }
    }

    /// `POST …/operations`: checks the request, records the operation and starts its task.
    /// Refused (409) while another operation of the service is not finished; nothing is
    /// recorded when the request is refused.
    pub async fn submit_operation(self: &Arc<Self>, name: &str, req: OperationRequest) -> Result<Operation> {
        let _op = self.ops.lock().await;
        let rec = self.store.get(name)?.ok_or_else(|| LocalError::NotFound(name.into()))?;
        if let Some(b) = self.unfinished_operation(name)? {
            return Err(b);
        }
        if !rec.init.done && rec.desired == Desired::Running && req.kind != Some(OperationKind::Stop) {
            return Err(LocalError::Busy(format!(
                "service {name} is still being created ({}); wait until it is ACTIVE",
                rec.init.message.clone().unwrap_or_default()
            )));
        }
        let mut current = rec.spec.clone();
        current.stopped = rec.desired == Desired::Stopped;
        let ch = change(&current, &req)?;
        // The next spec must pass the catalog: the versions it has, the parameters it allows.
        plan_with_primary(name, &ch.spec, &self.cluster(), &KubernetesLayout::default(), &BTreeMap::new(), None)?;
        let installed = servers::detect(&self.cfg, ch.spec.engine, ch.spec.version.as_deref(), redis_cluster(&rec)).map_err(|e| match e {
            LocalError::BadRequest(m) if ch.kind == OperationKind::Upgrade => {
                let mut errs = ValidationErrors::default();
                errs.push("version", m);
                LocalError::Invalid(errs)
            }
            e => e,
        })?;
        let mut errs = ValidationErrors::default();
        self.check_parameters(&rec, &ch.changed_keys, &mut errs).await;
        errs.into_result()?;
        let roles = self.member_roles(&rec).await;
        let op_steps = steps(&ch, &roles);
        let mut millis = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
        let last = self.store.operations(name)?.last().and_then(|r| r.operation.id.strip_prefix("op-").and_then(|n| n.parse::<u128>().ok()));
        if let Some(l) = last {
            millis = millis.max(l + 1);
        }
        let tls = if ch.kind == OperationKind::Certificates { Some(self.rotated_tls(&rec, ch.ca, &format!("op-{millis}"))?) } else { None };
        let op = Operation {
            id: format!("op-{millis}"),
            kind: ch.kind,
            policy: ch.policy,
            target: ch.target.clone().filter(|t| !t.is_empty()),
            ca: ch.ca,
            phase: OperationPhase::Pending,
            steps: op_steps,
            step_timeout_seconds: req.step_timeout_seconds.unwrap_or(DEFAULT_STEP_TIMEOUT_SECONDS),
            message: None,
            created: now(),
            finished: None,
            cancel_requested: false,
        };
        self.store.put_operation(&OperationRecord {
            service: name.to_string(),
            operation: op.clone(),
            spec: ch.spec,
            server_version: installed.server_version,
            changed_keys: ch.changed_keys,
            tls,
        })?;
        tracing::info!(service = %name, operation = %op.id, kind = %op.kind, steps = op.steps.len(), "operation recorded");
        self.spawn_operation(name, &op.id);
        Ok(op)
    }

    pub(crate) fn spawn_operation(self: &Arc<Self>, service: &str, id: &str) {
        let task = tokio::spawn(run(self.clone(), service.to_string(), id.to_string()));
        self.op_tasks.lock().unwrap_or_else(|p| p.into_inner()).insert(service.to_string(), task);
    }

    /// After `local up`: every unfinished operation goes on from its first unfinished step.
    pub(crate) fn resume_operations(self: &Arc<Self>) -> Result<()> {
        for r in self.store.unfinished_operations()? {
            tracing::info!(service = %r.service, operation = %r.operation.id, "resuming operation");
            self.spawn_operation(&r.service, &r.operation.id);
        }
        Ok(())
    }

    /// Waits until the operation is finished (for the stop and start endpoints).
    pub(crate) async fn wait_operation(&self, service: &str, id: &str) -> Result<Operation> {
        let mut changed = self.op_changed.subscribe();
        loop {
            let op = self.operation(service, id)?;
            if op.phase.is_terminal() {
                return Ok(op);
            }
            if changed.changed().await.is_err() {
                return Err(LocalError::Internal("the runtime is stopping".into()));
            }
        }
    }

    /// The service's TLS bundle after the rotation `stage` asks for, by operation `id`; refused
    /// (400 naming `ca`) when the stage cannot run now.
    fn rotated_tls(&self, rec: &ServiceRecord, stage: Option<CaStage>, id: &str) -> Result<BTreeMap<String, String>> {
        use firecamp_pki::rotate::{RotateError, Rotation, rotate};
        let plan = self.shape(rec).ok_or_else(|| LocalError::Internal(format!("no plan for {}", rec.name)))?;
        let rotation = match stage {
            None => Rotation::Members,
            Some(CaStage::Add) => Rotation::AddCa,
            Some(CaStage::Switch) => Rotation::SwitchCa,
            Some(CaStage::Drop) => Rotation::DropCa,
        };
        let what = format!("the runtime's record of {}", rec.name);
        let ca_name = firecamp_catalog::tls::ca_name(None, &rec.name);
        match rotate(&rec.tls, rotation, &ca_name, &crate::runtime::tls_names(rec, &plan), firecamp_pki::OffsetDateTime::now_utc(), id, &what) {
            Ok(Some(b)) => Ok(b.data),
            Ok(None) => Ok(rec.tls.clone()),
            Err(RotateError::Order(why)) => Err(LocalError::invalid("ca", why)),
            Err(RotateError::Pki(e)) => Err(LocalError::Internal(format!("TLS of {}: {e}", rec.name))),
        }
    }

    fn save(&self, r: &OperationRecord) -> Result<()> {
        let mut r = r.clone();
        if r.operation.phase.is_terminal() {
            // The bundle is the service's now; its keys are not kept twice.
            r.tls = None;
        }
        if !r.operation.phase.is_terminal() && self.cancels.lock().unwrap_or_else(|p| p.into_inner()).contains(&r.operation.id) {
            r.operation.cancel_requested = true;
        }
        self.store.put_operation(&r)?;
        self.op_changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// The service's record follows the operation's spec from its start (a member restarted by
    /// the operation, or by the supervisor, gets the new files).
    fn apply_spec(&self, r: &OperationRecord) -> Result<ServiceRecord> {
        let mut rec = self.store.get(&r.service)?.ok_or_else(|| LocalError::NotFound(r.service.clone()))?;
        let before = rec.clone();
        let (replicas, shards) = (rec.spec.replicas, rec.spec.redis.as_ref().and_then(|r| r.shards));
        rec.spec = r.spec.clone();
        if r.operation.kind == OperationKind::Scale {
            // A scale moves `replicas` (and a Redis Cluster's shards) as its steps make the
            // members (scale.rs).
            rec.spec.replicas = replicas;
            if let Some(r) = rec.spec.redis.as_mut() {
                r.shards = shards;
            }
        }
        rec.server_version = r.server_version.clone();
        if let Some(tls) = &r.tls {
            rec.tls = tls.clone();
        }
        match r.operation.kind {
            OperationKind::Stop => rec.desired = Desired::Stopped,
            OperationKind::Start => rec.desired = Desired::Running,
            _ => {}
        }
        if rec != before {
            self.store.put(&rec)?;
        }
        Ok(rec)
    }

    async fn drive(self: &Arc<Self>, service: &str, id: &str) -> Result<()> {
        let mut done_here = 0usize;
        loop {
            let mut r = self.store.operation(service, id)?.ok_or_else(|| LocalError::Missing(format!("operation {id}")))?;
            if r.operation.phase.is_terminal() {
                return Ok(());
            }
            if r.operation.phase == OperationPhase::Pending {
                r.operation.phase = OperationPhase::Running;
                self.save(&r)?;
            }
            self.apply_spec(&r)?;
            let cancelled = r.operation.cancel_requested || self.cancels.lock().unwrap_or_else(|p| p.into_inner()).contains(id);
            if cancelled && r.operation.current_step().is_some_and(|i| r.operation.steps[i].phase == OperationPhase::Pending) {
                r.operation.cancel(&now());
                self.save(&r)?;
                tracing::info!(service, operation = id, "operation cancelled");
                return Ok(());
            }
            let Some(i) = r.operation.current_step() else {
                match r.operation.kind {
                    OperationKind::Stop => self.stop_members(service).await,
                    OperationKind::Start => {
                        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(service);
                        // An init task cut short by the stop goes on.
                        if let Some(rec) = self.store.get(service)?.filter(|rec| !rec.init.done) {
                            let installed = self.installed(&rec)?;
                            self.start_service(&rec, &installed).await?;
                        }
                    }
                    _ => {}
                }
                r.operation.phase = OperationPhase::Succeeded;
                r.operation.finished = Some(now());
                self.save(&r)?;
                tracing::info!(service, operation = id, "operation succeeded");
                return Ok(());
            };
            if self.cfg.hold_operations_after_steps == Some(done_here) {
                tracing::warn!(service, operation = id, "test hook: holding the operation");
                std::future::pending::<()>().await;
            }
            let n = r.operation.steps.len();
            let step = &mut r.operation.steps[i];
            if step.phase == OperationPhase::Running {
                step.message = Some("resumed after a daemon restart".into());
            } else {
                step.started = Some(now());
            }
            step.phase = OperationPhase::Running;
            let what = step.describe();
            self.save(&r)?;
            self.log_sink(service, &r.operation.steps[i].member).line(&format!("firecamp: operation {id} step {}/{n}: {what}", i + 1));
            let secs = r.operation.step_timeout_seconds.max(1) as u64;
            let deadline = Instant::now() + Duration::from_secs(secs);
            let began = Instant::now();
            let outcome = tokio::time::timeout(Duration::from_secs(secs + 10), self.exec_step(&r, i, deadline)).await;
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some(format!("did not finish within {secs} s")),
            };
            let step = &mut r.operation.steps[i];
            step.finished = Some(now());
            self.counters.step_finished(r.operation.kind, step.action, failure.is_none(), began.elapsed().as_secs_f64());
            match failure {
                None => {
                    step.phase = OperationPhase::Succeeded;
                    self.save(&r)?;
                    done_here += 1;
                }
                Some(e) => {
                    step.phase = OperationPhase::Failed;
                    step.message = Some(e.clone());
                    r.operation.phase = OperationPhase::Failed;
                    r.operation.message = Some(format!("step {} of {n} ({what}) failed: {e}; later steps were not run", i + 1));
                    r.operation.finished = Some(now());
                    self.save(&r)?;
                    tracing::warn!(service, operation = id, step = %what, error = %e, "operation failed");
                    return Ok(());
                }
            }
        }
    }

    async fn exec_step(self: &Arc<Self>, r: &OperationRecord, i: usize, deadline: Instant) -> Result<(), String> {
        let step = &r.operation.steps[i];
        let service = r.service.as_str();
        let member = step.member.as_str();
        let rec = self.store.get(service).map_err(|e| e.to_string())?.ok_or_else(|| format!("service {service} is gone"))?;
        match step.action {
            StepAction::Stop => {
                self.stop_member(service, member).await;
                Ok(())
            }
            StepAction::Start => {
                self.start_member(&rec, member).await.map_err(|e| e.to_string())?;
                // A member alone may not be able to rejoin (a ZooKeeper ensemble needs a quorum
                // up): members start in order, and the last start waits for all of them.
                let last = r.operation.steps[i + 1..].iter().all(|s| s.action != StepAction::Start);
                if last {
                    for s in r.operation.steps.iter().filter(|s| s.action == StepAction::Start) {
                        self.wait_member(&rec, &s.member, deadline).await?;
                    }
                }
                Ok(())
            }
            StepAction::Restart => {
                if rec.spec.engine == EngineKind::Cassandra
                    && let Err(e) = crate::cassandra::drain(self, &rec, member, deadline).await
                {
                    // A member that cannot be drained (not answering) is stopped all the same:
                    // SIGTERM runs Cassandra's own drain in its shutdown hook.
                    self.log_sink(service, member).line(&format!("firecamp: {e}; stopping it all the same"));
                }
                self.stop_member(service, member).await;
                self.start_member(&rec, member).await.map_err(|e| e.to_string())?;
                self.wait_member(&rec, member, deadline).await?;
                if rec.spec.engine == EngineKind::Postgresql && member != rec.current_primary() {
                    // A demoted primary keeps the slots it had for its replicas; as a replica
                    // it must not hold WAL for them.
                    if let Ok(c) = pg(&rec, member).await {
                        let _ = c.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active", &[]).await;
                    }
                }
                Ok(())
            }
            StepAction::Reload => self.reload(&rec, r, member, deadline).await,
            StepAction::Fence => self.fence(&rec, member, step.to.as_deref().ok_or("a fence without the new primary")?).await,
            StepAction::Promote => {
                let lost =
                    r.operation.steps.iter().find(|s| s.action == StepAction::Fence).map(|s| s.member.clone()).ok_or("a promotion without a fence step")?;
                self.promote(&rec, member, &lost, deadline).await
            }
            StepAction::Add => self.add_member(&rec, member, deadline).await,
            StepAction::Remove => self.remove_member(&rec, member, deadline).await,
            StepAction::Fill => self.reshard(&rec, member, false, deadline).await,
            StepAction::Drain => self.reshard(&rec, member, true, deadline).await,
            // The size is recorded with the spec (apply_spec); members' data directories share
            // the machine's file system, which enforces no size per directory.
            StepAction::Resize => {
                if rec.ips.contains_key(member) {
                    Ok(())
                } else {
                    Err(format!("{member} is not a member of {}", rec.name))
                }
            }
            StepAction::Backup => self.backup(&rec, r, member, deadline).await,
            StepAction::Switchover => {
                let to = step.to.as_deref().ok_or("a switchover without a target member")?;
                match rec.spec.engine {
                    EngineKind::Postgresql => self.pg_switchover(&rec, member, to, deadline).await,
                    EngineKind::Redis => self.redis_switchover(&rec, member, to, deadline).await,
                    EngineKind::Zookeeper => Err("ZooKeeper cannot choose its leader".into()),
                    EngineKind::Kafka => Err("Kafka's controller quorum elects its own leader".into()),
                    EngineKind::Mariadb => self.mariadb_switchover(&rec, member, to, deadline).await,
                    EngineKind::Cassandra => Err("Cassandra has no primary: every member takes writes".into()),
                }
            }
        }
    }

    /// Whether the member serves and is back in the engine's membership.
    async fn member_back(&self, rec: &ServiceRecord, member: &str) -> Result<(), String> {
        let role = status::probe_role(rec, member).await.map_err(|e| e.to_string())?;
        match rec.spec.engine {
            EngineKind::Postgresql => {
                let primary = rec.current_primary();
                if member == primary {
                    return (role == Role::Primary).then_some(()).ok_or_else(|| format!("{member} answers as {role:?}, not as the primary"));
                }
                if role != Role::Replica {
                    return Err(format!("{member} answers as {role:?}, not as a replica"));
                }
                let t = status::target(rec, &primary).ok_or("the primary has no address")?;
                let rows = firecamp_probe::postgresql::replicas(&t, postgresql::SUPERUSER).await.map_err(|e| e.to_string())?;
                let missing = firecamp_probe::postgresql::not_streaming(&rows, &[member.to_string()]);
                missing.is_empty().then_some(()).ok_or_else(|| format!("{member} is not streaming from {primary} yet"))
            }
            EngineKind::Redis if redis_cluster(rec) => {
                let t = status::target(rec, member).ok_or("no address")?;
                let ci = firecamp_probe::redis::cluster_info(&t).await.map_err(|e| e.to_string())?;
                if !ci.covers_all_slots() {
                    return Err(format!("{member}: cluster state not ok ({} of 16384 slots served)", ci.slots_ok));
                }
                if role == Role::Replica {
                    redis_link_up(rec, member).await?;
                }
                Ok(())
            }
            EngineKind::Redis => {
                if member == rec.current_primary() {
                    return (role == Role::Primary).then_some(()).ok_or_else(|| format!("{member} answers as {role:?}, not as the primary"));
                }
                if role != Role::Replica {
                    return Err(format!("{member} answers as {role:?}, not as a replica"));
                }
                redis_link_up(rec, member).await
            }
            EngineKind::Zookeeper => match role {
                Role::Leader | Role::Follower | Role::Standalone => Ok(()),
                r => Err(format!("{member} answers as {r:?}")),
            },
            EngineKind::Mariadb => {
                if member == rec.current_primary() {
                    return (role == Role::Primary).then_some(()).ok_or_else(|| format!("{member} answers as {role:?}, not as the primary"));
                }
                if role != Role::Replica {
                    return Err(format!("{member} answers as {role:?}, not as a replica"));
                }
                status::mariadb_linked(rec, member).await
            }
            // Back in the quorum, and every partition in sync again (its replicas on the member
            // caught up), before the next broker goes down.
            EngineKind::Kafka => {
                let t = status::target(rec, member).ok_or("no address")?;
                let behind = firecamp_probe::kafka::under_replicated(&t, firecamp_catalog::kafka::ADMIN_USER).await.map_err(|e| e.to_string())?;
                match behind.as_slice() {
                    [] => Ok(()),
                    some => Err(format!("{} partitions under-replicated (first: {})", some.len(), some[0])),
                }
            }
            // Back in every other member's gossip as NORMAL (serving its ranges again), before
            // the next member goes down.
            EngineKind::Cassandra => {
                for m in rec.ips.keys() {
                    if let Some(p) = crate::cassandra::ring_problem(rec, m).await {
                        return Err(p);
                    }
                }
                Ok(())
            }
        }
    }

    pub(crate) async fn wait_member(&self, rec: &ServiceRecord, member: &str, deadline: Instant) -> Result<(), String> {
        poll(deadline, &format!("{member} not back in the service"), || self.member_back(rec, member)).await
    }

    /// New files, then the engine re-reads them: PostgreSQL `pg_reload_conf()` (done once every
    /// changed parameter's source is its line in the new file), Redis `CONFIG SET`.
    async fn reload(&self, rec: &ServiceRecord, r: &OperationRecord, member: &str, deadline: Instant) -> Result<(), String> {
        let installed = self.installed(rec).map_err(|e| e.to_string())?;
        let plan = self.plan_of(rec, &installed).map_err(|e| e.to_string())?;
        self.write_member(rec, &plan, member).map_err(|e| e.to_string())?;
        let mp = plan.member(member).ok_or("not in the plan")?;
        let content = |name: &str| mp.files.iter().find(|f| f.name == name).map(|f| f.content.clone()).unwrap_or_default();
        match rec.spec.engine {
            EngineKind::Postgresql => {
                let conf = content("postgresql.conf");
                let c = pg(rec, member).await?;
                c.query_one("SELECT pg_reload_conf()", &[]).await.map_err(|e| e.to_string())?;
                for k in &r.changed_keys {
                    let want = last_line_of(&conf, k, " = ").map(|(n, _)| n as i32);
                    poll(deadline, &format!("{member} did not apply {k}"), || async {
                        let row = c
                            .query_opt("SELECT sourcefile, sourceline, pending_restart FROM pg_settings WHERE name = $1", &[k])
                            .await
                            .map_err(|e| e.to_string())?;
                        let Some(row) = row else { return Err(format!("PostgreSQL has no parameter {k}")) };
                        let line: Option<i32> = row.get(1);
                        let pending: bool = row.get(2);
                        if pending {
                            return Err(format!("{k} needs a restart"));
                        }
                        if line == want { Ok(()) } else { Err(format!("{k} still comes from line {line:?}, the new file has it at {want:?}")) }
                    })
                    .await?;
                }
                Ok(())
            }
            EngineKind::Redis => {
                let conf = content("redis.conf");
                let params = firecamp_catalog::params::effective(&rec.spec, member);
                for k in &r.changed_keys {
                    let value = params.get(k).cloned().or_else(|| last_line_of(&conf, k, " ").map(|(_, v)| v));
                    let Some(v) = value else {
                        return Err(format!(
                            "{k} was removed and FireCamp has no value of its own for it; Redis keeps the current value until the member restarts"
                        ));
                    };
                    redis_cmd(rec, member, &["CONFIG", "SET", k, &v]).await.map_err(|e| format!("CONFIG SET {k}: {e}"))?;
                }
                Ok(())
            }
            EngineKind::Zookeeper => Err("ZooKeeper cannot reload its configuration".into()),
            EngineKind::Kafka => Err("Kafka's server.properties is read at start".into()),
            EngineKind::Mariadb => Err("MariaDB's my.cnf is read at start".into()),
            EngineKind::Cassandra => Err("Cassandra's cassandra.yaml is read at start".into()),
        }
    }

    /// PostgreSQL switchover from `old` (the primary) to `new` (a streaming replica):
    /// 1. stop `old` cleanly (fast shutdown: it sends all its WAL, up to its shutdown
    ///    checkpoint, to the connected replicas before it exits), after a `CHECKPOINT` while it
    ///    still takes writes, so that the shutdown checkpoint has little left to write;
    /// 2. wait until `new` has replayed past that checkpoint (so nothing acknowledged is lost and
    ///    `old` cannot have diverged: no pg_rewind is needed); else start `old` again, unchanged;
    /// 3. demote `old` on disk (standby.signal) and record `new` as the primary, so every
    ///    rendered config follows it and `old` can never come back as a primary;
    /// 4. `pg_promote()` on `new` (watched every 10 ms) and give it a slot for every other member;
    /// 5. re-point the other replicas (new primary_conninfo, `pg_reload_conf()`; restarted if
    ///    they do not stream from `new` within 30 s).
    ///
    /// `old` stays stopped: the operation's next step, its restart, starts it as a replica.
    /// Each part checks what is already done, so a resumed step does not repeat it.
    async fn pg_switchover(&self, rec: &ServiceRecord, old: &str, new: &str, deadline: Instant) -> Result<(), String> {
        let service = rec.name.as_str();
        let installed = self.installed(rec).map_err(|e| e.to_string())?;
        // The session with `new`, opened before writes stop and kept for its promotion.
        let mut session = None;
        if rec.primary.as_deref() != Some(new) {
            let role = status::probe_role(rec, new).await.map_err(|e| e.to_string())?;
            if role != Role::Replica {
                return Err(format!("{new} answers as {role:?}; a switchover needs a replica"));
            }
            self.member_back(rec, new).await.map_err(|e| format!("{new} is not a streaming replica: {e}"))?;
            let plan = self.plan_of(rec, &installed).map_err(|e| e.to_string())?;
            let pgdata = format!("{}/pgdata", plan.member(old).ok_or("not in the plan")?.paths.data_dir);
            // Writes stop from the stop on: what can be done before is. A checkpoint now leaves
            // the shutdown checkpoint little to write, and the session with `new` is open.
            if let Ok(oc) = pg(rec, old).await
                && let Err(e) = oc.batch_execute("CHECKPOINT").await
            {
                tracing::warn!(%service, member = %old, "checkpoint before the switchover: {e}");
            }
            let c = pg(rec, new).await?;
            self.stop_member(service, old).await;
            let (state, lsn) = controldata(&installed.bin_dir, &pgdata)?;
            let caught_up = if state != "shut down" {
                Err(format!("{old} did not shut down cleanly (pg_control says {state:?})"))
            } else {
                poll_fast(deadline, &format!("{new} did not replay {old}'s WAL up to its shutdown checkpoint {lsn}"), || async {
                    let row = c
                        .query_one("SELECT pg_last_wal_replay_lsn() > $1::text::pg_lsn, pg_last_wal_replay_lsn()::text", &[&lsn])
                        .await
                        .map_err(|e| e.to_string())?;
                    let ok: Option<bool> = row.get(0);
                    let at: Option<String> = row.get(1);
                    (ok == Some(true)).then_some(()).ok_or_else(|| format!("replayed up to {}", at.unwrap_or_default()))
                })
                .await
            };
            if let Err(e) = caught_up {
                self.start_member(rec, old).await.map_err(|e| e.to_string())?;
                return Err(format!("{e}; {old} was started again as the primary, nothing changed"));
            }
            let signal = std::path::Path::new(&pgdata).join("standby.signal");
            std::fs::write(&signal, "").map_err(|e| format!("writing {}: {e}", signal.display()))?;
            if let Some((uid, gid)) = self.member_user(rec.spec.engine).map_err(|e| e.to_string())? {
                std::os::unix::fs::chown(&signal, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", signal.display()))?;
            }
            let updated = self.set_primary(service, new).await.map_err(|e| e.to_string())?;
            let plan = self.plan_of(&updated, &installed).map_err(|e| e.to_string())?;
            for m in &plan.members {
                self.write_member(&updated, &plan, m.member.name.as_str()).map_err(|e| e.to_string())?;
            }
            self.log_sink(service, old).line(&format!("firecamp: {old} demoted (standby.signal); {new} is the primary from now on"));
            session = Some(c);
        }
        let rec = self.store.get(service).map_err(|e| e.to_string())?.ok_or("service gone")?;
        let c = match session {
            Some(c) => c,
            None => pg(&rec, new).await?,
        };
        promote(&c, new, deadline).await?;
        self.after_promotion(&rec, new, Some(old), deadline).await
    }

    /// After `new` became the primary: a slot on it for every other member, and the replicas
    /// other than `old` following it (a reload, else a restart).
    pub(crate) async fn after_promotion(&self, rec: &ServiceRecord, new: &str, old: Option<&str>, deadline: Instant) -> Result<(), String> {
        let service = rec.name.as_str();
        let c = pg(rec, new).await?;
        let members: Vec<String> = rec.ips.keys().filter(|m| m.as_str() != new).cloned().collect();
        for m in &members {
            let slot = postgresql::slot_name(m);
            firecamp_probe::postgresql::ensure_slot(&c, &slot).await.map_err(|e| format!("creating slot {slot} on {new}: {e}"))?;
        }
        for m in members.iter().filter(|m| Some(m.as_str()) != old) {
            let reloaded = match pg(rec, m).await {
                Ok(rc) => rc.query_one("SELECT pg_reload_conf()", &[]).await.is_ok(),
                Err(_) => false,
            };
            let sub = deadline.min(Instant::now() + Duration::from_secs(30));
            if !reloaded || self.wait_member(rec, m, sub).await.is_err() {
                self.log_sink(service, m).line(&format!("firecamp: {m} does not follow {new} after a reload; restarting it"));
                self.stop_member(service, m).await;
                self.start_member(rec, m).await.map_err(|e| e.to_string())?;
                self.wait_member(rec, m, deadline).await?;
            }
        }
        Ok(())
    }

    /// Redis: replication mode `FAILOVER TO <new>` on the primary (it pauses writes until `new`
    /// has everything, then the two swap roles), the other replicas `REPLICAOF <new>`; cluster
    /// mode `CLUSTER FAILOVER` on the replica (the same handshake within the shard).
    async fn redis_switchover(&self, rec: &ServiceRecord, old: &str, new: &str, deadline: Instant) -> Result<(), String> {
        let service = rec.name.as_str();
        let new_ip = rec.ips.get(new).ok_or("no address")?.to_string();
        let port = firecamp_catalog::redis::PORT;
        let roles_swapped = || async {
            let n = status::probe_role(rec, new).await.map_err(|e| e.to_string())?;
            let o = status::probe_role(rec, old).await.map_err(|e| e.to_string())?;
            (n == Role::Primary && o == Role::Replica).then_some(()).ok_or_else(|| format!("{new} is {n:?}, {old} is {o:?}"))
        };
        if roles_swapped().await.is_err() {
            let target = |m: &str| status::target(rec, m).ok_or_else(|| format!("{m} has no address"));
            if redis_cluster(rec) {
                firecamp_probe::redis::cluster_failover(&target(new)?).await.map_err(|e| format!("CLUSTER FAILOVER on {new}: {e}"))?;
            } else {
                firecamp_probe::redis::failover_to(&target(old)?, &new_ip, port, 30_000).await.map_err(|e| format!("FAILOVER on {old}: {e}"))?;
            }
            // The old primary holds writes until the swap, and clients find the new one only
            // once the record below names it: watched every 10 ms, as PostgreSQL's promotion.
            poll_fast(deadline, &format!("{new} did not take over from {old}"), roles_swapped).await?;
        }
        if redis_cluster(rec) {
            return Ok(());
        }
        let updated = self.set_primary(service, new).await.map_err(|e| e.to_string())?;
        let installed = self.installed(&updated).map_err(|e| e.to_string())?;
        let plan = self.plan_of(&updated, &installed).map_err(|e| e.to_string())?;
        for m in &plan.members {
            self.write_member(&updated, &plan, m.member.name.as_str()).map_err(|e| e.to_string())?;
        }
        for m in updated.ips.keys().filter(|m| m.as_str() != new && m.as_str() != old) {
            let t = status::target(&updated, m).ok_or_else(|| format!("{m} has no address"))?;
            firecamp_probe::redis::replicate_from(&t, &new_ip, port).await.map_err(|e| format!("REPLICAOF on {m}: {e}"))?;
        }
        for m in updated.ips.keys().filter(|m| m.as_str() != new) {
            self.wait_member(&updated, m, deadline).await?;
        }
        Ok(())
    }
}

/// The task of one operation.
async fn run(rt: Arc<Runtime>, service: String, id: String) {
    if let Err(e) = rt.drive(&service, &id).await {
        tracing::error!(%service, operation = %id, error = %e, "operation stopped");
        if let Ok(Some(mut r)) = rt.store.operation(&service, &id) {
            r.operation.phase = OperationPhase::Failed;
            r.operation.message = Some(format!("the runtime could not go on: {e}"));
            r.operation.finished = Some(now());
            let _ = rt.save(&r);
        }
    }
    if let Ok(Some(r)) = rt.store.operation(&service, &id) {
        rt.counters.operation_finished(&r.operation);
    }
    rt.op_tasks.lock().unwrap_or_else(|p| p.into_inner()).remove(&service);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_last_line_of_a_key() {
        let conf = "# x\nwork_mem = '4MB'\nport = 5432\nwork_mem = '8MB'\n";
        assert_eq!(last_line_of(conf, "work_mem", " = "), Some((4, "'8MB'".into())));
        assert_eq!(last_line_of(conf, "work", " = "), None);
    }

    #[test]
    fn a_busy_service_names_the_running_operation() {
        let op = Operation {
            id: "op-1".into(),
            kind: OperationKind::Restart,
            policy: firecamp_core::operation::UpdatePolicy::PrimaryLast,
            target: None,
            ca: None,
            phase: OperationPhase::Running,
            steps: vec![firecamp_core::operation::OperationStep::new(StepAction::Restart, "pg-1")],
            step_timeout_seconds: 300,
            message: None,
            created: now(),
            finished: None,
            cancel_requested: false,
        };
        let e = busy("pg", &op).to_string();
        assert!(e.contains("op-1") && e.contains("restart pg-1"), "{e}");
    }
}
