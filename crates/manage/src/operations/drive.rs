//! Driving operations from the controller: take up a requested operation (plan its steps from
//! the members' roles now), advance it on every reconcile, record it before acting, act.

use std::collections::BTreeMap;
use std::time::Duration;

use firecamp_api::Role;
use firecamp_catalog::redis::members_per_shard;
use firecamp_catalog::{ServicePlan, engine};
use firecamp_core::operation::{
    MemberRole, Operation, OperationKind, OperationPhase, OperationStep, StepAction, restart_steps, scale_steps, shard_scale_steps, stop_start_steps,
};
use firecamp_kube::{labels, names};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Resource, ResourceExt};

use super::decide::{Effect, MemberView, Observed, advance, fail_current_step};
use super::failover::Look;
use super::request::{KEEP_FINISHED, pending};
use super::roles::{Engines, engine_switchover};
use crate::config::RoleSource;
use crate::crd::FireCampService;
use crate::error::{Error, Result};
use crate::reconcile::Context;

/// How often a running operation is looked at besides pod events (for step timeouts).
const TICK: Duration = Duration::from_secs(5);
/// How soon a primary its kubelet calls lost, but another witness not yet, is looked at again.
const HELD_LOOK_AGAIN: Duration = Duration::from_secs(2);

fn condition<'a>(p: &'a Pod, type_: &str) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    p.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

fn role_label(p: &Pod) -> Role {
    let label = p.labels().get(labels::ROLE).map(String::as_str).unwrap_or("unknown");
    serde_json::from_value(serde_json::Value::from(label)).unwrap_or_default()
}

/// What the decision needs of each member's pod.
pub fn member_views(plan: &ServicePlan, pods: &BTreeMap<String, Pod>) -> BTreeMap<String, MemberView> {
    plan.members
        .iter()
        .map(|m| {
            let pod = pods.get(&names::pod_of(&m.member.name));
            let view = pod.map(|p| {
                let ready = p.metadata.deletion_timestamp.is_none() && condition(p, "Ready").is_some_and(|c| c.status == "True");
                let waiting = condition(p, "PodScheduled")
                    .filter(|c| c.status == "False")
                    .and_then(|c| c.message.clone())
                    .or_else(|| condition(p, "Ready").filter(|c| c.status == "False").and_then(|c| c.message.clone().or(c.reason.clone())));
                MemberView {
                    pod_uid: p.metadata.uid.clone(),
                    terminating: p.metadata.deletion_timestamp.is_some(),
                    revision: p.labels().get("controller-revision-hash").cloned(),
                    ready,
                    // A member counts as back once its pod is ready and carries a role: set by
                    // the engine probe, or (role source `labels`) by whoever plays the engine.
                    role: if ready { role_label(p) } else { Role::Unknown },
                    waiting,
                    volume: None,
                    cluster: None,
                    backup: None,
                }
            });
            (m.member.name.to_string(), view.unwrap_or_default())
        })
        .collect()
}

