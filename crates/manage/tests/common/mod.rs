//! The REST API in process, over a fake Kubernetes API that approves every token and access
//! review, holds one service (`rd`, Redis, 3 members, in `default`; and `pg`, PostgreSQL, to read), answers writes as the API
//! server would, and records every request, so a test can see what reached Kubernetes.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::body::Body as AxumBody;
use axum::http::{Method, Request, Response, StatusCode, header};
use firecamp_core::{ClusterConfig, EngineKind};
use firecamp_manage::crd::{FireCampService, FireCampServiceSpec};
use firecamp_manage::rest::{AppState, router};
use serde_json::{Value, json};
use tower::ServiceExt;

/// One request Kubernetes received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    /// The fake's answer.
    pub code: u16,
}

impl Seen {
    /// A write the API server carried out (a PATCH of a service that does not exist, answered
    /// 404, wrote nothing).
    pub fn is_write(&self) -> bool {
        matches!(self.method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE) && !self.path.ends_with("reviews") && self.code < 300
    }
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

const SERVICES: &str = "/apis/firecamp.dev/v1alpha1/namespaces/";

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({ "apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": reason, "message": message, "code": code })
}

/// A 3-member service of `engine` in `default` as the API server stores it.
fn stored(name: &str, engine: EngineKind, uid_suffix: u8) -> Value {
    let mut svc = FireCampService::new(name, FireCampServiceSpec(firecamp_catalog::examples::spec(engine, 3)));
    svc.metadata.namespace = Some("default".into());
    svc.metadata.resource_version = Some("1".into());
    svc.metadata.uid = Some(format!("0b6f1d2e-0000-4000-8000-00000000000{uid_suffix}"));
    serde_json::to_value(&svc).unwrap()
}

/// The service `pg` (PostgreSQL), readable only: for refusals that depend on the engine.
pub fn pg() -> Value {
    stored("pg", EngineKind::Postgresql, 3)
}

/// The service `zk` (ZooKeeper), readable only.
pub fn zk() -> Value {
    stored("zk", EngineKind::Zookeeper, 4)
}

/// The service `rd` as the API server stores it.
pub fn rd() -> Value {
    stored("rd", EngineKind::Redis, 1)
}

/// The answer of the fake API server to one request.
fn answer(method: &Method, path: &str, body: &[u8]) -> (u16, Value) {
    if path.ends_with("/tokenreviews") {
        return (
            201,
            json!({ "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {}, "status": { "authenticated": true, "audiences": ["firecamp"], "user": { "username": "tenant", "groups": ["system:authenticated"] } } }),
        );
    }
    if path.ends_with("/subjectaccessreviews") {
        // The tenant may do anything but read the service `private`.
        let asked: Value = serde_json::from_slice(body).unwrap_or_default();
        let r = &asked["spec"]["resourceAttributes"];
        let allowed = !(r["verb"] == "get" && r["name"] == "private");
        return (201, json!({ "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {}, "status": { "allowed": allowed } }));
    }
    let Some(rest) = path.strip_prefix(SERVICES) else {
        return (404, status(404, "NotFound", "the fake API server serves FireCampServices only"));
    };
    let (ns, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let name = rest.strip_prefix("firecampservices").map(|n| n.trim_start_matches('/'));
    match (method.clone(), name) {
        (Method::GET, Some("")) => (
            200,
            json!({ "apiVersion": "firecamp.dev/v1alpha1", "kind": "FireCampServiceList", "metadata": {}, "items": if ns == "default" { vec![rd()] } else { vec![] } }),
        ),
        (Method::POST, Some("")) => {
            let Ok(mut obj) = serde_json::from_slice::<Value>(body) else {
                return (400, status(400, "BadRequest", "not JSON"));
            };
            obj["metadata"]["namespace"] = ns.into();
            obj["metadata"]["uid"] = "0b6f1d2e-0000-4000-8000-000000000002".into();
            obj["metadata"]["resourceVersion"] = "2".into();
            (201, obj)
        }
        (Method::GET | Method::PATCH | Method::DELETE, Some("rd")) if ns == "default" => (200, rd()),
        (Method::GET, Some("pg")) if ns == "default" => (200, pg()),
        (Method::GET, Some("zk")) if ns == "default" => (200, zk()),
        (Method::PUT, Some("rd")) if ns == "default" => match serde_json::from_slice::<Value>(body) {
            Ok(mut obj) => {
                obj["metadata"]["resourceVersion"] = "2".into();
                (200, obj)
            }
            Err(_) => (400, status(400, "BadRequest", "not JSON")),
        },
        (_, Some(n)) => (404, status(404, "NotFound", &format!("firecampservices.firecamp.dev {n:?} not found"))),
        (_, None) => (404, status(404, "NotFound", "no such resource")),
    }
}

/// A Kubernetes client whose API server is [`answer`]; `seen` gets every request.
pub fn fake_kube(seen: Arc<Mutex<Vec<Seen>>>) -> kube::Client {
    let service = tower::service_fn(move |req: Request<kube::client::Body>| {
        let seen = seen.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect_bytes().await.unwrap_or_default();
            let (code, answer) = answer(&parts.method, parts.uri.path(), &body);
            seen.lock().unwrap().push(Seen { method: parts.method.clone(), path: parts.uri.path().to_string(), code });
            let resp = Response::builder()
                .status(code)
                .header(header::CONTENT_TYPE, "application/json")
                .body(kube::client::Body::from(serde_json::to_vec(&answer).unwrap()));
            Ok::<_, std::convert::Infallible>(resp.unwrap())
        }
    });
    kube::Client::new(service, "default")
}

/// The REST API over the fake Kubernetes, and what reached it.
#[derive(Clone)]
pub struct App {
    pub router: axum::Router,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl App {
    pub fn new() -> App {
        App::with_cluster(ClusterConfig::new("test"))
    }

    /// A manage service configured with `cluster` (e.g. its zones, `install render --zones`).
    pub fn with_cluster(cluster: ClusterConfig) -> App {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let router = router(Arc::new(AppState::new(fake_kube(seen.clone()), cluster, None)));
        App { router, seen }
    }

    /// One request with the tenant's token; the status, the body, and what reached Kubernetes
    /// meanwhile.
    pub async fn call(&self, method: Method, uri: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>, Vec<Seen>) {
        let (status, _, bytes, seen) = self.call_with_headers(method, uri, body).await;
        (status, bytes, seen)
    }

    /// As [`Self::call`], with the answer's headers.
    pub async fn call_with_headers(&self, method: Method, uri: &str, body: Vec<u8>) -> (StatusCode, header::HeaderMap, Vec<u8>, Vec<Seen>) {
        self.seen.lock().unwrap().clear();
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, "Bearer tenant-token")
            .header(header::CONTENT_TYPE, "application/json")
            .body(AxumBody::from(body))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20).await.unwrap();
        let seen = std::mem::take(&mut *self.seen.lock().unwrap());
        (status, headers, bytes.to_vec(), seen)
    }
}

/// Whether a request stays on the reviews and on FireCampServices named by a DNS label in a
/// namespace named by one: a name from a request never walks out of its collection.
pub fn confined(s: &Seen) -> bool {
    let label = |x: &str| !x.is_empty() && x.len() <= 63 && x.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if s.path == "/apis/authentication.k8s.io/v1/tokenreviews" || s.path == "/apis/authorization.k8s.io/v1/subjectaccessreviews" {
        return true;
    }
    let Some(rest) = s.path.strip_prefix(SERVICES) else { return false };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [ns, "firecampservices"] => label(ns),
        [ns, "firecampservices", name] => label(ns) && label(name),
        _ => false,
    }
}
