//! A scale on Kubernetes: the StatefulSet's size follows the operation's steps, never the spec
//! alone. The spec holds the size asked for from the moment the scale is recorded; the size
//! applied (the StatefulSet's replicas, the PVCs, the status's members) moves one member at a
//! time as the steps allow it:
//!
//! - `add <svc>-i`: once the engine is ready for the member (`prepared`: PostgreSQL's slot on
//!   the primary; nothing for Redis), the size becomes i + 1: its PVCs (in zone i mod n) and
//!   its pod are created; the step ends when the pod is Ready with a role;
//! - `remove <svc>-i`: as soon as it runs the size becomes i, so the StatefulSet deletes the
//!   member's pod; once the pod is gone the member's slot is dropped and its PVCs deleted
//!   (`prepared`), and the step ends.
//!
//! Without a scale under way the size applied is the number of members the status lists; a
//! scale that failed or was cancelled leaves the service at the size it reached.

use firecamp_catalog::operation::change;
use firecamp_core::operation::{Operation, OperationKind, OperationPhase, OperationRequest, StepAction};
use firecamp_core::spec::RedisMode;
use firecamp_core::{EngineKind, MemberName, ServiceSpec, ValidationErrors};

use firecamp_catalog::ServicePlan;
use firecamp_kube::{labels, names, storage};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::DeleteParams;
use kube::{Api, ResourceExt};

use super::decide::Effect;
use super::request::{new_operation, unfinished};
use super::roles::Engines;
use crate::crd::FireCampService;
use crate::error::{Error, Result};
use crate::reconcile::Context;

/// The number of members the service has now, as the reconciler applies it.
pub fn applied_replicas(svc: &FireCampService) -> u32 {
    let spec = svc.spec.0.replicas;
    let now = svc.status.as_ref().map(|s| s.members.len() as u32).unwrap_or(0);
    if now == 0 {
        return spec;
    }
    let Some(op) = unfinished(svc).filter(|o| o.kind == OperationKind::Scale) else {
        return now;
    };
    let Some(step) = op.current_step().map(|i| &op.steps[i]) else {
        return now;
    };
    match (step.action, MemberName::from_string(step.member.as_str()).parts()) {
        (StepAction::Add, Some((_, i))) => i + u32::from(step.prepared && step.phase == OperationPhase::Running),
        (StepAction::Remove, Some((_, i))) => i + u32::from(step.phase == OperationPhase::Pending),
        _ => now,
    }
}

/// Whether the service's size may differ from its spec: a scale under way, or the last scale
/// stopped (failed or cancelled) where it was.
pub fn scale_explains_size(svc: &FireCampService) -> bool {
    if unfinished(svc).is_some_and(|o| o.kind == OperationKind::Scale) {
        return true;
    }
    let ops = svc.status.as_ref().map(|s| s.operations.as_slice()).unwrap_or_default();
    ops.iter().filter(|o| o.kind == OperationKind::Scale).max_by(|a, b| a.id.cmp(&b.id)).is_some_and(|o| o.phase != OperationPhase::Succeeded)
}

/// A `spec.replicas` edited outside a scale (kubectl edit, an applied manifest): the scale
/// operation it becomes, or why it cannot be one. `None` when the size is the one applied, an
/// operation runs (a scale moves the size itself; after another kind, the edit is taken up
/// then), or the last scale stopped short of its spec and the spec was not edited since.
pub fn edited_scale(svc: &FireCampService) -> Option<Result<Operation, ValidationErrors>> {
    let status = svc.status.as_ref().filter(|s| !s.members.is_empty())?;
    if unfinished(svc).is_some() {
        return None;
    }
    let (applied, wanted) = (applied_replicas(svc), svc.spec.0.replicas);
    if wanted == applied || (scale_explains_size(svc) && svc.metadata.generation == status.observed_generation) {
        return None;
    }
    let mut current = svc.spec.0.clone();
    current.replicas = applied;
    let refused = |why: String| {
        let mut errs = ValidationErrors::default();
        errs.push("spec.replicas", format!("changed from {applied} to {wanted}, which needs a scale: {why}; set it back to {applied}"));
        Some(Err(errs))
    };
    if let Some(why) = not_on_kubernetes(&current) {
        return refused(why.to_string());
    }
    let req = OperationRequest { kind: Some(OperationKind::Scale), replicas: Some(wanted), ..Default::default() };
    match change(&current, &req) {
        Ok(c) => Some(Ok(new_operation(&c, None))),
        Err(e) => refused(e.to_string()),
    }
}

