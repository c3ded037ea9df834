//! The FireCamp Kubernetes test bed: a real kube-apiserver, controller-manager and scheduler
//! with kwok nodes on 127.0.0.1 (started by `testbed/bed up`).
//!
//! This crate holds the bed's PV provisioner and node setup (run by the `firecamp-testbed`
//! binary) and the helpers integration tests use to reach the bed.

pub mod bed;
pub mod cert_manager;
pub mod nodes;
pub mod provisioner;
pub mod storage;

pub use bed::{client, cluster_role_token, drop_namespace, fresh_namespace, kubeconfig_path, node_zones, service_account_token, try_client};

/// The provisioner name the bed's StorageClasses (and FireCamp's, when told so) refer to.
pub const PROVISIONER: &str = "testbed.firecamp.dev/local";
/// Label key of the zone, as on EKS nodes and EBS volumes.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// The StorageClass the bed creates for its own tests.
pub const STORAGE_CLASS: &str = "testbed-local";
