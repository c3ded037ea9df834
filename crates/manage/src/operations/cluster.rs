//! A Redis Cluster scale on Kubernetes (`--shards`): the engine's part of each step, around the
//! StatefulSet's size that `scale::applied_replicas` moves by whole shards.
//!
//! - `add <svc>-i`: the shard's pods exist (its first `add` created them all); once the pod is
//!   Ready the cluster meets it (`CLUSTER MEET` through a member that stays) and, unless it is
//!   its shard's first, it replicates that one (`CLUSTER REPLICATE`). It holds no slot yet.
//! - `fill` / `drain`: the slots move in a Job on the Redis image (`move-slots.sh`:
//!   `redis-cli --cluster rebalance`, key by key with MIGRATE, clients following ASK/MOVED
//!   redirects), one Job per step, found again after a restart of the manage service; a
//!   failed Job fails the step. A drained primary becomes a replica of a shard that stays.
//! - `remove <svc>-i`: once the shard's pods are gone, every member left forgets the nodes no
//!   member runs any more (`CLUSTER FORGET`), then the member's PVCs go.

use std::collections::{BTreeMap, BTreeSet};

use firecamp_catalog::ServicePlan;
use firecamp_catalog::redis::{PORT, cluster_address, members_per_shard, move_slots_task};
use firecamp_core::MemberName;
use firecamp_core::operation::{Operation, StepAction};
use k8s_openapi::api::batch::v1::Job;
use kube::{Api, Resource, ResourceExt};

use super::decide::MemberView;
use super::roles::Engines;
use crate::crd::FireCampService;
use crate::error::Result;
use crate::reconcile::Context;
use crate::reconcile::init::{JobOutcome, job_outcome};

/// `<service>-slots`: one at a time per service, like its operations.
pub fn job_name(service: &str) -> String {
    format!("{service}-slots")
}

/// A member's index (`<service>-<i>`).
pub(super) fn index(member: &str) -> u32 {
    MemberName::from_string(member).parts().map(|(_, i)| i).unwrap_or(0)
}

/// The members that stay below `first`, those with a Ready pod first: the one to go through.
fn via(plan: &ServicePlan, views: &BTreeMap<String, MemberView>, first: u32) -> Option<String> {
    let staying: Vec<String> = plan.members.iter().map(|m| m.member.name.to_string()).filter(|m| index(m) < first).collect();
    staying.iter().find(|m| views.get(*m).is_some_and(|v| v.ready)).or(staying.first()).cloned()
}

/// Fills the current step's member's `cluster` view: joined, or the slots' Job done.
pub async fn observe(
    ctx: &Context,
    svc: &FireCampService,
    plan: &ServicePlan,
    engines: Option<&Engines>,
    op: &Operation,
    views: &mut BTreeMap<String, MemberView>,
) -> Result<()> {
    let Some(step) = op.current_step().map(|i| &op.steps[i]) else { return Ok(()) };
    let state = match step.action {
        StepAction::Add => match engines {
            Some(e) if views.get(&step.member).is_some_and(|v| v.ready) => join(e, plan, views, &step.member, false).await,
            _ => return Ok(()),
        },
        StepAction::Fill | StepAction::Drain => {
            let key = format!("{}/{}", op.id, op.current_step().unwrap_or_default());
            match super::step_job::of_step(&jobs(ctx, svc), &job_name(&plan.name), &key).await? {
                None => Err(format!("the Job {} that moves the slots is not started yet", job_name(&plan.name))),
                Some(job) => match job_outcome(&job) {
                    JobOutcome::Complete => Ok(()),
                    JobOutcome::Failed(why) => Err(format!("the Job {} failed: {why}", job_name(&plan.name))),
                    JobOutcome::Running => Err(format!("moving the slots (Job {})", job_name(&plan.name))),
                },
            }
        }
        _ => return Ok(()),
    };
    if let Some(v) = views.get_mut(&step.member) {
        v.cluster = Some(state);
    }
    Ok(())
}

