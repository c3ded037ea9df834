//! The REST API of FireCamp's manage service, as plain types. The Kubernetes manage service and
//! the local runtime serve it; the CLI is its client. Paths are under `/v1`; bodies are JSON
//! with camelCase fields; errors are [`ApiError`] with the HTTP status its code maps to.

pub use firecamp_core::operation::{Operation, OperationKind, OperationList, OperationPhase, OperationRequest, OperationStep, StepAction, UpdatePolicy};
use firecamp_core::{FieldError, ServiceSpec, ValidationErrors};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the local runtime's manage service listens (the original FireCamp's port).
pub const LOCAL_ADDR: &str = "127.0.0.1:27040";

pub mod since;

pub mod paths {
    pub const SERVICES: &str = "/v1/services";
    pub const HEALTH: &str = "/healthz";
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
