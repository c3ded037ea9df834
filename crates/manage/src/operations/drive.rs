//! Driving operations from the controller: take up a requested operation (plan its steps from
//! the members' roles now), advance it on every reconcile, record it before acting, act.

use std::collections::BTreeMap;
use std::time::Duration;

use firecamp_api::Role;
use firecamp_catalog::{engine, ServicePlan};
use firecamp_core::operation::{restart_steps, stop_start_steps, MemberRole, Operation, OperationKind, OperationPhase, StepAction};
use firecamp_kube::{labels, names};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, ResourceExt};

use super::decide::{advance, Effect, MemberView, Observed};
use super::request::{pending, KEEP_FINISHED};
use crate::config::RoleSource;
use crate::crd::FireCampService;
use crate::error::{Error, Result};
use crate::reconcile::Context;

/// How often a running operation is looked at besides pod events (for step timeouts).
const TICK: Duration = Duration::from_secs(5);

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
                }
            });
            (m.member.name.to_string(), view.unwrap_or_default())
        })
        .collect()
}

/// The steps of a newly taken-up operation, from the members' roles now.
fn plan_steps(op: &Operation, plan: &ServicePlan, views: &BTreeMap<String, MemberView>, ctx: &Context) -> Vec<firecamp_core::operation::OperationStep> {
    let members: Vec<MemberRole> = plan
        .members
        .iter()
        .map(|m| {
            let role = views.get(m.member.name.as_str()).map(|v| v.role).unwrap_or_default();
            MemberRole { member: m.member.name.to_string(), primary: matches!(role, Role::Primary | Role::Leader), shard: m.shard }
        })
        .collect();
    match op.kind {
        OperationKind::Stop => stop_start_steps(&members, StepAction::Stop),
        OperationKind::Start => stop_start_steps(&members, StepAction::Start),
        // On Kubernetes a member's files are written when its pod starts: every change restarts.
        _ => {
            let switchover = engine(plan.engine).supports_switchover() && ctx.config.role_source == RoleSource::Labels;
            restart_steps(&members, op.policy, switchover, StepAction::Restart)
        }
    }
}

/// Records the operations now, before acting on them.
async fn persist(ctx: &Context, svc: &FireCampService, ops: &[Operation]) -> Result<()> {
    crate::reconcile::record_status_field(ctx, svc, "operations", serde_json::json!(ops), "record the operations of").await
}

async fn act(ctx: &Context, ns: &str, e: &Effect) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
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
        Effect::Switchover { from, to } => {
            // Role source `labels`: the roles are the pods' labels, so the switchover is theirs.
            for (member, role) in [(to, Role::Primary), (from, Role::Replica)] {
                let patch = serde_json::json!({"metadata": {"labels": {labels::ROLE: role.as_str()}}});
                pods.patch(member, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(Error::kube("relabel", "Pod", member))?;
            }
            tracing::info!(%from, %to, "switchover");
        }
    }
    Ok(())
}

/// Takes up, advances and acts on the service's operation. Returns the operations to write
/// into the status and when to look again.
pub async fn drive(ctx: &Context, svc: &FireCampService, plan: &ServicePlan, pods: &BTreeMap<String, Pod>) -> Result<(Vec<Operation>, Option<Duration>)> {
    let ns = svc.namespace().unwrap_or_default();
    let mut ops: Vec<Operation> = svc.status.as_ref().map(|s| s.operations.clone()).unwrap_or_default();
    let taking_up = pending(svc);
    if taking_up.is_none() && ops.iter().all(|o| o.phase.is_terminal()) {
        return Ok((ops, None));
    }
    let mut views = member_views(plan, pods);
    if ctx.config.role_source == RoleSource::Engine {
        let roles = super::roles::probe(&ctx.client, plan, &ns, pods).await?;
        for (member, v) in views.iter_mut() {
            v.role = if v.ready { roles.get(member).copied().unwrap_or_default() } else { Role::Unknown };
        }
    }
    let mut changed = false;
    if let Some(mut op) = taking_up {
        op.steps = plan_steps(&op, plan, &views, ctx);
        op.phase = OperationPhase::Running;
        ops.push(op);
        changed = true;
    }
    let Some(op) = ops.iter_mut().find(|o| !o.phase.is_terminal()) else { return Ok((ops, None)) };
    if svc.annotations().get(super::CANCEL_ANNOTATION) == Some(&op.id) && !op.cancel_requested {
        op.cancel_requested = true;
        changed = true;
    }
    let sts: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    let name = names::statefulset(&plan.name);
    let current = sts.get_opt(&name).await.map_err(Error::kube("get", "StatefulSet", &name))?;
    let statefulset_current = current.as_ref().is_some_and(|s| {
        s.status.as_ref().and_then(|st| st.observed_generation).unwrap_or(0) >= s.metadata.generation.unwrap_or(0)
    });
    let update_revision = current.and_then(|s| s.status?.update_revision);
    let now = k8s_openapi::jiff::Timestamp::now();
    let now_text = now.to_string();
    let before = op.clone();
    let effects = advance(op, &Observed { members: &views, update_revision: update_revision.as_deref(), statefulset_current, now: now.as_second(), now_text: &now_text });
    changed |= *op != before;
    let running = !op.phase.is_terminal();
    if op.phase.is_terminal() && op.phase != before.phase {
        tracing::info!(operation = %op.id, phase = op.phase.as_str(), message = ?op.message, "operation finished");
    }
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
        persist(ctx, svc, &ops).await?;
    }
    for e in &effects {
        act(ctx, &ns, e).await?;
    }
    Ok((ops, running.then_some(TICK)))
}
