//! A real Cassandra 5.0 ring (issue #18): three members in three zones (racks) of one region
//! (the datacenter), TLS and logins only, FireCamp's superuser in place of Cassandra's default
//! one; a keyspace with NetworkTopologyStrategy and 3 replicas written at QUORUM through one
//! member and read at QUORUM through another, with one member down too; an ordered restart with
//! a writer running loses no acknowledged write; a scale out to four (the new member
//! bootstraps) and back to three (it is decommissioned) with a writer running loses none either.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{kill_and_block, require, spec, with_bed};
use firecamp_api::{OperationPhase, Phase, Role};
use firecamp_core::EngineKind;
use firecamp_probe::Target;
use firecamp_probe::cassandra::{self, Consistency, CqlSession};
use serde_json::json;
use tokio::sync::watch;

const ADMIN: &str = "admin";
const MEMBERS: [&str; 3] = ["cs-0", "cs-1", "cs-2"];

async fn target(bed: &common::Bed, member: &str) -> Target {
    let ip = bed.ip("cs", member).await;
    Target::new(ip.clone(), 9042).with_password(bed.secret("cs", member, "admin-password")).with_tls(bed.ca("cs", member), ip)
}

async fn session(bed: &common::Bed, member: &str) -> CqlSession {
    cassandra::session(&target(bed, member).await, ADMIN).await.unwrap_or_else(|e| panic!("{member}: {e}"))
}

async fn one(s: &CqlSession, cql: &str) -> Option<String> {
    s.texts(cql, Consistency::One).await.unwrap_or_else(|e| panic!("{cql}: {e}")).into_iter().next()
}