/// Why a service cannot be scaled on Kubernetes yet, if it cannot.
pub fn not_on_kubernetes(spec: &ServiceSpec) -> Option<&'static str> {
    match spec.engine {
        EngineKind::Postgresql => None,
        EngineKind::Redis if spec.redis.as_ref().is_none_or(|r| r.mode == RedisMode::Replication) => None,
        EngineKind::Redis => Some("a Redis Cluster scales on the local runtime only so far: on Kubernetes its new shards would need their slots moved"),
        EngineKind::Zookeeper => Some(
            "a ZooKeeper ensemble scales on the local runtime only so far: its pods keep a static ensemble, which changes only with every member restarted",
        ),
    }
}

/// Acts on `Prepare` or `Forget`: true once done (the step is then `prepared`), false to try
/// again on the next pass (an engine that does not answer yet, a sender still streaming).
pub async fn act(ctx: &Context, svc: &FireCampService, plan: &ServicePlan, engines: Option<&Engines>, primary: Option<&str>, e: &Effect) -> Result<bool> {
    let pg = engines.filter(|e| e.engine() == EngineKind::Postgresql);
    let primary = primary.or_else(|| plan.members.first().map(|m| m.member.name.as_str())).unwrap_or_default();
    match e {
        Effect::Prepare { member } => {
            let Some(engines) = pg else { return Ok(true) };
            match engines.pg(primary).await {
                Ok(c) => super::postgresql::ensure_slot(&c, primary, member).await.map(|()| true),
                Err(why) => {
                    tracing::warn!(%member, %primary, "the primary does not answer yet for the new member's slot: {why}");
                    Ok(false)
                }
            }
        }
        Effect::Forget { member } => {
            if let Some(engines) = pg {
                match engines.pg(primary).await {
                    Ok(c) => {
                        if !super::postgresql::drop_slot(&c, primary, member).await? {
                            return Ok(false);
                        }
                    }
                    Err(why) => {
                        tracing::warn!(%member, %primary, "the primary does not answer yet to drop the removed member's slot: {why}");
                        return Ok(false);
                    }
                }
            }
            delete_claims(ctx, svc, plan, member).await
        }
        _ => Ok(true),
    }
}

