//! Refused requests say why and leave nothing behind: no record, no process, no directory, no
//! names in /etc/hosts.

mod common;

use std::sync::Arc;

use common::{Bed, spec, with_bed};
use serde_json::json;

async fn nothing_left(bed: &Arc<Bed>, name: &str) {
    assert!(bed.list().await.items.is_empty(), "no service recorded");
    assert!(!bed.cfg.service_dir(name).exists(), "no directory made");
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    assert!(!hosts.contains(&format!("{}-firecamp.com", bed.cfg.cluster)), "no names in /etc/hosts");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_engine_is_refused() {
    with_bed(
        "t-bad1",
        "127.0.140.1/10",
        |_| {},
        |bed| async move {
            let (status, e) = bed.create(json!({ "name": "db", "spec": spec("mysql", 1, "128Mi") })).await.unwrap_err();
            assert_eq!(status, 400);
            assert!(e.message.contains("unknown variant `mysql`"), "{}", e.message);
            nothing_left(&bed, "db").await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_even_zookeeper_ensemble_is_refused() {
    with_bed(
        "t-bad2",
        "127.0.141.1/10",
        |_| {},
        |bed| async move {
            let (status, e) = bed.create(json!({ "name": "zk", "spec": spec("zookeeper", 4, "512Mi") })).await.unwrap_err();
            assert_eq!(status, 400);
            assert!(e.fields.iter().any(|f| f.field == "spec.replicas" && f.message.contains("odd number")), "{e:?}");
            nothing_left(&bed, "zk").await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_address_is_refused() {
    common::require(firecamp_core::EngineKind::Redis);
    with_bed(
        "t-bad3",
        "127.0.142.1/10",
        |_| {},
        |bed| async move {
            // Another process holds the port on the address the first member would get.
            let _held = std::net::TcpListener::bind("127.0.142.1:6379").unwrap();
            let (status, e) = bed.create(json!({ "name": "rd", "spec": spec("redis", 3, "128Mi") })).await.unwrap_err();
            assert_eq!(status, 412);
            assert!(e.message.contains("127.0.142.1:6379") && e.message.contains("not free"), "{}", e.message);
            nothing_left(&bed, "rd").await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_server_binary_is_refused() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_path_buf();
    with_bed(
        "t-bad4",
        "127.0.143.1/10",
        move |c| c.bin_dirs.redis = Some(dir),
        |bed| async move {
            let (status, e) = bed.create(json!({ "name": "rd", "spec": spec("redis", 3, "128Mi") })).await.unwrap_err();
            assert_eq!(status, 503);
            assert!(e.message.contains("redis-server is not installed in"), "{}", e.message);
            nothing_left(&bed, "rd").await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsupported_version_is_refused() {
    common::require(firecamp_core::EngineKind::Postgresql);
    with_bed(
        "t-bad5",
        "127.0.144.1/10",
        |_| {},
        |bed| async move {
            let mut s = spec("postgresql", 1, "128Mi");
            s["version"] = json!("17");
            let (status, e) = bed.create(json!({ "name": "pg", "spec": s })).await.unwrap_err();
            assert!(status == 400 || status == 503, "{status}");
            assert!(e.message.contains("postgresql 17"), "{}", e.message);
            nothing_left(&bed, "pg").await;
        },
    )
    .await;
}