/// The steps of a newly taken-up operation, from the members' roles now.
fn plan_steps(
    op: &Operation,
    plan: &ServicePlan,
    views: &BTreeMap<String, MemberView>,
    ctx: &Context,
    asked: &firecamp_core::ServiceSpec,
) -> Vec<firecamp_core::operation::OperationStep> {
    let members: Vec<MemberRole> = plan
        .members
        .iter()
        .map(|m| {
            let role = views.get(m.member.name.as_str()).map(|v| v.role).unwrap_or_default();
            MemberRole { member: m.member.name.to_string(), primary: matches!(role, Role::Primary | Role::Leader), shard: m.shard }
        })
        .collect();
    match op.kind {
        // From the members there are to the size the spec asks for now; a Redis Cluster's by
        // whole shards, their slots filled or drained.
        OperationKind::Scale => match asked.redis.as_ref().and_then(|r| r.shards).filter(|_| members.iter().any(|m| m.shard.is_some())) {
            Some(shards) => shard_scale_steps(&plan.name, &members, members_per_shard(asked) as usize, shards as usize),
            None => scale_steps(&plan.name, &members, asked.replicas as usize),
        },
        OperationKind::Volume => members.iter().map(|m| firecamp_core::operation::OperationStep::new(StepAction::Resize, &m.member)).collect(),
        // From a replica that is up, so the primary serves clients undisturbed.
        OperationKind::Backup => {
            let up = |m: &&MemberRole| views.get(m.member.as_str()).is_some_and(|v| v.ready);
            let from = members.iter().filter(up).find(|m| !m.primary).or(members.iter().find(|m| m.primary)).or(members.first());
            from.map(|m| firecamp_core::operation::OperationStep::new(StepAction::Backup, &m.member)).into_iter().collect()
        }
        OperationKind::Stop => stop_start_steps(&members, StepAction::Stop),
        OperationKind::Start => stop_start_steps(&members, StepAction::Start),
        // On Kubernetes a member's files are written when its pod starts: every change restarts.
        _ => {
            // With roles from labels the switchover is theirs too; with roles from the engines,
            // only where the manage service can run it (Redis).
            let switchover = engine(plan.engine).supports_switchover() && (ctx.config.role_source == RoleSource::Labels || engine_switchover(plan));
            restart_steps(&members, op.policy, switchover, StepAction::Restart)
        }
    }
}

/// The TLS Secrets rotated as the operation asks, before it is recorded and any member restarts
/// (once: the Secrets name the operation that rotated them). A stage that cannot run now fails
/// the operation with nothing changed.
async fn rotate_certificates(ctx: &Context, svc: &FireCampService, plan: &ServicePlan, op: &mut Operation) -> Result<()> {
    let owner = svc.controller_owner_ref(&()).ok_or(Error::MissingField("metadata.uid"))?;
    match crate::reconcile::tls::rotate(&ctx.client, &ctx.config.field_manager, plan, &owner, op).await? {
        Ok(Some(what)) => {
            tracing::info!(operation = %op.id, %what, "certificates rotated");
            let note = format!("operation {}: {what}; members restart onto it", op.id);
            crate::reconcile::event(ctx, svc, kube::runtime::events::EventType::Normal, "CertificatesRotated", note).await;
        }
        Ok(None) => {}
        Err(why) => {
            let now = k8s_openapi::jiff::Timestamp::now().to_string();
            op.cancel(&now);
            op.phase = OperationPhase::Failed;
            op.message = Some(format!("nothing changed: {why}"));
        }
    }
    Ok(())
}

/// Records the operations (and the primary) now, before acting on them.
async fn persist(ctx: &Context, svc: &FireCampService, ops: &[Operation], primary: Option<&str>) -> Result<()> {
    let mut fields = serde_json::Map::new();
    fields.insert("operations".into(), serde_json::json!(ops));
    if let Some(p) = primary {
        fields.insert("primary".into(), p.into());
    }
    crate::reconcile::record_status(ctx, svc, fields, "record the operations of").await
}

