//! Issue #14 on the local runtime: a PostgreSQL primary that dies and cannot start again (its
//! address is taken) is replaced by its most advanced replica after `failover.delaySeconds`; a
//! writer loses no acknowledged row (synchronous replication); the old primary rejoins as a
//! replica once it can start; a primary only FireCamp cannot reach, which its replicas still
//! hear, is not replaced; a daemon restart between the fence and the promotion converges on
//! one primary; a primary that hangs (every process of it stopped) is as lost as a dead one. The
//! same for Redis in replication mode.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::writer::{Via, Writes, endpoint_primary, primary, wait_for_acks, writer_via};
use common::{Bed, PgLogin, kill_and_block, pg_connect, require, spec, with_bed};
use firecamp_api::{Operation, OperationKind, OperationPhase, Phase, Role};
use firecamp_core::EngineKind;
use serde_json::json;
use tokio::sync::watch;

/// The service's newest failover operation once it has ended.
async fn failover_done(bed: &Bed, name: &str, after: usize, within: Duration) -> Operation {
    let deadline = Instant::now() + within;
    loop {
        let ops: Vec<Operation> = bed.operations(name).await.into_iter().filter(|o| o.kind == OperationKind::Failover).collect();
        if ops.len() > after && ops[0].phase.is_terminal() {
            return ops[0].clone();
        }
        assert!(Instant::now() < deadline, "no failover within {within:?}: {ops:#?}\n{}", bed.logs(name, &format!("{name}-0")).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `member` is a replica streaming from the primary.
async fn rejoined(bed: &Bed, name: &str, member: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = bed.get(name).await;
        let m = s.status.members.iter().find(|m| m.name == member).unwrap();
        if m.role == Role::Replica && s.status.phase == Phase::Active {
            return;
        }
        if Instant::now() > deadline {
            let log = bed.logs(name, member).await;
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "{member} did not rejoin as a replica: {:?} {:?}\n{}",
                s.status.phase,
                s.status.members,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn rows(ip: &str, login: &PgLogin) -> std::collections::HashSet<i64> {
    let c = pg_connect(ip, login).await.unwrap();
    c.query("SELECT id FROM t", &[]).await.unwrap().iter().map(|r| r.get(0)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_postgresql_primary_is_replaced_fenced_and_rejoins() {
    require(EngineKind::Postgresql);
    // A fixed API port: the daemon is restarted at the end.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    with_bed(
        "t-fo",
        "127.0.173.1/20",
        move |c| c.listen = format!("127.0.0.1:{port}").parse().unwrap(),
        |bed| async move {
            let mut s = spec("postgresql", 3, "256Mi");
            s["postgresql"] = json!({ "replication": "sync" });
            s["failover"] = json!({ "delaySeconds": 5 });
            bed.create(json!({ "name": "fo", "spec": s })).await.expect("created");
            bed.wait_phase("fo", Phase::Active, Duration::from_secs(240)).await;
            let login = bed.pg_login("fo");
            let ip0 = bed.ip("fo", "fo-0").await;
            let c0 = pg_connect(&ip0, &login).await.unwrap();
            c0.batch_execute("CREATE TABLE t (id bigint PRIMARY KEY)").await.unwrap();

            // 1. FireCamp cannot log in to the primary (its pg_hba.conf, not replicated, turns
            //    the superuser away), but its replicas still stream from it: as a partition
            //    between the runtime and a healthy primary, no failover. The session opened
            //    before keeps working and undoes it.
            let hba = bed.member_dir("fo", "fo-0").join("config/pg_hba.conf");
            let original = std::fs::read_to_string(&hba).unwrap();
            std::fs::write(&hba, format!("hostssl all postgres 0.0.0.0/0 reject\nhost all postgres 0.0.0.0/0 reject\n{original}")).unwrap();
            c0.batch_execute("SELECT pg_reload_conf()").await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !bed.logs("fo", "fo-0").await.contains("still receives from it: no failover") {
                assert!(Instant::now() < deadline, "the watcher never judged the unreachable primary: {}", bed.logs("fo", "fo-0").await);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            // The window under test: twice the failover delay with the primary unreachable.
            tokio::time::sleep(Duration::from_secs(10)).await;
            assert!(bed.operations("fo").await.iter().all(|o| o.kind != OperationKind::Failover), "a partition caused a failover");
            std::fs::write(&hba, original).unwrap();
            c0.batch_execute("SELECT pg_reload_conf()").await.unwrap();
            drop(c0);

            // 2. The primary dies and cannot start again, under a writer that goes through the
            //    primary endpoint (the runtime's DNS, the endpoint's name verified by TLS).
            let endpoints = bed.get("fo").await.status.endpoints;
            assert_eq!(endpoints.len(), 2, "{endpoints:?}");
            assert_eq!((endpoints[0].role.as_str(), endpoints[0].addresses.clone()), ("primary", vec![ip0.clone()]));
            assert_eq!(endpoint_primary(&bed, "fo").await, Some(("fo-0".to_string(), ip0.clone())));
            let w = Arc::new(Mutex::new(Writes::default()));
            let (stop_tx, stop_rx) = watch::channel(false);
            let task = writer_via(bed.clone(), "fo", Via::Endpoint, login.clone(), stop_rx, w.clone());
            wait_for_acks(&w, 30).await;
            let hold = kill_and_block(&bed, "fo", "fo-0", 5432).await;
            let op = failover_done(&bed, "fo", 0, Duration::from_secs(120)).await;
            assert_eq!(op.phase, OperationPhase::Succeeded, "{op:#?}");
            let heir = op.steps[1].member.clone();
            let got: Vec<String> = op.steps.iter().map(|s| s.describe()).collect();
            assert_eq!(got, [format!("fence fo-0 → {heir}"), format!("promote {heir}")]);
            let msg = op.message.clone().unwrap_or_default();
            assert!(msg.contains("no acknowledged write is lost") && msg.contains("fo-0 lost for"), "{msg}");
            let seen = w.lock().unwrap().acked.len();
            wait_for_acks(&w, seen + 30).await;
            stop_tx.send(true).unwrap();
            task.await.unwrap();
            let writes = std::mem::take(&mut *w.lock().unwrap());
            let (p, ip) = primary(&bed, "fo").await.expect("a primary");
            assert_eq!(p, heir);
            assert_eq!(writes.primaries(), ["fo-0".to_string(), heir.clone()], "writes moved once, to the new primary");
            // The endpoints followed: the primary's to the heir, the replicas' to the others.
            assert_eq!(endpoint_primary(&bed, "fo").await, Some((heir.clone(), ip.clone())));
            let endpoints = bed.get("fo").await.status.endpoints;
            assert_eq!(endpoints[0].addresses, vec![ip.clone()]);
            let mut others = Vec::new();
            for m in ["fo-0", "fo-1", "fo-2"].into_iter().filter(|m| *m != heir) {
                others.push(bed.ip("fo", m).await);
            }
            assert_eq!(endpoints[1].addresses, others);
            let replicas = common::query_a(bed.dns_addr, &format!("replicas.fo.{}-firecamp.com", bed.cfg.cluster)).await;
            assert_eq!(replicas.iter().map(|i| i.to_string()).collect::<std::collections::BTreeSet<_>>(), others.into_iter().collect());
            let present = rows(&ip, &login).await;
            let lost: Vec<i64> = writes.acked.iter().filter(|i| !present.contains(i)).copied().collect();
            assert!(lost.is_empty(), "acknowledged rows lost in the failover: {lost:?}");

            // 3. Its address free again, the old primary rejoins as a replica (rewound) and
            //    has every row.
            drop(hold);
            rejoined(&bed, "fo", "fo-0").await;
            let s = bed.get("fo").await;
            assert_eq!(s.status.members.iter().filter(|m| m.role == Role::Primary).count(), 1, "{:?}", s.status.members);
            let deadline = Instant::now() + Duration::from_secs(60);
            while !writes.acked.iter().all(|i| present.contains(i)) || rows(&ip0, &login).await.len() < present.len() {
                assert!(Instant::now() < deadline, "fo-0 did not catch up");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            assert!(bed.logs("fo", "fo-0").await.contains("fenced: this data directory was a primary's"));

            // 4. A daemon restart between the fence and the promotion: the next daemon goes on
            //    from the promotion, and the service ends with one primary.
            let mut held = bed.cfg.clone();
            held.hold_operations_after_steps = Some(1);
            bed.restart_daemon(held).await;
            bed.wait_phase("fo", Phase::Active, Duration::from_secs(120)).await;
            let hold = kill_and_block(&bed, "fo", &heir, 5432).await;
            let deadline = Instant::now() + Duration::from_secs(120);
            let op = loop {
                let ops = bed.operations("fo").await;
                if let Some(o) = ops.iter().find(|o| o.kind == OperationKind::Failover && o.id != op.id && o.done_steps() == 1) {
                    break o.clone();
                }
                assert!(Instant::now() < deadline, "the second failover did not fence: {ops:#?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            bed.restart_daemon(bed.cfg.clone()).await;
            let done = bed.wait_operation("fo", &op.id, Duration::from_secs(120)).await;
            assert_eq!(done.phase, OperationPhase::Succeeded, "{done:#?}");
            drop(hold);
            rejoined(&bed, "fo", &heir).await;
            let s = bed.get("fo").await;
            let primaries: Vec<&str> = s.status.members.iter().filter(|m| m.role == Role::Primary).map(|m| m.name.as_str()).collect();
            assert_eq!(primaries, [done.steps[1].member.as_str()], "{:?}", s.status.members);
        },
    )
    .await;
}

/// A primary that is alive but answers nothing (its whole process group stopped, as a stalled
/// disk would leave it): once its replicas stop hearing it too, it is lost like a dead one;
/// fencing kills it, and it rejoins as a replica when started again.
#[tokio::test(flavor = "multi_thread")]
async fn a_hung_postgresql_primary_is_as_lost_as_a_dead_one() {
    require(EngineKind::Postgresql);
    with_bed(
        "t-foh",
        "127.0.175.1/10",
        |_| {},
        |bed| async move {
            let mut s = spec("postgresql", 2, "256Mi");
            s["postgresql"] = json!({ "replication": "sync" });
            s["failover"] = json!({ "delaySeconds": 5 });
            bed.create(json!({ "name": "fh", "spec": s })).await.expect("created");
            bed.wait_phase("fh", Phase::Active, Duration::from_secs(240)).await;
            let login = bed.pg_login("fh");
            let ip0 = bed.ip("fh", "fh-0").await;
            let c0 = pg_connect(&ip0, &login).await.unwrap();
            c0.batch_execute("CREATE TABLE t (id bigint PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100)").await.unwrap();
            drop(c0);
            // Every process of the member stops: the server, its backends, its WAL senders (each of PostgreSQL's children leads a session of its own).
            let tree = firecamp_local::process_tree(bed.server_pid("fh", "fh-0"));
            assert!(tree.len() > 3, "the server and its children: {tree:?}");
            // (A backend may have ended since the tree was read.)
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(tree[0]), nix::sys::signal::Signal::SIGSTOP).unwrap();
            for p in &tree[1..] {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*p), nix::sys::signal::Signal::SIGSTOP);
            }
            let op = failover_done(&bed, "fh", 0, Duration::from_secs(180)).await;
            assert_eq!(op.phase, OperationPhase::Succeeded, "{op:#?}");
            assert_eq!(op.steps[1].member, "fh-1");
            let msg = op.message.clone().unwrap_or_default();
            assert!(msg.contains("fh-0 lost for") && msg.contains("no answer"), "{msg}");
            // Writes go through the primary endpoint to fh-1, which has every committed row.
            let (m, ip) = endpoint_primary(&bed, "fh").await.expect("the endpoint resolves");
            assert_eq!(m, "fh-1");
            let c = common::pg_connect_as(&ip, &common::writer::primary_endpoint(&bed, "fh"), &login).await.unwrap();
            c.execute("INSERT INTO t VALUES (101)", &[]).await.unwrap();
            assert_eq!(rows(&ip, &login).await.len(), 101);
            // The hung member was killed by the fence and came back as fh-1's replica.
            assert!(bed.logs("fh", "fh-0").await.contains("killing fh-0 (fenced)"));
            rejoined(&bed, "fh", "fh-0").await;
            let deadline = Instant::now() + Duration::from_secs(60);
            while rows(&ip0, &login).await.len() < 101 {
                assert!(Instant::now() < deadline, "fh-0 did not catch up");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_redis_primary_is_replaced_by_the_replica_with_the_most_data() {
    require(EngineKind::Redis);
    with_bed(
        "t-for",
        "127.0.174.101/20",
        |_| {},
        |bed| async move {
            let mut s = spec("redis", 3, "128Mi");
            s["failover"] = json!({ "delaySeconds": 5 });
            bed.create(json!({ "name": "rf", "spec": s })).await.expect("created");
            bed.wait_phase("rf", Phase::Active, Duration::from_secs(120)).await;
            // Acknowledged writes: each SET confirmed by a replica (WAIT) before the next.
            for i in 0..100 {
                bed.redis("rf", "rf-0", &["SET", &format!("k{i}"), &i.to_string()]).await;
            }
            assert_eq!(bed.redis("rf", "rf-0", &["WAIT", "2", "5000"]).await, redis::Value::Int(2));
            let hold = kill_and_block(&bed, "rf", "rf-0", 6379).await;
            let op = failover_done(&bed, "rf", 0, Duration::from_secs(120)).await;
            assert_eq!(op.phase, OperationPhase::Succeeded, "{op:#?}");
            let heir = op.steps[1].member.clone();
            assert_eq!(op.steps[0].describe(), format!("fence rf-0 → {heir}"));
            // The heir takes writes and has every acknowledged key; the other replica follows it.
            bed.redis("rf", &heir, &["SET", "after", "failover"]).await;
            assert_eq!(bed.redis("rf", &heir, &["DBSIZE"]).await, redis::Value::Int(101));
            let other = if heir == "rf-1" { "rf-2" } else { "rf-1" };
            assert_eq!(bed.redis("rf", &heir, &["WAIT", "1", "5000"]).await, redis::Value::Int(1), "{other} replicates from {heir}");
            // The old primary, free to start again, comes back as the heir's replica with its data.
            drop(hold);
            rejoined(&bed, "rf", "rf-0").await;
            let deadline = Instant::now() + Duration::from_secs(60);
            while bed.redis("rf", "rf-0", &["DBSIZE"]).await != redis::Value::Int(101) {
                assert!(Instant::now() < deadline, "rf-0 did not sync from {heir}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let s = bed.get("rf").await;
            let primaries: Vec<&str> = s.status.members.iter().filter(|m| m.role == Role::Primary).map(|m| m.name.as_str()).collect();
            assert_eq!(primaries, [heir.as_str()]);
        },
    )
    .await;
}