/// Deletes the removed member's PVCs that FireCamp made (its labels); true once none is left.
async fn delete_claims(ctx: &Context, svc: &FireCampService, plan: &ServicePlan, member: &str) -> Result<bool> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &svc.namespace().unwrap_or_default());
    let name = MemberName::from_string(member);
    let mut gone = true;
    for (vol, _) in storage::volumes(plan) {
        let claim = names::pvc(vol, &name);
        let Some(pvc) = api.get_opt(&claim).await.map_err(Error::kube("get", "PersistentVolumeClaim", &claim))? else { continue };
        let ours = pvc.labels().get(labels::MANAGED_BY).is_some_and(|v| v == "firecamp") && pvc.labels().get(labels::SERVICE) == Some(&plan.name);
        if !ours {
            tracing::warn!(%claim, "not FireCamp's: left in place");
            continue;
        }
        gone = false;
        if pvc.metadata.deletion_timestamp.is_none() {
            api.delete(&claim, &DeleteParams::default()).await.map_err(Error::kube("delete", "PersistentVolumeClaim", &claim))?;
            tracing::info!(%claim, "volume of a removed member deleted");
        }
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{FireCampServiceSpec, FireCampServiceStatus};
    use firecamp_api::MemberStatus;
    use firecamp_core::operation::{Operation, OperationStep, UpdatePolicy};

    fn svc(asked: u32, members: usize, op: Option<Operation>) -> FireCampService {
        let mut s = FireCampService::new("pg", FireCampServiceSpec(firecamp_catalog::examples::spec(EngineKind::Postgresql, asked)));
        s.status = Some(FireCampServiceStatus {
            members: (0..members).map(|i| MemberStatus { name: format!("pg-{i}"), ..Default::default() }).collect(),
            operations: op.into_iter().collect(),
            ..Default::default()
        });
        s
    }

    fn scale(steps: Vec<OperationStep>, phase: OperationPhase) -> Operation {
        Operation {
            id: "op-1".into(),
            kind: OperationKind::Scale,
            policy: UpdatePolicy::PrimaryLast,
            target: None,
            ca: None,
            phase,
            steps,
            step_timeout_seconds: 60,
            message: None,
            created: "2026-01-01T00:00:00Z".into(),
            finished: None,
            cancel_requested: false,
        }
    }

    fn step(action: StepAction, member: &str, phase: OperationPhase, prepared: bool) -> OperationStep {
        OperationStep { phase, prepared, ..OperationStep::new(action, member) }
    }

    #[test]
    fn the_size_applied_follows_the_steps_not_the_spec() {
        use OperationPhase::{Pending, Running, Succeeded};
        assert_eq!(applied_replicas(&svc(3, 0, None)), 3, "a new service: its spec");
        assert_eq!(applied_replicas(&svc(3, 3, None)), 3);
        // Out 3 → 5: pg-3 exists once the engine is ready for it, not before.
        let out = |s3: (OperationPhase, bool), s4: (OperationPhase, bool)| {
            scale(vec![step(StepAction::Add, "pg-3", s3.0, s3.1), step(StepAction::Add, "pg-4", s4.0, s4.1)], Running)
        };
        assert_eq!(applied_replicas(&svc(5, 3, Some(out((Pending, false), (Pending, false))))), 3);
        assert_eq!(applied_replicas(&svc(5, 3, Some(out((Running, false), (Pending, false))))), 3, "no slot yet");
        assert_eq!(applied_replicas(&svc(5, 3, Some(out((Running, true), (Pending, false))))), 4);
        assert_eq!(applied_replicas(&svc(5, 4, Some(out((Succeeded, true), (Running, true))))), 5);
        // In 5 → 3: a member leaves as its step starts.
        let inn = |s4: OperationPhase, s3: OperationPhase| {
            scale(vec![step(StepAction::Remove, "pg-4", s4, false), step(StepAction::Remove, "pg-3", s3, false)], Running)
        };
        assert_eq!(applied_replicas(&svc(3, 5, Some(inn(Pending, Pending)))), 5);
        assert_eq!(applied_replicas(&svc(3, 5, Some(inn(Running, Pending)))), 4);
        assert_eq!(applied_replicas(&svc(3, 4, Some(inn(Succeeded, Running)))), 3);
        // A scale that failed stops where it was; nothing else may leave the spec apart.
        let failed =
            scale(vec![step(StepAction::Add, "pg-3", Succeeded, true), step(StepAction::Add, "pg-4", OperationPhase::Failed, true)], OperationPhase::Failed);
        assert_eq!(applied_replicas(&svc(5, 4, Some(failed.clone()))), 4);
        assert!(scale_explains_size(&svc(5, 4, Some(failed))));
        assert!(!scale_explains_size(&svc(5, 4, None)), "a spec.replicas edited outside a scale");
    }

    #[test]
    fn an_edited_size_becomes_a_scale_unless_the_engine_cannot_or_a_stopped_scale_explains_it() {
        let edited = |mut s: FireCampService, generation: i64, observed: i64| {
            s.metadata.generation = Some(generation);
            s.status.as_mut().unwrap().observed_generation = Some(observed);
            s
        };
        assert!(edited_scale(&edited(svc(3, 3, None), 2, 1)).is_none(), "the size applied");
        assert!(edited_scale(&svc(5, 0, None)).is_none(), "a new service is created at its spec");
        let op = edited_scale(&edited(svc(5, 3, None), 2, 1)).unwrap().unwrap();
        assert_eq!((op.kind, op.phase, op.target.as_deref()), (OperationKind::Scale, OperationPhase::Pending, Some("replicas 3 → 5")));
        // Seen again after a refusal or another operation (the generation observed): still asked.
        assert!(edited_scale(&edited(svc(2, 3, None), 2, 2)).unwrap().is_ok());
        let running = scale(vec![step(StepAction::Add, "pg-3", OperationPhase::Running, false)], OperationPhase::Running);
        assert!(edited_scale(&edited(svc(7, 3, Some(running)), 3, 2)).is_none(), "one operation at a time");
        // A scale that failed keeps its size until the spec is edited again.
        let failed = scale(vec![step(StepAction::Add, "pg-3", OperationPhase::Failed, true)], OperationPhase::Failed);
        assert!(edited_scale(&edited(svc(5, 3, Some(failed.clone())), 2, 2)).is_none());
        assert!(edited_scale(&edited(svc(4, 3, Some(failed)), 3, 2)).unwrap().is_ok());
        // ZooKeeper cannot yet: refused with the reason and the size to go back to.
        let mut zk = FireCampService::new("zk", FireCampServiceSpec(firecamp_catalog::examples::spec(EngineKind::Zookeeper, 5)));
        zk.status = svc(5, 3, None).status;
        let why = edited_scale(&zk).unwrap().unwrap_err().to_string();
        assert!(why.contains("spec.replicas") && why.contains("static ensemble") && why.contains("set it back to 3"), "{why}");
    }

    #[test]
    fn zookeeper_and_redis_cluster_do_not_scale_on_kubernetes_yet() {
        assert_eq!(not_on_kubernetes(&firecamp_catalog::examples::spec(EngineKind::Postgresql, 3)), None);
        assert_eq!(not_on_kubernetes(&firecamp_catalog::examples::spec(EngineKind::Redis, 3)), None);
        assert!(not_on_kubernetes(&firecamp_catalog::examples::spec(EngineKind::Zookeeper, 3)).unwrap().contains("static ensemble"));
        assert!(not_on_kubernetes(&firecamp_catalog::examples::redis_cluster(3, 6)).unwrap().contains("slots"));
    }
}