/// Acts on one effect. `Ok(Err(reason))`: the engine refused; the step fails with the reason.
/// `Ok(Ok(Some(member)))`: `member` is the primary now (a PostgreSQL switchover records it).
async fn act(
    ctx: &Context,
    svc: &FireCampService,
    plan: &ServicePlan,
    engines: Option<&Engines>,
    seen: &BTreeMap<String, Pod>,
    views: &BTreeMap<String, MemberView>,
    e: &Effect,
) -> Result<std::result::Result<Option<String>, String>> {
    let ns = svc.namespace().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    match e {
        Effect::DeletePod { member, uid } => {
            let dp = DeleteParams { preconditions: Some(Preconditions { uid: Some(uid.clone()), resource_version: None }), ..Default::default() };
            match pods.delete(member, &dp).await {
                Ok(_) => tracing::info!(%member, "pod deleted for an ordered restart"),
                // Gone already, or already replaced by a newer pod: nothing to do.
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(err) => return Err(Error::kube("delete", "Pod", member)(err)),
            }
        }
        Effect::Switchover { from, to, uid } => match engines {
            Some(engines) if engines.engine() == firecamp_core::EngineKind::Postgresql => {
                return Ok(super::postgresql::switchover(ctx, svc, engines, seen, from, to, uid.as_deref()).await?.map(|()| Some(to.clone())));
            }
            Some(engines) => {
                if let Err(why) = engines.switchover(plan, from, to).await {
                    return Ok(Err(why));
                }
                tracing::info!(%from, %to, "switchover started");
            }
            // Role source `labels`: the roles are the pods' labels, so the switchover is theirs.
            None => {
                for (member, role) in [(to, Role::Primary), (from, Role::Replica)] {
                    let patch = serde_json::json!({"metadata": {"labels": {labels::ROLE: role.as_str()}}});
                    pods.patch(member, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(Error::kube("relabel", "Pod", member))?;
                }
                tracing::info!(%from, %to, "switchover");
            }
        },
        Effect::Fence { lost, heir, uid } => {
            super::failover::fence(ctx, svc, seen, lost, heir, uid.as_deref()).await?;
            return Ok(Ok(Some(heir.clone())));
        }
        Effect::Promote { heir, lost } => match engines {
            Some(engines) => super::failover::promote(ctx, svc, engines, heir, lost).await?,
            None => return Ok(Err("a failover needs the roles from the engines (--role-source=engine)".into())),
        },
        // Acted on by `scale::act` before this is reached.
        Effect::Prepare { .. } | Effect::Forget { .. } => {}
        Effect::Join { member } => {
            if let Some(engines) = engines {
                let joined = match engines.engine() {
                    firecamp_core::EngineKind::Zookeeper => super::ensemble::join(engines, plan, views, member).await,
                    _ => super::cluster::join(engines, plan, views, member, true).await,
                };
                if let Err(why) = joined {
                    tracing::info!(%member, "joining: {why}");
                }
            }
        }
        // Acted on before this is reached.
        Effect::Leave { .. } => {}
        Effect::MoveSlots { member, drain, key } => {
            return Ok(super::cluster::move_slots(ctx, svc, plan, views, member, *drain, key).await?.map(|()| None));
        }
        Effect::TakeBackup { member, key } => {
            return Ok(super::backup::take(ctx, svc, plan, member, key).await?.map(|()| None));
        }
        Effect::FollowPrimary { primary, old } => {
            if let Some(engines) = engines {
                // The replicas still replicate through the old primary meanwhile; their files
                // name the new one, so a restart fixes it too. Not worth failing the operation.
                if let Err(why) = engines.follow(plan, primary, old).await {
                    tracing::warn!(%primary, error = %why, "replicas not re-pointed");
                }
            }
        }
    }
    Ok(Ok(None))
}

/// The step under way of operation `id`.
fn current_step<'a>(ops: &'a mut [Operation], id: &str) -> Option<&'a mut OperationStep> {
    ops.iter_mut().find(|o| o.id == id).and_then(|o| o.current_step().map(|i| &mut o.steps[i]))
}

/// What [`drive`] leaves for the status.
pub struct Driven {
    pub operations: Vec<Operation>,
    /// The primary after the last switchover (`None`: the bootstrap primary still is).
    pub primary: Option<String>,
    /// Since when the primary has been lost (no failover yet), for `status.primaryLostSince`.
    pub primary_lost_since: Option<String>,
    /// When to look again (a running operation, a lost primary).
    pub look_again: Option<Duration>,
    /// Why no failover happens although the kubelet says the primary is lost.
    pub held: Option<String>,
}

