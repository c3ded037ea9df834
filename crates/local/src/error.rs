//! The runtime's errors, each mapped to the API error a client sees.

use firecamp_api::{ApiError, ErrorCode};
use firecamp_core::ValidationErrors;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{0}")]
    Invalid(#[from] ValidationErrors),
    #[error("{0}")]
    BadRequest(String),
    #[error("service {0:?} does not exist")]
    NotFound(String),
    /// Something other than a service is not there (an operation).
    #[error("{0}")]
    Missing(String),
    #[error("service {0:?} already exists")]
    AlreadyExists(String),
    /// A needed server binary or an address is not available on this machine.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Conflict(String),
    /// Another operation of the service is under way (HTTP 409).
    #[error("{0}")]
    Busy(String),
    #[error("store: {0}")]
    Store(String),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("{0}")]
    Internal(String),
}

impl LocalError {
    /// A 400 naming one field.
    pub fn invalid(field: &str, message: impl Into<String>) -> LocalError {
        let mut errs = ValidationErrors::default();
        errs.push(field, message);
        LocalError::Invalid(errs)
    }

    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LocalError {
        let context = context.into();
        move |source| LocalError::Io { context, source }
    }
}

impl From<LocalError> for ApiError {
    fn from(e: LocalError) -> Self {
        let code = match &e {
            LocalError::Invalid(v) => return ApiError::from(v.clone()),
            LocalError::BadRequest(_) => ErrorCode::Invalid,
            LocalError::NotFound(_) | LocalError::Missing(_) => ErrorCode::NotFound,
            LocalError::AlreadyExists(_) => ErrorCode::AlreadyExists,
            LocalError::Unavailable(_) => ErrorCode::Unavailable,
            LocalError::Conflict(_) => ErrorCode::Conflict,
            LocalError::Busy(_) => ErrorCode::Busy,
            LocalError::Store(_) | LocalError::Io { .. } | LocalError::Internal(_) => ErrorCode::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

pub type Result<T, E = LocalError> = std::result::Result<T, E>;
