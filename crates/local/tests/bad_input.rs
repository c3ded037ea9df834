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

/// Issue #12, items 2 and 5: a parameter that would run a command or load code in a member (the
/// local runtime's members run real servers on this machine), a value out of its range, and a
/// reserved annotation are each refused with 400 naming the field, and nothing is created.
#[tokio::test(flavor = "multi_thread")]
async fn dangerous_parameters_and_reserved_annotations_are_refused_at_create() {
    with_bed(
        "t-bad6",
        "127.0.145.1/10",
        |_| {},
        |bed| async move {
            let cases = [
                ("redis", json!({ "loadmodule": "/tmp/evil.so" }), "spec.config.loadmodule", "not an allowed Redis parameter"),
                ("redis", json!({ "rename-command": "CONFIG x" }), "spec.config.rename-command", "FireCamp sets rename-command itself"),
                ("redis", json!({ "appendfsync": "sometimes" }), "spec.config.appendfsync", "one of `always`, `everysec`, `no`"),
                ("postgresql", json!({ "archive_command": "sh -c id" }), "spec.config.archive_command", "not an allowed PostgreSQL parameter"),
                ("postgresql", json!({ "shared_preload_libraries": "/tmp/evil.so" }), "spec.config.shared_preload_libraries", "not an allowed"),
                ("postgresql", json!({ "checkpoint_timeout": "1s" }), "spec.config.checkpoint_timeout", "30s to 1d"),
                ("zookeeper", json!({ "serverCnxnFactory": "org.evil.Factory" }), "spec.config.serverCnxnFactory", "FireCamp sets serverCnxnFactory itself"),
                ("zookeeper", json!({ "authProvider.1": "org.evil.Provider" }), "spec.config.authProvider.1", "not an allowed ZooKeeper parameter"),
            ];
            for (engine, config, field, want) in cases {
                let mut s = spec(engine, 1, "128Mi");
                s["config"] = config;
                let (status, e) = bed.create(json!({ "name": "x", "spec": s })).await.unwrap_err();
                assert_eq!(status, 400, "{field}");
                assert!(e.fields.iter().any(|f| f.field == field && f.message.contains(want)), "{field}: {e:?}");
                nothing_left(&bed, "x").await;
            }
            let mut s = spec("redis", 1, "128Mi");
            s["annotations"] = json!({ "storageclass.kubernetes.io/is-default-class": "true" });
            let (status, e) = bed.create(json!({ "name": "x", "spec": s })).await.unwrap_err();
            assert_eq!(status, 400);
            assert!(e.fields.iter().any(|f| f.field.contains("storageclass.kubernetes.io/is-default-class") && f.message.contains("reserved")), "{e:?}");
            nothing_left(&bed, "x").await;
        },
    )
    .await;
}

/// The same refusals on a `config` operation of a running service: 400 naming the key, no
/// operation recorded, the member's file unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn dangerous_parameters_are_refused_by_config_operations() {
    common::require(firecamp_core::EngineKind::Redis);
    with_bed(
        "t-bad7",
        "127.0.146.1/10",
        |_| {},
        |bed| async move {
            bed.create(json!({ "name": "rd", "spec": spec("redis", 1, "128Mi") })).await.unwrap();
            bed.wait_phase("rd", firecamp_api::Phase::Active, std::time::Duration::from_secs(60)).await;
            let conf = || std::fs::read_to_string(bed.member_dir("rd", "rd-0").join("config/redis.conf")).unwrap();
            let before = conf();
            for (body, field) in [
                (json!({ "kind": "config", "config": { "loadmodule": "/tmp/evil.so" } }), "spec.config.loadmodule"),
                (json!({ "kind": "config", "config": { "dir": "/etc" } }), "spec.config.dir"),
                (json!({ "kind": "config", "config": { "hz": "10\nloadmodule /tmp/evil.so" } }), "spec.config.hz"),
                (json!({ "kind": "config", "memberConfig": { "rd-0": { "aclfile": "/tmp/users.acl" } } }), "spec.memberConfig.rd-0.aclfile"),
            ] {
                let (code, e) = bed.operate("rd", body).await.unwrap_err();
                assert_eq!(code, 400, "{field}: {e:?}");
                assert!(e.fields.iter().any(|f| f.field == field), "{field}: {e:?}");
            }
            assert!(bed.operations("rd").await.is_empty(), "refused requests leave no record");
            assert_eq!(conf(), before, "the member's file is unchanged");
        },
    )
    .await;
}