/// Writes rows at QUORUM through `member` until stopped; the ids acknowledged.
fn writer(
    bed: Arc<common::Bed>,
    member: &'static str,
    first: i32,
    mut stop: watch::Receiver<bool>,
    acked: Arc<Mutex<Vec<i32>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut id = first;
        while !*stop.borrow() {
            let Ok(s) = cassandra::session(&target(&bed, member).await, ADMIN).await else {
                let _ = tokio::time::timeout(Duration::from_millis(100), stop.changed()).await;
                continue;
            };
            while !*stop.borrow() {
                id += 1;
                match s.exec(&format!("INSERT INTO app.t (id, v) VALUES ({id}, 'w')"), Consistency::Quorum).await {
                    Ok(()) => acked.lock().unwrap().push(id),
                    Err(_) => break,
                }
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn three_racks_keep_quorum_with_a_member_down_through_an_ordered_restart_and_a_scale() {
    require(EngineKind::Cassandra);
    with_bed(
        "t-cs",
        "127.0.214.1/10",
        |_| {},
        |bed| async move {
            let mut s = spec("cassandra", 3, "1Gi");
            s["zones"] = json!(["us-east-1a", "us-east-1b", "us-east-1c"]);
            s["cassandra"] = json!({ "heap": "512Mi" });
            bed.create(json!({ "name": "cs", "spec": s })).await.expect("created");
            let svc = bed.wait_phase("cs", Phase::Active, Duration::from_secs(300)).await;
            assert!(svc.status.members.iter().all(|m| m.role == Role::Peer), "{:?}", svc.status.members);

            // Each server runs as the unprivileged user cassandra, no password on its command line.
            let password = bed.secret("cs", "cs-0", "admin-password");
            for m in MEMBERS {
                let pid = bed.server_pid("cs", m);
                let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap().replace('\0', " ");
                assert!(cmdline.contains("CassandraDaemon"), "{m}: {cmdline}");
                assert!(!cmdline.contains(password.as_str()), "{m}: a password on the command line");
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
                let uid: u32 = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap().split_whitespace().next().unwrap().parse().unwrap();
                assert_eq!(Some(uid), nix::unistd::User::from_name("cassandra").unwrap().map(|u| u.uid.as_raw()), "{m} runs as cassandra");
            }

            // One datacenter, the region; each member's rack is its zone.
            for (m, zone) in MEMBERS.iter().zip(["us-east-1a", "us-east-1b", "us-east-1c"]) {
                let s = session(&bed, m).await;
                assert_eq!(one(&s, "SELECT data_center FROM system.local").await.as_deref(), Some("us-east-1"), "{m}");
                assert_eq!(one(&s, "SELECT rack FROM system.local").await.as_deref(), Some(zone), "{m}");
            }

            // Cassandra's default superuser can no longer log in; without TLS, or with another
            // CA's certificate, nothing is sent.
            let ip0 = bed.ip("cs", "cs-0").await;
            let default = Target::new(ip0.clone(), 9042).with_password("cassandra").with_tls(bed.ca("cs", "cs-0"), ip0.clone());
            let e = cassandra::session(&default, "cassandra").await.err().expect("the default superuser is locked");
            assert!(e.to_string().to_lowercase().contains("auth") || e.to_string().contains("credentials"), "{e}");
            let plain = Target::new(ip0.clone(), 9042).with_password(password.clone());
            assert!(cassandra::session(&plain, ADMIN).await.is_err(), "a login without TLS is refused");
            let other = firecamp_pki::new_ca("FireCamp CA t-cs/cs", firecamp_pki::Duration::days(1), firecamp_pki::OffsetDateTime::now_utc()).unwrap();
            let e = cassandra::session(&Target::new(ip0.clone(), 9042).with_password(password.clone()).with_tls(other.cert, ip0.clone()), ADMIN)
                .await
                .err()
                .expect("another CA refused");
            assert!(e.is_tls_verification(), "{e}");

            // A keyspace with a replica in each rack: written at QUORUM through cs-0, read at
            // QUORUM through cs-1.
            let s0 = session(&bed, "cs-0").await;
            s0.exec("CREATE KEYSPACE app WITH replication = {'class': 'NetworkTopologyStrategy', 'us-east-1': 3}", Consistency::All).await.unwrap();
            s0.exec("CREATE TABLE app.t (id int PRIMARY KEY, v text)", Consistency::All).await.unwrap();
            // A session pinned to one member does not wait for the others to have the schema
            // (a driver that knows the whole ring does): wait for each member's.
            for m in MEMBERS {
                let s = session(&bed, m).await;
                let deadline = Instant::now() + Duration::from_secs(60);
                while s.texts("SELECT table_name FROM system_schema.tables WHERE keyspace_name = 'app'", Consistency::One).await.unwrap().is_empty() {
                    assert!(Instant::now() < deadline, "{m} never got the table");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            s0.exec("INSERT INTO app.t (id, v) VALUES (1, 'hello')", Consistency::Quorum).await.unwrap();
            let s1 = session(&bed, "cs-1").await;
            assert_eq!(s1.texts("SELECT v FROM app.t WHERE id = 1", Consistency::Quorum).await.unwrap(), vec!["hello".to_string()]);

            // One member down (killed, its storage port taken so it cannot come back): QUORUM
            // writes and reads still work through the other two.
            let blocked = kill_and_block(&bed, "cs", "cs-2", 7000).await;
            s0.exec("INSERT INTO app.t (id, v) VALUES (2, 'while cs-2 is down')", Consistency::Quorum).await.expect("a QUORUM write with one member down");
            assert_eq!(s1.texts("SELECT v FROM app.t WHERE id = 2", Consistency::Quorum).await.unwrap(), vec!["while cs-2 is down".to_string()]);
            let e = s1.texts("SELECT v FROM app.t WHERE id = 2", Consistency::All).await.expect_err("ALL needs the member that is down");
            // Refused as unavailable once gossip marks cs-2 down, timed out before that.
            let e = e.to_string().to_lowercase();
            assert!(e.contains("unavailable") || e.contains("not enough nodes"), "{e}");
            drop(blocked);
            bed.wait_phase("cs", Phase::Active, Duration::from_secs(300)).await;
            // Back, it serves what was written while it was down (hints, or read repair at ALL).
            let s2 = session(&bed, "cs-2").await;
            assert_eq!(s2.texts("SELECT v FROM app.t WHERE id = 2", Consistency::All).await.unwrap(), vec!["while cs-2 is down".to_string()]);

            // An ordered restart with a writer at QUORUM through cs-0: one member at a time, each
            // back in every member's ring before the next; no acknowledged write is lost.
            let (stop_tx, stop_rx) = watch::channel(false);
            let acked = Arc::new(Mutex::new(Vec::new()));
            let task = writer(bed.clone(), "cs-0", 1000, stop_rx, acked.clone());
            let op = bed.operate("cs", json!({ "kind": "restart" })).await.unwrap();
            let members: Vec<String> = op.steps.iter().filter(|s| s.action.as_str() == "restart").map(|s| s.member.clone()).collect();
            assert_eq!(members.len(), 3, "{:?}", op.steps);
            let done = bed.wait_operation("cs", &op.id, Duration::from_secs(600)).await;
            assert_eq!(done.phase, OperationPhase::Succeeded, "{:?}", done.message);
            // Each was drained (nodetool over its JMX) before it stopped.
            for m in MEMBERS {
                let log = bed.logs("cs", m).await;
                assert!(log.contains(&format!("firecamp: {m} drained (nodetool drain)")), "{m} was not drained:\n{log}");
            }
            let acked = stop_writer(&acked, stop_tx, task, "restart").await;
            assert_eq!(read_back(&bed, "cs-1", &acked).await, acked.len(), "every acknowledged write is read back at QUORUM");

            // Never fewer members than zones: the first member of each zone is a seed.
            let (code, e) = bed.operate("cs", json!({ "kind": "scale", "replicas": 2 })).await.unwrap_err();
            assert_eq!(code, 400);
            assert!(e.fields.iter().any(|f| f.field == "replicas" && f.message.contains("at least one member per zone")), "{e:?}");

            // Out to four and back to three with a writer at QUORUM through cs-0: cs-3 (zone
            // us-east-1a again, not a seed) bootstraps and joins every member's ring; then it is
            // decommissioned and leaves it. No acknowledged write is lost.
            let (stop_tx, stop_rx) = watch::channel(false);
            let acked = Arc::new(Mutex::new(Vec::new()));
            let task = writer(bed.clone(), "cs-0", 100_000, stop_rx, acked.clone());
            let op = bed.operate("cs", json!({ "kind": "scale", "replicas": 4 })).await.unwrap();
            let steps: Vec<String> = op.steps.iter().map(|s| format!("{} {}", s.action.as_str(), s.member)).collect();
            assert_eq!(steps, ["add cs-3"], "{:?}", op.steps);
            let done = bed.wait_operation("cs", &op.id, Duration::from_secs(600)).await;
            assert_eq!(done.phase, OperationPhase::Succeeded, "{:?}", done.message);
            let svc = bed.wait_phase("cs", Phase::Active, Duration::from_secs(120)).await;
            assert_eq!(svc.status.members.len(), 4, "{:?}", svc.status.members);
            let log = bed.logs("cs", "cs-3").await;
            assert!(log.contains("Starting to bootstrap") && log.contains("Bootstrap completed"), "cs-3 did not bootstrap:\n{log}");
            let s3 = session(&bed, "cs-3").await;
            assert_eq!(one(&s3, "SELECT rack FROM system.local").await.as_deref(), Some("us-east-1a"));
            let ip3: std::net::IpAddr = bed.ip("cs", "cs-3").await.parse().unwrap();
            for m in MEMBERS {
                let ring = session(&bed, m).await.ring().await.unwrap();
                assert!(ring.contains(&(ip3, "NORMAL".to_string())), "{m}: {ring:?}");
            }
            let op = bed.operate("cs", json!({ "kind": "scale", "replicas": 3 })).await.unwrap();
            let steps: Vec<String> = op.steps.iter().map(|s| format!("{} {}", s.action.as_str(), s.member)).collect();
            assert_eq!(steps, ["remove cs-3"], "{:?}", op.steps);
            let done = bed.wait_operation("cs", &op.id, Duration::from_secs(600)).await;
            assert_eq!(done.phase, OperationPhase::Succeeded, "{:?}", done.message);
            let svc = bed.wait_phase("cs", Phase::Active, Duration::from_secs(120)).await;
            assert_eq!(svc.status.members.len(), 3, "{:?}", svc.status.members);
            for m in MEMBERS {
                let ring = session(&bed, m).await.ring().await.unwrap();
                assert!(ring.iter().all(|(ip, status)| *ip != ip3 || status == "LEFT"), "{m} still has cs-3: {ring:?}");
            }
            let acked = stop_writer(&acked, stop_tx, task, "scale").await;
            assert!(acked.len() > 100, "the writer wrote through the scale: {}", acked.len());
            // At ALL: each of the three members holds every row (cs-3's ranges came back).
            assert_eq!(read_back_at(&bed, "cs-1", &acked, Consistency::All).await, acked.len(), "every acknowledged write is read back at ALL");
        },
    )
    .await;
}

/// Stops the writer once it has had 20 more writes acknowledged (it still writes after `what`);
/// the ids acknowledged.
async fn stop_writer(acked: &Mutex<Vec<i32>>, stop: watch::Sender<bool>, task: tokio::task::JoinHandle<()>, what: &str) -> Vec<i32> {
    let before = acked.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < before + 20 {
        assert!(Instant::now() < deadline, "no write acknowledged after the {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    acked.lock().unwrap().clone()
}

/// How many of the rows `ids` read back through `member` at QUORUM.
async fn read_back(bed: &common::Bed, member: &str, ids: &[i32]) -> usize {
    read_back_at(bed, member, ids, Consistency::Quorum).await
}

async fn read_back_at(bed: &common::Bed, member: &str, ids: &[i32], consistency: Consistency) -> usize {
    let s = session(bed, member).await;
    let mut found = 0;
    for chunk in ids.chunks(100) {
        let ids = chunk.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
        found += s.texts(&format!("SELECT v FROM app.t WHERE id IN ({ids})"), consistency).await.unwrap().len();
    }
    found
}
