//! Scaling on real servers (issue #16): PostgreSQL out and in with a continuous writer (every
//! acknowledged row on every member, new replicas streaming through slots made before they
//! started, removed members' slots, names and data gone), refusals, a daemon restart in the
//! middle of a scale, a removed primary switched over first; Redis replication mode out and in;
//! ZooKeeper 3 → 5 → 3 through `reconfig` with a client writing throughout.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::writer::{pg_service, with_writer};
use common::{Bed, PgLogin, pg_connect, require, spec, with_bed};
use firecamp_api::{Operation, OperationPhase, Phase, Role};
use firecamp_core::EngineKind;
use serde_json::json;

fn plan(op: &Operation) -> Vec<String> {
    op.steps.iter().map(|s| s.describe()).collect()
}

fn members(s: &firecamp_api::Service) -> Vec<(String, Role)> {
    s.status.members.iter().map(|m| (m.name.clone(), m.role)).collect()
}

/// The replication slots on `primary`.
async fn slots(bed: &Bed, name: &str, primary: &str, login: &PgLogin) -> BTreeSet<String> {
    let c = pg_connect(&bed.ip(name, primary).await, login).await.unwrap();
    c.query("SELECT slot_name::text FROM pg_replication_slots", &[]).await.unwrap().iter().map(|r| r.get(0)).collect()
}

