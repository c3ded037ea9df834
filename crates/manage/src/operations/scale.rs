//! A scale on Kubernetes: the StatefulSet's size follows the operation's steps, never the spec
//! alone. The spec holds the size asked for from the moment the scale is recorded; the size
//! applied (the StatefulSet's replicas, the PVCs, the status's members) moves one member at a
//! time as the steps allow it:
//!
//! - `add <svc>-i`: once the engine is ready for the member (`prepared`: PostgreSQL's slot on
//!   the primary; nothing for Redis), the size becomes i + 1: its PVCs (in zone i mod n) and
//!   its pod are created; the step ends when the pod is Ready with a role;
//! - `remove <svc>-i`: as soon as it runs (a ZooKeeper member: once the ensemble no longer has
//!   it, `left`) the size becomes i, so the StatefulSet deletes the member's pod; once the pod is
//!   gone the member's slot is dropped and its PVCs deleted (`prepared`), and the step ends.
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

/// The number of members the service has now, as the reconciler applies it. A Redis Cluster's
/// size moves by whole shards: its first `add` creates the new shard's members (each then joins
/// in its own step), its first `remove` (the shard's last member) removes them all.
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
    let per = shard_size(&svc.spec.0);
    let (up, down) = (|n: u32| n.div_ceil(per) * per, |n: u32| n - n % per);
    // A ZooKeeper member leaves the ensemble (`reconfig`) before its pod goes.
    let leaves = svc.spec.0.engine == EngineKind::Zookeeper;
    match (step.action, MemberName::from_string(step.member.as_str()).parts()) {
        (StepAction::Add, Some((_, i))) if step.prepared && step.phase == OperationPhase::Running => up(i + 1),
        (StepAction::Add, Some((_, i))) => up(i),
        (StepAction::Remove, Some((_, i))) if leaves && step.phase != OperationPhase::Succeeded && !step.left => i + 1,
        (StepAction::Remove, Some((_, i))) if step.phase == OperationPhase::Pending && (i + 1).is_multiple_of(per) => i + 1,
        (StepAction::Remove, Some((_, i))) => down(i),
        _ => now,
    }
}

/// The members a scale adds or removes at once: a Redis Cluster's shard, else one.
fn shard_size(spec: &ServiceSpec) -> u32 {
    if is_redis_cluster(spec) { firecamp_catalog::redis::members_per_shard(spec) } else { 1 }
}

fn is_redis_cluster(spec: &ServiceSpec) -> bool {
    spec.engine == EngineKind::Redis && spec.redis.as_ref().is_some_and(|r| r.mode == RedisMode::Cluster)
}

