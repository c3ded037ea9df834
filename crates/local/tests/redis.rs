//! Real Redis over TLS (issue #13 item 3): cluster mode formed by the init task from the
//! catalog's shard layout, and replication mode. Members serve TLS only, on 6379, with
//! certificates of the service's CA: a client verifies them with the CA and logs in with the
//! password; without the CA, or with another, verification fails; a plain connection gets no
//! answer. Replication and the cluster bus run over TLS too (the plain port is 0).

mod common;

use std::time::Duration;

use common::{Bed, redis_cli, require, spec, with_bed};
use firecamp_api::{Phase, Role};
use firecamp_core::EngineKind;
use serde_json::json;

/// A CA the service does not know, as a file.
fn other_ca(dir: &std::path::Path) -> std::path::PathBuf {
    let ca = firecamp_pki::new_ca("FireCamp CA someone else", firecamp_pki::Duration::days(1), firecamp_pki::OffsetDateTime::now_utc()).unwrap();
    let path = dir.join("other-ca.crt");
    std::fs::write(&path, ca.cert).unwrap();
    path
}

/// What clients of `member` see on 6379: TLS verified against the service's CA and the password
/// answer; no CA (redis-cli then trusts the system's roots), another CA or no TLS at all get
/// nothing; FireCamp's probe refuses another CA and a name the certificate does not carry.
async fn assert_tls_only(bed: &Bed, svc: &str, member: &str) {
    let (ip, password) = (bed.ip(svc, member).await, bed.secret(svc, member, "password"));
    let ca = bed.ca_path(svc, member);
    let ca = ca.to_str().unwrap();
    let (ok, out) = redis_cli(&ip, 6379, &password, &["--tls", "--cacert", ca, "PING"]);
    assert!(ok && out.trim() == "PONG", "{member} over TLS with the CA: {out}");

    let (ok, out) = redis_cli(&ip, 6379, &password, &["--tls", "PING"]);
    assert!(!ok && out.contains("certificate verify failed"), "{member} without the CA: {out}");
    let dir = tempfile::tempdir().unwrap();
    let other = other_ca(dir.path());
    let (ok, out) = redis_cli(&ip, 6379, &password, &["--tls", "--cacert", other.to_str().unwrap(), "PING"]);
    assert!(!ok && out.contains("certificate verify failed"), "{member} with another CA: {out}");
    let (ok, out) = redis_cli(&ip, 6379, &password, &["PING"]);
    assert!(!ok && !out.contains("PONG"), "{member} in plain text: {out}");
    // With the CA, still only with the password.
    let (_, out) = redis_cli(&ip, 6379, "wrong", &["--tls", "--cacert", ca, "PING"]);
    assert!(out.contains("WRONGPASS") || out.contains("NOAUTH"), "{member} with a wrong password: {out}");

    let t = bed.redis_target(svc, member).await;
    assert!(firecamp_probe::redis::role(&t).await.is_ok(), "{member}: the probe over TLS");
    let other_pem = std::fs::read_to_string(&other).unwrap();
    let e = firecamp_probe::redis::role(&t.clone().with_tls(other_pem, ip.clone())).await.unwrap_err();
    assert!(e.is_tls_verification(), "{member} with another CA: {e}");
    let e = firecamp_probe::redis::role(&t.clone().with_tls(bed.ca(svc, member), "someone-else.example.com")).await.unwrap_err();
    assert!(e.is_tls_verification(), "{member} under another name: {e}");
    let e = firecamp_probe::redis::role(&firecamp_probe::Target::new(ip.clone(), 6379).with_password(password)).await.unwrap_err();
    assert!(!e.is_tls_verification(), "{member} in plain text: {e}");
}

