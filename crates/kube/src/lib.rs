//! Pure builders of the Kubernetes objects of a FireCamp service, from its catalog plan.
//! Nothing here talks to a cluster; the manage service applies what these functions return.

pub mod certificate;
pub mod config;
pub mod labels;
pub mod logging;
mod meta;
pub mod names;
pub mod network;
pub mod objects;
pub mod rbac;
pub mod services;
pub mod statefulset;
pub mod storage;
pub mod tls;

use firecamp_catalog::ServicePlan;

pub use config::{STATIC_IP_FILE, Secrets};
pub use objects::Object;

pub use firecamp_core::cluster::FIRECAMP_IMAGE;

/// Every object of a service, in the order they are best applied (what a pod needs first).
pub fn build(plan: &ServicePlan, secrets: &Secrets) -> Vec<Object> {
    let mut out = Vec::new();
    out.extend(storage::storage_classes(plan).into_iter().map(Object::StorageClass));
    out.push(Object::ServiceAccount(rbac::service_account(plan)));
    out.push(Object::Role(rbac::role(plan)));
    out.push(Object::RoleBinding(rbac::role_binding(plan)));
    if let Some(s) = config::secret(plan, secrets) {
        out.push(Object::Secret(s));
    }
    // Its content is the manage service's to make (firecamp_pki::bundle), never printed.
    out.extend(tls::secrets(plan, None).into_iter().map(Object::Secret));
    out.extend(tls::certificates(plan).into_iter().map(Object::Certificate));
    out.extend(plan.members.iter().map(|m| Object::ConfigMap(config::config_map(plan, m))));
    out.extend(storage::claims(plan).into_iter().map(Object::PersistentVolumeClaim));
    out.push(Object::Service(services::headless(plan)));
    out.push(Object::Service(services::client(plan)));
    out.extend(services::replicas(plan).map(Object::Service));
    out.push(Object::PodDisruptionBudget(services::pdb(plan)));
    out.extend(network::network_policy(plan).map(Object::NetworkPolicy));
    out.push(Object::StatefulSet(statefulset::statefulset(plan)));
    out
}
