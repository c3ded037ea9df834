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
    /// Where the members' roles come from during operations.
    pub role_source: RoleSource,
}

/// Where the controller learns each member's role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleSource {
    /// Ask each member through its engine's protocol (PostgreSQL `pg_is_in_recovery()`, Redis
    /// `ROLE`, ZooKeeper `srvr`) and label its pod with the answer.
    #[default]
    Engine,
    /// Trust the pods' `firecamp.dev/role` labels as they are: for test beds whose pods run no
    /// server (the test plays the engine, and switchovers swap the labels).
    Labels,
}

pub const FIELD_MANAGER: &str = "firecamp-manage";
pub const CONTROLLER_NAME: &str = "firecamp-manage";
