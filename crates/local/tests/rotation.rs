//! Rotating TLS certificates on real servers: new member certificates from the same CA, and a CA
//! replaced in its three stages (add, switch, drop), with a client writing all along (every
//! acknowledged write survives), replication over TLS kept, and what a client holding only the
//! old or only the new CA sees at each stage.

mod common;

use std::time::Duration;

use common::writer::{pg_service, with_writer};
use common::zk::zk_cli;
use common::{Bed, PgLogin, pg_connect, redis_cli, require, spec, with_bed};
use firecamp_api::{Operation, OperationPhase, Phase};
use firecamp_core::EngineKind;
use firecamp_pki::bundle::pem_certs;
use serde_json::json;

fn plan(op: &Operation) -> Vec<String> {
    op.steps.iter().map(|s| s.describe()).collect()
}

/// The certificate a member serves (the first of the chain `openssl s_client` prints), PEM.
fn served_cert(addr: &str, starttls: Option<&str>) -> String {
    let mut cmd = std::process::Command::new("openssl");
    cmd.args(["s_client", "-connect", addr]);
    if let Some(proto) = starttls {
        cmd.args(["-starttls", proto]);
    }
    let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    pem_certs(&text).into_iter().next().unwrap_or_else(|| panic!("no certificate from {addr}: {text}{}", String::from_utf8_lossy(&out.stderr)))
}

/// Runs an operation of kind `certificates` and waits for it to succeed.
async fn rotate(bed: &Bed, name: &str, ca: Option<&str>) -> Operation {
    let body = match ca {
        Some(stage) => json!({ "kind": "certificates", "ca": stage }),
        None => json!({ "kind": "certificates" }),
    };
    let op = bed.operate(name, body).await.expect("rotation accepted");
    let op = bed.wait_operation(name, &op.id, Duration::from_secs(300)).await;
    assert_eq!(op.phase, OperationPhase::Succeeded, "{op:#?}");
    op
}

/// A refused stage: 400 naming `ca`, nothing recorded.
async fn refused(bed: &Bed, name: &str, stage: &str, says: &str) {
    let before = bed.operations(name).await.len();
    let (code, e) = bed.operate(name, json!({ "kind": "certificates", "ca": stage })).await.expect_err("refused");
    assert_eq!(code, 400, "{e:?}");
    let text = format!("{e:?}");
    assert!(text.contains("\"ca\"") && text.contains(says), "{stage}: {text}");
    assert_eq!(bed.operations(name).await.len(), before, "nothing recorded");
}