/// Every row of `t` on every member, once each replica has replayed what the primary had
/// written when asked (polled on the replicas' own replay position, not slept).
async fn rows_everywhere(bed: &Bed, name: &str, login: &PgLogin) -> Vec<(String, BTreeSet<i64>)> {
    let s = bed.get(name).await;
    let primary = s.status.members.iter().find(|m| m.role == Role::Primary).expect("a primary");
    let p = pg_connect(primary.static_ip.as_deref().unwrap(), login).await.unwrap();
    let lsn: String = p.query_one("SELECT pg_current_wal_lsn()::text", &[]).await.unwrap().get(0);
    let mut out = Vec::new();
    for m in &s.status.members {
        let c = pg_connect(m.static_ip.as_deref().unwrap(), login).await.unwrap();
        if m.role != Role::Primary {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let caught_up: bool = c.query_one("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", &[&lsn]).await.unwrap().get(0);
                if caught_up {
                    break;
                }
                assert!(Instant::now() < deadline, "{} did not replay up to {lsn} within 60 s", m.name);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let ids = c.query("SELECT id FROM t", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
        out.push((m.name.clone(), ids));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn postgresql_scales_out_and_in_keeping_every_acknowledged_row_on_every_member() {
    require(EngineKind::Postgresql);
    with_bed(
        "t-sc",
        "127.0.200.1/20",
        |_| {},
        |bed| async move {
            let login = pg_service(&bed, "pg").await;

            // Refusals name the field, and nothing is recorded.
            for (body, field, says) in [
                (json!({ "kind": "scale" }), "replicas", "required"),
                (json!({ "kind": "scale", "replicas": 3 }), "replicas", "already has 3"),
                (json!({ "kind": "scale", "replicas": 0 }), "spec.replicas", "1 to 99"),
                (json!({ "kind": "scale", "replicas": 100 }), "spec.replicas", "1 to 99"),
                (json!({ "kind": "restart", "replicas": 4 }), "replicas", "belongs to kind scale"),
            ] {
                let (code, e) = bed.operate("pg", body.clone()).await.unwrap_err();
                assert_eq!(code, 400, "{body}");
                assert!(e.fields.iter().any(|f| f.field == field && f.message.contains(says)), "{body}: {e:?}");
            }
            assert!(bed.operations("pg").await.is_empty(), "a refused request records nothing");

            // Out: 3 → 5 while a writer writes.
            let (op, writes) = with_writer(&bed, "pg", &login, json!({ "kind": "scale", "replicas": 5 })).await;
            assert_eq!(op.phase, OperationPhase::Succeeded, "{op:#?}");
            assert_eq!(plan(&op), ["add pg-3", "add pg-4"]);
            assert_eq!(op.target.as_deref(), Some("replicas 3 → 5"));
            assert_eq!(writes.primaries(), ["pg-0"], "the primary did not change");
            assert_eq!(writes.outage_windows(), 0, "adding replicas stops no write: {:?}", writes.last_error);
            let s = bed.wait_phase("pg", Phase::Active, Duration::from_secs(120)).await;
            assert_eq!(s.spec.replicas, 5);
            let want: Vec<(String, Role)> = (0..5).map(|i| (format!("pg-{i}"), if i == 0 { Role::Primary } else { Role::Replica })).collect();
            assert_eq!(members(&s), want);
            assert_eq!(slots(&bed, "pg", "pg-0", &login).await, BTreeSet::from(["pg_1", "pg_2", "pg_3", "pg_4"].map(String::from)));
            for (m, ids) in rows_everywhere(&bed, "pg", &login).await {
                let lost: Vec<_> = writes.acked.iter().filter(|i| !ids.contains(i)).collect();
                assert!(lost.is_empty(), "acknowledged rows missing on {m}: {lost:?}");
            }
            // The new members stream from the primary through their own slots.
            let p = pg_connect(&bed.ip("pg", "pg-0").await, &login).await.unwrap();
            let streaming: BTreeSet<String> =
                p.query("SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
            assert!(streaming.contains("pg-3") && streaming.contains("pg-4"), "{streaming:?}");

            // In: 5 → 2, the highest members first.
            let gone_ips: Vec<String> = futures::future::join_all(["pg-2", "pg-3", "pg-4"].map(|m| bed.ip("pg", m))).await;
            let (op, writes) = with_writer(&bed, "pg", &login, json!({ "kind": "scale", "replicas": 2 })).await;
            assert_eq!(op.phase, OperationPhase::Succeeded, "{op:#?}");
            assert_eq!(plan(&op), ["remove pg-4", "remove pg-3", "remove pg-2"]);
            assert_eq!(writes.outage_windows(), 0, "removing replicas stops no write: {:?}", writes.last_error);
            let s = bed.wait_phase("pg", Phase::Active, Duration::from_secs(120)).await;
            assert_eq!(s.spec.replicas, 2);
            assert_eq!(members(&s), [("pg-0".to_string(), Role::Primary), ("pg-1".to_string(), Role::Replica)]);
            assert_eq!(slots(&bed, "pg", "pg-0", &login).await, BTreeSet::from(["pg_1".to_string()]), "the removed members' slots are dropped");
            for (m, ids) in rows_everywhere(&bed, "pg", &login).await {
                let lost: Vec<_> = writes.acked.iter().filter(|i| !ids.contains(i)).collect();
                assert!(lost.is_empty(), "acknowledged rows missing on {m}: {lost:?}");
            }
            for (m, ip) in ["pg-2", "pg-3", "pg-4"].iter().zip(&gone_ips) {
                assert!(!bed.member_dir("pg", m).exists(), "{m}'s data is removed");
                let name = format!("{m}.{}-firecamp.com", bed.cfg.cluster);
                assert!(common::query_a(bed.dns_addr, &name).await.is_empty(), "{name} no longer resolves");
                assert!(std::net::TcpStream::connect((ip.as_str(), 5432)).is_err(), "nothing serves on {m}'s old address {ip}");
            }
            let replicas = format!("replicas.pg.{}-firecamp.com", bed.cfg.cluster);
            assert_eq!(common::query_a(bed.dns_addr, &replicas).await, [bed.ip("pg", "pg-1").await.parse::<std::net::Ipv4Addr>().unwrap()]);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scale_goes_on_after_a_daemon_restart_and_a_removed_primary_is_switched_over_first() {
    require(EngineKind::Postgresql);
    // The test hook holds every operation after its first step, so the daemon stops there.
    let tweak = common::hold_after_steps(1);
    with_bed("t-scr", "127.0.201.1/20", tweak, |bed| async move {
        bed.create(json!({ "name": "pr", "spec": spec("postgresql", 1, "256Mi") })).await.expect("created");
        bed.wait_phase("pr", Phase::Active, Duration::from_secs(240)).await;
        let login = bed.pg_login("pr");
        let c = pg_connect(&bed.ip("pr", "pr-0").await, &login).await.unwrap();
        c.batch_execute("CREATE TABLE t (id bigint PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000)").await.unwrap();

        let op = bed.operate("pr", json!({ "kind": "scale", "replicas": 3 })).await.unwrap();
        assert_eq!(plan(&op), ["add pr-1", "add pr-2"]);
        let held = bed.wait_operation_until("pr", &op.id, Duration::from_secs(240), |o| o.steps[0].phase == OperationPhase::Succeeded).await;
        assert_eq!(held.phase, OperationPhase::Running);
        let mut cfg = bed.cfg.clone();
        cfg.hold_operations_after_steps = None;
        bed.restart_daemon(cfg).await;
        let done = bed.wait_operation("pr", &op.id, Duration::from_secs(300)).await;
        assert_eq!(done.phase, OperationPhase::Succeeded, "{done:#?}");
        assert_eq!(done.steps[0], held.steps[0], "the finished step was not run again");
        let s = bed.wait_phase("pr", Phase::Active, Duration::from_secs(120)).await;
        assert_eq!(members(&s), [("pr-0".to_string(), Role::Primary), ("pr-1".to_string(), Role::Replica), ("pr-2".to_string(), Role::Replica)]);
        for (m, ids) in rows_everywhere(&bed, "pr", &login).await {
            assert_eq!(ids.len(), 1000, "{m}");
        }

        // A PrimaryLast restart moves the primary to pr-1 (pr-1 and pr-2 restarted, then a
        // switchover pr-0 → pr-1); scaling to 1 must then switch over to pr-0 before pr-1 goes.
        let op = bed.operate("pr", json!({ "kind": "restart" })).await.unwrap();
        let op = bed.wait_operation("pr", &op.id, Duration::from_secs(300)).await;
        assert_eq!(op.phase, OperationPhase::Succeeded, "{op:#?}");
        let s = bed.wait_phase("pr", Phase::Active, Duration::from_secs(120)).await;
        assert_eq!(s.status.members[1].role, Role::Primary, "{:?}", members(&s));
        let op = bed.operate("pr", json!({ "kind": "scale", "replicas": 1 })).await.unwrap();
        assert_eq!(plan(&op), ["switchover pr-1 → pr-0", "remove pr-2", "remove pr-1"]);
        let op = bed.wait_operation("pr", &op.id, Duration::from_secs(300)).await;
        assert_eq!(op.phase, OperationPhase::Succeeded, "{op:#?}");
        let s = bed.wait_phase("pr", Phase::Active, Duration::from_secs(120)).await;
        assert_eq!(members(&s), [("pr-0".to_string(), Role::Primary)]);
        assert!(slots(&bed, "pr", "pr-0", &login).await.is_empty(), "no slot left for removed members");
        let c = pg_connect(&bed.ip("pr", "pr-0").await, &login).await.unwrap();
        let n: i64 = c.query_one("SELECT count(*) FROM t", &[]).await.unwrap().get(0);
        assert_eq!(n, 1000);
        c.execute("INSERT INTO t VALUES (1001)", &[]).await.unwrap();
    })
    .await;
}

/// DBSIZE of a Redis member.
async fn dbsize(bed: &Bed, name: &str, member: &str) -> i64 {
    match bed.redis(name, member, &["DBSIZE"]).await {
        redis::Value::Int(n) => n,
        v => panic!("DBSIZE on {member}: {v:?}"),
    }
}

/// Waits until `member` holds `n` keys (a replica syncing), polling its own count.
async fn wait_keys(bed: &Bed, name: &str, member: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let have = dbsize(bed, name, member).await;
        if have == n {
            return;
        }
        assert!(Instant::now() < deadline, "{member} holds {have} keys, not {n}, after 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_replication_scales_out_and_in_and_every_replica_holds_every_key_and_its_volume_grows() {
    require(EngineKind::Redis);
    with_bed(
        "t-scd",
        "127.0.202.1/20",
        |_| {},
        |bed| async move {
            bed.create(json!({ "name": "rd", "spec": spec("redis", 2, "128Mi") })).await.expect("created");
            bed.wait_phase("rd", Phase::Active, Duration::from_secs(120)).await;
            for i in 0..1000 {
                bed.redis("rd", "rd-0", &["SET", &format!("key-{i}"), &i.to_string()]).await;
            }

            let op = bed.operate("rd", json!({ "kind": "scale", "replicas": 4 })).await.unwrap();
            assert_eq!(plan(&op), ["add rd-2", "add rd-3"]);
            let op = bed.wait_operation("rd", &op.id, Duration::from_secs(300)).await;
            assert_eq!(op.phase, OperationPhase::Succeeded, "{op:#?}");
            let s = bed.wait_phase("rd", Phase::Active, Duration::from_secs(120)).await;
            let want: Vec<(String, Role)> = (0..4).map(|i| (format!("rd-{i}"), if i == 0 { Role::Primary } else { Role::Replica })).collect();
            assert_eq!(members(&s), want);
            for m in ["rd-1", "rd-2", "rd-3"] {
                wait_keys(&bed, "rd", m, 1000).await;
            }
            let replicas = format!("replicas.rd.{}-firecamp.com", bed.cfg.cluster);
            assert_eq!(common::query_a(bed.dns_addr, &replicas).await.len(), 3, "the replicas endpoint lists the new members");

            // In to 1: the primary stays, every replica goes.
            let gone = bed.ip("rd", "rd-3").await;
            let op = bed.operate("rd", json!({ "kind": "scale", "replicas": 1 })).await.unwrap();
            assert_eq!(plan(&op), ["remove rd-3", "remove rd-2", "remove rd-1"]);
            let op = bed.wait_operation("rd", &op.id, Duration::from_secs(300)).await;
            assert_eq!(op.phase, OperationPhase::Succeeded, "{op:#?}");
            let s = bed.wait_phase("rd", Phase::Active, Duration::from_secs(120)).await;
            assert_eq!(members(&s), [("rd-0".to_string(), Role::Primary)]);
            assert_eq!(dbsize(&bed, "rd", "rd-0").await, 1000);
            assert!(!bed.member_dir("rd", "rd-3").exists());
            assert!(std::net::TcpStream::connect((gone.as_str(), 6379)).is_err(), "nothing serves on rd-3's old address");
            let info = match bed.redis("rd", "rd-0", &["INFO", "replication"]).await {
                redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
                redis::Value::VerbatimString { text, .. } => text,
                v => panic!("{v:?}"),
            };
            assert!(info.contains("connected_slaves:0"), "the primary has no replica left: {info}");

            // A volume grows as an operation with a step per member; the local runtime records
            // the size (its members share the machine's file system). Shrinking is refused.
            let op = bed.operate("rd", json!({ "kind": "volume", "size": "2Gi" })).await.unwrap();
            assert_eq!(plan(&op), ["resize rd-0"]);
            let op = bed.wait_operation("rd", &op.id, Duration::from_secs(60)).await;
            assert_eq!((op.phase, op.target.as_deref()), (OperationPhase::Succeeded, Some("data volume 1Gi → 2Gi")), "{op:#?}");
            assert_eq!(bed.get("rd").await.spec.volumes.data.size, "2Gi");
            let (code, e) = bed.operate("rd", json!({ "kind": "volume", "size": "1Gi" })).await.unwrap_err();
            assert_eq!(code, 400);
            assert!(e.fields.iter().any(|f| f.field == "size" && f.message.contains("only grow")), "{e:?}");
        },
    )
    .await;
}

/// A ZooKeeper session with member `member` of `name` as `user` (`client`, `super`), over TLS
/// with the service's CA: what a user of the service is handed.
async fn zk_session(bed: &Bed, name: &str, member: &str, user: &str) -> zookeeper_client::Client {
    let ca = std::fs::read_to_string(bed.ca_path(name, &format!("{name}-0"))).unwrap();
    let password = bed.secret(name, &format!("{name}-0"), &format!("{user}-password"));
    let ip = bed.ip(name, member).await;
    // A ZooKeeper client reconnects when a server drops it (the harness's CI once saw zk-0 refuse
    // the first session right after a scale's end): 30 s of attempts, then the member's log.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match zk_connect(&ip, &ca, user, &password).await {
            Ok(c) => return c,
            Err(e) if std::time::Instant::now() > deadline => {
                let logs = bed.logs(name, member).await;
                let tail: Vec<&str> = logs.lines().rev().take(40).collect();
                panic!("a session with {member} as {user}: {e}\nlast log lines:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            }
            Err(e) => {
                eprintln!("a session with {member} as {user}: {e}; trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn zk_connect(ip: &str, ca: &str, user: &str, password: &str) -> Result<zookeeper_client::Client, zookeeper_client::Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    zookeeper_client::Client::connector()
        .with_tls(zookeeper_client::TlsOptions::new().with_pem_ca(ca).unwrap())
        .with_sasl(zookeeper_client::SaslOptions::digest_md5(user.to_string(), password.to_string()))
        .with_session_timeout(Duration::from_secs(10))
        .with_fail_eagerly()
        .secure_connect(&format!("{ip}:2181"))
        .await
}

/// The server ids in the ensemble's committed configuration, as `member` knows it.
async fn ensemble(bed: &Bed, name: &str, member: &str) -> BTreeSet<String> {
    let c = zk_session(bed, name, member, "client").await;
    c.sync("/zookeeper/config").await.unwrap();
    let (data, _) = c.get_config().await.unwrap();
    String::from_utf8(data).unwrap().lines().filter_map(|l| Some(l.strip_prefix("server.")?.split_once('=')?.0.to_string())).collect()
}

/// Runs the scale `op` on `name` while a client of zk-0 (never removed) creates znodes under
/// /scale, one after another; the finished operation and the names of the acknowledged ones.
async fn zk_scale_with_writer(bed: &Bed, name: &str, op: serde_json::Value, hold_and_restart: bool) -> (Operation, Vec<String>) {
    let tag = if hold_and_restart { "out" } else { "in" };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let first = format!("{name}-0");
    let (ip, ca, password) =
        (bed.ip(name, &first).await, std::fs::read_to_string(bed.ca_path(name, &first)).unwrap(), bed.secret(name, &first, "client-password"));
    let writer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let opts = zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::creator_all());
            let (mut acked, mut failed) = (Vec::new(), 0);
            let mut session = None;
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if session.is_none() {
                    session = zk_connect(&ip, &ca, "client", &password).await.ok();
                    continue;
                }
                i += 1;
                // A create lost in a leader election fails here and is not counted; the
                // session is made again (one whose connection broke is closed for good).
                let znode = format!("{tag}-{i}");
                match session.as_ref().unwrap().create(&format!("/scale/{znode}"), b"x", &opts).await {
                    Ok(_) => acked.push(znode),
                    Err(_) => {
                        failed += 1;
                        session = None;
                    }
                }
            }
            eprintln!("writer: {} znodes acknowledged, {failed} creates failed", acked.len());
            acked
        })
    };
    let started = bed.operate(name, op).await.unwrap();
    if hold_and_restart {
        let held = bed.wait_operation_until(name, &started.id, Duration::from_secs(240), |o| o.steps[0].phase == OperationPhase::Succeeded).await;
        assert_eq!(held.phase, OperationPhase::Running, "{held:#?}");
        let mut cfg = bed.cfg.clone();
        cfg.hold_operations_after_steps = None;
        bed.restart_daemon(cfg).await;
    }
    let done = bed.wait_operation(name, &started.id, Duration::from_secs(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    (done, writer.await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn zookeeper_scales_3_to_5_to_3_through_reconfig_keeping_every_znode() {
    require(EngineKind::Zookeeper);
    // The test hook holds every operation after its first step, so the daemon stops there.
    let tweak = common::hold_after_steps(1);
    with_bed("t-scz", "127.0.203.1/20", tweak, |bed| async move {
        let mut s = spec("zookeeper", 3, "512Mi");
        s["zookeeper"] = json!({ "heap": "128Mi" });
        bed.create(json!({ "name": "zk", "spec": s })).await.expect("created");
        bed.wait_phase("zk", Phase::Active, Duration::from_secs(180)).await;
        let c = zk_session(&bed, "zk", "zk-0", "client").await;
        let opts = zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::creator_all());
        c.create("/scale", b"", &opts).await.unwrap();
        drop(c);
        assert_eq!(ensemble(&bed, "zk", "zk-0").await, BTreeSet::from(["1", "2", "3"].map(String::from)));

        for (bad, field, why) in [(4, "spec.replicas", "odd"), (1, "replicas", "standalone")] {
            let (code, e) = bed.operate("zk", json!({ "kind": "scale", "replicas": bad })).await.unwrap_err();
            assert_eq!(code, 400);
            assert!(e.fields.iter().any(|f| f.field == field && f.message.contains(why)), "{bad}: {e:?}");
        }

        // Out to 5, the daemon restarted after the first member joined (the test hook holds
        // the operation there).
        let (op, out) = zk_scale_with_writer(&bed, "zk", json!({ "kind": "scale", "replicas": 5 }), true).await;
        assert_eq!(op.phase, OperationPhase::Succeeded, "{op:#?}");
        assert_eq!(plan(&op), ["add zk-3", "add zk-4"]);
        let s = bed.wait_phase("zk", Phase::Active, Duration::from_secs(120)).await;
        assert_eq!(s.status.members.len(), 5);
        assert_eq!(s.status.members.iter().filter(|m| m.role == Role::Leader).count(), 1, "{:?}", members(&s));
        let five = BTreeSet::from(["1", "2", "3", "4", "5"].map(String::from));
        for m in ["zk-0", "zk-3", "zk-4"] {
            assert_eq!(ensemble(&bed, "zk", m).await, five, "the ensemble as {m} knows it");
        }
        assert!(!out.is_empty(), "writes went on during the scale out");

        // In to 3: the highest members leave through reconfig, the leader too if it is one.
        let gone = bed.ip("zk", "zk-4").await;
        let (op, inn) = zk_scale_with_writer(&bed, "zk", json!({ "kind": "scale", "replicas": 3 }), false).await;
        assert_eq!(op.phase, OperationPhase::Succeeded, "{op:#?}");
        assert_eq!(plan(&op), ["remove zk-4", "remove zk-3"]);
        let s = bed.wait_phase("zk", Phase::Active, Duration::from_secs(120)).await;
        assert_eq!(s.status.members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["zk-0", "zk-1", "zk-2"]);
        assert!(!inn.is_empty(), "writes went on during the scale in");
        for m in ["zk-0", "zk-1", "zk-2"] {
            assert_eq!(ensemble(&bed, "zk", m).await, BTreeSet::from(["1", "2", "3"].map(String::from)), "the ensemble as {m} knows it");
            let c = zk_session(&bed, "zk", m, "client").await;
            c.sync("/scale").await.unwrap();
            let have: BTreeSet<String> = c.list_children("/scale").await.unwrap().into_iter().collect();
            let lost: Vec<&String> = out.iter().chain(&inn).filter(|z| !have.contains(*z)).collect();
            assert!(lost.is_empty(), "acknowledged znodes missing on {m}: {lost:?}");
        }
        assert!(!bed.member_dir("zk", "zk-4").exists());
        assert!(std::net::TcpStream::connect((gone.as_str(), 2181)).is_err(), "nothing serves on zk-4's old address");
    })
    .await;
}

/// Slots held by each primary of `name` (by address), as `member` sees the cluster.
async fn slots_by_primary(bed: &Bed, name: &str, member: &str) -> Vec<(String, usize)> {
    let text = match bed.redis(name, member, &["CLUSTER", "NODES"]).await {
        redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        redis::Value::VerbatimString { text, .. } => text,
        v => panic!("{v:?}"),
    };
    let count = |s: &str| match s.split_once('-') {
        Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
        None => 1,
    };
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f[2].contains("master"))
        .map(|f| (f[1].split(':').next().unwrap().to_string(), f[8..].iter().filter(|s| !s.starts_with('[')).map(|s| count(s)).sum()))
        .collect()
}

const KEYS: usize = 10_000;

/// Runs `op` on `name` while a cluster client writes every key again (a new value each pass)
/// and reads it back; what it saw: (passes, commands failed, keys read wrong or missing).
async fn reshard_with_client(bed: &Bed, name: &str, op: serde_json::Value, hold_and_restart: bool) -> (Operation, usize, Vec<String>, Vec<String>) {
    use redis::AsyncCommands;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = bed.operate(name, op).await.unwrap();
    if hold_and_restart {
        let held = bed.wait_operation_until(name, &started.id, Duration::from_secs(240), |o| o.steps[0].phase == OperationPhase::Succeeded).await;
        assert_eq!(held.phase, OperationPhase::Running, "{held:#?}");
        let mut cfg = bed.cfg.clone();
        cfg.hold_operations_after_steps = None;
        bed.restart_daemon(cfg).await;
        // The members restart with the daemon: the client starts once every slot is served.
        let deadline = Instant::now() + Duration::from_secs(120);
        while !matches!(bed.try_redis(name, &format!("{name}-0"), &["CLUSTER", "INFO"]).await, Some(ref i) if i.contains("cluster_state:ok")) {
            assert!(Instant::now() < deadline, "the cluster did not serve every slot again within 120 s of the restart");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mut con = common::redis_cluster_client(bed, name).await;
    let client = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut passes, mut failed, mut wrong) = (0, Vec::new(), Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                passes += 1;
                for i in 0..KEYS {
                    let (key, value) = (format!("key-{i}"), format!("{passes}-{i}"));
                    if let Err(e) = con.set::<_, _, ()>(&key, &value).await {
                        failed.push(format!("SET {key}: {e}"));
                        continue;
                    }
                    match con.get::<_, Option<String>>(&key).await {
                        Ok(Some(v)) if v == value => {}
                        Ok(v) => wrong.push(format!("{key}: {v:?}, not {value}")),
                        Err(e) => failed.push(format!("GET {key}: {e}")),
                    }
                }
            }
            (passes, failed, wrong)
        })
    };
    let done = bed.wait_operation(name, &started.id, Duration::from_secs(400)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (passes, failed, wrong) = client.await.unwrap();
    (done, passes, failed, wrong)
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_cluster_reshards_3_to_4_to_3_shards_with_every_key_served_throughout() {
    require(EngineKind::Redis);
    // The test hook holds every operation after its first step, so the daemon stops there.
    let tweak = common::hold_after_steps(1);
    with_bed("t-scc", "127.0.204.1/20", tweak, |bed| async move {
        let mut s = spec("redis", 6, "128Mi");
        s["redis"] = json!({ "mode": "cluster", "shards": 3 });
        bed.create(json!({ "name": "rc", "spec": s })).await.expect("created");
        bed.wait_phase("rc", Phase::Active, Duration::from_secs(180)).await;

        for (body, field) in [(json!({ "kind": "scale", "replicas": 8 }), "replicas"), (json!({ "kind": "scale", "shards": 2 }), "spec.redis.shards")] {
            let (code, e) = bed.operate("rc", body.clone()).await.unwrap_err();
            assert_eq!(code, 400);
            assert!(e.fields.iter().any(|f| f.field == field), "{body}: {e:?}");
        }

        // Out to 4 shards; the daemon restarts after rc-6 joined (the test hook holds there).
        let (op, passes, failed, wrong) = reshard_with_client(&bed, "rc", json!({ "kind": "scale", "shards": 4 }), true).await;
        assert_eq!(op.phase, OperationPhase::Succeeded, "{op:#?}");
        assert_eq!(plan(&op), ["add rc-6", "add rc-7", "fill rc-6"]);
        assert!(
            failed.is_empty() && wrong.is_empty(),
            "during the fill: {} failed, {} wrong: {:?}",
            failed.len(),
            wrong.len(),
            failed.iter().chain(&wrong).take(5).collect::<Vec<_>>()
        );
        eprintln!("scale out: {passes} passes over {KEYS} keys");
        let s = bed.wait_phase("rc", Phase::Active, Duration::from_secs(120)).await;
        assert_eq!(s.status.members.len(), 8);
        let primaries = slots_by_primary(&bed, "rc", "rc-0").await;
        assert_eq!(primaries.len(), 4, "{primaries:?}");
        for (ip, n) in &primaries {
            assert!((3972..=4220).contains(n), "{ip} holds {n} slots, not about 4096: {primaries:?}");
        }
        let rc6 = bed.ip("rc", "rc-6").await;
        assert!(primaries.iter().any(|(ip, _)| *ip == rc6), "rc-6 is a primary: {primaries:?}");

        // In to 3: rc-6's shard is drained, then its members leave.
        let gone = bed.ip("rc", "rc-7").await;
        let (op, passes, failed, wrong) = reshard_with_client(&bed, "rc", json!({ "kind": "scale", "shards": 3 }), false).await;
        assert_eq!(op.phase, OperationPhase::Succeeded, "{op:#?}");
        assert_eq!(plan(&op), ["drain rc-6", "remove rc-7", "remove rc-6"]);
        assert!(
            failed.is_empty() && wrong.is_empty(),
            "during the drain: {} failed, {} wrong: {:?}",
            failed.len(),
            wrong.len(),
            failed.iter().chain(&wrong).take(5).collect::<Vec<_>>()
        );
        eprintln!("scale in: {passes} passes over {KEYS} keys");
        let s = bed.wait_phase("rc", Phase::Active, Duration::from_secs(120)).await;
        assert_eq!(s.status.members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["rc-0", "rc-1", "rc-2", "rc-3", "rc-4", "rc-5"]);
        for m in ["rc-0", "rc-3", "rc-5"] {
            let info = bed.try_redis("rc", m, &["CLUSTER", "INFO"]).await.unwrap();
            assert!(info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:6"), "{m}: {info}");
        }
        let primaries = slots_by_primary(&bed, "rc", "rc-0").await;
        assert_eq!(primaries.len(), 3, "{primaries:?}");
        for (ip, n) in &primaries {
            assert!((5296..=5626).contains(n), "{ip} holds {n} slots, not about 5461: {primaries:?}");
        }
        let mut con = common::redis_cluster_client(&bed, "rc").await;
        let mut missing = 0;
        for i in 0..KEYS {
            let v: Option<String> = redis::AsyncCommands::get(&mut con, format!("key-{i}")).await.unwrap();
            missing += usize::from(v.is_none());
        }
        assert_eq!(missing, 0, "keys lost");
        assert!(!bed.member_dir("rc", "rc-7").exists());
        assert!(std::net::TcpStream::connect((gone.as_str(), 6379)).is_err(), "nothing serves on rc-7's old address");
    })
    .await;
}