/// The cluster bus of `member` is TLS with its certificate from the service's CA (the handshake
/// verifies it under the member's address), and admits only peers that present a certificate:
/// a client without one is turned away before it can send anything.
async fn assert_bus_is_tls_with_peer_certificates(bed: &Bed, svc: &str, member: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ip = bed.ip(svc, member).await;
    let config = firecamp_probe::tls::client_config(&bed.ca(svc, member), &ip).unwrap();
    let tcp = tokio::net::TcpStream::connect((ip.as_str(), 16379)).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(ip.clone()).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.unwrap_or_else(|e| panic!("{member}'s bus: TLS handshake: {e}"));
    // TLS 1.3: the server checks the (missing) client certificate after the client's side of the
    // handshake, then alerts and closes.
    let _ = tls.write_all(b"RCmb").await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await.expect("the bus answers or closes");
    match read {
        Ok(0) => {}
        Err(e) => assert!(format!("{e:?}").contains("CertificateRequired"), "{member}'s bus: {e:?}"),
        Ok(n) => panic!("{member}'s bus answered a peer without a certificate: {:?}", &buf[..n]),
    }
}

/// The replica's `INFO replication` once its link to its primary is up (within 30 s).
async fn link_up(bed: &Bed, svc: &str, replica: &str) -> std::collections::BTreeMap<String, String> {
    let t = bed.redis_target(svc, replica).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let info = firecamp_probe::redis::replication(&t).await.unwrap();
        if info.get("master_link_status").map(String::as_str) == Some("up") {
            return info;
        }
        assert!(std::time::Instant::now() < deadline, "{replica}: the link to its primary is not up: {info:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_of_three_shards_covers_every_slot_over_tls() {
    require(EngineKind::Redis);
    with_bed(
        "t-rc",
        "127.0.120.1/20",
        |_| {},
        |bed| async move {
            let mut s = spec("redis", 6, "128Mi");
            s["redis"] = json!({ "mode": "cluster", "shards": 3 });
            bed.create(json!({ "name": "rc", "spec": s })).await.expect("created");
            let svc = bed.wait_phase("rc", Phase::Active, Duration::from_secs(180)).await;
            // The catalog's layout: a shard's members are consecutive, the first is its primary.
            let roles: Vec<Role> = svc.status.members.iter().map(|m| m.role).collect();
            assert_eq!(roles, [Role::Primary, Role::Replica, Role::Primary, Role::Replica, Role::Primary, Role::Replica]);

            for m in &svc.status.members {
                let t = bed.redis_target("rc", &m.name).await;
                let ci = firecamp_probe::redis::cluster_info(&t).await.unwrap();
                assert!(ci.covers_all_slots(), "{}: {ci:?}", m.name);
                assert_eq!((ci.known_nodes, ci.size), (6, 3), "{}", m.name);
                // No plain port: the cluster formed over the bus and replicates over TLS.
                assert_eq!(bed.redis_config("rc", &m.name, "port").await, "0", "{}", m.name);
                assert_eq!(bed.redis_config("rc", &m.name, "tls-cluster").await, "yes", "{}", m.name);
                assert_eq!(bed.redis_config("rc", &m.name, "tls-replication").await, "yes", "{}", m.name);
            }
            let out = bed.redis_cluster_cli("rc", "rc-3", &["CLUSTER", "INFO"]).await;
            assert!(out.contains("cluster_state:ok"), "{out}");
            // Each replica follows its own shard's primary, its link up over TLS (the last replica
            // added may still be starting its first sync when the cluster covers every slot).
            for (replica, primary) in [("rc-1", "rc-0"), ("rc-3", "rc-2"), ("rc-5", "rc-4")] {
                let info = link_up(&bed, "rc", replica).await;
                assert_eq!(info.get("master_host"), Some(&bed.ip("rc", primary).await), "{replica}");
                assert_eq!(info.get("master_port").map(String::as_str), Some("6379"), "{replica}");
            }
            assert_tls_only(&bed, "rc", "rc-2").await;
            assert_bus_is_tls_with_peer_certificates(&bed, "rc", "rc-4").await;

            // A key written through one member is read through another: redis-cli follows the
            // cluster's redirections to each slot's primary, over TLS on the announced port.
            for i in 0..20 {
                assert_eq!(bed.redis_cluster_cli("rc", "rc-0", &["SET", &format!("key-{i}"), &format!("value-{i}")]).await, "OK");
            }
            for i in 0..20 {
                assert_eq!(bed.redis_cluster_cli("rc", "rc-3", &["GET", &format!("key-{i}")]).await, format!("value-{i}"));
            }
        },
    )
    .await;
}

/// Issue #14 item 3: Redis Cluster fails over by itself (FireCamp's watcher leaves cluster mode
/// alone). A shard's primary killed and kept down (its address taken) is replaced by the shard's
/// replica once `cluster-node-timeout` (15 s) passes; every slot stays covered, every key
/// acknowledged by the replica (`WAIT`) is read through another member, and the old primary,
/// back, rejoins as its former replica's replica.
#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_shard_fails_over_by_itself_after_the_node_timeout() {
    require(EngineKind::Redis);
    with_bed(
        "t-rcf",
        "127.0.177.1/20",
        |_| {},
        |bed| async move {
            let mut s = spec("redis", 6, "128Mi");
            s["redis"] = json!({ "mode": "cluster", "shards": 3 });
            bed.create(json!({ "name": "rf", "spec": s })).await.expect("created");
            bed.wait_phase("rf", Phase::Active, Duration::from_secs(180)).await;
            link_up(&bed, "rf", "rf-3").await;
            for i in 0..60 {
                assert_eq!(bed.redis_cluster_cli("rf", "rf-0", &["SET", &format!("key-{i}"), &format!("value-{i}")]).await, "OK");
            }
            assert_eq!(bed.redis("rf", "rf-2", &["WAIT", "1", "5000"]).await, redis::Value::Int(1), "rf-3 has every write of rf-2");
            let hold = common::kill_and_block(&bed, "rf", "rf-2", 6379).await;
            let killed = std::time::Instant::now();
            // The replica is elected once the other primaries agree rf-2 failed (node timeout).
            let deadline = killed + Duration::from_secs(90);
            loop {
                let info = firecamp_probe::redis::replication(&bed.redis_target("rf", "rf-3").await).await;
                if info.as_ref().is_ok_and(|i| i.get("role").map(String::as_str) == Some("master")) {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "rf-3 was not promoted: {info:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            println!("rf-3 promoted {:.1} s after rf-2 died (cluster-node-timeout 15 s)", killed.elapsed().as_secs_f64());
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let out = bed.redis_cluster_cli("rf", "rf-0", &["CLUSTER", "INFO"]).await;
                if out.contains("cluster_state:ok") {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "the cluster stays down: {out}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            for i in 0..60 {
                assert_eq!(bed.redis_cluster_cli("rf", "rf-4", &["GET", &format!("key-{i}")]).await, format!("value-{i}"), "key-{i}");
            }
            assert_eq!(bed.redis_cluster_cli("rf", "rf-4", &["SET", "after", "failover"]).await, "OK");
            // Back, the old primary is the new one's replica.
            drop(hold);
            let deadline = std::time::Instant::now() + Duration::from_secs(90);
            loop {
                let s = bed.get("rf").await;
                let role = s.status.members.iter().find(|m| m.name == "rf-2").map(|m| m.role);
                if role == Some(Role::Replica) && s.status.phase == Phase::Active {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "rf-2 did not rejoin as a replica: {:?} {:?}", s.status.phase, s.status.members);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let info = link_up(&bed, "rf", "rf-2").await;
            assert_eq!(info.get("master_host"), Some(&bed.ip("rf", "rf-3").await));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replication_mode_copies_the_primary_over_tls() {
    require(EngineKind::Redis);
    with_bed(
        "t-rr",
        "127.0.121.1/20",
        |_| {},
        |bed| async move {
            bed.create(json!({ "name": "rr", "spec": spec("redis", 3, "128Mi") })).await.expect("created");
            let svc = bed.wait_phase("rr", Phase::Active, Duration::from_secs(120)).await;
            let roles: Vec<Role> = svc.status.members.iter().map(|m| m.role).collect();
            assert_eq!(roles, [Role::Primary, Role::Replica, Role::Replica]);
            for m in ["rr-0", "rr-1", "rr-2"] {
                assert_eq!(bed.redis_config("rr", m, "port").await, "0", "{m}");
                assert_eq!(bed.redis_config("rr", m, "tls-replication").await, "yes", "{m}");
            }
            // The replicas stream from the primary over TLS (the only port it has).
            let primary = bed.redis_target("rr", "rr-0").await;
            let info = firecamp_probe::redis::replication(&primary).await.unwrap();
            assert_eq!(info.get("connected_slaves").map(String::as_str), Some("2"), "{info:?}");
            for m in ["rr-1", "rr-2"] {
                let info = firecamp_probe::redis::replication(&bed.redis_target("rr", m).await).await.unwrap();
                assert_eq!(info.get("master_link_status").map(String::as_str), Some("up"), "{m}: {info:?}");
                assert_eq!(info.get("master_port").map(String::as_str), Some("6379"), "{m}: {info:?}");
            }
            assert_tls_only(&bed, "rr", "rr-0").await;
            assert_tls_only(&bed, "rr", "rr-1").await;

            // A write acknowledged by both replicas (WAIT) is read on one of them.
            bed.redis("rr", "rr-0", &["SET", "greeting", "hello"]).await;
            assert_eq!(bed.redis("rr", "rr-0", &["WAIT", "2", "10000"]).await, redis::Value::Int(2));
            assert_eq!(bed.redis("rr", "rr-2", &["GET", "greeting"]).await, redis::Value::BulkString(b"hello".to_vec()));
        },
    )
    .await;
}

/// `spec.tls.allowPlaintext`: plain clients get 6380 beside TLS on 6379; members still replicate
/// over TLS.
#[tokio::test(flavor = "multi_thread")]
async fn allow_plaintext_opens_6380_beside_tls() {
    require(EngineKind::Redis);
    with_bed(
        "t-rp",
        "127.0.122.1/10",
        |_| {},
        |bed| async move {
            let mut s = spec("redis", 2, "128Mi");
            s["tls"] = json!({ "allowPlaintext": true });
            bed.create(json!({ "name": "rp", "spec": s })).await.expect("created");
            bed.wait_phase("rp", Phase::Active, Duration::from_secs(120)).await;
            let (ip, password) = (bed.ip("rp", "rp-0").await, bed.secret("rp", "rp-0", "password"));
            let (ok, out) = redis_cli(&ip, 6380, &password, &["PING"]);
            assert!(ok && out.trim() == "PONG", "plain on 6380: {out}");
            let ca = bed.ca_path("rp", "rp-0");
            let (ok, out) = redis_cli(&ip, 6379, &password, &["--tls", "--cacert", ca.to_str().unwrap(), "PING"]);
            assert!(ok && out.trim() == "PONG", "TLS on 6379: {out}");
            let (ok, out) = redis_cli(&ip, 6379, &password, &["PING"]);
            assert!(!ok && !out.contains("PONG"), "plain on 6379: {out}");
            assert_eq!(bed.redis_config("rp", "rp-0", "port").await, "6380");
            let info = firecamp_probe::redis::replication(&bed.redis_target("rp", "rp-1").await).await.unwrap();
            assert_eq!(info.get("master_port").map(String::as_str), Some("6379"), "{info:?}");
            assert_eq!(info.get("master_link_status").map(String::as_str), Some("up"), "{info:?}");
        },
    )
    .await;
}
