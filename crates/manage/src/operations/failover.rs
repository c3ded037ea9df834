//! Automatic failover on Kubernetes: PostgreSQL, and Redis in replication mode the same way
//! (`master_link_status`, replication offsets, `REPLICAOF`).
//!
//! **When a primary is lost.** Three witnesses must agree, continuously for the service's
//! `failover.delaySeconds` (30 by default), counted from `status.primaryLostSince`:
//! 1. the **kubelet's**: the primary's pod is gone, being deleted or not Ready, or its node is
//!    not Ready or gone (the kubelet runs the readiness probe on the member's own node, so a hung
//!    server fails it as a dead one does);
//! 2. the **manage service's**: the member's engine does not answer as the primary (not asked
//!    when the member has no pod or its pod is Pending: no server runs there);
//! 3. the **replicas'**: none still receives from it (PostgreSQL: a WAL receiver `streaming` with
//!    a message in the last 40 s; Redis: `master_link_status:up`).
//!
//! A partition between the manage service and a healthy primary fails the first and third
//! witnesses (its kubelet still sees it Ready, its replicas still stream), so it never causes a
//! failover; a stopped kubelet on a node whose server still serves fails the second. When the
//! kubelet says lost but another witness does not, the status message says why no failover
//! happens (`failover held: …`).
//!
//! **What it does.** An operation of kind `failover` is recorded (durable, resumed after a
//! restart of the manage service) with two steps, each acted on again until done:
//! 1. **fence**: the most advanced replica (the most WAL received; Redis: the highest
//!    replication offset) is recorded as the primary (`status.primary`) and every member's
//!    ConfigMap names it, the lost member's pod is labelled a replica and deleted (gracefully:
//!    on a dark node it goes when the node's kubelet is back, which stops the old server first);
//!    its next pod can only start as the new primary's replica (PostgreSQL rewinds it first);
//! 2. **promote**: `pg_promote()` (Redis `REPLICAOF NO ONE`), a slot on it for every other
//!    member, its pod labelled primary (the client Service and the primary endpoint follow), the
//!    other replicas re-pointed to it.

use std::collections::BTreeMap;

use firecamp_api::Role;
use firecamp_catalog::ServicePlan;
use firecamp_core::EngineKind;
use firecamp_core::operation::{DEFAULT_STEP_TIMEOUT_SECONDS, Operation, OperationKind, OperationPhase, OperationStep, StepAction, UpdatePolicy};
use firecamp_core::spec::PostgresReplication;
use firecamp_kube::{labels, names};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::roles::Engines;
use crate::config::RoleSource;
use crate::crd::FireCampService;
use crate::error::{Error, Result};
use crate::reconcile::Context;

/// A replica whose last message from the primary is older than this no longer hears it (the
/// primary's keepalives come every `wal_sender_timeout / 2`, 30 s by default).
const HEARD_WITHIN_SECONDS: u32 = 40;

/// What a look at the service's primary found.
#[derive(Debug)]
pub enum Look {
    /// Not eligible, or the primary is fine.
    Healthy,
    /// The kubelet says the primary is lost but another witness says it serves: no failover,
    /// for this reason (shown in the service's status, so users see why none happens).
    Held(String),
    /// Lost since this instant (RFC 3339), not for long enough yet (the delay ends in `ends_in`), or
    /// with no replica to promote (`ends_in` is `None`).
    Lost { since: String, ends_in: Option<std::time::Duration> },
    /// Lost for the delay: this failover starts now.
    Failover(Operation),
}

/// Whether the service's primary is watched: PostgreSQL, or Redis in replication mode, with
/// replicas, failover not disabled, running (not creating or stopped), roles from the engines.
fn eligible(ctx: &Context, svc: &FireCampService, plan: &ServicePlan) -> bool {
    let engine = match plan.engine {
        EngineKind::Postgresql => true,
        EngineKind::Redis => plan.members.iter().all(|m| m.shard.is_none()),
        EngineKind::Zookeeper | EngineKind::Kafka | EngineKind::Mariadb | EngineKind::Cassandra => false,
    };
    let running = svc.status.as_ref().is_some_and(|s| matches!(s.phase, firecamp_api::Phase::Active | firecamp_api::Phase::Degraded));
    engine && plan.members.len() > 1 && !plan.spec.failover.disabled && ctx.config.role_source == RoleSource::Engine && running
}

