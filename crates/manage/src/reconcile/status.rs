//! The service's status, computed purely from its plan and the pods, nodes and init tasks the
//! controller observed.

use std::collections::BTreeMap;

use firecamp_api::{Endpoint, MemberStatus, Phase, Role};
use firecamp_catalog::ServicePlan;
use firecamp_kube::{labels, names};
use k8s_openapi::api::core::v1::{Node, Pod};

use crate::crd::{Condition, FireCampServiceStatus, InitTaskStatus, TaskPhase};

/// What the controller saw.
pub struct Observed<'a> {
    /// Pods of the service by name.
    pub pods: &'a BTreeMap<String, Pod>,
    /// Zone of each node by name.
    pub node_zones: &'a BTreeMap<String, String>,
    /// Nodes whose Ready condition is not True, with the node controller's words for why.
    pub unready_nodes: &'a BTreeMap<String, String>,
    pub init_tasks: &'a [InitTaskStatus],
    pub previous: Option<&'a FireCampServiceStatus>,
    pub generation: Option<i64>,
    /// RFC 3339 "now", for condition transition times.
    pub now: &'a str,
}

fn condition<'a>(p: &'a Pod, type_: &str) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    p.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

fn is_ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none() && condition(p, "Ready").is_some_and(|c| c.status == "True")
}

