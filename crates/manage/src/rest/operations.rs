//! `/v1/services/{name}/operations` (and `/stop`, `/start`, which are operations too): list,
//! ask for one, read one. Asking needs `update` on the service; reading, `get`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use firecamp_api::{ApiError, ErrorCode, Operation, OperationKind, OperationList, OperationRequest};

use super::AppState;
use super::auth::Access;
use super::error::{Fail, fail, kube_call};
use super::services::{Params, service_name, unreadable};
use crate::operations::{self, RequestError};

type St = State<Arc<AppState>>;

fn params(q: Result<Query<Params>, QueryRejection>) -> Result<Params, Fail> {
    q.map(|Query(p)| p).map_err(super::services::bad_query)
}

/// The body as an [`OperationRequest`]; a refusal names the field by its JSON path.
pub fn parse_request(body: &[u8]) -> Result<OperationRequest, Fail> {
    firecamp_api::parse_body(body, "the request body is not an operation").map_err(Fail::from)
}

pub fn request_error(e: RequestError, name: &str, ns: &str) -> Fail {
    match e {
        RequestError::NotFound(_) => fail(ErrorCode::NotFound, format!("service {name:?} does not exist in namespace {ns:?}")),
        RequestError::Busy(m) => Fail(ApiError::new(ErrorCode::Busy, m), None),
        RequestError::Invalid(v) => ApiError::from(v).into(),
        RequestError::Kube(k) => super::error::from_kube(&k, &format!("asking for an operation on {name:?}")).into(),
    }
}

async fn start_operation(st: &AppState, headers: &HeaderMap, name: &str, p: &Params, req: OperationRequest) -> Result<(StatusCode, Json<Operation>), Fail> {
    let ns = st.namespace(p)?;
    service_name(name)?;
    st.auth.authorize(headers, &Access { verb: "update", namespace: &ns, name: Some(name) }).await?;
    let op = operations::request(&st.api(&ns), &st.cluster, name, &req, crate::config::FIELD_MANAGER).await.map_err(|e| request_error(e, name, &ns))?;
    tracing::info!(service = %name, namespace = %ns, operation = %op.id, kind = %op.kind, "operation requested");
    Ok((StatusCode::ACCEPTED, Json(op)))
}

pub async fn create(
    State(st): St,
    headers: HeaderMap,
    Path(name): Path<String>,
    q: Result<Query<Params>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Operation>), Fail> {
    let p = params(q)?;
    let body = body.map_err(unreadable)?;
    start_operation(&st, &headers, &name, &p, parse_request(&body)?).await
}

pub async fn stop(
    State(st): St,
    headers: HeaderMap,
    Path(name): Path<String>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<(StatusCode, Json<Operation>), Fail> {
    start_operation(&st, &headers, &name, &params(q)?, OperationRequest { kind: Some(OperationKind::Stop), ..Default::default() }).await
}

pub async fn start(
    State(st): St,
    headers: HeaderMap,
    Path(name): Path<String>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<(StatusCode, Json<Operation>), Fail> {
    start_operation(&st, &headers, &name, &params(q)?, OperationRequest { kind: Some(OperationKind::Start), ..Default::default() }).await
}

pub async fn cancel(
    State(st): St,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<(StatusCode, Json<Operation>), Fail> {
    let ns = st.namespace(&params(q)?)?;
    service_name(&name)?;
    st.auth.authorize(&headers, &Access { verb: "update", namespace: &ns, name: Some(&name) }).await?;
    let op = operations::cancel(&st.api(&ns), &name, Some(&id), crate::config::FIELD_MANAGER).await.map_err(|e| request_error(e, &name, &ns))?;
    tracing::info!(service = %name, namespace = %ns, operation = %op.id, "cancel requested");
    Ok((StatusCode::ACCEPTED, Json(op)))
}

async fn all(st: &AppState, headers: &HeaderMap, name: &str, p: &Params) -> Result<Vec<Operation>, Fail> {
    let ns = st.namespace(p)?;
    service_name(name)?;
    st.auth.authorize(headers, &Access { verb: "get", namespace: &ns, name: Some(name) }).await?;
    let svc = kube_call(&format!("reading service {name:?}"), st.api(&ns).get_opt(name))
        .await?
        .ok_or_else(|| fail(ErrorCode::NotFound, format!("service {name:?} does not exist in namespace {ns:?}")))?;
    Ok(operations::list(&svc))
}

pub async fn list(State(st): St, headers: HeaderMap, Path(name): Path<String>, q: Result<Query<Params>, QueryRejection>) -> Result<Json<OperationList>, Fail> {
    Ok(Json(OperationList { items: all(&st, &headers, &name, &params(q)?).await? }))
}

pub async fn get(
    State(st): St,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Operation>, Fail> {
    let ops = all(&st, &headers, &name, &params(q)?).await?;
    ops.into_iter().find(|o| o.id == id).map(Json).ok_or_else(|| fail(ErrorCode::NotFound, format!("service {name:?} has no operation {id:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_name_unknown_fields() {
        let e = parse_request(br#"{"kind":"restart","polcy":"PrimaryLast"}"#).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(e.0.message.contains("polcy"), "{}", e.0.message);
        let e = parse_request(br#"{"kind":"reboot"}"#).unwrap_err();
        assert!(e.0.message.contains("reboot"), "{}", e.0.message);
    }

    #[test]
    fn a_busy_service_is_409_with_the_running_operation() {
        let f = request_error(RequestError::Busy("operation op-1 (upgrade) is Running".into()), "pg", "db");
        assert_eq!(f.status(), StatusCode::CONFLICT);
        assert!(f.0.message.contains("op-1"));
    }
}
