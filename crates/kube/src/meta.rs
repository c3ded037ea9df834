use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::labels::Labels;
use firecamp_catalog::ServicePlan;

/// Metadata of a namespaced object of the service, with the user's annotations.
pub(crate) fn namespaced(plan: &ServicePlan, name: String, labels: Labels) -> ObjectMeta {
    ObjectMeta { namespace: Some(plan.cluster.namespace.clone()), ..cluster_scoped(plan, name, labels) }
}

pub(crate) fn cluster_scoped(plan: &ServicePlan, name: String, labels: Labels) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        labels: Some(labels),
        annotations: (!plan.spec.annotations.is_empty()).then(|| plan.spec.annotations.clone()),
        ..Default::default()
    }
}