/// The spec as the reconciler applies it: the size the members have reached (a Redis
/// Cluster's shards with it).
pub fn applied_spec(svc: &FireCampService) -> ServiceSpec {
    let mut spec = svc.spec.0.clone();
    let per = shard_size(&spec);
    spec.replicas = applied_replicas(svc);
    if let Some(r) = spec.redis.as_mut().filter(|r| r.mode == RedisMode::Cluster) {
        r.shards = Some(spec.replicas / per);
    }
    spec
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
    let current = applied_spec(svc);
    let shards = |s: &ServiceSpec| s.redis.as_ref().and_then(|r| r.shards);
    let (applied, wanted) = (current.replicas, svc.spec.0.replicas);
    if (wanted == applied && shards(&svc.spec.0) == shards(&current)) || (scale_explains_size(svc) && svc.metadata.generation == status.observed_generation) {
        return None;
    }
    let (by_shards, from, to) = match (shards(&current), shards(&svc.spec.0)) {
        (Some(a), Some(w)) if is_redis_cluster(&current) => (true, a, w),
        _ => (false, applied, wanted),
    };
    let field = if by_shards { "spec.redis.shards" } else { "spec.replicas" };
    let refused = |why: String| {
        let mut errs = ValidationErrors::default();
        errs.push(field, format!("changed from {from} to {to}, which needs a scale: {why}; set it back to {from}"));
        Some(Err(errs))
    };
    // A cluster's asked spec was validated whole: its members are shards × members per shard.
    let req = if by_shards {
        OperationRequest { kind: Some(OperationKind::Scale), shards: Some(to), ..Default::default() }
    } else {
        OperationRequest { kind: Some(OperationKind::Scale), replicas: Some(wanted), ..Default::default() }
    };
    match change(&current, &req) {
        Ok(c) => Some(Ok(new_operation(&c, None))),
        Err(e) => refused(e.to_string()),
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
            if let Some(engines) = engines.filter(|_| is_redis_cluster(&plan.spec))
                && !super::cluster::forget(engines, plan).await
            {
                return Ok(false);
            }
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
        // A change the engine cannot make: refused with the reason and the size to go back to.
        let mut zk = FireCampService::new("zk", FireCampServiceSpec(firecamp_catalog::examples::spec(EngineKind::Zookeeper, 3)));
        zk.status = svc(3, 1, None).status;
        let why = edited_scale(&zk).unwrap().unwrap_err().to_string();
        assert!(why.contains("spec.replicas") && why.contains("standalone") && why.contains("set it back to 1"), "{why}");
        zk.spec.0.replicas = 5;
        zk.status = svc(5, 3, None).status;
        let op = edited_scale(&zk).unwrap().unwrap();
        assert_eq!(op.target.as_deref(), Some("replicas 3 → 5"));
    }

    /// Issue #16: a ZooKeeper member's pod stays until the ensemble no longer has it.
    #[test]
    fn a_zookeeper_member_leaves_the_ensemble_before_its_pod_goes() {
        use OperationPhase::{Pending, Running, Succeeded};
        let zk = |left: bool, phase: OperationPhase| {
            let mut s = svc(3, 5, None);
            s.spec.0 = firecamp_catalog::examples::spec(EngineKind::Zookeeper, 3);
            let mut st = step(StepAction::Remove, "zk-4", phase, false);
            st.left = left;
            s.status.as_mut().unwrap().operations = vec![scale(vec![st, step(StepAction::Remove, "zk-3", Pending, false)], Running)];
            s
        };
        assert_eq!(applied_replicas(&zk(false, Pending)), 5);
        assert_eq!(applied_replicas(&zk(false, Running)), 5, "still in the ensemble");
        assert_eq!(applied_replicas(&zk(true, Running)), 4, "left: its pod goes");
        assert_eq!(applied_replicas(&zk(true, Succeeded)), 4, "zk-3 is still in the ensemble");
    }

    fn cluster(shards: u32, members: usize, op: Option<Operation>) -> FireCampService {
        let mut s = FireCampService::new("rd", FireCampServiceSpec(firecamp_catalog::examples::redis_cluster(shards, shards * 2)));
        s.status = svc(0, members, op).status;
        s
    }

    #[test]
    fn a_redis_cluster_grows_and_shrinks_by_whole_shards() {
        use OperationPhase::{Pending, Running, Succeeded};
        let shards = |s: &FireCampService| applied_spec(s).redis.and_then(|r| r.shards);
        // Out 3 → 4 shards of 2: the first add creates the shard's two pods, the second joins.
        let out = |a: (OperationPhase, bool), b: (OperationPhase, bool)| {
            scale(
                vec![step(StepAction::Add, "rd-6", a.0, a.1), step(StepAction::Add, "rd-7", b.0, b.1), step(StepAction::Fill, "rd-6", Pending, false)],
                Running,
            )
        };
        assert_eq!(applied_replicas(&cluster(4, 6, Some(out((Running, false), (Pending, false))))), 6);
        let growing = cluster(4, 6, Some(out((Running, true), (Pending, false))));
        assert_eq!((applied_replicas(&growing), shards(&growing)), (8, Some(4)));
        assert_eq!(applied_replicas(&cluster(4, 8, Some(out((Succeeded, true), (Pending, false))))), 8);
        assert_eq!(applied_replicas(&cluster(4, 8, Some(out((Succeeded, true), (Running, true))))), 8);
        // In 4 → 3 after the drain: the shard's last member's step takes the whole shard away.
        let inn = |a: OperationPhase, b: OperationPhase| {
            scale(
                vec![step(StepAction::Drain, "rd-6", Succeeded, false), step(StepAction::Remove, "rd-7", a, false), step(StepAction::Remove, "rd-6", b, false)],
                Running,
            )
        };
        assert_eq!(applied_replicas(&cluster(3, 8, Some(inn(Pending, Pending)))), 8);
        let shrinking = cluster(3, 8, Some(inn(Running, Pending)));
        assert_eq!((applied_replicas(&shrinking), shards(&shrinking)), (6, Some(3)));
        assert_eq!(applied_replicas(&cluster(3, 6, Some(inn(Succeeded, Pending)))), 6);
        assert_eq!(applied_replicas(&cluster(3, 6, Some(inn(Succeeded, Running)))), 6);
    }

    #[test]
    fn an_edited_shard_count_becomes_a_shard_scale() {
        let mut edited = cluster(4, 6, None);
        edited.spec.0.replicas = 8;
        let op = edited_scale(&edited).unwrap().unwrap();
        assert_eq!(op.target.as_deref(), Some("shards 3 → 4"));
    }
}
