//! Names of the Kubernetes objects of a service. The one place that maps a member to the pod
//! that runs it: today the StatefulSet pod of the same name.

use firecamp_core::MemberName;
use firecamp_core::names::HEADLESS_SUFFIX;

/// The StatefulSet, the client Service and the PodDisruptionBudget share the service's name.
pub fn statefulset(service: &str) -> String {
    service.to_string()
}

pub fn client_service(service: &str) -> String {
    service.to_string()
}

/// The read-only endpoint of a single-writer service: its replicas.
pub fn replicas_service(service: &str) -> String {
    format!("{service}-replicas")
}

pub fn pdb(service: &str) -> String {
    service.to_string()
}

pub fn network_policy(service: &str) -> String {
    service.to_string()
}

/// Governs the StatefulSet; publishes every member, ready or not, so peers find each other.
pub fn headless_service(service: &str) -> String {
    format!("{service}{HEADLESS_SUFFIX}")
}

pub fn secret(service: &str) -> String {
    format!("{service}-credentials")
}

/// The service CA's certificate and its members' certificates and keys (`crate::tls`).
pub fn tls_secret(service: &str) -> String {
    format!("{service}-tls")
}

/// A member's cert-manager Certificate and the Secret it issues into (`spec.tls.issuer`).
/// Not `<member>-tls`: that is the TLS Secret of a service named like the member.
pub fn member_certificate(member: &MemberName) -> String {
    format!("{member}-certificate")
}

/// The service CA's certificate and key; read by the manage service only.
pub fn ca_secret(service: &str) -> String {
    format!("{service}-ca")
}

/// The ServiceAccount, Role and RoleBinding of the members (member-init reads its ConfigMap).
pub fn member_account(service: &str) -> String {
    format!("{service}-member")
}

pub fn config_map(member: &MemberName) -> String {
    format!("{member}-config")
}

/// The pod that runs `member`.
pub fn pod_of(member: &MemberName) -> String {
    member.to_string()
}

/// The PVC of `member`'s `volume`, under the name the StatefulSet controller looks for
/// (`<claim template>-<pod>`), so the StatefulSet adopts the PVC FireCamp pre-created.
pub fn pvc(volume: &str, member: &MemberName) -> String {
    format!("{volume}-{}", pod_of(member))
}

/// The StorageClass that provisions `volume` of the service's members in `zone`.
pub fn storage_class(namespace: &str, service: &str, volume: &str, zone: &str) -> String {
    format!("firecamp.{namespace}.{service}.{volume}.{zone}")
}

/// The class named by the StatefulSet's claim templates. It is never created: a PVC FireCamp
/// did not pre-create (and so did not pin to a zone) stays Pending instead of landing anywhere.
pub fn unpinned_storage_class(namespace: &str, service: &str, volume: &str) -> String {
    format!("firecamp.{namespace}.{service}.{volume}.unpinned")
}

pub const DATA_VOLUME: &str = "data";
pub const JOURNAL_VOLUME: &str = "journal";
