//! The typed objects of a service and their YAML/JSON forms.

use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::certificate::Certificate;

/// One Kubernetes object; serializes as the object itself (apiVersion and kind included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Object {
    StorageClass(StorageClass),
    ServiceAccount(ServiceAccount),
    Role(Role),
    RoleBinding(RoleBinding),
    Secret(Secret),
    ConfigMap(ConfigMap),
    PersistentVolumeClaim(PersistentVolumeClaim),
    Service(Service),
    PodDisruptionBudget(PodDisruptionBudget),
    NetworkPolicy(NetworkPolicy),
    StatefulSet(StatefulSet),
    /// A member's certificate from a cert-manager issuer (`spec.tls.issuer`).
    Certificate(Certificate),
}

macro_rules! each {
    ($self:ident, $o:ident => $e:expr) => {
        match $self {
            Object::StorageClass($o) => $e,
            Object::ServiceAccount($o) => $e,
            Object::Role($o) => $e,
            Object::RoleBinding($o) => $e,
            Object::Secret($o) => $e,
            Object::ConfigMap($o) => $e,
            Object::PersistentVolumeClaim($o) => $e,
            Object::Service($o) => $e,
            Object::PodDisruptionBudget($o) => $e,
            Object::NetworkPolicy($o) => $e,
            Object::StatefulSet($o) => $e,
            Object::Certificate($o) => $e,
        }
    };
}

fn kind_of<T: Resource>(_: &T) -> &'static str {
    T::KIND
}

fn api_version_of<T: Resource>(_: &T) -> &'static str {
    T::API_VERSION
}

impl Object {
    pub fn kind(&self) -> &'static str {
        each!(self, o => kind_of(o))
    }

    pub fn api_version(&self) -> &'static str {
        each!(self, o => api_version_of(o))
    }

    pub fn metadata(&self) -> &ObjectMeta {
        each!(self, o => &o.metadata)
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// Parses one object back into its typed form, choosing the type by `kind`.
    pub fn from_value(v: serde_json::Value) -> Result<Object, String> {
        let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_string();
        let typed = |r: Result<Object, serde_json::Error>| r.map_err(|e| format!("{kind}: {e}"));
        match kind.as_str() {
            "StorageClass" => typed(serde_json::from_value(v).map(Object::StorageClass)),
            "ServiceAccount" => typed(serde_json::from_value(v).map(Object::ServiceAccount)),
            "Role" => typed(serde_json::from_value(v).map(Object::Role)),
            "RoleBinding" => typed(serde_json::from_value(v).map(Object::RoleBinding)),
            "Secret" => typed(serde_json::from_value(v).map(Object::Secret)),
            "ConfigMap" => typed(serde_json::from_value(v).map(Object::ConfigMap)),
            "PersistentVolumeClaim" => typed(serde_json::from_value(v).map(Object::PersistentVolumeClaim)),
            "Service" => typed(serde_json::from_value(v).map(Object::Service)),
            "PodDisruptionBudget" => typed(serde_json::from_value(v).map(Object::PodDisruptionBudget)),
            "NetworkPolicy" => typed(serde_json::from_value(v).map(Object::NetworkPolicy)),
            "StatefulSet" => typed(serde_json::from_value(v).map(Object::StatefulSet)),
            "Certificate" => typed(serde_json::from_value(v).map(Object::Certificate)),
            other => Err(format!("unexpected kind {other:?}")),
        }
    }
}

/// Objects as multi-document YAML, ready for `kubectl apply -f -`.
pub fn to_yaml(objects: &[Object]) -> Result<String, String> {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(o).map_err(|e| format!("{} {}: {e}", o.kind(), o.name()))?);
    }
    Ok(out)
}

/// Objects as one JSON `List`, which `kubectl apply -f -` also takes.
pub fn to_json(objects: &[Object]) -> Result<String, String> {
    let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": objects });
    serde_json::to_string_pretty(&list).map_err(|e| e.to_string())
}

/// Parses multi-document YAML back into typed objects.
pub fn from_yaml(yaml: &str) -> Result<Vec<Object>, String> {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml).map_err(|e| e.to_string())?;
    docs.into_iter().filter(|d| !d.is_null()).map(Object::from_value).collect()
}