/// Whether `member` has joined the cluster: met by `via` and knowing every node `via` knows,
/// and a replica of its shard's first member unless it is that one. With `act`, makes the next
/// move towards it (a MEET, a REPLICATE); both are harmless to repeat.
pub async fn join(engines: &Engines, plan: &ServicePlan, views: &BTreeMap<String, MemberView>, member: &str, act: bool) -> std::result::Result<(), String> {
    let (i, per) = (index(member), members_per_shard(&plan.spec));
    let first = i - i % per;
    let via = via(plan, views, first).ok_or("no member outside the new shard to join through")?;
    let ip = engines.address(member).ok_or_else(|| format!("{member} has no address yet"))?.to_string();
    let theirs = engines.cluster_nodes(&via).await?;
    if !theirs.iter().any(|n| n.ip == ip && !n.handshake) {
        if act {
            // Refused while a handshake with it is under way: asked again on the next pass.
            let _ = engines.redis(&via, &["CLUSTER", "MEET", &ip, &PORT.to_string()]).await;
        }
        return Err(format!("{via} has not met {member} yet"));
    }
    let mine = engines.cluster_nodes(member).await?;
    let known: BTreeSet<&str> = mine.iter().filter(|n| !n.handshake).map(|n| n.ip.as_str()).collect();
    if let Some(n) = theirs.iter().find(|n| !n.handshake && !known.contains(n.ip.as_str())) {
        return Err(format!("{member} does not know {} yet", n.ip));
    }
    if i == first || mine.iter().any(|n| n.myself && !n.primary) {
        return Ok(());
    }
    let shard_first = format!("{}-{first}", plan.name);
    if act {
        let primary_ip = engines.address(&shard_first).ok_or_else(|| format!("{shard_first} has no address yet"))?;
        let id = &theirs.iter().find(|n| n.ip == primary_ip).ok_or_else(|| format!("{shard_first} is not in the cluster yet"))?.id;
        engines.redis(member, &["CLUSTER", "REPLICATE", id]).await.map_err(|e| format!("CLUSTER REPLICATE on {member}: {e}"))?;
    }
    Err(format!("{member} does not replicate {shard_first} yet"))
}

fn jobs(ctx: &Context, svc: &FireCampService) -> Api<Job> {
    Api::namespaced(ctx.client.clone(), &svc.namespace().unwrap_or_default())
}

/// Starts the step's Job unless it runs; a Job of an earlier step is deleted first (when
/// FireCamp made it). `Ok(Err(why))`: the Job failed, and with it the step.
pub async fn move_slots(
    ctx: &Context,
    svc: &FireCampService,
    plan: &ServicePlan,
    views: &BTreeMap<String, MemberView>,
    member: &str,
    drain: bool,
    key: &str,
) -> Result<std::result::Result<(), String>> {
    let api = jobs(ctx, svc);
    if let Some(answer) = super::step_job::existing(&api, &job_name(&plan.name), &plan.name, key).await? {
        return Ok(answer);
    }
    let from = index(member);
    let Some(via) = via(plan, views, from).and_then(|v| plan.member(&v)).map(|m| cluster_address(&m.member)) else {
        return Ok(Err("no member stays to move the slots through".into()));
    };
    let moving: Vec<String> = plan.members.iter().filter(|m| index(m.member.name.as_str()) >= from).map(|m| cluster_address(&m.member)).collect();
    let mut job = crate::reconcile::init::job(plan, &move_slots_task(drain, &via, &moving));
    job.metadata.name = Some(job_name(&plan.name));
    super::step_job::create(&api, job, key, svc.controller_owner_ref(&())).await?;
    Ok(Ok(()))
}

/// After a removal: every member of `plan` (those left) forgets the nodes none of them is; true
/// once done, false to try again (a member that does not answer).
pub async fn forget(engines: &Engines, plan: &ServicePlan) -> bool {
    let mut ids = BTreeSet::new();
    for m in &plan.members {
        match engines.cluster_myid(m.member.name.as_str()).await {
            Ok(id) => ids.insert(id),
            Err(why) => {
                tracing::warn!(member = %m.member.name, "not asked to forget the removed nodes yet: {why}");
                return false;
            }
        };
    }
    for m in &plan.members {
        let m = m.member.name.as_str();
        let nodes = match engines.cluster_nodes(m).await {
            Ok(n) => n,
            Err(why) => {
                tracing::warn!(member = %m, "{why}");
                return false;
            }
        };
        for n in nodes.iter().filter(|n| !n.myself && !ids.contains(&n.id)) {
            if let Err(e) = engines.redis(m, &["CLUSTER", "FORGET", &n.id]).await
                && !e.contains("Unknown node")
            {
                tracing::warn!(member = %m, node = %n.id, ip = %n.ip, "CLUSTER FORGET: {e}");
                return false;
            }
        }
    }
    true
}
