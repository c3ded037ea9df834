//! The bed's fake nodes: kwok-managed, spread over zones, labelled like EKS workers.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{Node, NodeSpec};
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use sha2::{Digest, Sha256};

use crate::ZONE_LABEL;

/// Annotation kwok selects the nodes it manages by (`--manage-nodes-with-annotation-selector`).
pub const KWOK_ANNOTATION: &str = "kwok.x-k8s.io/node";
/// Label that marks a cluster's FireCamp workers.
pub const WORKER_LABEL: &str = "firecamp-worker";

/// What nodes to create.
#[derive(Clone, Debug)]
pub struct NodePlan {
    pub count: usize,
    pub zones: Vec<String>,
    pub region: String,
    pub cluster: String,
    pub instance_type: String,
}

impl NodePlan {
    /// The nodes, round-robin over the zones (node i goes to zone i mod zones).
    pub fn nodes(&self) -> Vec<Node> {
        (0..self.count).map(|i| self.node(i)).collect()
    }

    fn node(&self, i: usize) -> Node {
        let zi = i % self.zones.len();
        let zone = &self.zones[zi];
        // EC2-style private DNS name: the subnet octet is the zone, the host octet counts within
        // it; us-east-1 uses `ec2.internal`, other regions `<region>.compute.internal`.
        let domain = match self.region.as_str() {
            "us-east-1" => "ec2.internal".to_string(),
            r => format!("{r}.compute.internal"),
        };
        let name = format!("ip-10-0-{}-{}.{domain}", zi + 1, 10 + i / self.zones.len());
        let labels = BTreeMap::from([
            ("kubernetes.io/hostname".to_string(), name.clone()),
            ("kubernetes.io/os".to_string(), "linux".to_string()),
            ("kubernetes.io/arch".to_string(), "amd64".to_string()),
            (ZONE_LABEL.to_string(), zone.clone()),
            ("topology.kubernetes.io/region".to_string(), self.region.clone()),
            ("node.kubernetes.io/instance-type".to_string(), self.instance_type.clone()),
            (WORKER_LABEL.to_string(), self.cluster.clone()),
            ("type".to_string(), "kwok".to_string()),
        ]);
        Node {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(labels),
                annotations: Some(BTreeMap::from([(KWOK_ANNOTATION.to_string(), "fake".to_string())])),
                ..Default::default()
            },
            // No taint: FireCamp's own StatefulSets must schedule here without a kwok toleration.
            spec: Some(NodeSpec { provider_id: Some(format!("aws:///{zone}/{}", instance_id(&self.cluster, &name))), ..Default::default() }),
            status: None,
        }
    }
}

/// A deterministic EC2 instance id (`i-` and 17 hex digits) for a node.
pub fn instance_id(cluster: &str, node: &str) -> String {
    let digest = Sha256::digest(format!("{cluster}/{node}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("i-{}", &hex[..17])
}

/// Creates the planned nodes (existing ones are left alone) and waits until all are Ready.
pub async fn create_and_wait(client: &Client, plan: &NodePlan, timeout: Duration) -> Result<()> {
    create_nodes_and_wait(client, &plan.nodes(), timeout).await
}

/// Creates these nodes (existing ones are left alone) and waits until all are Ready.
pub async fn create_nodes_and_wait(client: &Client, nodes: &[Node], timeout: Duration) -> Result<()> {
    let api = Api::<Node>::all(client.clone());
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        match api.create(&PostParams::default(), node).await {
            Ok(_) => tracing::info!(%name, "node created"),
            Err(kube::Error::Api(s)) if s.code == 409 => tracing::info!(%name, "node exists"),
            Err(e) => return Err(e).with_context(|| format!("creating node {name}")),
        }
    }
    let want: Vec<String> = nodes.iter().filter_map(|n| n.metadata.name.clone()).collect();
    tokio::time::timeout(timeout, wait_ready(api, &want)).await.with_context(|| format!("nodes not Ready after {timeout:?}"))?
}

async fn wait_ready(api: Api<Node>, want: &[String]) -> Result<()> {
    let cfg = watcher::Config::default().labels(&format!("{}=kwok", "type"));
    let mut ready = BTreeMap::<String, bool>::new();
    let mut stream = std::pin::pin!(watcher(api, cfg).applied_objects());
    while let Some(node) = stream.try_next().await.context("watching nodes")? {
        let name = node.metadata.name.clone().unwrap_or_default();
        ready.insert(name, is_ready(&node));
        if want.iter().all(|n| ready.get(n).copied().unwrap_or(false)) {
            return Ok(());
        }
    }
    anyhow::bail!("node watch ended")
}

/// Whether the node's Ready condition is True.
pub fn is_ready(node: &Node) -> bool {
    node.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The zone label of a node, if any.
pub fn zone_of(node: &Node) -> Option<String> {
    node.metadata.labels.as_ref()?.get(ZONE_LABEL).cloned()
}

/// All bed nodes (those kwok manages).
pub async fn list(client: &Client) -> Result<Vec<Node>> {
    let all = Api::<Node>::all(client.clone()).list(&ListParams::default()).await.context("listing nodes")?;
    Ok(all.items.into_iter().filter(|n| n.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(KWOK_ANNOTATION))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_nodes_go_two_per_zone_with_aws_provider_ids() {
        let zones: Vec<String> = ["us-east-1a", "us-east-1b", "us-east-1c"].map(String::from).into();
        let plan = NodePlan { count: 6, zones: zones.clone(), region: "us-east-1".into(), cluster: "bed".into(), instance_type: "m5.large".into() };
        let nodes = plan.nodes();
        for zone in &zones {
            assert_eq!(nodes.iter().filter(|n| zone_of(n).as_ref() == Some(zone)).count(), 2);
        }
        assert_eq!(nodes[0].metadata.name.as_deref(), Some("ip-10-0-1-10.ec2.internal"));
        assert_eq!(nodes[3].metadata.name.as_deref(), Some("ip-10-0-1-11.ec2.internal"));
        let id = nodes[0].spec.as_ref().and_then(|s| s.provider_id.clone()).unwrap_or_default();
        assert_eq!(id, format!("aws:///us-east-1a/{}", instance_id("bed", "ip-10-0-1-10.ec2.internal")));
        let hex = id.rsplit("/i-").next().unwrap_or_default();
        assert!(hex.len() == 17 && hex.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        assert!(nodes.iter().all(|n| n.spec.as_ref().is_some_and(|s| s.taints.is_none())));
    }
}
