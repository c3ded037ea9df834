//! The service's NetworkPolicy: who may reach the members' ports (`spec.clients`).

use firecamp_catalog::ServicePlan;
use k8s_openapi::api::networking::v1::{IPBlock, NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::{labels, meta, names};

/// The label every namespace carries with its own name (set by the API server, so a tenant
/// cannot give its namespace another's name).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The manage service's pods (`install render` labels them so).
pub const MANAGE_POD_LABEL: (&str, &str) = ("app.kubernetes.io/name", "firecamp-manage");

fn select(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector { match_labels: Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()), ..Default::default() }
}

fn namespace(name: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer { namespace_selector: Some(select(&[(NAMESPACE_NAME_LABEL, name)])), ..Default::default() }
}

/// Admits to the members' ports: every pod of the service's own namespace (the members
/// themselves, FireCamp's init-task Jobs, the tenant's clients), the manage service's pods (role
/// checks, switchovers), and the namespaces and CIDRs of `spec.clients`. Nothing else reaches
/// them where the cluster's network plugin enforces NetworkPolicies. None when the service asks
/// for no policy.
pub fn network_policy(plan: &ServicePlan) -> Option<NetworkPolicy> {
    let c = &plan.spec.clients;
    if !c.network_policy {
        return None;
    }
    let mut from = vec![
        NetworkPolicyPeer { pod_selector: Some(LabelSelector::default()), ..Default::default() },
        NetworkPolicyPeer { pod_selector: Some(select(&[MANAGE_POD_LABEL])), ..namespace(&plan.cluster.manage_namespace) },
    ];
    from.extend(c.namespaces.iter().map(|ns| namespace(ns)));
    from.extend(c.cidrs.iter().map(|cidr| NetworkPolicyPeer { ip_block: Some(IPBlock { cidr: cidr.clone(), except: None }), ..Default::default() }));
    let ports =
        plan.ports.iter().map(|p| NetworkPolicyPort { port: Some(IntOrString::Int(p.port.into())), protocol: Some("TCP".into()), end_port: None }).collect();
    Some(NetworkPolicy {
        metadata: meta::namespaced(plan, names::network_policy(&plan.name), labels::common(plan)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector { match_labels: Some(labels::selector(plan)), ..Default::default() }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule { from: Some(from), ports: Some(ports) }]),
            egress: None,
        }),
    })
}
