//! The cluster a service is created in: its name (and so its DNS zone), namespace, network and
//! the volume provisioner of its StorageClasses.

use serde::{Deserialize, Serialize};

use crate::error::ValidationErrors;
use crate::names::{dns1123_label_problem, DOMAIN_SUFFIX, MAX_CLUSTER_NAME};

/// The CSI driver of Amazon EBS, FireCamp's volume provisioner on AWS.
pub const EBS_CSI_PROVISIONER: &str = "ebs.csi.aws.com";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConfig {
    /// Cluster name; the members' DNS zone is `<name>-firecamp.com`.
    pub name: String,
    /// Namespace the service's objects live in.
    pub namespace: String,
    /// Networks clients and members connect from (the VPC CIDR); engines admit only these.
    pub networks: Vec<String>,
    /// Provisioner of the per-zone StorageClasses.
    pub volume_provisioner: String,
}

impl ClusterConfig {
    pub fn new(name: impl Into<String>) -> Self {
        ClusterConfig {
            name: name.into(),
            namespace: "default".into(),
            networks: vec!["10.0.0.0/8".into()],
            volume_provisioner: EBS_CSI_PROVISIONER.into(),
        }
    }

    /// The private DNS zone of the cluster: `<cluster>-firecamp.com`.
    pub fn domain(&self) -> String {
        format!("{}{DOMAIN_SUFFIX}", self.name)
    }

    pub fn validate(&self, errs: &mut ValidationErrors) {
        if let Some(p) = dns1123_label_problem(&self.name) {
            errs.push("cluster", p);
        } else if self.name.len() > MAX_CLUSTER_NAME {
            errs.push("cluster", format!("must be at most {MAX_CLUSTER_NAME} characters so that `<cluster>-firecamp` is one DNS label"));
        }
        if let Some(p) = dns1123_label_problem(&self.namespace) {
            errs.push("namespace", p);
        }
        if self.networks.is_empty() {
            errs.push("networks", "at least one CIDR is needed to admit clients");
        }
        for (i, n) in self.networks.iter().enumerate() {
            if let Some(p) = cidr_problem(n) {
                errs.push(format!("networks[{i}]"), p);
            }
        }
        if self.volume_provisioner.is_empty() {
            errs.push("volumeProvisioner", "must name the CSI driver of the StorageClasses, e.g. ebs.csi.aws.com");
        }
    }
}

/// Why `s` is not an IPv4 or IPv6 CIDR such as `10.0.0.0/16`.
pub fn cidr_problem(s: &str) -> Option<String> {
    let Some((addr, len)) = s.split_once('/') else {
        return Some(format!("{s:?} is not a CIDR; write it as address/prefix, e.g. 10.0.0.0/16"));
    };
    let max = match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => 32,
        Ok(std::net::IpAddr::V6(_)) => 128,
        Err(_) => return Some(format!("{addr:?} is not an IP address")),
    };
    match len.parse::<u8>() {
        Ok(l) if l <= max => None,
        _ => Some(format!("prefix length {len:?} must be 0 to {max}")),
    }
}
