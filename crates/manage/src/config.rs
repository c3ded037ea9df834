//! The manage service's settings: the cluster it serves and where it runs.

use firecamp_core::ClusterConfig;

#[derive(Debug, Clone)]
pub struct ManageConfig {
    /// Cluster name, networks and volume provisioner; the namespace comes from each resource.
    pub cluster: ClusterConfig,
    /// Only this namespace, or every namespace when `None`.
    pub watch_namespace: Option<String>,
    /// Field manager of every server-side apply.
    pub field_manager: String,
    /// This replica's name in the leader Lease and in Events.
    pub identity: String,
    /// Route53, EC2 static IPs and CloudWatch Logs, when the cluster runs in AWS.
    pub cloud: crate::cloud::Cloud,
}

pub const FIELD_MANAGER: &str = "firecamp-manage";
pub const CONTROLLER_NAME: &str = "firecamp-manage";
