//! The REST API of the manage service on Kubernetes (`firecamp_api`'s paths and bodies): a thin
//! layer over the FireCampService resources, served by every replica (it only reads and writes
//! resources; the leader's controller does the work).
//!
//! Every `/v1` request carries a bearer token that Kubernetes reviews (TokenReview) and the
//! cluster's RBAC authorises (SubjectAccessReview on `firecampservices.firecamp.dev` in the
//! request's `?namespace=`, `default` when absent). `/metrics` takes an ordinary ServiceAccount
//! token and RBAC's `get` on that non-resource URL (docs/monitoring.md). `/healthz`, `/readyz`
//! and `/openapi.json` need none. Errors are always JSON [`firecamp_api::ApiError`]s.

pub mod auth;
pub mod backups;
pub mod ca;
pub mod ca_store;
pub mod error;
pub mod logs;
pub mod metrics;
pub mod openapi;
pub mod operations;
pub mod ready;
pub mod services;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use firecamp_api::{ApiError, ErrorCode, paths};
use firecamp_core::ClusterConfig;
use futures::FutureExt;
use kube::Client;

use error::{Fail, fail};

pub const METRICS_PATH: &str = "/metrics";

/// Where and how the API is served.
#[derive(Debug, Clone)]
pub struct RestConfig {
    pub listen: SocketAddr,
    /// HTTPS, with a certificate from these files or minted from FireCamp's CA; plain HTTP
    /// when `None` (see [`check_listen`]).
    pub tls: Option<Tls>,
    /// The manage service's cluster (its namespace is each request's).
    pub cluster: ClusterConfig,
    /// The namespace the controller watches, when only one: the API refuses the others.
    pub watch_namespace: Option<String>,
    /// CloudWatch Logs for the logs endpoint, when the cluster runs in AWS.
    pub cloud: crate::cloud::Cloud,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub enum Tls {
    Files(TlsFiles),
    /// The CA kept in Secret `namespace/secret` (made when missing, published in the ConfigMap
    /// of that name); each replica mints its serving certificate for `names` and `ips`.
    OwnCa {
        namespace: String,
        secret: String,
        names: Vec<String>,
        ips: Vec<IpAddr>,
    },
}

/// Plain HTTP only on loopback, or when the operator said so: bearer tokens would otherwise
/// cross the network in the clear. The error names the flags that fix it.
pub fn check_listen(listen: SocketAddr, tls: bool, insecure_http: bool) -> Result<(), String> {
    if tls || insecure_http || listen.ip().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "--listen {listen} is not a loopback address and the REST API would serve plain HTTP: give --tls-ca-secret NAME (a CA FireCamp makes and keeps in that Secret), \
         or --tls-cert and --tls-key, or accept clear-text bearer tokens with --insecure-http"
    ))
}

pub struct AppState {
    pub client: Client,
    pub auth: auth::Authenticator,
    pub cluster: ClusterConfig,
    pub watch_namespace: Option<String>,
    pub cloud: crate::cloud::Cloud,
    /// `/readyz`'s last answer.
    pub readiness: ready::Readiness,
}

impl AppState {
    pub fn new(client: Client, cluster: ClusterConfig, watch_namespace: Option<String>) -> Self {
        AppState { auth: auth::Authenticator::new(client.clone()), client, cluster, watch_namespace, cloud: Default::default(), readiness: Default::default() }
    }
}

/// `/readyz`: 200 when the Kubernetes API answers within 2 s, else 503: a replica cut off from
/// the API server serves nothing useful, but is not dead (`/healthz`). It needs no token, so
/// the answer is kept for 5 s and one check runs at a time ([`ready::Readiness`]).
async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    if state.readiness.check(&state.client).await {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "the Kubernetes API does not answer\n")
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let name = "{name}";
    Router::new()
        .route(paths::SERVICES, get(services::list).post(services::create))
        .route(&paths::service(name), get(services::get).delete(services::delete))
        .route(&paths::members(name), get(services::members))
        .route(&paths::ca(name), get(services::ca))
        .route(&paths::stop(name), post(operations::stop))
        .route(&paths::start(name), post(operations::start))
        .route(&paths::operations(name), get(operations::list).post(operations::create))
        .route(&paths::operation(name, "{id}"), get(operations::get))
        .route(&paths::cancel_operation(name, "{id}"), post(operations::cancel))
        .route(&paths::logs(name), get(logs::logs))
        .route(&paths::backups(name), get(backups::list))
        .route(&paths::backup(name, "{id}"), axum::routing::delete(backups::delete))
        .route(&paths::restore(name), post(backups::restore))
        .route(paths::HEALTH, get(|| async { "ok\n" }))
        .route(paths::READY, get(ready))
        .route(METRICS_PATH, get(metrics::serve))
        .route(paths::OPENAPI, get(|| async { Json(openapi::document()) }))
        .fallback(|| async { fail(ErrorCode::NotFound, "no such path in the FireCamp API (see /openapi.json)") })
        .method_not_allowed_fallback(|| async {
            Fail(ApiError::new(ErrorCode::Invalid, "method not allowed on this path (see /openapi.json)"), Some(StatusCode::METHOD_NOT_ALLOWED))
        })
        .layer(middleware::map_response(json_errors))
        .layer(middleware::from_fn(catch_panic))
        .layer(middleware::from_fn(metrics::track))
        .with_state(state)
}

