//! The headless Service (member discovery), the client Service and the PodDisruptionBudget.

use firecamp_catalog::{Role, ServicePlan};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::{labels, meta, names};

fn ports(plan: &ServicePlan, client_only: bool) -> Vec<ServicePort> {
    plan.ports
        .iter()
        .filter(|p| p.client || !client_only)
        .map(|p| ServicePort {
            name: Some(p.name.into()),
            port: p.port.into(),
            target_port: Some(IntOrString::Int(p.port.into())),
            protocol: Some("TCP".into()),
            ..Default::default()
        })
        .collect()
}

/// Every member, ready or not: peers must find each other before any is ready.
pub fn headless(plan: &ServicePlan) -> Service {
    Service {
        metadata: meta::namespaced(plan, names::headless_service(&plan.name), labels::common(plan)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(labels::selector(plan)),
            ports: Some(ports(plan, false)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What in-cluster clients connect to: the primary for single-writer engines, else any member.
pub fn client(plan: &ServicePlan) -> Service {
    let mut selector = labels::selector(plan);
    if let Some(role) = plan.client_role {
        selector.insert(labels::ROLE.into(), role.as_str().into());
    }
    Service {
        metadata: meta::namespaced(plan, names::client_service(&plan.name), labels::common(plan)),
        spec: Some(ServiceSpec { type_: Some("ClusterIP".into()), selector: Some(selector), ports: Some(ports(plan, true)), ..Default::default() }),
        ..Default::default()
    }
}

/// The read-only endpoint of a single-writer service: the members whose role is replica (the
/// manage service keeps the role labels current through switchovers and failovers).
pub fn replicas(plan: &ServicePlan) -> Option<Service> {
    plan.endpoints.as_ref()?;
    let mut selector = labels::selector(plan);
    selector.insert(labels::ROLE.into(), Role::Replica.as_str().into());
    Some(Service {
        metadata: meta::namespaced(plan, names::replicas_service(&plan.name), labels::common(plan)),
        spec: Some(ServiceSpec { type_: Some("ClusterIP".into()), selector: Some(selector), ports: Some(ports(plan, true)), ..Default::default() }),
        ..Default::default()
    })
}

/// Voluntary disruptions (node drains) take at most one member at a time.
pub fn pdb(plan: &ServicePlan) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta::namespaced(plan, names::pdb(&plan.name), labels::common(plan)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector { match_labels: Some(labels::selector(plan)), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
