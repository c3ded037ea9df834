//! The manage service's REST API (firecamp-api) over the local runtime.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use firecamp_api::{ApiError, CreateService, DeleteQuery, ErrorCode, Operation, OperationList, OperationRequest, ServiceList, paths};
use serde::Deserialize;

use crate::error::LocalError;
use crate::logs::{line_since, parse_since};
use crate::runtime::Runtime;

type Rt = State<Arc<Runtime>>;

struct Fail(ApiError, Option<StatusCode>);

impl From<LocalError> for Fail {
    fn from(e: LocalError) -> Self {
        Fail(e.into(), None)
    }
}

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Self {
        Fail(e, None)
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let status = self.1.unwrap_or_else(|| StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        (status, Json(self.0)).into_response()
    }
}

type Res<T> = Result<T, Fail>;

pub fn router(rt: Arc<Runtime>, token: Arc<crate::guard::Token>) -> Router {
    Router::new()
        .route(paths::HEALTH, get(|| async { "ok\n" }))
        .route(paths::METRICS, get(metrics))
        .route(paths::SERVICES, get(list).post(create))
        .route("/v1/services/{name}", get(get_one).delete(delete))
        .route("/v1/services/{name}/members", get(members))
        .route("/v1/services/{name}/ca", get(service_ca))
        .route("/v1/services/{name}/stop", post(stop))
        .route("/v1/services/{name}/start", post(start))
        .route("/v1/services/{name}/logs", get(logs))
        .route("/v1/services/{name}/operations", get(operations).post(submit_operation))
        .route("/v1/services/{name}/operations/{id}", get(operation))
        .route("/v1/services/{name}/operations/{id}/cancel", post(cancel_operation))
        .route("/v1/services/{name}/backups", get(backups))
        .route("/v1/services/{name}/backups/{id}", axum::routing::delete(delete_backup))
        .route("/v1/services/{name}/restore", post(restore))
        .fallback(|| async { Fail::from(ApiError::new(ErrorCode::NotFound, "no such path in the FireCamp API")) })
        .layer(axum::middleware::map_response(json_errors))
        .with_state(rt.clone())
        .layer(axum::middleware::from_fn_with_state(token, crate::guard::check))
        // Outermost, so refused requests are counted too.
        .layer(axum::middleware::from_fn_with_state(rt, crate::metrics::track))
}

/// FireCamp's own metrics in Prometheus' text format (docs/monitoring.md).
async fn metrics(State(rt): Rt) -> Res<Response> {
    let text = crate::metrics::render(&rt).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// An extractor's rejection (a body over the limit, a query parameter of the wrong type, a path
/// segment that is not UTF-8) is plain text from axum: it becomes an [`ApiError`] naming what
/// could not be read, like every other error.
async fn json_errors(resp: Response) -> Response {
    let mut resp = as_json(resp).await;
    // A body over the limit is left unread on the connection: the client must not reuse it, or
    // its next request meets the server closing it.
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        resp.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    }
    resp
}

async fn as_json(resp: Response) -> Response {
    let json = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !resp.status().is_client_error() || json {
        return resp;
    }
    let status = resp.status();
    let text = axum::body::to_bytes(resp.into_body(), 64 << 10).await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    Fail(firecamp_api::rejection(&text), Some(status)).into_response()
}

async fn list(State(rt): Rt) -> Res<Json<ServiceList>> {
    Ok(Json(ServiceList { items: rt.list().await? }))
}

/// The body is parsed here, not by axum's extractor, so a bad body is an `Invalid` API error
/// that names the field (an unknown engine, a missing field, a value of the wrong type).
async fn create(State(rt): Rt, body: Bytes) -> Res<impl IntoResponse> {
    let req: CreateService = firecamp_api::parse_body(&body, "the request body is not a service")?;
    let svc = rt.create(req).await?;
    Ok((StatusCode::CREATED, Json(svc)))
}

async fn get_one(State(rt): Rt, Path(name): Path<String>) -> Res<Json<firecamp_api::Service>> {
    Ok(Json(rt.get(&name).await?))
}

async fn members(State(rt): Rt, Path(name): Path<String>) -> Res<Json<Vec<firecamp_api::MemberStatus>>> {
    Ok(Json(rt.get(&name).await?.status.members))
}

/// The certificate of the service's CA (not a secret: the key stays in the runtime's record).
async fn service_ca(State(rt): Rt, Path(name): Path<String>) -> Res<Json<firecamp_api::ServiceCa>> {
    Ok(Json(rt.service_ca(&name)?))
}

