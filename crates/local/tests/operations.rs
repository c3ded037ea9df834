//! Day-2 operations on real servers: ordered restarts and upgrades with a continuous writer
//! (every acknowledged write survives, one write outage), switchover, config reloads without a
//! restart, refusals, and a daemon restart in the middle of an operation.

mod common;

use std::time::Duration;

use common::writer::{pg_service, primary, with_writer};
use common::zk::zk_cli;
use common::{Bed, PgLogin, pg_connect, require, spec, with_bed};
use firecamp_api::{Operation, OperationPhase, Phase, Role, StepAction};
use firecamp_core::EngineKind;
use serde_json::json;

fn plan(op: &Operation) -> Vec<String> {
    op.steps.iter().map(|s| s.describe()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn postgresql_ordered_updates_keep_every_acknowledged_write() {
    require(EngineKind::Postgresql);
    with_bed(
        "t-opa",
        "127.0.160.1/20",
        |_| {},
        |bed| async move {
            let password = pg_service(&bed, "pg").await;

            // PrimaryLast (the default), an upgrade on the same catalog version: replicas first,
            // a switchover to an updated replica, the old primary last, as a replica.
            let (op, writes) = with_writer(&bed, "pg", &password, json!({ "kind": "upgrade", "version": "15" })).await;
            assert_eq!(op.policy.as_str(), "PrimaryLast");
            assert_eq!(plan(&op), ["restart pg-1", "restart pg-2", "switchover pg-0 → pg-1", "restart pg-0"]);
            assert_eq!(writes.primaries(), ["pg-0", "pg-1"], "the primary changed exactly once");
            assert!(writes.outage_windows() <= 1, "writes failed in {} separate windows: {:?}", writes.outage_windows(), writes.outcomes);
            let s = bed.wait_phase("pg", Phase::Active, Duration::from_secs(60)).await;
            let roles: Vec<Role> = s.status.members.iter().map(|m| m.role).collect();
            assert_eq!(roles, [Role::Replica, Role::Primary, Role::Replica], "the old primary came back as a replica");

            // PrimaryFirst: the primary (now pg-1) first and no switchover; it stays the primary.
            let (op, writes) = with_writer(&bed, "pg", &password, json!({ "kind": "restart", "policy": "PrimaryFirst" })).await;
            assert_eq!(plan(&op), ["restart pg-1", "restart pg-0", "restart pg-2"]);
            assert_eq!(writes.primaries(), ["pg-1"], "the primary stayed the same member");
            assert!(writes.outage_windows() <= 1, "writes failed in {} separate windows: {:?}", writes.outage_windows(), writes.outcomes);
            let s = bed.wait_phase("pg", Phase::Active, Duration::from_secs(60)).await;
            assert_eq!(s.status.members[1].role, Role::Primary);

            // The list shows both, newest first.
            let ops = bed.operations("pg").await;
            assert_eq!(ops.len(), 2);
            assert!(ops[0].id > ops[1].id && ops.iter().all(|o| o.phase == OperationPhase::Succeeded));
        },
    )
    .await;
}

async fn start_time(ip: &str, password: &PgLogin) -> String {
    let c = pg_connect(ip, password).await.unwrap();
    c.query_one("SELECT pg_postmaster_start_time()::text", &[]).await.unwrap().get(0)
}

async fn show(ip: &str, password: &PgLogin, key: &str) -> String {
    let c = pg_connect(ip, password).await.unwrap();
    c.query_one(&format!("SHOW {key}"), &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn postgresql_config_reloads_or_restarts_in_order_and_bad_requests_are_refused() {
    require(EngineKind::Postgresql);
    with_bed(
        "t-opd",
        "127.0.161.1/20",
        |_| {},
        |bed| async move {
            let password = pg_service(&bed, "pd").await;
            let members = ["pd-0", "pd-1", "pd-2"];

            // Refusals: 400 naming the field, and nothing recorded.
            let (code, e) = bed.operate("pd", json!({ "kind": "upgrade", "version": "99" })).await.unwrap_err();
            assert_eq!(code, 400);
            assert!(e.fields.iter().any(|f| f.field.ends_with("version") && f.message.contains("99")), "{e:?}");
            let (code, e) = bed.operate("pd", json!({ "kind": "upgrade", "version": "17" })).await.unwrap_err();
            assert_eq!(code, 400, "a catalog version that is not installed: {e:?}");
            assert!(e.fields.iter().any(|f| f.field == "version"), "{e:?}");
            let (code, e) = bed.operate("pd", json!({ "kind": "config", "config": { "port": "5433" } })).await.unwrap_err();
            assert_eq!(code, 400);
            assert!(e.fields.iter().any(|f| f.field.ends_with("config.port")), "{e:?}");
            let (code, e) = bed.operate("pd", json!({ "kind": "config", "config": { "work_mme": "8MB" } })).await.unwrap_err();
            assert_eq!(code, 400);
            assert!(e.fields.iter().any(|f| f.field.ends_with("config.work_mme")), "{e:?}");
            let (code, e) = bed.operate("pd", json!({ "kind": "restart", "versoin": "15" })).await.unwrap_err();
            assert_eq!(code, 400);
            assert!(e.message.contains("versoin"), "{e:?}");
            assert!(bed.operations("pd").await.is_empty(), "refused requests leave no record");

            // A reloadable parameter: every member reloads, no server restarts.
            let mut before = Vec::new();
            for m in members {
                let ip = bed.ip("pd", m).await;
                before.push((bed.server_pid("pd", m), start_time(&ip, &password).await));
            }
            let op = bed.operate("pd", json!({ "kind": "config", "config": { "work_mem": "8MB" } })).await.unwrap();
            let op = bed.wait_operation("pd", &op.id, Duration::from_secs(120)).await;
            assert!(op.steps.iter().all(|s| s.action == StepAction::Reload), "{:?}", plan(&op));
            for (i, m) in members.iter().enumerate() {
                let ip = bed.ip("pd", m).await;
                assert_eq!((bed.server_pid("pd", m), start_time(&ip, &password).await), before[i], "{m} was not restarted");
                assert_eq!(show(&ip, &password, "work_mem").await, "8MB", "{m}");
            }

            // A postmaster parameter: members restart in order, primary last after a switchover.
            let op = bed.operate("pd", json!({ "kind": "config", "config": { "shared_buffers": "96MB" } })).await.unwrap();
            assert_eq!(plan(&op), ["restart pd-1", "restart pd-2", "switchover pd-0 → pd-1", "restart pd-0"]);
            // While it runs, another operation is refused with 409 and not recorded.
            let (code, e) = bed.operate("pd", json!({ "kind": "restart" })).await.unwrap_err();
            assert_eq!(code, 409, "{e:?}");
            assert!(e.message.contains(&op.id), "{e:?}");
            assert_eq!(bed.operations("pd").await.len(), 2);
            bed.wait_operation("pd", &op.id, Duration::from_secs(600)).await;
            for (i, m) in members.iter().enumerate() {
                let ip = bed.ip("pd", m).await;
                assert_ne!(start_time(&ip, &password).await, before[i].1, "{m} restarted");
                assert_eq!(show(&ip, &password, "shared_buffers").await, "96MB", "{m}");
                assert_eq!(show(&ip, &password, "work_mem").await, "8MB", "{m} kept the earlier change");
            }
            let s = bed.wait_phase("pd", Phase::Active, Duration::from_secs(60)).await;
            assert_eq!(s.status.members[1].role, Role::Primary);
            assert_eq!(s.spec.config.get("shared_buffers").map(String::as_str), Some("96MB"));

            // Stop and start are operations too: the primary stops last and starts first.
            let r = bed.http.post(format!("{}/v1/services/pd/stop", bed.url)).send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
            let ops = bed.operations("pd").await;
            assert_eq!(plan(&ops[0]), ["stop pd-0", "stop pd-2", "stop pd-1"]);
            let r = bed.http.post(format!("{}/v1/services/pd/start", bed.url)).send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
            let ops = bed.operations("pd").await;
            assert_eq!(plan(&ops[0]), ["start pd-1", "start pd-0", "start pd-2"]);
            bed.wait_phase("pd", Phase::Active, Duration::from_secs(120)).await;

            // A step that does not finish in time fails the operation; later steps are not run.
            let pids: Vec<i32> = members.iter().map(|m| bed.server_pid("pd", m)).collect();
            // A value FireCamp's allow-list accepts (PostgreSQL's own range) but this server refuses
            // to start with: it must stay below max_connections (200).
            let op =
                bed.operate("pd", json!({ "kind": "config", "config": { "superuser_reserved_connections": "250" }, "stepTimeoutSeconds": 15 })).await.unwrap();
            assert_eq!(plan(&op), ["restart pd-0", "restart pd-2", "switchover pd-1 → pd-0", "restart pd-1"]);
            let failed = bed.wait_operation_until("pd", &op.id, Duration::from_secs(120), |o| o.phase.is_terminal()).await;
            assert_eq!(failed.phase, OperationPhase::Failed, "{failed:#?}");
            assert_eq!(failed.steps[0].phase, OperationPhase::Failed);
            assert!(failed.steps[0].message.as_deref().unwrap_or_default().contains("pd-0"), "{failed:#?}");
            assert!(failed.message.as_deref().unwrap_or_default().contains("step 1 of 4"), "{failed:#?}");
            assert!(failed.steps[1..].iter().all(|s| s.phase == OperationPhase::Pending), "{failed:#?}");
            assert_eq!([bed.server_pid("pd", "pd-1"), bed.server_pid("pd", "pd-2")], [pids[1], pids[2]], "nothing further touched");
            // Removing the value is a new operation; it brings pd-0 back first.
            let op = bed.operate("pd", json!({ "kind": "config", "config": { "superuser_reserved_connections": "" } })).await.unwrap();
            assert_eq!(op.steps[0].describe(), "restart pd-0");
            bed.wait_operation("pd", &op.id, Duration::from_secs(600)).await;
            bed.wait_phase("pd", Phase::Active, Duration::from_secs(120)).await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_replication_restart_switches_over_and_keeps_keys() {
    require(EngineKind::Redis);
    with_bed(
        "t-opr",
        "127.0.162.1/20",
        |_| {},
        |bed| async move {
            bed.create(json!({ "name": "rr", "spec": spec("redis", 3, "128Mi") })).await.expect("created");
            bed.wait_phase("rr", Phase::Active, Duration::from_secs(120)).await;
            // Over TLS, verified against the service's CA (members serve nothing else).
            for i in 0..100 {
                bed.redis("rr", "rr-0", &["SET", &format!("k{i}"), &i.to_string()]).await;
            }
            // WAIT: the replicas have every write before the operation starts.
            assert_eq!(bed.redis("rr", "rr-0", &["WAIT", "2", "5000"]).await, redis::Value::Int(2));

            let op = bed.operate("rr", json!({ "kind": "restart" })).await.unwrap();
            assert_eq!(plan(&op), ["restart rr-1", "restart rr-2", "switchover rr-0 → rr-1", "restart rr-0"]);
            bed.wait_operation("rr", &op.id, Duration::from_secs(300)).await;
            let s = bed.wait_phase("rr", Phase::Active, Duration::from_secs(60)).await;
            let roles: Vec<Role> = s.status.members.iter().map(|m| m.role).collect();
            assert_eq!(roles, [Role::Replica, Role::Primary, Role::Replica]);
            for m in ["rr-0", "rr-1", "rr-2"] {
                assert_eq!(bed.redis("rr", m, &["DBSIZE"]).await, redis::Value::Int(100), "{m} has every key");
            }
            // The old primary follows the new one, also in its rendered config (a later restart).
            let conf = std::fs::read_to_string(bed.member_dir("rr", "rr-0").join("config/redis.conf")).unwrap();
            assert!(conf.contains("replicaof rr-1.t-opr-firecamp.com 6379"), "{conf}");

            // A reloadable parameter: CONFIG SET on every member, no restart.
            let pids: Vec<i32> = ["rr-0", "rr-1", "rr-2"].iter().map(|m| bed.server_pid("rr", m)).collect();
            let op = bed.operate("rr", json!({ "kind": "config", "config": { "hz": "20" } })).await.unwrap();
            assert!(op.steps.iter().all(|s| s.action == StepAction::Reload), "{:?}", plan(&op));
            bed.wait_operation("rr", &op.id, Duration::from_secs(120)).await;
            for (i, m) in ["rr-0", "rr-1", "rr-2"].iter().enumerate() {
                assert_eq!(bed.server_pid("rr", m), pids[i], "{m} was not restarted");
                assert_eq!(bed.redis_config("rr", m, "hz").await, "20", "{m}");
            }
            // Resources: members restart in order (primary rr-1 last, after a switchover back to
            // an updated replica) and size maxmemory from the new limit (75% of 256Mi).
            let op = bed.operate("rr", json!({ "kind": "resources", "resources": { "requests": { "memory": "256Mi" } } })).await.unwrap();
            assert_eq!(plan(&op), ["restart rr-0", "restart rr-2", "switchover rr-1 → rr-0", "restart rr-1"]);
            bed.wait_operation("rr", &op.id, Duration::from_secs(300)).await;
            for m in ["rr-0", "rr-1", "rr-2"] {
                assert_eq!(bed.redis_config("rr", m, "maxmemory").await, (192u64 << 20).to_string(), "{m}");
                assert_eq!(bed.redis_config("rr", m, "hz").await, "20", "{m} kept the earlier change");
            }
            let s = bed.wait_phase("rr", Phase::Active, Duration::from_secs(60)).await;
            assert_eq!(s.status.members[0].role, Role::Primary);
        },
    )
    .await;
}

async fn zk_service(bed: &Bed, name: &str) {
    let mut s = spec("zookeeper", 3, "512Mi");
    s["zookeeper"] = json!({ "heap": "128Mi" });
    bed.create(json!({ "name": name, "spec": s })).await.expect("created");
    bed.wait_phase(name, Phase::Active, Duration::from_secs(180)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn zookeeper_restart_keeps_znodes_and_quorum_with_the_leader_last() {
    require(EngineKind::Zookeeper);
    with_bed(
        "t-opz",
        "127.0.163.1/20",
        |_| {},
        |bed| async move {
            zk_service(&bed, "zk").await;
            // zkCli as the service's client user, over TLS with its CA.
            let client = bed.zk_client("zk", "client");
            let ip0 = format!("{}:2181", bed.ip("zk", "zk-0").await);
            let c = client.clone();
            let out = tokio::task::spawn_blocking(move || zk_cli(&ip0, &c, &["create", "/kept", "before-restart"])).await.unwrap();
            assert!(out.contains("Created /kept"), "{out}");
            let (leader, _) = primary(&bed, "zk").await.expect("a leader");

            let op = bed.operate("zk", json!({ "kind": "restart" })).await.unwrap();
            assert_eq!(op.steps.len(), 3);
            assert!(op.steps.iter().all(|s| s.action == StepAction::Restart), "no switchover: {:?}", plan(&op));
            assert_eq!(op.steps[2].member, leader, "the leader is restarted last");
            // Quorum: after every step the two other members are still serving (each step waits
            // for its member to be back as leader or follower before the next one starts).
            let mut checked = 0;
            loop {
                let o = bed.operation("zk", &op.id).await;
                let done = o.done_steps();
                if done > checked {
                    let s = bed.get("zk").await;
                    let serving = s.status.members.iter().filter(|m| matches!(m.role, Role::Leader | Role::Follower)).count();
                    assert!(serving >= 2, "after step {done}: {:?}", s.status.members);
                    checked = done;
                }
                if o.phase.is_terminal() {
                    assert_eq!(o.phase, OperationPhase::Succeeded, "{o:#?}");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            bed.wait_phase("zk", Phase::Active, Duration::from_secs(60)).await;
            let ip2 = "zk-2.t-opz-firecamp.com:2181".to_string();
            let c = client.clone();
            let out = tokio::task::spawn_blocking(move || zk_cli(&ip2, &c, &["get", "/kept"])).await.unwrap();
            assert!(out.contains("before-restart"), "{out}");
            // A config change restarts too (ZooKeeper never reloads).
            let op = bed.operate("zk", json!({ "kind": "config", "config": { "maxClientCnxns": "100" } })).await.unwrap();
            assert!(op.steps.iter().all(|s| s.action == StepAction::Restart), "{:?}", plan(&op));
            bed.wait_operation("zk", &op.id, Duration::from_secs(300)).await;
            let cfg = std::fs::read_to_string(bed.member_dir("zk", "zk-1").join("config/zoo.cfg")).unwrap();
            assert!(cfg.ends_with("maxClientCnxns=100\n"), "{cfg}");
            // Stop and start keep the data, and the ensemble forms again: one member alone has no
            // quorum, so members start in order and the last start waits for all of them.
            let op = bed.operate("zk", json!({ "kind": "stop" })).await.unwrap();
            bed.wait_operation("zk", &op.id, Duration::from_secs(120)).await;
            assert_eq!(bed.get("zk").await.status.phase, Phase::Stopped);
            let op = bed.operate("zk", json!({ "kind": "start" })).await.unwrap();
            bed.wait_operation("zk", &op.id, Duration::from_secs(120)).await;
            bed.wait_phase("zk", Phase::Active, Duration::from_secs(60)).await;
            let ip1 = "zk-1.t-opz-firecamp.com:2181".to_string();
            let c = client.clone();
            let out = tokio::task::spawn_blocking(move || zk_cli(&ip1, &c, &["get", "/kept"])).await.unwrap();
            assert!(out.contains("before-restart"), "{out}");
            // Cancel right after the request: the step under way ends (a ZooKeeper member takes
            // seconds to rejoin), no later step starts, and the operation says so.
            let op = bed.operate("zk", json!({ "kind": "restart" })).await.unwrap();
            let r = bed.http.post(format!("{}/v1/services/zk/operations/{}/cancel", bed.url, op.id)).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 202);
            let done = bed.wait_operation_until("zk", &op.id, Duration::from_secs(120), |o| o.phase.is_terminal()).await;
            assert_eq!(done.phase, OperationPhase::Cancelled, "{done:#?}");
            let finished = done.done_steps();
            assert!(finished <= 1, "{done:#?}");
            assert!(done.steps[finished..].iter().all(|s| s.phase == OperationPhase::Cancelled), "{done:#?}");
            let r = bed.http.post(format!("{}/v1/services/zk/operations/{}/cancel", bed.url, op.id)).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 400, "an ended operation cannot be cancelled");
            bed.wait_phase("zk", Phase::Active, Duration::from_secs(60)).await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_restart_resumes_an_operation_without_repeating_finished_steps() {
    require(EngineKind::Zookeeper);
    // The test hook holds every operation after its first step, so the daemon stops there.
    let tweak = common::hold_after_steps(1);
    with_bed("t-opf", "127.0.164.1/20", tweak, |bed| async move {
        zk_service(&bed, "zf").await;
        let op = bed.operate("zf", json!({ "kind": "restart" })).await.unwrap();
        let held = bed.wait_operation_until("zf", &op.id, Duration::from_secs(180), |o| o.steps[0].phase == OperationPhase::Succeeded).await;
        assert_eq!(held.phase, OperationPhase::Running);
        assert_eq!(held.steps[1].phase, OperationPhase::Pending);

        let mut cfg = bed.cfg.clone();
        cfg.hold_operations_after_steps = None;
        bed.restart_daemon(cfg).await;

        let done = bed.wait_operation("zf", &op.id, Duration::from_secs(300)).await;
        assert_eq!(done.steps[0], held.steps[0], "the finished step was not run again");
        for (i, step) in done.steps.iter().enumerate() {
            let log = bed.logs("zf", &step.member).await;
            let line = format!("operation {} step {}/3", op.id, i + 1);
            assert_eq!(log.matches(&line).count(), 1, "{line} in the log of {}:\n{log}", step.member);
        }
        bed.wait_phase("zf", Phase::Active, Duration::from_secs(60)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_cluster_restart_fails_each_shard_over_to_its_replica() {
    require(EngineKind::Redis);
    with_bed(
        "t-opc",
        "127.0.165.1/20",
        |_| {},
        |bed| async move {
            let mut s = spec("redis", 6, "128Mi");
            s["redis"] = json!({ "mode": "cluster", "shards": 3 });
            bed.create(json!({ "name": "rc", "spec": s })).await.expect("created");
            bed.wait_phase("rc", Phase::Active, Duration::from_secs(180)).await;
            // redis-cli -c over TLS follows the redirections to each slot's primary.
            for i in 0..200 {
                assert_eq!(bed.redis_cluster_cli("rc", "rc-0", &["SET", &format!("key-{i}"), &i.to_string()]).await, "OK");
            }

            let op = bed.operate("rc", json!({ "kind": "restart" })).await.unwrap();
            assert_eq!(
                plan(&op),
                [
                    "restart rc-1",
                    "restart rc-3",
                    "restart rc-5",
                    "switchover rc-0 → rc-1",
                    "restart rc-0",
                    "switchover rc-2 → rc-3",
                    "restart rc-2",
                    "switchover rc-4 → rc-5",
                    "restart rc-4",
                ]
            );
            bed.wait_operation("rc", &op.id, Duration::from_secs(600)).await;
            let s = bed.wait_phase("rc", Phase::Active, Duration::from_secs(120)).await;
            let roles: Vec<Role> = s.status.members.iter().map(|m| m.role).collect();
            assert_eq!(roles, [Role::Replica, Role::Primary, Role::Replica, Role::Primary, Role::Replica, Role::Primary]);
            for i in 0..200 {
                assert_eq!(bed.redis_cluster_cli("rc", "rc-5", &["GET", &format!("key-{i}")]).await, i.to_string());
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_restart_after_a_switchover_brings_the_old_primary_back_as_a_replica() {
    require(EngineKind::Postgresql);
    // Held after the switchover (step 3 of 4), before the old primary's restart.
    let tweak = common::hold_after_steps(3);
    with_bed("t-ops", "127.0.166.1/20", tweak, |bed| async move {
        let password = pg_service(&bed, "ps").await;
        let c = pg_connect(&bed.ip("ps", "ps-0").await, &password).await.unwrap();
        c.execute("INSERT INTO t VALUES (1)", &[]).await.unwrap();
        let op = bed.operate("ps", json!({ "kind": "restart" })).await.unwrap();
        assert_eq!(plan(&op), ["restart ps-1", "restart ps-2", "switchover ps-0 → ps-1", "restart ps-0"]);
        let held = bed.wait_operation_until("ps", &op.id, Duration::from_secs(300), |o| o.done_steps() == 3).await;
        assert_eq!(held.phase, OperationPhase::Running, "{held:#?}");

        // `local down` + `local up`: every member starts again from its files; the demoted
        // primary must come back as a replica of the new one, never as a primary.
        let mut cfg = bed.cfg.clone();
        cfg.hold_operations_after_steps = None;
        bed.restart_daemon(cfg).await;
        let done = bed.wait_operation("ps", &op.id, Duration::from_secs(300)).await;
        assert_eq!(done.steps[..3], held.steps[..3], "finished steps were not run again");
        let s = bed.wait_phase("ps", Phase::Active, Duration::from_secs(120)).await;
        let roles: Vec<Role> = s.status.members.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::Replica, Role::Primary, Role::Replica]);
        let log = bed.logs("ps", "ps-0").await;
        let after = &log[log.find("ps-0 demoted").expect("the demotion is logged")..];
        assert!(!after.contains("ready to accept connections"), "ps-0 served as a primary after its demotion:\n{after}");
        assert!(after.contains("ready to accept read-only connections"), "{after}");
        // The row written before is on the new primary, and it takes writes.
        let c = pg_connect(&bed.ip("ps", "ps-1").await, &password).await.unwrap();
        c.execute("INSERT INTO t VALUES (2)", &[]).await.unwrap();
        let n: i64 = c.query_one("SELECT count(*) FROM t", &[]).await.unwrap().get(0);
        assert_eq!(n, 2);
    })
    .await;
}
