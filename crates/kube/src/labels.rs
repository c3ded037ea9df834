//! Labels FireCamp puts on its objects, and the selectors built from them.

use std::collections::BTreeMap;

use firecamp_catalog::{MemberPlan, ServicePlan};

pub const SERVICE: &str = "firecamp.dev/service";
pub const CLUSTER: &str = "firecamp.dev/cluster";
pub const MEMBER: &str = "firecamp.dev/member";
pub const ZONE: &str = "firecamp.dev/zone";
/// On cluster-scoped objects: the namespace of the service they belong to.
pub const NAMESPACE: &str = "firecamp.dev/namespace";
/// Set on pods by the manage service from the engine's own view; selects the client Service's
/// endpoints for single-writer engines.
pub const ROLE: &str = "firecamp.dev/role";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label on nodes that may run the cluster's members.
pub const WORKER: &str = "firecamp-worker";
pub const ZONE_TOPOLOGY: &str = "topology.kubernetes.io/zone";
pub const HOSTNAME_TOPOLOGY: &str = "kubernetes.io/hostname";

pub type Labels = BTreeMap<String, String>;

/// What selects the service's pods. Never changes over the service's life.
pub fn selector(plan: &ServicePlan) -> Labels {
    Labels::from([(SERVICE.into(), plan.name.clone())])
}

/// Labels of every namespaced object of the service: the user's, then FireCamp's.
pub fn common(plan: &ServicePlan) -> Labels {
    let mut l: Labels = plan.spec.labels.clone();
    l.extend(own(plan));
    l
}

/// FireCamp's own labels, without the user's: for cluster-scoped objects.
pub fn own(plan: &ServicePlan) -> Labels {
    let mut l = Labels::new();
    l.insert("app.kubernetes.io/name".into(), plan.engine.to_string());
    l.insert("app.kubernetes.io/instance".into(), plan.name.clone());
    l.insert("app.kubernetes.io/version".into(), plan.version.version.into());
    l.insert(MANAGED_BY.into(), "firecamp".into());
    l.insert(CLUSTER.into(), plan.cluster.name.clone());
    l.extend(selector(plan));
    l
}

/// Labels of a member's own objects (ConfigMap, PVCs).
pub fn member(plan: &ServicePlan, m: &MemberPlan) -> Labels {
    let mut l = common(plan);
    l.insert(MEMBER.into(), m.member.name.to_string());
    l.insert(ZONE.into(), m.member.zone.clone());
    l
}
