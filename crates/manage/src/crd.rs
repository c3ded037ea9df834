//! The FireCampService custom resource: spec = FireCamp's service spec, status = what the
//! controller observed. `deploy/crd.yaml` is generated from these types (`firecamp install crd`)
//! and a test fails when the two drift apart.

use firecamp_api::{Endpoint, MemberStatus, Phase};
use firecamp_core::ServiceSpec;
use firecamp_core::cloud::{DnsRecord, StaticIpRecord};
use firecamp_core::operation::Operation;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A restored service's source until its first start is done (JSON of
/// `firecamp_catalog::layout::RestoreSource`; set by the REST API's restore).
pub const RESTORE_ANNOTATION: &str = "firecamp.dev/restore-from";
pub const GROUP: &str = "firecamp.dev";
/// Finalizer that removes what owner references cannot (cluster-scoped StorageClasses, and the
/// volumes when asked).
pub const FINALIZER: &str = "firecamp.dev/cleanup";
/// Set on the resource before deleting it to delete the members' volumes too.
pub const DELETE_VOLUMES_ANNOTATION: &str = "firecamp.dev/delete-volumes";

/// The merge patch that marks whether a deletion takes the volumes too.
pub fn delete_volumes_mark(delete_volumes: bool) -> serde_json::Value {
    serde_json::json!({"metadata": {"annotations": {DELETE_VOLUMES_ANNOTATION: delete_volumes.to_string()}}})
}

/// The merge patch that takes the mark away again when the deletion itself failed: a mark
/// left behind would delete the volumes on some later, unrelated deletion.
pub fn delete_volumes_unmark() -> serde_json::Value {
    serde_json::json!({"metadata": {"annotations": {DELETE_VOLUMES_ANNOTATION: null}}})
}

#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "firecamp.dev",
    version = "v1alpha1",
    kind = "FireCampService",
    plural = "firecampservices",
    shortname = "fcs",
    namespaced,
    status = "FireCampServiceStatus",
    printcolumn = r#"{"name":"Engine","type":"string","jsonPath":".spec.engine"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".spec.version"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Ready","type":"integer","jsonPath":".status.readyMembers"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.message","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct FireCampServiceSpec(pub ServiceSpec);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FireCampServiceStatus {
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub ready_members: i32,
    #[serde(default)]
    pub members: Vec<MemberStatus>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Init tasks, kept here so a restarted manage service resumes them.
    #[serde(default)]
    pub init_tasks: Vec<InitTaskStatus>,
    /// The members' static IPs: FireCamp's only proof of owning them (never lost, never guessed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_ips: Vec<StaticIpStatus>,
    /// The members' DNS records as last written, so an unchanged service costs no Route53 call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_records: Vec<DnsRecord>,
    /// Members whose log streams exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_streams: Vec<String>,
    /// The primary a switchover made (PostgreSQL, Redis replication): the members' files name
    /// it, so a restarted old primary comes back as its replica. Absent: the bootstrap primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    /// Since when (RFC 3339) the primary has been lost: its pod or node not Ready, its engine
    /// not answering as the primary, no replica receiving from it. A failover starts once this
    /// is `spec.failover.delaySeconds` old; cleared when the primary is seen again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_lost_since: Option<String>,
    /// The primary and replicas endpoints of a single-writer service and where they lead now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
    /// Day-2 operations: the running one and the last finished ones, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<Operation>,
    /// When (RFC 3339) `spec.backup.schedule` last asked for a backup: the schedule counts from
    /// it, so a restarted manage service neither repeats a moment nor loses one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scheduled_backup: Option<String>,
}

/// A member's static IP and the instance whose interface holds it now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticIpStatus {
    pub record: StaticIpRecord,
    /// The EC2 instance the IP was last assigned to (`None`: still on its reserve interface).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// A Kubernetes-style condition (`Ready`, `Initialized`, `Degraded`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// RFC 3339; changes only when `status` changes.
    pub last_transition_time: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InitTaskStatus {
    pub name: String,
    pub phase: TaskPhase,
    /// Jobs started for this task so far (bounded by the task's retry limit).
    pub attempts: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TaskPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

/// `spec.tls.issuer` stays as the service was created: its members trust one CA, and a member
/// restarted with another issuer's certificate would be refused by its peers. The API server
/// refuses the change (a CEL transition rule), so no controller has to undo it.
const ISSUER_FIXED: &str = "(has(self.tls) && has(self.tls.issuer)) == (has(oldSelf.tls) && has(oldSelf.tls.issuer)) \
                            && (!has(self.tls) || !has(self.tls.issuer) || self.tls.issuer == oldSelf.tls.issuer)";

/// The CRD: the types' schema and the rules the API server enforces on changes.
pub fn crd() -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::ValidationRule;
    use kube::CustomResourceExt;
    let mut crd = FireCampService::crd();
    for v in &mut crd.spec.versions {
        let spec = v.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()).and_then(|s| s.properties.as_mut()).and_then(|p| p.get_mut("spec"));
        if let Some(spec) = spec {
            spec.x_kubernetes_validations.get_or_insert_with(Vec::new).push(ValidationRule {
                rule: ISSUER_FIXED.into(),
                message: Some(
                    "spec.tls.issuer cannot change once the service exists: its members trust one CA (create a new service for another issuer)".into(),
                ),
                field_path: Some(".tls".into()),
                ..Default::default()
            });
        }
    }
    crd
}

/// The CRD as YAML, for `deploy/crd.yaml` and `firecamp install render`.
pub fn crd_yaml() -> String {
    serde_saphyr::to_string(&crd()).unwrap_or_default()
}