/// An extractor's rejection (a path segment that is not UTF-8, …) is plain text from axum: it
/// becomes an [`ApiError`] naming what could not be read, like every other error.
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

/// A handler that panics answers 500 like any other error, and the server goes on.
async fn catch_panic(req: Request, next: Next) -> Response {
    match std::panic::AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::error!("a request handler panicked");
            fail(ErrorCode::Internal, "internal error").into_response()
        }
    }
}

/// Serves the API until the process ends; an error when it cannot listen or load its TLS files.
pub async fn serve(client: Client, config: RestConfig) -> anyhow::Result<()> {
    let source = match config.tls {
        Some(Tls::Files(f)) => Some(tls::CertSource::Files { cert: f.cert, key: f.key }),
        Some(Tls::OwnCa { namespace, secret, names, ips }) => {
            let ca = ca_store::ensure(&client, &namespace, &secret).await.context("the REST API's CA")?;
            Some(tls::CertSource::Minted { ca, names, ips })
        }
        None => None,
    };
    let tcp = tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("listening on {}", config.listen))?;
    let addr = tcp.local_addr().unwrap_or(config.listen);
    let app = router(Arc::new(AppState { cloud: config.cloud, ..AppState::new(client, config.cluster, config.watch_namespace) }));
    match source {
        Some(source) => {
            let tls = tls::server_config(source)?;
            tracing::info!(%addr, "REST API listening on https");
            axum::serve(tls::TlsListener::new(tcp, tls)?, app).await.context("serving the REST API")
        }
        None => {
            tracing::warn!(%addr, "REST API listening on plain HTTP: bearer tokens cross the network in the clear; see --tls-ca-secret");
            axum::serve(tcp, app).await.context("serving the REST API")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Method;
    use tower::ServiceExt;

    /// A router whose Kubernetes is a closed port: what is answered without Kubernetes, and
    /// what happens when it is unreachable.
    fn app() -> Router {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        // kube brings ring, other workspace crates aws-lc-rs: pick one, as the binary does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::try_from(config).unwrap();
        router(Arc::new(AppState::new(client, ClusterConfig::new("test"), None)))
    }

    async fn call(method: Method, uri: &str, token: Option<&str>) -> (StatusCode, Vec<u8>) {
        let mut req = axum::http::Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let resp = app().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, body.to_vec())
    }

    fn api_error(body: &[u8]) -> ApiError {
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("not an ApiError ({e}): {}", String::from_utf8_lossy(body)))
    }

    #[tokio::test]
    async fn open_endpoints_need_no_token_and_metrics_does() {
        assert_eq!(call(Method::GET, "/healthz", None).await.0, StatusCode::OK);
        let (s, body) = call(Method::GET, "/openapi.json", None).await;
        assert_eq!(s, StatusCode::OK);
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(doc["paths"]["/v1/services/{name}/members"].is_object());
        // `/metrics` names tenants' services: a token is required (RBAC decides, on the bed).
        let (s, body) = call(Method::GET, "/metrics", None).await;
        assert_eq!((s, api_error(&body).code), (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized));
    }

    #[tokio::test]
    async fn errors_are_json() {
        let (s, body) = call(Method::GET, "/v1/services", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(api_error(&body).code, ErrorCode::Unauthorized);
        let (s, body) = call(Method::GET, "/nowhere", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(api_error(&body).code, ErrorCode::NotFound);
        let (s, body) = call(Method::PUT, "/v1/services", None).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
        api_error(&body);
        let (s, body) = call(Method::POST, "/v1/services/zk/stop", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        api_error(&body);
        let (s, body) = call(Method::GET, "/v1/services?namespace=Not_A_Label", Some("t")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(api_error(&body).fields[0].field, "namespace");
    }

    #[tokio::test]
    async fn unreachable_kubernetes_is_503() {
        let (s, body) = call(Method::GET, "/v1/services", Some("some-token")).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{}", String::from_utf8_lossy(&body));
        assert_eq!(api_error(&body).code, ErrorCode::Unavailable);
    }
}
