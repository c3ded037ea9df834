//! The API view of a FireCampService resource, shared by the REST API and the CLI's `--kube`.

use firecamp_api::{Phase, Service, ServiceStatus};
use kube::ResourceExt;

use crate::crd::FireCampService;

/// The resource as [`firecamp_api::Service`]. A resource Kubernetes is deleting (its finalizer
/// still cleaning up) shows DELETING, whatever its last status said.
pub fn to_service(r: &FireCampService) -> Service {
    let st = r.status.clone().unwrap_or_default();
    let phase = if r.metadata.deletion_timestamp.is_some() { Phase::Deleting } else { st.phase };
    Service { name: r.name_any(), spec: r.spec.0.clone(), status: ServiceStatus { phase, message: st.message, members: st.members, endpoints: st.endpoints } }
}
