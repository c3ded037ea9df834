//! The REST API of FireCamp's manage service, as plain types. The Kubernetes manage service and
//! the local runtime serve it; the CLI is its client. Paths are under `/v1`; bodies are JSON
//! with camelCase fields; errors are [`ApiError`] with the HTTP status its code maps to.

pub use firecamp_core::operation::{
    CaStage, Operation, OperationKind, OperationList, OperationPhase, OperationRequest, OperationStep, StepAction, UpdatePolicy,
};
use firecamp_core::{FieldError, ServiceSpec, ValidationErrors};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the local runtime's manage service listens (the original FireCamp's port).
pub const LOCAL_ADDR: &str = "127.0.0.1:27040";

pub mod backup;
pub mod metrics;
pub mod since;

pub use backup::{Backup, BackupList, RestoreRequest};

#[cfg(feature = "fuzz")]
pub mod fuzz;

pub mod paths {
    pub const SERVICES: &str = "/v1/services";
    pub const HEALTH: &str = "/healthz";
    /// FireCamp's own metrics in Prometheus' text format.
    pub const METRICS: &str = "/metrics";
    /// Ready to serve: the Kubernetes API answers (liveness is `/healthz`: the process runs).
    pub const READY: &str = "/readyz";
    pub const OPENAPI: &str = "/openapi.json";

    pub fn service(name: &str) -> String {
        format!("{SERVICES}/{name}")
    }
    pub fn members(name: &str) -> String {
        format!("{SERVICES}/{name}/members")
    }
    /// `POST`: stop or start every member (data kept).
    pub fn stop(name: &str) -> String {
        format!("{SERVICES}/{name}/stop")
    }
    pub fn start(name: &str) -> String {
        format!("{SERVICES}/{name}/start")
    }
    /// `GET`: the service's operations, newest first; `POST` an `OperationRequest` to start one
    /// (409 while another runs).
    pub fn operations(name: &str) -> String {
        format!("{SERVICES}/{name}/operations")
    }
    pub fn operation(name: &str, id: &str) -> String {
        format!("{SERVICES}/{name}/operations/{id}")
    }
    /// `POST`: no further step of the operation starts (202 with the operation).
    pub fn cancel_operation(name: &str, id: &str) -> String {
        format!("{SERVICES}/{name}/operations/{id}/cancel")
    }
    /// `GET ?member=&since=<RFC 3339 or seconds>&follow=true`: the members' log lines as text.
    pub fn logs(name: &str) -> String {
        format!("{SERVICES}/{name}/logs")
    }
    /// `GET`: the service's backups ([`crate::BackupList`]), newest first.
    pub fn backups(name: &str) -> String {
        format!("{SERVICES}/{name}/backups")
    }
    /// `DELETE`: one backup (and the archived WAL only it needed).
    pub fn backup(name: &str, id: &str) -> String {
        format!("{SERVICES}/{name}/backups/{id}")
    }
    /// `POST` a [`crate::RestoreRequest`]: a new service from one of this service's backups.
    pub fn restore(name: &str) -> String {
        format!("{SERVICES}/{name}/restore")
    }
    /// `GET`: the service's CA certificate ([`crate::ServiceCa`]), for clients to verify members.
    pub fn ca(name: &str) -> String {
        format!("{SERVICES}/{name}/ca")
    }
}

/// `GET /v1/services/{name}/ca`: the certificate of the service's CA (PEM), which every member's
/// certificate chains to. Not a secret; 404 while the service has none (yet, or an engine
/// without TLS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceCa {
    pub ca: String,
}

/// `POST /v1/services`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateService {
    pub name: String,
    pub spec: ServiceSpec,
}

/// `DELETE /v1/services/{name}?deleteVolumes=true|false` (default false: data is kept).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteQuery {
    #[serde(default)]
    pub delete_volumes: bool,
}