fn login_with(login: &PgLogin, ca: &str) -> PgLogin {
    PgLogin { password: login.password.clone(), ca: ca.to_string() }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgresql_certificates_and_the_ca_rotate_under_a_writer_without_losing_a_write() {
    require(EngineKind::Postgresql);
    with_bed(
        "t-rot",
        "127.0.170.1/20",
        |_| {},
        |bed| async move {
            let login = pg_service(&bed, "pc").await;
            let old_ca = login.ca.clone();
            let ip0 = bed.ip("pc", "pc-0").await;
            let addr0 = format!("{ip0}:5432");
            let cert_file = |m: &str| std::fs::read_to_string(bed.member_dir("pc", m).join("tls").join(format!("{m}.crt"))).unwrap();
            let before = served_cert(&addr0, Some("postgres"));
            assert_eq!(before.trim(), cert_file("pc-0").trim());
            for stage in ["switch", "drop"] {
                refused(&bed, "pc", stage, "add").await;
            }

            // New member certificates from the same CA, members restarted primary last.
            let (op, writes) = with_writer(&bed, "pc", &login, json!({ "kind": "certificates" })).await;
            assert_eq!(op.target.as_deref(), Some("member certificates"));
            assert_eq!(plan(&op), ["restart pc-1", "restart pc-2", "switchover pc-0 → pc-1", "restart pc-0"]);
            assert!(writes.outage_windows() <= 1, "writes failed in {} windows", writes.outage_windows());
            let now = served_cert(&addr0, Some("postgres"));
            assert_ne!(now, before, "pc-0 serves a new certificate");
            assert_eq!(now.trim(), cert_file("pc-0").trim());
            assert_eq!(bed.ca("pc", "pc-0"), old_ca, "the CA did not change");

            // CA, stage add: the new CA is trusted next to the old one, which still signs.
            let (op, _) = with_writer(&bed, "pc", &login, json!({ "kind": "certificates", "ca": "add" })).await;
            assert_eq!(op.target.as_deref(), Some("CA add"));
            let bundle = bed.ca("pc", "pc-2");
            let cas = pem_certs(&bundle);
            assert_eq!(cas.len(), 2, "{bundle}");
            assert_eq!(cas[0].trim(), old_ca.trim());
            let new_ca = cas[1].clone();
            assert!(pg_connect(&ip0, &login_with(&login, &old_ca)).await.is_ok(), "a client with the old CA still connects");
            assert!(pg_connect(&ip0, &login_with(&login, &new_ca)).await.is_err(), "the new CA signs nothing yet");
            refused(&bed, "pc", "add", "switch").await;
            refused(&bed, "pc", "drop", "switch").await;
            // The published bundle (the REST API's, what `service credentials --ca-file` writes).
            let published: firecamp_api::ServiceCa = bed.http.get(format!("{}/v1/services/pc/ca", bed.url)).send().await.unwrap().json().await.unwrap();
            let published = published.ca;
            assert_eq!(pem_certs(&published), cas);

            // Stage switch: clients took the bundle; every member gets a certificate from the new CA.
            let login = login_with(&login, &published);
            let (_, writes) = with_writer(&bed, "pc", &login, json!({ "kind": "certificates", "ca": "switch" })).await;
            assert!(writes.outage_windows() <= 1, "writes failed in {} windows", writes.outage_windows());
            for m in ["pc-0", "pc-1", "pc-2"] {
                let ip = bed.ip("pc", m).await;
                assert!(pg_connect(&ip, &login_with(&login, &new_ca)).await.is_ok(), "{m} serves the new CA's certificate");
                assert!(pg_connect(&ip, &login_with(&login, &old_ca)).await.is_err(), "{m}: a client with only the old CA is refused");
            }
            assert_eq!(pem_certs(&bed.ca("pc", "pc-1"))[0].trim(), new_ca.trim(), "the new CA comes first: it signs");

            // Stage drop: only the new CA is trusted, by the members too.
            let (_, writes) = with_writer(&bed, "pc", &login, json!({ "kind": "certificates", "ca": "drop" })).await;
            assert!(writes.outage_windows() <= 1);
            for m in ["pc-0", "pc-1", "pc-2"] {
                assert_eq!(pem_certs(&bed.ca("pc", m)), vec![new_ca.clone()], "{m} trusts only the new CA");
            }
            refused(&bed, "pc", "drop", "nothing to drop").await;
            // Replication still verifies the primary (verify-full against the new CA alone).
            let s = bed.wait_phase("pc", Phase::Active, Duration::from_secs(60)).await;
            assert!(s.status.members.iter().all(|m| m.ready), "{:?}", s.status.members);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_replication_keeps_its_tls_links_through_a_ca_rotation() {
    require(EngineKind::Redis);
    with_bed(
        "t-rotr",
        "127.0.171.1/20",
        |_| {},
        |bed| async move {
            bed.create(json!({ "name": "rc", "spec": spec("redis", 3, "128Mi") })).await.expect("created");
            bed.wait_phase("rc", Phase::Active, Duration::from_secs(120)).await;
            for i in 0..50 {
                bed.redis("rc", "rc-0", &["SET", &format!("k{i}"), &i.to_string()]).await;
            }
            let old_ca_file = bed.member_dir("rc", "rc-0").join("..").join("old-ca.pem");
            std::fs::write(&old_ca_file, bed.ca("rc", "rc-0")).unwrap();
            let ip0 = bed.ip("rc", "rc-0").await;
            let password = bed.secret("rc", "rc-0", "password");
            for stage in ["add", "switch", "drop"] {
                let op = rotate(&bed, "rc", Some(stage)).await;
                assert_eq!(op.steps.len(), 4, "{:?}", plan(&op));
                let s = bed.wait_phase("rc", Phase::Active, Duration::from_secs(60)).await;
                let primary = s.status.members.iter().find(|m| m.role == firecamp_api::Role::Primary).expect("a primary").name.clone();
                for m in ["rc-0", "rc-1", "rc-2"] {
                    assert_eq!(bed.redis("rc", m, &["DBSIZE"]).await, redis::Value::Int(50), "{stage}: {m} has every key");
                    if m != primary {
                        let info = firecamp_probe::redis::replication(&bed.redis_target("rc", m).await).await.unwrap();
                        assert_eq!(info.get("master_link_status").map(String::as_str), Some("up"), "{stage}: {m} replicates over TLS");
                    }
                }
                let with_old = redis_cli(&ip0, 6379, &password, &["--tls", "--cacert", old_ca_file.to_str().unwrap(), "PING"]);
                let old_still_good = stage == "add";
                assert_eq!(with_old.0 && with_old.1.contains("PONG"), old_still_good, "{stage}: a client with the old CA: {}", with_old.1);
            }
            assert_eq!(pem_certs(&bed.ca("rc", "rc-2")).len(), 1);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn zookeeper_keeps_its_quorum_and_clients_through_certificate_and_ca_rotations() {
    require(EngineKind::Zookeeper);
    with_bed(
        "t-rotz",
        "127.0.172.1/20",
        |_| {},
        |bed| async move {
            let mut s = spec("zookeeper", 3, "512Mi");
            s["zookeeper"] = json!({ "heap": "128Mi" });
            bed.create(json!({ "name": "zr", "spec": s })).await.expect("created");
            bed.wait_phase("zr", Phase::Active, Duration::from_secs(180)).await;
            let client = bed.zk_client("zr", "client");
            let old_ca_file = bed.member_dir("zr", "zr-0").join("..").join("old-ca.pem");
            std::fs::write(&old_ca_file, bed.ca("zr", "zr-0")).unwrap();
            let addr = format!("{}:2181", bed.ip("zr", "zr-1").await);
            let (a, c) = (addr.clone(), client.clone());
            let out = tokio::task::spawn_blocking(move || zk_cli(&a, &c, &["create", "/kept", "kept-through-rotation"])).await.unwrap();
            assert!(out.contains("Created /kept"), "{out}");
            for stage in [None, Some("add"), Some("switch"), Some("drop")] {
                rotate(&bed, "zr", stage).await;
                // The quorum formed again over TLS (each step waited for its member to rejoin).
                bed.wait_phase("zr", Phase::Active, Duration::from_secs(60)).await;
                // A client with the service's bundle (read again, as clients are told to).
                let (a, c) = (addr.clone(), client.clone());
                let out = tokio::task::spawn_blocking(move || zk_cli(&a, &c, &["get", "/kept"])).await.unwrap();
                assert!(out.contains("kept-through-rotation"), "{stage:?}: {out}");
            }
            let mut old = client.clone();
            old.ca = Some(old_ca_file);
            let a = addr.clone();
            let out = tokio::task::spawn_blocking(move || zk_cli(&a, &old, &["get", "/kept"])).await.unwrap();
            assert!(!out.contains("kept-through-rotation"), "a client trusting only the old CA reads nothing: {out}");
        },
    )
    .await;
}
