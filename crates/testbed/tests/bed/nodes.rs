//! The bed's nodes: Ready, over three zones, labelled like EKS workers, no taints.

use std::collections::BTreeSet;

use firecamp_testbed::nodes::{self, is_ready, zone_of};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

#[tokio::test]
async fn nodes_are_ready_in_three_zones_with_eks_labels() {
    let client = firecamp_testbed::client().await;
    let nodes = nodes::list(&client).await.expect("list nodes");
    assert!(nodes.len() >= 3, "expected at least 3 kwok nodes, found {}", nodes.len());
    let mut zones = BTreeSet::new();
    let leases = Api::<Lease>::namespaced(client.clone(), "kube-node-lease");
    for node in &nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        assert!(is_ready(node), "node {name} is not Ready");
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let zone = zone_of(node).unwrap_or_else(|| panic!("node {name} has no zone"));
        assert_eq!(labels.get("kubernetes.io/hostname"), Some(&name));
        // Defaults us-east-1 / m5.large; `bed up --region/--zones` may change them consistently.
        let region = labels.get("topology.kubernetes.io/region").cloned().unwrap_or_default();
        assert!(!region.is_empty() && zone.starts_with(&region), "{name}: zone {zone} not in region {region:?}");
        let itype = labels.get("node.kubernetes.io/instance-type");
        assert!(itype.is_some_and(|t| !t.is_empty()), "{name}: no instance type");
        assert!(labels.get("firecamp-worker").is_some_and(|c| !c.is_empty()), "{name}: no firecamp-worker label");
        let spec = node.spec.clone().unwrap_or_default();
        let pid = spec.provider_id.unwrap_or_default();
        let prefix = format!("aws:///{zone}/i-");
        let id = pid.strip_prefix(&prefix).unwrap_or_else(|| panic!("{name}: providerID {pid}"));
        assert!(id.len() == 17 && id.chars().all(|c| c.is_ascii_hexdigit()), "{name}: providerID {pid}");
        assert!(spec.taints.unwrap_or_default().is_empty(), "{name} is tainted");
        // kwok renews a lease per node: that is what keeps the node Ready past the grace period.
        let lease = leases.get(&name).await.unwrap_or_else(|e| panic!("{name}: no node lease: {e}"));
        assert_eq!(lease.spec.and_then(|s| s.lease_duration_seconds), Some(40), "{name}: lease duration");
        zones.insert(zone);
    }
    assert!(zones.len() >= 3, "nodes span only {zones:?}");
}