/// The kubelet's witness: why the primary's pod or node says it is not serving, if it does.
pub fn kubelet_says_lost(pod: Option<&Pod>, nodes: &BTreeMap<String, Node>) -> Option<String> {
    let Some(p) = pod else {
        return Some("it has no pod".into());
    };
    if p.metadata.deletion_timestamp.is_some() {
        return Some("its pod is being deleted".into());
    }
    if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        match nodes.get(node) {
            None => return Some(format!("its node {node} is gone")),
            Some(n) => {
                if let Some(why) = crate::reconcile::status::node_unready(n) {
                    return Some(format!("its node {node} is not Ready ({why})"));
                }
            }
        }
    }
    let ready = p.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "Ready")).is_some_and(|c| c.status == "True");
    (!ready).then(|| "its pod is not Ready".into())
}

/// Looks at the primary of `plan` (the member its files name) as the three witnesses see it.
pub async fn look(ctx: &Context, svc: &FireCampService, plan: &ServicePlan, pods: &BTreeMap<String, Pod>) -> Result<Look> {
    if !eligible(ctx, svc, plan) {
        return Ok(Look::Healthy);
    }
    let Some(primary) = plan.members.iter().find(|m| m.role == firecamp_catalog::Role::Primary).map(|m| m.member.name.to_string()) else {
        return Ok(Look::Healthy);
    };
    let pod = pods.get(&names::pod_of(&firecamp_core::MemberName::from_string(primary.as_str())));
    let node = pod.and_then(|p| p.spec.as_ref()?.node_name.clone());
    let nodes: BTreeMap<String, Node> =
        ctx.nodes.state().iter().filter(|n| node.as_deref() == Some(n.name_any().as_str())).map(|n| (n.name_any(), (**n).clone())).collect();
    let Some(kubelet) = kubelet_says_lost(pod, &nodes) else {
        return Ok(Look::Healthy);
    };
    let ns = svc.namespace().unwrap_or_default();
    let engines = Engines::read(&ctx.client, plan, &ns, pods).await?;
    // A member with no pod, or one whose containers have not started, runs no server there to
    // ask: asking its static IP would only wait for the connect timeout.
    let may_serve = pod.is_some_and(|p| p.metadata.deletion_timestamp.is_some() || p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Pending"));
    if may_serve && engines.role(&primary).await == Role::Primary {
        return Ok(Look::Held(format!("failover held: {primary}'s engine still answers as the primary ({kubelet})")));
    }
    let replicas: Vec<String> = plan.members.iter().map(|m| m.member.name.to_string()).filter(|m| *m != primary).collect();
    let mut positions = Vec::new();
    for r in &replicas {
        match hears(&engines, r).await {
            Some(Hearing::Streaming) => {
                return Ok(Look::Held(format!("failover held: {primary} does not answer the manage service ({kubelet}) but {r} still receives from it")));
            }
            Some(Hearing::Received(at, text)) => positions.push((r.clone(), at, text)),
            None => {}
        }
    }
    let now = k8s_openapi::jiff::Timestamp::now();
    let since_text = svc.status.as_ref().and_then(|s| s.primary_lost_since.clone()).unwrap_or_else(|| now.to_string());
    let since = since_text.parse::<k8s_openapi::jiff::Timestamp>().map(|t| t.as_millisecond()).unwrap_or(now.as_millisecond());
    let lost_for_ms = now.as_millisecond() - since;
    let lost_for = lost_for_ms / 1000;
    let delay_ms = i64::from(plan.spec.failover.delay_seconds()) * 1000;
    if lost_for_ms < delay_ms {
        if svc.status.as_ref().and_then(|s| s.primary_lost_since.as_deref()).is_none() {
            let note = format!(
                "the primary {primary} is lost ({kubelet}; its engine does not answer; no replica receives from it): failover in {} s unless it returns",
                plan.spec.failover.delay_seconds()
            );
            tracing::warn!(service = %svc.name_any(), "{note}");
            crate::reconcile::event(ctx, svc, EventType::Warning, "PrimaryLost", note).await;
        }
        // The next look when the delay ends, not up to a tick later.
        let left = std::time::Duration::from_millis(u64::try_from(delay_ms - lost_for_ms).unwrap_or(0));
        return Ok(Look::Lost { since: since_text, ends_in: Some(left) });
    }
    let Some((heir, _, heir_at)) = positions.into_iter().max_by_key(|(_, at, _)| *at) else {
        tracing::error!(service = %svc.name_any(), %primary, "the primary is lost and no replica answers: nothing to promote");
        return Ok(Look::Lost { since: since_text, ends_in: None });
    };
    let what = if plan.engine == EngineKind::Redis { "replication offset" } else { "WAL" };
    let window = match plan.spec.postgresql.as_ref().map(|p| p.replication) {
        Some(PostgresReplication::Sync) => "synchronous replication: no acknowledged write is lost".to_string(),
        // PostgreSQL keeps the old primary's directory beside the clone when it cannot rewind;
        // a Redis replica's full resynchronisation replaces its data.
        _ => {
            let fate = if plan.engine == EngineKind::Redis { "dropped when it resynchronises" } else { "set aside when it rejoins" };
            format!("asynchronous replication: writes {primary} acknowledged beyond {what} {heir_at} are lost ({fate})")
        }
    };
    let message = format!("{primary} lost for {lost_for} s ({kubelet}); {heir} had received up to {heir_at}; {window}");
    let mut fence = OperationStep::new(StepAction::Fence, primary.as_str());
    fence.to = Some(heir.clone());
    let now_text = now.to_string();
    let op = Operation {
        id: format!("op-{}", now.as_millisecond()),
        kind: OperationKind::Failover,
        policy: UpdatePolicy::PrimaryLast,
        // What was lost stays in the record after the steps' messages are gone.
        target: Some(format!("{heir} replaces {primary}; {window}")),
        ca: None,
        phase: OperationPhase::Running,
        steps: vec![fence, OperationStep::new(StepAction::Promote, heir.as_str())],
        step_timeout_seconds: DEFAULT_STEP_TIMEOUT_SECONDS,
        message: Some(message.clone()),
        created: now_text,
        finished: None,
        cancel_requested: false,
    };
    tracing::warn!(service = %svc.name_any(), operation = %op.id, "failover: {message}");
    crate::reconcile::event(ctx, svc, EventType::Warning, "Failover", format!("operation {}: {message}", op.id)).await;
    Ok(Look::Failover(op))
}

enum Hearing {
    /// The replica still receives from the primary.
    Streaming,
    /// It does not; it has received up to this position (as a number and as the engine says it).
    Received(u64, String),
}

/// What replica `r` hears of its primary; `None` when it does not answer.
async fn hears(engines: &Engines, r: &str) -> Option<Hearing> {
    if engines.engine() == EngineKind::Redis {
        let info = engines.redis_replication(r).await.ok()?;
        if info.get("master_link_status").map(String::as_str) == Some("up") {
            return Some(Hearing::Streaming);
        }
        let offset = info.get("slave_repl_offset")?.clone();
        return Some(Hearing::Received(offset.parse().ok()?, offset));
    }
    let c = engines.pg(r).await.ok()?;
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming' AND last_msg_receipt_time > now() - interval '{HEARD_WITHIN_SECONDS} seconds'), \
         coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::text"
    );
    let row = c.query_one(&sql, &[]).await.ok()?;
    if row.get::<_, bool>(0) {
        return Some(Hearing::Streaming);
    }
    let text: String = row.get::<_, Option<String>>(1)?;
    Some(Hearing::Received(firecamp_probe::postgresql::lsn(&text)?, text))
}