/// Takes up, advances and acts on the service's operation.
pub async fn drive(ctx: &Context, svc: &FireCampService, plan: &ServicePlan, pods: &BTreeMap<String, Pod>) -> Result<Driven> {
    let ns = svc.namespace().unwrap_or_default();
    let mut ops: Vec<Operation> = svc.status.as_ref().map(|s| s.operations.clone()).unwrap_or_default();
    let mut primary = svc.status.as_ref().and_then(|s| s.primary.clone());
    let taking_up = pending(svc);
    let mut failover = None;
    if taking_up.is_none() && ops.iter().all(|o| o.phase.is_terminal()) {
        match super::failover::look(ctx, svc, plan, pods).await? {
            Look::Healthy => return Ok(Driven { operations: ops, primary, primary_lost_since: None, look_again: None, held: None }),
            Look::Held(why) => {
                tracing::warn!(service = %svc.name_any(), "{why}");
                // Soon again: a primary whose server is stopping answers until it has stopped,
                // and only a look tells when its replicas stop hearing it.
                return Ok(Driven { operations: ops, primary, primary_lost_since: None, look_again: Some(HELD_LOOK_AGAIN), held: Some(why) });
            }
            Look::Lost { since, ends_in } => {
                let look_again = Some(ends_in.map_or(TICK, |d| d.min(TICK)));
                return Ok(Driven { operations: ops, primary, primary_lost_since: Some(since), look_again, held: None });
            }
            Look::Failover(op) => failover = Some(op),
        }
    }
    let mut views = member_views(plan, pods);
    // Members a scale removes are out of the plan while their pods may still be there.
    for p in pods.values() {
        if let Some(member) = p.labels().get(labels::MEMBER).filter(|m| !views.contains_key(*m)) {
            let view = MemberView { pod_uid: p.metadata.uid.clone(), terminating: p.metadata.deletion_timestamp.is_some(), ..Default::default() };
            views.insert(member.clone(), view);
        }
    }
    let engines = match ctx.config.role_source {
        RoleSource::Engine => Some(Engines::read(&ctx.client, plan, &ns, pods).await?),
        RoleSource::Labels => None,
    };
    if let Some(engines) = &engines {
        let roles = super::roles::probe(&ctx.client, engines, plan, &ns, pods).await?;
        for (member, v) in views.iter_mut() {
            v.role = if v.ready { roles.get(member).copied().unwrap_or_default() } else { Role::Unknown };
        }
    }
    let mut changed = false;
    if let Some(op) = failover {
        ops.push(op);
        changed = true;
    }
    if let Some(mut op) = taking_up {
        op.steps = plan_steps(&op, plan, &views, ctx, &svc.spec.0);
        op.phase = OperationPhase::Running;
        if op.kind == OperationKind::Certificates {
            rotate_certificates(ctx, svc, plan, &mut op).await?;
        }
        ops.push(op);
        changed = true;
    }
    let Some(op) = ops.iter_mut().find(|o| !o.phase.is_terminal()) else {
        return Ok(Driven { operations: ops, primary, primary_lost_since: None, look_again: None, held: None });
    };
    if op.kind == OperationKind::Volume {
        super::volumes::observe(ctx, plan, &ns, &mut views).await?;
    }
    if op.kind == OperationKind::Backup {
        super::backup::observe(ctx, svc, op, &mut views).await?;
    }
    let cluster = plan.members.iter().any(|m| m.shard.is_some());
    if op.kind == OperationKind::Scale && cluster {
        super::cluster::observe(ctx, svc, plan, engines.as_ref(), op, &mut views).await?;
    }
    let ensemble = plan.engine == firecamp_core::EngineKind::Zookeeper;
    if let Some(engines) = engines.as_ref().filter(|_| op.kind == OperationKind::Scale && ensemble) {
        super::ensemble::observe(plan, engines, op, &mut views).await;
    }
    if svc.annotations().get(super::CANCEL_ANNOTATION) == Some(&op.id) && !op.cancel_requested {
        op.cancel_requested = true;
        changed = true;
    }
    let sts: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    let name = names::statefulset(&plan.name);
    let current = sts.get_opt(&name).await.map_err(Error::kube("get", "StatefulSet", &name))?;
    let statefulset_current =
        current.as_ref().is_some_and(|s| s.status.as_ref().and_then(|st| st.observed_generation).unwrap_or(0) >= s.metadata.generation.unwrap_or(0));
    let update_revision = current.and_then(|s| s.status?.update_revision);
    let now = k8s_openapi::jiff::Timestamp::now();
    let now_text = now.to_string();
    let before = op.clone();
    let repeat_switchover = engines.as_ref().is_some_and(|e| e.engine() == firecamp_core::EngineKind::Postgresql);
    let recorded = primary.clone();
    let observed = Observed {
        members: &views,
        update_revision: update_revision.as_deref(),
        statefulset_current,
        now: now.as_second(),
        now_text: &now_text,
        repeat_switchover,
        primary: recorded.as_deref(),
        prepare_adds: engines.as_ref().is_some_and(|e| e.engine() == firecamp_core::EngineKind::Postgresql),
        joins: (cluster || ensemble) && engines.is_some(),
        leaves: ensemble,
    };
    let effects = advance(op, &observed);
    changed |= *op != before;
    // A single-primary service's files name the primary the last switchover made.
    let single_primary = plan.members.iter().all(|m| m.shard.is_none());
    for e in &effects {
        if let (Effect::FollowPrimary { primary: p, .. }, true) = (e, single_primary) {
            primary = Some(p.clone());
        }
    }
    let op_id = op.id.clone();
    // Keep the newest finished ones.
    let finished = ops.iter().filter(|o| o.phase.is_terminal()).count();
    if finished > KEEP_FINISHED {
        let mut drop = finished - KEEP_FINISHED;
        ops.retain(|o| {
            let gone = drop > 0 && o.phase.is_terminal();
            drop -= usize::from(gone);
            !gone
        });
    }
    if changed || !effects.is_empty() {
        persist(ctx, svc, &ops, primary.as_deref()).await?;
    }
    let mut effects = effects;
    for round in 0..2 {
        let mut fenced = false;
        for e in &effects {
            if let Effect::Leave { member } = e {
                // Without the engines (role source `labels`) there is no ensemble to change.
                let left = match engines.as_ref() {
                    Some(engines) => super::ensemble::leave(engines, plan, &views, member).await,
                    None => true,
                };
                if left && let Some(step) = current_step(&mut ops, &op_id) {
                    step.left = true;
                    persist(ctx, svc, &ops, primary.as_deref()).await?;
                }
                continue;
            }
            if matches!(e, Effect::Prepare { .. } | Effect::Forget { .. }) {
                if super::scale::act(ctx, svc, plan, engines.as_ref(), primary.as_deref(), e).await?
                    && let Some(step) = current_step(&mut ops, &op_id)
                {
                    step.prepared = true;
                    persist(ctx, svc, &ops, primary.as_deref()).await?;
                }
                continue;
            }
            match act(ctx, svc, plan, engines.as_ref(), pods, &views, e).await? {
                Ok(new) => {
                    if let Some(new) = new {
                        primary = Some(new);
                        fenced |= matches!(e, Effect::Fence { .. });
                    }
                    // A failover's promotion and a PostgreSQL switchover return once the new
                    // primary is labelled and followed: their steps' done-check needs the mark.
                    let through = matches!(e, Effect::Promote { .. }) || (matches!(e, Effect::Switchover { .. }) && observed.repeat_switchover);
                    if through && let Some(step) = current_step(&mut ops, &op_id) {
                        step.prepared = true;
                        persist(ctx, svc, &ops, primary.as_deref()).await?;
                    }
                }
                Err(why) => {
                    if let Some(op) = ops.iter_mut().find(|o| o.id == op_id) {
                        fail_current_step(op, &why, &now_text);
                    }
                    persist(ctx, svc, &ops, primary.as_deref()).await?;
                    break;
                }
            }
        }
        // A failover's fence is recorded: its promotion follows in this pass, not the next.
        let Some(op) = ops.iter_mut().find(|o| o.id == op_id).filter(|_| fenced && round == 0) else { break };
        let again = Observed { primary: primary.as_deref(), ..observed };
        effects = advance(op, &again);
        persist(ctx, svc, &ops, primary.as_deref()).await?;
    }
    if let Some(op) = ops.iter().find(|o| o.id == op_id).filter(|o| o.phase.is_terminal() && o.phase != before.phase) {
        tracing::info!(operation = %op.id, phase = op.phase.as_str(), message = ?op.message, "operation finished");
        crate::rest::metrics::METRICS.operation_ended(op);
    }
    let running = ops.iter().any(|o| !o.phase.is_terminal());
    Ok(Driven { operations: ops, primary, primary_lost_since: None, look_again: running.then_some(TICK), held: None })
}