/// A service as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub name: String,
    pub spec: ServiceSpec,
    pub status: ServiceStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    pub phase: Phase,
    /// Why the service is in its phase, when that needs saying (DEGRADED, FAILED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default)]
    pub members: Vec<MemberStatus>,
    /// The names that follow the roles of a single-writer service (PostgreSQL, Redis in
    /// replication mode): connect to these rather than to a member.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
}

impl Endpoint {
    /// The primary and replicas endpoints of `names`, leading to the given addresses.
    pub fn pair(names: &firecamp_core::Endpoints, primary: Vec<String>, replicas: Vec<String>) -> Vec<Endpoint> {
        vec![
            Endpoint { role: "primary".into(), dns_name: Some(names.primary.clone()), addresses: primary, kube_service: None },
            Endpoint { role: "replicas".into(), dns_name: Some(names.replicas.clone()), addresses: replicas, kube_service: None },
        ]
    }
}

/// A name that follows a role: the primary endpoint (moved by every switchover and failover)
/// or the replicas endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// `primary` or `replicas`.
    pub role: String,
    /// `primary.<service>.<namespace>.<cluster>-firecamp.com` (`replicas.<service>.…`): both in
    /// the local runtime's DNS server and hosts block; the primary's in Route53 with
    /// `manage --aws` (the replicas' is not written to Route53 yet: `None` there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_name: Option<String>,
    /// Where the name leads now (the members' addresses).
    #[serde(default)]
    pub addresses: Vec<String>,
    /// The Kubernetes Service selecting the same members, for clients in the cluster
    /// (`<service>.<namespace>.svc`, `<service>-replicas.<namespace>.svc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_service: Option<String>,
}

/// CREATING → INITIALIZING → ACTIVE, plus DEGRADED, STOPPED, DELETING, FAILED.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    #[default]
    Creating,
    /// Members run; init tasks (Redis cluster creation, …) are under way.
    Initializing,
    Active,
    /// Some member is not running or not in the engine's membership; `message` says which.
    Degraded,
    Stopped,
    Deleting,
    /// Terminal until the user acts; `message` says why.
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Creating => "CREATING",
            Phase::Initializing => "INITIALIZING",
            Phase::Active => "ACTIVE",
            Phase::Degraded => "DEGRADED",
            Phase::Stopped => "STOPPED",
            Phase::Deleting => "DELETING",
            Phase::Failed => "FAILED",
        }
    }
}

/// A member's role as its engine reports it (never assumed from its index).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Replica,
    Leader,
    Follower,
    Standalone,
    /// A member of a leaderless ring, every member equal (Cassandra).
    Peer,
    #[default]
    Unknown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Standalone => "standalone",
            Role::Peer => "peer",
            Role::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    pub name: String,
    pub zone: String,
    pub dns_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_ip: Option<String>,
    /// The Kubernetes node, or the local machine's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The address clients reach the member at (pod IP or static IP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default)]
    pub role: Role,
    pub ready: bool,
    /// The member's revision (StatefulSet `controller-revision-hash`, or the local config hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where the member's metrics are served in Prometheus' text format, when it has them
    /// (docs/monitoring.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceList {
    pub items: Vec<Service>,
}

/// Every error body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// For `Invalid`: every broken rule, by field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldErrorBody>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ErrorCode {
    /// 400: the request or spec breaks a rule.
    Invalid,
    /// 401: no or a bad token.
    Unauthorized,
    /// 403: the token may not do this.
    Forbidden,
    /// 404
    NotFound,
    /// 409: a service of that name exists.
    AlreadyExists,
    /// 412: a precondition failed or another change won the race (retry after reading again).
    Conflict,
    /// 409: another operation of the service is not finished (one at a time; wait for it).
    Busy,
    /// 500
    Internal,
    /// 503: a dependency (Kubernetes, AWS, a server binary) is unavailable.
    Unavailable,
}

