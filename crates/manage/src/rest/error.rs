//! Every failure of the REST API as a JSON [`ApiError`] with the status its code maps to.

use std::future::Future;
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use firecamp_api::{ApiError, ErrorCode, FieldErrorBody};

/// How long one Kubernetes call may take before the API answers 503.
pub const KUBE_TIMEOUT: Duration = Duration::from_secs(15);

/// An error response: the body, and the status when it is not the one the code maps to
/// (405, 501).
#[derive(Debug)]
pub struct Fail(pub ApiError, pub Option<StatusCode>);

impl Fail {
    pub fn status(&self) -> StatusCode {
        self.1.unwrap_or_else(|| StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
    }
}

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Self {
        Fail(e, None)
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        (self.status(), Json(self.0)).into_response()
    }
}

pub fn fail(code: ErrorCode, message: impl Into<String>) -> Fail {
    Fail(ApiError::new(code, message), None)
}

/// A 400 naming one field.
pub fn invalid_field(field: &str, message: impl Into<String>) -> Fail {
    let message = message.into();
    Fail(ApiError { code: ErrorCode::Invalid, message: format!("{field}: {message}"), fields: vec![FieldErrorBody { field: field.into(), message }] }, None)
}

/// What a failed Kubernetes call means to the API's client. `what` says what was being done
/// ("creating service zk"). Statuses FireCamp gives its own meaning (404, 409) are usually
/// handled by the caller first, with a better message.
pub fn from_kube(e: &kube::Error, what: &str) -> ApiError {
    match e {
        kube::Error::Api(s) => {
            let msg = format!("{what}: {}", s.message);
            match s.code {
                404 => ApiError::new(ErrorCode::NotFound, msg),
                409 if s.reason == "AlreadyExists" => ApiError::new(ErrorCode::AlreadyExists, msg),
                // A resourceVersion or uid precondition failed: another change won the race.
                409 => ApiError::new(ErrorCode::Conflict, format!("{msg} (read the service again and retry)")),
                400 | 422 => ApiError::new(ErrorCode::Invalid, msg),
                401 | 403 => ApiError::new(ErrorCode::Internal, format!("{what}: Kubernetes refused the manage service's own credentials: {}", s.message)),
                429 | 500..=599 => ApiError::new(ErrorCode::Unavailable, format!("{what}: Kubernetes is unavailable: {}", s.message)),
                _ => ApiError::new(ErrorCode::Internal, msg),
            }
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::HttpError(_) => {
            ApiError::new(ErrorCode::Unavailable, format!("{what}: Kubernetes is unreachable: {e}"))
        }
        other => ApiError::new(ErrorCode::Internal, format!("{what}: {other}")),
    }
}

/// One Kubernetes call, bounded by [`KUBE_TIMEOUT`] (then 503).
pub async fn kube_call<T>(what: &str, fut: impl Future<Output = Result<T, kube::Error>>) -> Result<T, Fail> {
    kube_call_within(KUBE_TIMEOUT, what, fut).await
}

async fn kube_call_within<T>(limit: Duration, what: &str, fut: impl Future<Output = Result<T, kube::Error>>) -> Result<T, Fail> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(from_kube(&e, what).into()),
        Err(_) => Err(fail(ErrorCode::Unavailable, format!("{what}: Kubernetes did not answer within {} ms", limit.as_millis()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Box::new(Status { code, reason: reason.into(), message: "m".into(), ..Status::failure("m", reason) }))
    }

    #[test]
    fn kubernetes_statuses_map_to_api_codes() {
        let cases = [
            (404, "NotFound", ErrorCode::NotFound, 404),
            (409, "AlreadyExists", ErrorCode::AlreadyExists, 409),
            (409, "Conflict", ErrorCode::Conflict, 412),
            (422, "Invalid", ErrorCode::Invalid, 400),
            (400, "BadRequest", ErrorCode::Invalid, 400),
            (403, "Forbidden", ErrorCode::Internal, 500),
            (429, "TooManyRequests", ErrorCode::Unavailable, 503),
            (503, "ServiceUnavailable", ErrorCode::Unavailable, 503),
            (500, "InternalError", ErrorCode::Unavailable, 503),
        ];
        for (code, reason, want, http) in cases {
            let e = from_kube(&api(code, reason), "doing x");
            assert_eq!(e.code, want, "{code} {reason}");
            assert_eq!(Fail::from(e.clone()).status().as_u16(), http);
            assert!(e.message.starts_with("doing x: "), "{}", e.message);
        }
    }

    #[test]
    fn unreachable_kubernetes_is_503() {
        let e = kube::Error::Service("connection refused".into());
        assert_eq!(from_kube(&e, "listing").code, ErrorCode::Unavailable);
    }

    #[tokio::test]
    async fn a_slow_kubernetes_is_503() {
        let r: Result<(), Fail> = kube_call_within(Duration::from_millis(10), "reading", futures::future::pending()).await;
        assert_eq!(r.unwrap_err().status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn explicit_status_wins() {
        let f = Fail(ApiError::new(ErrorCode::Unavailable, "later"), Some(StatusCode::NOT_IMPLEMENTED));
        assert_eq!(f.status(), StatusCode::NOT_IMPLEMENTED);
        assert_eq!(invalid_field("namespace", "bad").0.fields[0].field, "namespace");
    }
}
