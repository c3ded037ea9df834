//! A ZooKeeper scale on Kubernetes: the ensemble's part of each step, around the StatefulSet's
//! size that `scale::applied_replicas` moves (ZooKeeper's dynamic reconfiguration, one server at
//! a time, so a majority serves at every step).
//!
//! - `add <svc>-i`: the pod starts with the ensemble plus itself in its files, joins the leader
//!   as a non-voting learner and syncs; once it is Ready the manage service adds it with
//!   `reconfig` through a member that was there before (nothing when the ensemble has it, as
//!   in a resumed step).
//! - `remove <svc>-i`: `reconfig` drops it through another member while its pod still runs (the
//!   leader too: the ensemble elects another); once the committed configuration lacks it the
//!   step is `left`, and its pod and PVCs go.
//!
//! The sessions log in as ZooKeeper's superuser, the only identity `/zookeeper/config` admits
//! for writing, over TLS verified against the service's CA.

use std::collections::{BTreeMap, BTreeSet};

use firecamp_catalog::{ServicePlan, zookeeper};
use firecamp_core::operation::{Operation, StepAction};

use super::cluster::index;
use super::decide::MemberView;
use super::roles::Engines;

/// The member to go through: the lowest Ready one below `member` (there before it), else the
/// lowest Ready one other than it.
fn via(plan: &ServicePlan, views: &BTreeMap<String, MemberView>, member: &str) -> Option<String> {
    let ready: Vec<String> = plan.members.iter().map(|m| m.member.name.to_string()).filter(|m| m != member && views.get(m).is_some_and(|v| v.ready)).collect();
    ready.iter().find(|m| index(m) < index(member)).or(ready.first()).cloned()
}

/// The plan's members as the ensemble's servers, with or without `member`.
fn servers(plan: &ServicePlan, member: &str, with: bool) -> (BTreeSet<u32>, Vec<String>) {
    let kept: Vec<_> = plan.members.iter().map(|m| &m.member).filter(|m| with || m.name.as_str() != member).collect();
    let ids = kept.iter().map(|m| zookeeper::server_id(m)).collect();
    let lines = kept.iter().map(|m| zookeeper::server_entry(m)).map(|(k, v)| format!("{k}={v}")).collect();
    (ids, lines)
}

/// Makes the committed ensemble the plan's members with (`with`) or without `member`: true once
/// it is; with `act`, a `reconfig` when it is not yet (harmless to repeat).
async fn converge(engines: &Engines, plan: &ServicePlan, views: &BTreeMap<String, MemberView>, member: &str, with: bool, act: bool) -> Result<(), String> {
    let via = via(plan, views, member).ok_or_else(|| format!("no Ready member besides {member} to reach the ensemble through"))?;
    let (ids, lines) = servers(plan, member, with);
    let (t, c) = engines.zookeeper(&via).await?;
    let now = firecamp_probe::zookeeper::ensemble::servers(&t, &c).await.map_err(|e| e.to_string())?;
    if now == ids {
        return Ok(());
    }
    if act {
        firecamp_probe::zookeeper::ensemble::set_ensemble(&t, &c, &lines).await.map_err(|e| e.to_string())?;
        tracing::info!(%member, %via, servers = %lines.join(" "), "ensemble reconfigured");
        let now = firecamp_probe::zookeeper::ensemble::servers(&t, &c).await.map_err(|e| e.to_string())?;
        if now == ids {
            return Ok(());
        }
    }
    let have: Vec<String> = now.iter().map(u32::to_string).collect();
    Err(format!("the ensemble has servers {} ({} {member} yet)", have.join(","), if with { "without" } else { "still with" }))
}

/// Fills the current `add` step's member's view: in the ensemble, or why not yet.
pub async fn observe(plan: &ServicePlan, engines: &Engines, op: &Operation, views: &mut BTreeMap<String, MemberView>) {
    let Some(step) = op.current_step().map(|i| &op.steps[i]).filter(|s| s.action == StepAction::Add) else { return };
    if !views.get(&step.member).is_some_and(|v| v.ready) {
        return;
    }
    let state = converge(engines, plan, views, &step.member, true, false).await;
    if let Some(v) = views.get_mut(&step.member) {
        v.cluster = Some(state);
    }
}

/// `member`, Ready, joins the ensemble.
pub async fn join(engines: &Engines, plan: &ServicePlan, views: &BTreeMap<String, MemberView>, member: &str) -> Result<(), String> {
    converge(engines, plan, views, member, true, true).await
}

/// `member` leaves the ensemble: true once the committed configuration lacks it.
pub async fn leave(engines: &Engines, plan: &ServicePlan, views: &BTreeMap<String, MemberView>, member: &str) -> bool {
    match converge(engines, plan, views, member, false, true).await {
        Ok(()) => true,
        Err(why) => {
            tracing::info!(%member, "leaving the ensemble: {why}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ensemble_is_reached_through_a_ready_member_that_was_there_before() {
        let spec = firecamp_catalog::examples::spec(firecamp_core::EngineKind::Zookeeper, 5);
        let cluster = firecamp_core::ClusterConfig::new("prod");
        let plan = firecamp_catalog::plan("zk", &spec, &cluster, &firecamp_catalog::KubernetesLayout::default(), &BTreeMap::new()).expect("valid");
        let v = |ready: bool| MemberView { ready, ..Default::default() };
        let mut views: BTreeMap<String, MemberView> = (0..5).map(|i| (format!("zk-{i}"), v(true))).collect();
        assert_eq!(via(&plan, &views, "zk-4").as_deref(), Some("zk-0"));
        views.insert("zk-0".into(), v(false));
        assert_eq!(via(&plan, &views, "zk-4").as_deref(), Some("zk-1"));
        assert_eq!(via(&plan, &views, "zk-1").as_deref(), Some("zk-2"), "zk-0 not Ready: another member");
        let (ids, lines) = servers(&plan, "zk-4", false);
        assert_eq!(ids, BTreeSet::from([1, 2, 3, 4]));
        assert_eq!(lines[0], "server.1=zk-0.default.prod-firecamp.com:2888:3888:participant");
        assert_eq!(servers(&plan, "zk-4", true).0.len(), 5);
    }
}