impl ErrorCode {
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Invalid => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::AlreadyExists => 409,
            ErrorCode::Conflict => 412,
            ErrorCode::Busy => 409,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldErrorBody {
    pub field: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), fields: Vec::new() }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(e: ValidationErrors) -> Self {
        ApiError {
            code: ErrorCode::Invalid,
            message: e.to_string(),
            fields: e.0.into_iter().map(|FieldError { field, message }| FieldErrorBody { field, message }).collect(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

/// A JSON request body as a `T`; a body that does not fit is an [`ErrorCode::Invalid`] error
/// naming the field, as its JSON path (`spec.volumes.data.size`, `spec.zones[1]`,
/// `spec.colour` for an unknown key, `spec` for a missing one), or `body` when the body as a
/// whole is not JSON or not an object. (serde's own message says which key is unknown or
/// missing, but not where a value of the wrong type is.) `what` starts the message: "the
/// request body is not a service".
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize(&mut *de);
    let (mut path, inner) = match parsed {
        Ok(v) => match de.end() {
            Ok(()) => return Ok(v),
            Err(e) => (Vec::new(), e),
        },
        Err(e) => {
            let path = e.path().iter().map(segment).collect();
            (path, e.into_inner())
        }
    };
    // Control characters of a key or value would reach a terminal with the message.
    let message: String = inner.to_string().chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect();
    // A missing or repeated key is reported at the path of the object holding it (an unknown
    // one at its own).
    let key = ["missing field `", "duplicate field `"].iter().find_map(|p| message.strip_prefix(p)).and_then(|rest| rest.split('`').next());
    path.extend(key.map(|k| format!(".{}", shown(k))));
    let field = match path.concat() {
        f if f.is_empty() => "body".to_string(),
        f => f.strip_prefix('.').map(str::to_string).unwrap_or(f),
    };
    Err(ApiError { code: ErrorCode::Invalid, message: format!("{what}: {field}: {message}"), fields: vec![FieldErrorBody { field, message }] })
}

/// A key as it appears in a field name (as the catalog shows them): as given, unless it is
/// empty or holds characters a terminal would act on; then quoted and escaped.
fn shown(key: &str) -> String {
    if key.is_empty() || key.chars().any(char::is_control) { format!("{key:?}") } else { key.to_string() }
}

/// A request the HTTP layer could not read (a query parameter of the wrong type, a path
/// segment that is not UTF-8, a body over the limit), from the text of its rejection, as an
/// [`ErrorCode::Invalid`] error naming what it could not read: the parameter
/// (`deleteVolumes`, `name`), else `query`, `path` or `body`.
pub fn rejection(text: &str) -> ApiError {
    let backticked = |s: &str| s.split('`').nth(1).filter(|k| !k.is_empty()).map(str::to_string);
    let (field, detail) = if let Some(rest) = text.strip_prefix("Failed to deserialize query string: ") {
        match rest.split_once(": ") {
            Some((key, m)) if !key.is_empty() && !key.contains(char::is_whitespace) => (key.to_string(), m.to_string()),
            _ => ("query".to_string(), rest.to_string()),
        }
    } else if let Some(rest) = text.strip_prefix("Invalid URL: ") {
        (backticked(rest).unwrap_or_else(|| "path".into()), rest.to_string())
    } else if text.contains("query") {
        ("query".into(), text.to_string())
    } else if text.contains("path") {
        ("path".into(), text.to_string())
    } else {
        ("body".into(), text.to_string())
    };
    let detail: String = detail.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect();
    let field = shown(&field);
    ApiError { code: ErrorCode::Invalid, message: format!("{field}: {detail}"), fields: vec![FieldErrorBody { field, message: detail }] }
}

/// One step of a field's path: `.key` or `[index]`.
fn segment(s: &serde_path_to_error::Segment) -> String {
    use serde_path_to_error::Segment;
    match s {
        Segment::Seq { index } => format!("[{index}]"),
        Segment::Map { key } => format!(".{}", shown(key)),
        Segment::Enum { variant } => format!(".{variant}"),
        Segment::Unknown => ".?".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(body: &str) -> (String, String) {
        let e = parse_body::<CreateService>(body.as_bytes(), "not a service").unwrap_err();
        assert_eq!(e.code, ErrorCode::Invalid);
        assert_eq!(e.fields.len(), 1, "{e:?}");
        assert!(e.message.starts_with(&format!("not a service: {}: ", e.fields[0].field)), "{}", e.message);
        (e.fields[0].field.clone(), e.fields[0].message.clone())
    }

    const SPEC: &str = r#""engine":"redis","replicas":3,"zones":["a","b","c"],"volumes":{"data":{"size":"1Gi"}}"#;

    #[test]
    fn body_errors_name_the_field_by_its_json_path() {
        assert_eq!(field(&format!(r#"{{"name":"rd","spec":{{{SPEC},"colour":1}}}}"#)).0, "spec.colour");
        assert_eq!(field(r#"{"name":"rd"}"#).0, "spec");
        assert_eq!(field(r#"{"name":"rd","spec":{"engine":"redis","replicas":"three"}}"#).0, "spec.replicas");
        assert_eq!(field(r#"{"name":"rd","spec":{"engine":"mysql"}}"#).0, "spec.engine");
        assert_eq!(field(r#"{"name":"rd","spec":{"engine":"redis","replicas":3,"zones":["a",7]}}"#).0, "spec.zones[1]");
        let (f, m) = field(&format!(r#"{{"name":"rd","spec":{{{SPEC},"config":{{"hz":10}}}}}}"#));
        assert_eq!(f, "spec.config.hz");
        assert!(m.contains("expected a string"), "{m}");
        for replicas in ["-1", "99999999999", "1.5", "null", "[]"] {
            assert_eq!(field(&format!(r#"{{"name":"rd","spec":{{{}}}}}"#, SPEC.replace(":3,", &format!(":{replicas},")))).0, "spec.replicas", "{replicas}");
        }
        assert_eq!(field(&format!(r#"{{"name":"rd","spec":{{{SPEC},"replicas":3}}}}"#)).0, "spec.replicas", "a repeated key");
        assert_eq!(field(r#"{"":1}"#).0, r#""""#, "the empty key");
        assert_eq!(field(&format!(r#"{{"name":"rd","spec":{{{SPEC},"labels":{{"":[]}}}}}}"#)).0, r#"spec.labels."""#);
        assert_eq!(field(r#"[7]"#).0, "[0]");
        let (f, m) = field("{\"a\\u001b[2J\":1}");
        assert_eq!(f, r#""a\u{1b}[2J""#);
        assert!(!m.contains('\u{1b}'), "{m}");
        let valid = format!(r#"{{"name":"rd","spec":{{{SPEC}}}}}"#);
        for whole in ["", "not json", "42", "[]", "null", &format!("{valid} trailing")] {
            assert_eq!(field(whole).0, "body", "{whole:?}");
        }
        assert!(parse_body::<CreateService>(valid.as_bytes(), "x").is_ok());
    }

    #[test]
    fn rejections_name_what_could_not_be_read() {
        for (text, field) in [
            ("Failed to deserialize query string: deleteVolumes: provided string was not `true` or `false`", "deleteVolumes"),
            ("Failed to deserialize query string: invalid unicode", "query"),
            ("Invalid URL: Invalid UTF-8 in `name`", "name"),
            ("Invalid URL: Cannot parse `id` with value `x` to a `u32`", "id"),
            ("Failed to buffer the request body: length limit exceeded", "body"),
            ("Wrong number of path arguments for `Path`. Expected 1 but got 2", "path"),
        ] {
            let e = rejection(text);
            assert_eq!(e.code, ErrorCode::Invalid);
            assert_eq!(e.fields[0].field, field, "{text}");
            assert!(e.message.starts_with(&format!("{field}: ")), "{}", e.message);
        }
    }
}