async fn delete(State(rt): Rt, Path(name): Path<String>, Query(q): Query<DeleteQuery>) -> Res<Json<firecamp_api::Service>> {
    Ok(Json(rt.delete(&name, q.delete_volumes).await?))
}

/// `GET …/operations`: newest first.
async fn operations(State(rt): Rt, Path(name): Path<String>) -> Res<Json<OperationList>> {
    Ok(Json(OperationList { items: rt.operations(&name)? }))
}

/// `POST …/operations/{id}/cancel`: 202; no further step starts.
async fn cancel_operation(State(rt): Rt, Path((name, id)): Path<(String, String)>) -> Res<impl IntoResponse> {
    Ok((StatusCode::ACCEPTED, Json(rt.cancel_operation(&name, &id)?)))
}

async fn operation(State(rt): Rt, Path((name, id)): Path<(String, String)>) -> Res<Json<Operation>> {
    Ok(Json(rt.operation(&name, &id)?))
}

/// `POST …/operations`: 202 with the recorded operation; 400 naming the field, 409 while
/// another operation of the service is not finished.
async fn submit_operation(State(rt): Rt, Path(name): Path<String>, body: Bytes) -> Res<impl IntoResponse> {
    let req: OperationRequest = firecamp_api::parse_body(&body, "the request body is not an operation request")?;
    let op = rt.submit_operation(&name, req).await?;
    Ok((StatusCode::ACCEPTED, Json(op)))
}

/// `GET …/backups`: newest first.
async fn backups(State(rt): Rt, Path(name): Path<String>) -> Res<Json<firecamp_api::BackupList>> {
    Ok(Json(firecamp_api::BackupList { items: rt.backups(&name).await? }))
}

async fn delete_backup(State(rt): Rt, Path((name, id)): Path<(String, String)>) -> Res<Json<firecamp_api::Backup>> {
    Ok(Json(rt.delete_backup(&name, &id).await?))
}

/// `POST …/restore`: 201 with the new service; 400 naming the field, nothing made.
async fn restore(State(rt): Rt, Path(name): Path<String>, body: Bytes) -> Res<impl IntoResponse> {
    let req: firecamp_api::RestoreRequest = firecamp_api::parse_body(&body, "the request body is not a restore request")?;
    let svc = rt.restore(&name, req).await?;
    Ok((StatusCode::CREATED, Json(svc)))
}

async fn stop(State(rt): Rt, Path(name): Path<String>) -> Res<Json<firecamp_api::Service>> {
    Ok(Json(rt.stop(&name).await?))
}

async fn start(State(rt): Rt, Path(name): Path<String>) -> Res<Json<firecamp_api::Service>> {
    Ok(Json(rt.start(&name).await?))
}

#[derive(Deserialize)]
struct LogsQuery {
    member: Option<String>,
    since: Option<String>,
    #[serde(default)]
    follow: bool,
}

/// Lines of one member, or of all (each prefixed with its member's name, merged by time).
async fn logs(State(rt): Rt, Path(name): Path<String>, Query(q): Query<LogsQuery>) -> Res<Response> {
    let since = match q.since.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(parse_since(s, SystemTime::now()).map_err(|e| Fail::from(LocalError::invalid("since", e)))?),
        None => None,
    };
    let sinks = rt.member_logs(&name, q.member.as_deref().filter(|m| !m.is_empty()))?;
    let prefix = sinks.len() > 1;
    let tag = move |member: &str, line: &str| {
        if prefix { format!("[{member}] {line}") } else { line.to_string() }
    };
    let mut backlog: Vec<(String, String)> = Vec::new();
    let mut receivers = Vec::new();
    for (member, sink) in &sinks {
        let text = if q.follow {
            let (text, rx) = sink.snapshot_and_follow();
            receivers.push((member.clone(), rx));
            text
        } else {
            sink.snapshot()
        };
        for line in text.lines().filter(|l| since.is_none_or(|s| line_since(l, s))) {
            backlog.push((line.to_string(), member.clone()));
        }
    }
    // Lines start with their time, so sorting the text merges the members' logs in time order.
    backlog.sort();
    let head: String = backlog.iter().map(|(l, m)| tag(m, l) + "\n").collect();
    let headers = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    if !q.follow {
        return Ok((headers, head).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(256);
    let _ = tx.send(Ok(Bytes::from(head))).await;
    for (member, mut r) in receivers {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                match r.recv().await {
                    Ok(line) => {
                        let text = if prefix { format!("[{member}] {line}") } else { line };
                        if tx.send(Ok(Bytes::from(text))).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        let _ = tx.send(Ok(Bytes::from(format!("[{member}] … {n} lines skipped\n")))).await;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
    drop(tx);
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    Ok((headers, body).into_response())
}