/// The scheduler's reason when it cannot place the pod.
fn unschedulable(p: &Pod) -> Option<String> {
    condition(p, "PodScheduled")
        .filter(|c| c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
        .map(|c| c.message.clone().unwrap_or_else(|| "unschedulable".into()))
}

/// Why a node is not Ready (a stopped kubelet reads "NodeStatusUnknown: Kubelet stopped posting
/// node status."), or None when it is.
pub fn node_unready(n: &Node) -> Option<String> {
    let c = n.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready");
    match c {
        Some(c) if c.status == "True" => None,
        Some(c) => Some(format!("{}: {}", c.reason.as_deref().unwrap_or("NotReady"), c.message.as_deref().unwrap_or("no message"))),
        None => Some("no Ready condition yet".into()),
    }
}

fn role_of(p: &Pod) -> Role {
    let label = p.metadata.labels.as_ref().and_then(|l| l.get(labels::ROLE)).map(String::as_str);
    serde_json::from_value(serde_json::Value::from(label.unwrap_or("unknown"))).unwrap_or_default()
}

pub fn member_statuses(plan: &ServicePlan, o: &Observed) -> Vec<MemberStatus> {
    plan.members
        .iter()
        .map(|m| {
            let pod = o.pods.get(&names::pod_of(&m.member.name));
            let node = pod.and_then(|p| p.spec.as_ref()?.node_name.clone());
            let mut message = pod.and_then(unschedulable).map(|r| format!("cannot be scheduled in {}: {r}", m.member.zone));
            if let Some(actual) = node.as_ref().and_then(|n| o.node_zones.get(n))
                && actual != &m.member.zone
            {
                message = Some(format!("runs in zone {actual}, not its zone {}", m.member.zone));
            }
            // A zone gone dark: the pod still exists, but nothing hears from its node.
            if let Some((n, why)) = node.as_ref().and_then(|n| Some((n, o.unready_nodes.get(n)?))) {
                let zone = o.node_zones.get(n).map(|z| format!(" in zone {z}")).unwrap_or_default();
                message = Some(format!("its node {n}{zone} is not ready: {why}"));
            }
            if pod.is_none() {
                message = Some("no pod yet".into());
            }
            let address = m.member.static_ip.map(|ip| ip.to_string()).or_else(|| pod.and_then(|p| p.status.as_ref()?.pod_ip.clone()));
            MemberStatus {
                name: m.member.name.to_string(),
                zone: m.member.zone.clone(),
                dns_name: m.member.dns_name.clone(),
                static_ip: m.member.static_ip.map(|ip| ip.to_string()),
                node,
                // The metrics port at the member's address (docs/monitoring.md).
                metrics: plan.metrics.zip(address.as_ref()).map(|(port, a)| firecamp_catalog::metrics::url(a, port)),
                address,
                // Without a pod (stopped, rescheduling) a member keeps the role it last had.
                role: pod.map(role_of).unwrap_or_else(|| {
                    o.previous.and_then(|p| p.members.iter().find(|x| x.name == m.member.name.as_str())).map(|x| x.role).unwrap_or_default()
                }),
                ready: pod.is_some_and(is_ready),
                revision: pod.and_then(|p| p.metadata.labels.as_ref()?.get("controller-revision-hash").cloned()),
                message,
            }
        })
        .collect()
}

/// Phase and message: ACTIVE when every member is ready and init tasks are done; DEGRADED when
/// some member cannot run (with the reason) or one was lost after the service was up.
pub fn phase(members: &[MemberStatus], tasks: &[InitTaskStatus], previous: Option<Phase>) -> (Phase, Option<String>) {
    if let Some(t) = tasks.iter().find(|t| t.phase == TaskPhase::Failed) {
        return (Phase::Failed, Some(format!("init task {} failed: {}", t.name, t.message.clone().unwrap_or_default())));
    }
    let not_ready: Vec<&MemberStatus> = members.iter().filter(|m| !m.ready).collect();
    if not_ready.is_empty() {
        return match tasks.iter().find(|t| t.phase != TaskPhase::Succeeded) {
            Some(t) => (Phase::Initializing, Some(format!("init task {} is {:?}", t.name, t.phase))),
            None => (Phase::Active, None),
        };
    }
    let stuck: Vec<String> =
        not_ready.iter().filter_map(|m| m.message.as_ref().filter(|s| s.starts_with("cannot")).map(|s| format!("{} {s}", m.name))).collect();
    let was_up = matches!(previous, Some(Phase::Active | Phase::Degraded));
    if !stuck.is_empty() {
        (Phase::Degraded, Some(stuck.join("; ")))
    } else if was_up {
        let names: Vec<String> =
            not_ready.iter().map(|m| m.message.as_ref().map(|why| format!("{} ({why})", m.name)).unwrap_or_else(|| m.name.clone())).collect();
        (Phase::Degraded, Some(format!("not ready: {}", names.join(", "))))
    } else {
        let ready = members.len() - not_ready.len();
        (previous.filter(|p| *p == Phase::Initializing).unwrap_or(Phase::Creating), Some(format!("{ready}/{} members ready", members.len())))
    }
}

/// Sets a condition, keeping its transition time when its status did not change.
fn set_condition(conds: &mut Vec<Condition>, previous: &[Condition], mut c: Condition) {
    if let Some(p) = previous.iter().find(|p| p.type_ == c.type_)
        && p.status == c.status
    {
        c.last_transition_time = p.last_transition_time.clone();
    }
    conds.push(c);
}

/// The endpoints of a single-writer service: the primary's (the one ready member whose engine
/// says it is the primary; Route53 holds it, and the client Service selects it by role) and the
/// replicas' (the ready replicas: Route53 holds them as one record set, and the
/// `<service>-replicas` Service selects them).
pub fn endpoints(plan: &ServicePlan, members: &[MemberStatus]) -> Vec<Endpoint> {
    let Some(names) = &plan.endpoints else {
        return Vec::new();
    };
    let addresses = |role| members.iter().filter(|m| m.role == role && m.ready).filter_map(|m| m.address.clone()).collect();
    let mut out = Endpoint::pair(names, addresses(Role::Primary), addresses(Role::Replica));
    let ns = &plan.cluster.namespace;
    out[0].kube_service = Some(format!("{}.{ns}.svc", names::client_service(&plan.name)));
    out[1].kube_service = Some(format!("{}.{ns}.svc", names::replicas_service(&plan.name)));
    out
}

pub fn status(plan: &ServicePlan, o: &Observed) -> FireCampServiceStatus {
    let members = member_statuses(plan, o);
    let prev_phase = o.previous.map(|p| p.phase);
    let (phase, message) = if plan.spec.stopped {
        // Stopped: no pods by design, every volume kept.
        let left = o.pods.len();
        (Phase::Stopped, (left > 0).then(|| format!("stopping: {left} pods left")))
    } else {
        phase(&members, o.init_tasks, prev_phase.filter(|p| *p != Phase::Stopped))
    };
    let previous = o.previous.map(|p| p.conditions.as_slice()).unwrap_or_default();
    let cond = |type_: &str, ok: bool, reason: &str, message: &str| Condition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: o.generation,
        last_transition_time: o.now.into(),
    };
    let msg = message.clone().unwrap_or_default();
    let mut conditions = Vec::new();
    set_condition(&mut conditions, previous, cond("Ready", phase == Phase::Active, phase.as_str(), &msg));
    set_condition(&mut conditions, previous, cond("Degraded", phase == Phase::Degraded, phase.as_str(), &msg));
    let initialized = o.init_tasks.iter().all(|t| t.phase == TaskPhase::Succeeded);
    set_condition(&mut conditions, previous, cond("Initialized", initialized, if initialized { "Done" } else { "Pending" }, ""));
    FireCampServiceStatus {
        phase,
        message,
        observed_generation: o.generation,
        ready_members: members.iter().filter(|m| m.ready).count() as i32,
        endpoints: endpoints(plan, &members),
        members,
        conditions,
        init_tasks: o.init_tasks.to_vec(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, ready: bool, message: Option<&str>) -> MemberStatus {
        MemberStatus { name: name.into(), ready, message: message.map(String::from), ..Default::default() }
    }

    #[test]
    fn phases() {
        let up = [member("a", true, None), member("b", true, None)];
        assert_eq!(phase(&up, &[], None).0, Phase::Active);
        let starting = [member("a", true, None), member("b", false, Some("no pod yet"))];
        assert_eq!(phase(&starting, &[], None), (Phase::Creating, Some("1/2 members ready".into())));
        assert_eq!(phase(&starting, &[], Some(Phase::Active)), (Phase::Degraded, Some("not ready: b (no pod yet)".into())));
        let lost = [member("a", true, None), member("b", false, None)];
        assert_eq!(phase(&lost, &[], Some(Phase::Degraded)), (Phase::Degraded, Some("not ready: b".into())));
        let stuck = [member("a", true, None), member("b", false, Some("cannot be scheduled in z: 0/6 nodes"))];
        assert_eq!(phase(&stuck, &[], None), (Phase::Degraded, Some("b cannot be scheduled in z: 0/6 nodes".into())));
        let task = |p| InitTaskStatus { name: "init".into(), phase: p, attempts: 1, job: None, message: Some("boom".into()) };
        assert_eq!(phase(&up, &[task(TaskPhase::Running)], None).0, Phase::Initializing);
        assert_eq!(phase(&up, &[task(TaskPhase::Failed)], None), (Phase::Failed, Some("init task init failed: boom".into())));
    }

    #[test]
    fn a_member_on_a_dark_node_says_so() {
        let node: Node = serde_json::from_value(serde_json::json!({"metadata": {"name": "n1"}, "status": {"conditions": [
            {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown", "message": "Kubelet stopped posting node status."}]}}))
        .unwrap();
        let why = node_unready(&node).unwrap();
        assert_eq!(why, "NodeStatusUnknown: Kubelet stopped posting node status.");
        let ready: Node =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "n2"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}})).unwrap();
        assert_eq!(node_unready(&ready), None);

        let spec = firecamp_catalog::examples::spec(firecamp_core::EngineKind::Postgresql, 2);
        let cluster = firecamp_core::ClusterConfig::new("c");
        let plan = firecamp_catalog::plan("pg", &spec, &cluster, &firecamp_catalog::KubernetesLayout::default(), &BTreeMap::new()).unwrap();
        let pod = |name: &str, node: &str| -> Pod {
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "spec": {"nodeName": node, "containers": []},
                "status": {"conditions": [{"type": "Ready", "status": "False"}]}}))
            .unwrap()
        };
        let pods: BTreeMap<String, Pod> = [("pg-0".to_string(), pod("pg-0", "n2")), ("pg-1".to_string(), pod("pg-1", "n1"))].into();
        let zones: BTreeMap<String, String> = [("n1".to_string(), "us-east-1b".to_string()), ("n2".to_string(), "us-east-1a".to_string())].into();
        let unready: BTreeMap<String, String> = [("n1".to_string(), why)].into();
        let o = Observed {
            pods: &pods,
            node_zones: &zones,
            unready_nodes: &unready,
            init_tasks: &[],
            previous: None,
            generation: None,
            now: "2026-01-01T00:00:00Z",
        };
        let members = member_statuses(&plan, &o);
        assert_eq!(members[0].message, None);
        assert_eq!(members[1].message.as_deref(), Some("its node n1 in zone us-east-1b is not ready: NodeStatusUnknown: Kubelet stopped posting node status."));
    }
}
