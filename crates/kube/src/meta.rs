use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::labels::Labels;
use firecamp_catalog::ServicePlan;

/// Metadata of a namespaced object of the service, with the user's annotations.
pub(crate) fn namespaced(plan: &ServicePlan, name: String, labels: Labels) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(plan.cluster.namespace.clone()),
        annotations: (!plan.spec.annotations.is_empty()).then(|| plan.spec.annotations.clone()),
        ..cluster_scoped(name, labels)
    }
}

/// Metadata of a cluster-scoped object: FireCamp's labels only. A user's annotation or label
/// there would reach beyond the service's namespace (a StorageClass annotated
/// `storageclass.kubernetes.io/is-default-class` becomes every namespace's default).
pub(crate) fn cluster_scoped(name: String, labels: Labels) -> ObjectMeta {
    ObjectMeta { name: Some(name), labels: Some(labels), ..Default::default() }
}