/// Step 1: `heir` is the primary in the status and every member's files; the lost member's pod
/// is labelled a replica (the Service and endpoint no longer lead to it) and deleted.
pub async fn fence(ctx: &Context, svc: &FireCampService, pods: &BTreeMap<String, Pod>, lost: &str, heir: &str, uid: Option<&str>) -> Result<()> {
    if svc.status.as_ref().and_then(|s| s.primary.as_deref()) != Some(heir) {
        crate::reconcile::record_status_field(ctx, svc, "primary", serde_json::json!(heir), "record the new primary of").await?;
    }
    let plan = crate::reconcile::plan_naming(svc, ctx, heir)?;
    crate::reconcile::apply_member_files(ctx, svc, &plan).await?;
    let ns = svc.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pod_name = names::pod_of(&firecamp_core::MemberName::from_string(lost));
    if let Some(p) = pods.get(&pod_name).filter(|p| uid.is_some() && p.uid().as_deref() == uid) {
        let patch = serde_json::json!({"metadata": {"labels": {labels::ROLE: Role::Replica.as_str()}}});
        api.patch(&pod_name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(Error::kube("relabel", "Pod", &pod_name))?;
        if p.metadata.deletion_timestamp.is_none() {
            let dp = DeleteParams { preconditions: Some(Preconditions { uid: p.uid(), resource_version: None }), ..Default::default() };
            match api.delete(&pod_name, &dp).await {
                Ok(_) => tracing::info!(member = %lost, "lost primary's pod deleted"),
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(e) => return Err(Error::kube("delete", "Pod", &pod_name)(e)),
            }
        }
    }
    Ok(())
}

/// Step 2: `heir` promoted and followed by the other replicas (not by `lost`, which rejoins with
/// its next pod).
pub async fn promote(ctx: &Context, svc: &FireCampService, engines: &Engines, heir: &str, lost: &str) -> Result<()> {
    let plan = crate::reconcile::plan_naming(svc, ctx, heir)?;
    let ns = svc.namespace().unwrap_or_default();
    if engines.engine() == EngineKind::Redis {
        let info = engines.redis_replication(heir).await.map_err(|e| Error::engine(heir, e))?;
        if info.get("role").map(String::as_str) != Some("master") {
            engines.redis(heir, &["REPLICAOF", "NO", "ONE"]).await.map_err(|e| Error::engine(heir, format!("REPLICAOF NO ONE: {e}")))?;
        }
        let host = engines.address(heir).ok_or_else(|| Error::engine(heir, "no address"))?.to_string();
        let port = firecamp_catalog::redis::PORT.to_string();
        for m in plan.members.iter().map(|m| m.member.name.as_str()).filter(|m| *m != heir && *m != lost) {
            if let Err(e) = engines.redis(m, &["REPLICAOF", &host, &port]).await {
                tracing::warn!(member = %m, primary = %heir, error = %e, "replica not re-pointed; it follows with its next start");
            }
        }
        let pod = names::pod_of(&firecamp_core::MemberName::from_string(heir));
        let patch = serde_json::json!({"metadata": {"labels": {labels::ROLE: Role::Primary.as_str()}}});
        Api::<Pod>::namespaced(ctx.client.clone(), &ns)
            .patch(&pod, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::kube("relabel", "Pod", &pod))?;
    } else {
        let c = engines.pg(heir).await.map_err(|e| Error::engine(heir, e))?;
        let recovering: bool = c.query_one("SELECT pg_is_in_recovery()", &[]).await.map_err(|e| Error::engine(heir, e))?.get(0);
        if recovering {
            super::postgresql::promote(&c, heir).await?;
        }
        super::postgresql::follow(ctx, &ns, &plan, engines, heir, Some(lost)).await?;
    }
    crate::reconcile::event(ctx, svc, EventType::Normal, "Promoted", format!("{heir} is the primary; {lost} rejoins it as a replica when it is back")).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(node: &str, ready: bool) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "pg-0"},
            "spec": {"nodeName": node, "containers": []},
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .unwrap()
    }
    fn node(name: &str, ready: bool) -> (String, Node) {
        let n = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "Unknown" }, "reason": "NodeStatusUnknown", "message": "Kubelet stopped posting node status."}]}
        }))
        .unwrap();
        (name.to_string(), n)
    }

    #[test]
    fn the_kubelet_witness_needs_the_pod_or_its_node_to_say_so() {
        let up = BTreeMap::from([node("n1", true)]);
        assert_eq!(kubelet_says_lost(Some(&pod("n1", true)), &up), None, "a Ready pod on a Ready node is not lost");
        assert_eq!(kubelet_says_lost(Some(&pod("n1", false)), &up).as_deref(), Some("its pod is not Ready"));
        let dark = BTreeMap::from([node("n1", false)]);
        let why = kubelet_says_lost(Some(&pod("n1", true)), &dark).unwrap();
        assert!(why.contains("n1 is not Ready") && why.contains("Kubelet stopped"), "{why}");
        assert_eq!(kubelet_says_lost(Some(&pod("n2", true)), &up).as_deref(), Some("its node n2 is gone"));
        assert_eq!(kubelet_says_lost(None, &up).as_deref(), Some("it has no pod"));
    }
}
