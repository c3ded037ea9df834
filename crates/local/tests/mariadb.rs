//! A real MariaDB 10.11 service (issue #18): a primary and two replicas by GTID over TLS, in
//! three zones; clients only over TLS with the service's CA; a PrimaryLast restart with a writer
//! running keeps every acknowledged row and moves the primary exactly once.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{kill_and_block, require, spec, with_bed};
use firecamp_api::{OperationKind, OperationPhase, Phase, Role};
use firecamp_core::EngineKind;
use firecamp_probe::{Target, mariadb};
use serde_json::json;
use tokio::sync::watch;

const ROOT: &str = "root";

async fn target(bed: &common::Bed, member: &str) -> Target {
    let name = member.rsplit_once('-').unwrap().0;
    let ip = bed.ip(name, member).await;
    Target::new(ip.clone(), 3306).with_password(bed.secret(name, member, "root-password")).with_tls(bed.ca(name, member), ip)
}

/// The first column of `sql`'s first row on `member`.
async fn text(bed: &common::Bed, member: &str, sql: &str) -> Option<String> {
    let mut s = mariadb::session(&target(bed, member).await, ROOT).await.unwrap_or_else(|e| panic!("{member}: {e}"));
    let v = s.text(sql).await.unwrap_or_else(|e| panic!("{sql} on {member}: {e}"));
    s.close().await;
    v
}

/// Waits until `sql` answers `want` on `member` (a replica applying what the primary wrote).
async fn until(bed: &common::Bed, member: &str, sql: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = text(bed, member, sql).await;
        if got.as_deref() == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "{member}: {sql} answers {got:?}, not {want:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the writer saw: acknowledged ids and the member that acknowledged each.
#[derive(Default)]
struct Writes {
    acked: Vec<i64>,
    by: Vec<String>,
}

/// One row per INSERT (autocommit) to the member the runtime reports as primary; after an error
/// the primary is looked up again.
fn writer(bed: Arc<common::Bed>, mut stop: watch::Receiver<bool>, w: Arc<Mutex<Writes>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut id = 1000;
        while !*stop.borrow() {
            let s = bed.get("md").await;
            let Some(primary) = s.status.members.iter().find(|m| m.role == Role::Primary).map(|m| m.name.clone()) else {
                let _ = tokio::time::timeout(Duration::from_millis(50), stop.changed()).await;
                continue;
            };
            let Ok(mut session) = mariadb::session(&target(&bed, &primary).await, ROOT).await else {
                let _ = tokio::time::timeout(Duration::from_millis(50), stop.changed()).await;
                continue;
            };
            while !*stop.borrow() {
                id += 1;
                match session.exec(&format!("INSERT INTO app.t (id, v) VALUES ({id}, 'w')")).await {
                    Ok(()) => {
                        let mut w = w.lock().unwrap();
                        w.acked.push(id);
                        w.by.push(primary.clone());
                    }
                    Err(_) => break,
                }
            }
            session.close().await;
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_primary_and_two_replicas_replicate_by_gtid_and_switch_over_without_losing_a_write() {
    require(EngineKind::Mariadb);
    with_bed(
        "t-md",
        "127.0.212.1/10",
        |_| {},
        |bed| async move {
            let mut s = spec("mariadb", 3, "512Mi");
            s["zones"] = json!(["zone-a", "zone-b", "zone-c"]);
            bed.create(json!({ "name": "md", "spec": s })).await.expect("created");
            let svc = bed.wait_phase("md", Phase::Active, Duration::from_secs(180)).await;
            let role = |name: &str| svc.status.members.iter().find(|m| m.name == name).unwrap().role;
            assert_eq!([role("md-0"), role("md-1"), role("md-2")], [Role::Primary, Role::Replica, Role::Replica]);

            // Each server runs as the unprivileged user mysql, no password on its command line.
            let secrets = [bed.secret("md", "md-0", "root-password"), bed.secret("md", "md-0", "replication-password")];
            for m in ["md-0", "md-1", "md-2"] {
                let pid = bed.server_pid("md", m);
                let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap().replace('\0', " ");
                assert!(cmdline.contains("mariadbd") && cmdline.contains("init.sql"), "{m}: {cmdline}");
                assert!(secrets.iter().all(|p| !cmdline.contains(p.as_str())), "{m}: a password on the command line");
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
                let uid: u32 = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap().split_whitespace().next().unwrap().parse().unwrap();
                assert_eq!(Some(uid), nix::unistd::User::from_name("mysql").unwrap().map(|u| u.uid.as_raw()), "{m} runs as mysql");
            }

            // Replicas: GTID, strict mode, read-only, linked to md-0 over TLS.
            for m in ["md-1", "md-2"] {
                let st = mariadb::replica_status(&target(&bed, m).await, ROOT).await.unwrap().expect("a replica");
                assert!(st.linked(), "{m}: {st:?}");
                assert_eq!(st.master_host, "md-0.t-md-firecamp.com", "{m}");
                assert_eq!(text(&bed, m, "SELECT @@gtid_strict_mode").await.as_deref(), Some("1"));
                assert_eq!(text(&bed, m, "SELECT @@read_only").await.as_deref(), Some("1"));
            }

            // A row written on the primary is read on both replicas.
            let t0 = target(&bed, "md-0").await;
            mariadb::execute(&t0, ROOT, "CREATE DATABASE app").await.unwrap();
            mariadb::execute(&t0, ROOT, "CREATE TABLE app.t (id BIGINT PRIMARY KEY, v VARCHAR(32) NOT NULL)").await.unwrap();
            mariadb::execute(&t0, ROOT, "INSERT INTO app.t VALUES (1, 'hello')").await.unwrap();
            for m in ["md-1", "md-2"] {
                until(&bed, m, "SELECT v FROM app.t WHERE id = 1", "hello").await;
            }

            // TCP without TLS, or TLS with a wrong password, gets no session.
            let ip0 = bed.ip("md", "md-0").await;
            let plain = mariadb::session(&Target::new(ip0.clone(), 3306).with_password(secrets[0].clone()), ROOT).await.err().expect("plain TCP refused");
            // MariaDB answers a login without TLS with "access denied", the password being right.
            assert!(plain.to_string().contains("Access denied") && !plain.to_string().contains(secrets[0].as_str()), "{plain}");
            let wrong = Target::new(ip0.clone(), 3306).with_password("Wr0ngPassw0rd").with_tls(bed.ca("md", "md-0"), ip0.clone());
            let e = mariadb::session(&wrong, ROOT).await.err().expect("a wrong password refused");
            assert!(e.to_string().contains("Access denied"), "{e}");
            // Another CA's certificate is refused before any password is sent.
            let other = firecamp_pki::new_ca("FireCamp CA t-md/md", firecamp_pki::Duration::days(1), firecamp_pki::OffsetDateTime::now_utc()).unwrap();
            let e = mariadb::session(&Target::new(ip0.clone(), 3306).with_password(secrets[0].clone()).with_tls(other.cert, ip0.clone()), ROOT)
                .await
                .err()
                .expect("another CA refused");
            assert!(e.is_tls_verification(), "{e}");

            // A PrimaryLast restart with a writer running: replicas first, then a switchover to
            // a replica, then the old primary; every acknowledged row is on every member after.
            let (stop_tx, stop_rx) = watch::channel(false);
            let writes = Arc::new(Mutex::new(Writes::default()));
            let task = writer(bed.clone(), stop_rx, writes.clone());
            let op = bed.operate("md", json!({ "kind": "restart" })).await.unwrap();
            let actions: Vec<String> = op.steps.iter().map(|s| format!("{} {}", s.action.as_str(), s.member)).collect();
            assert_eq!(actions.last().map(String::as_str), Some("restart md-0"), "the primary last: {actions:?}");
            assert!(actions.iter().any(|a| a == "switchover md-0"), "{actions:?}");
            let done = bed.wait_operation("md", &op.id, Duration::from_secs(300)).await;
            assert_eq!(done.phase, OperationPhase::Succeeded, "{:?}", done.message);
            // A few more writes to the new primary, then stop.
            let before = writes.lock().unwrap().acked.len();
            let deadline = Instant::now() + Duration::from_secs(60);
            while writes.lock().unwrap().acked.len() < before + 20 {
                assert!(Instant::now() < deadline, "no write acknowledged after the restart");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            stop_tx.send(true).unwrap();
            task.await.unwrap();

            let (acked, by) = {
                let w = writes.lock().unwrap();
                (w.acked.clone(), w.by.clone())
            };
            let mut primaries = by;
            primaries.dedup();
            assert_eq!(primaries.len(), 2, "the primary changed exactly once: {primaries:?}");
            assert_eq!(primaries[0], "md-0");
            let new = primaries[1].clone();
            let svc = bed.wait_phase("md", Phase::Active, Duration::from_secs(120)).await;
            let now: Vec<(String, Role)> = svc.status.members.iter().map(|m| (m.name.clone(), m.role)).collect();
            assert_eq!(now.iter().filter(|(_, r)| *r == Role::Primary).map(|(n, _)| n.clone()).collect::<Vec<_>>(), vec![new.clone()], "{now:?}");
            let (count, max) = (acked.len() + 1, *acked.last().unwrap());
            for m in ["md-0", "md-1", "md-2"] {
                // Every acknowledged row, and nothing else (ids are unique, acked in order).
                until(&bed, m, &format!("SELECT COUNT(*) FROM app.t WHERE id = 1 OR id IN ({})", ids(&acked)), &count.to_string()).await;
                let above = text(&bed, m, &format!("SELECT COUNT(*) FROM app.t WHERE id > {max}")).await;
                assert!(matches!(above.as_deref(), Some("0") | Some("1")), "{m}: rows past the last acknowledged one: {above:?}");
            }
            let old = mariadb::replica_status(&target(&bed, "md-0").await, ROOT).await.unwrap().expect("md-0 is a replica now");
            assert!(old.linked() && old.master_host == format!("{new}.t-md-firecamp.com"), "{old:?}");
        },
    )
    .await;
}

fn ids(v: &[i64]) -> String {
    v.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// A lost primary (killed, its address taken so it cannot come back) is replaced by the replica
/// that received the most, after `failover.delaySeconds`; the other replica follows the heir;
/// the old primary, once it may start again, rejoins as the heir's replica with every row.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_primary_is_replaced_by_the_most_advanced_replica_and_rejoins() {
    require(EngineKind::Mariadb);
    with_bed(
        "t-mdf",
        "127.0.213.1/10",
        |_| {},
        |bed| async move {
            let mut s = spec("mariadb", 3, "512Mi");
            s["failover"] = json!({ "delaySeconds": 5 });
            bed.create(json!({ "name": "mf", "spec": s })).await.expect("created");
            bed.wait_phase("mf", Phase::Active, Duration::from_secs(180)).await;
            let t0 = target(&bed, "mf-0").await;
            mariadb::execute(&t0, ROOT, "CREATE DATABASE app").await.unwrap();
            mariadb::execute(&t0, ROOT, "CREATE TABLE app.t (id BIGINT PRIMARY KEY)").await.unwrap();
            let values: Vec<String> = (1..=100).map(|i| format!("({i})")).collect();
            mariadb::execute(&t0, ROOT, &format!("INSERT INTO app.t VALUES {}", values.join(","))).await.unwrap();
            for m in ["mf-1", "mf-2"] {
                until(&bed, m, "SELECT COUNT(*) FROM app.t", "100").await;
            }

            let hold = kill_and_block(&bed, "mf", "mf-0", 3306).await;
            let deadline = Instant::now() + Duration::from_secs(120);
            let op = loop {
                let ops: Vec<_> = bed.operations("mf").await.into_iter().filter(|o| o.kind == OperationKind::Failover).collect();
                if let Some(o) = ops.first().filter(|o| o.phase.is_terminal()) {
                    break o.clone();
                }
                assert!(Instant::now() < deadline, "no failover: {ops:#?}\n{}", bed.logs("mf", "mf-0").await);
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            assert_eq!(op.phase, OperationPhase::Succeeded, "{op:#?}");
            let heir = op.steps[1].member.clone();
            assert_eq!(op.steps[0].describe(), format!("fence mf-0 → {heir}"));
            // The heir takes writes and has every row; the other replica follows it.
            mariadb::execute(&target(&bed, &heir).await, ROOT, "INSERT INTO app.t VALUES (101)").await.unwrap();
            let other = if heir == "mf-1" { "mf-2" } else { "mf-1" };
            until(&bed, other, "SELECT COUNT(*) FROM app.t", "101").await;
            let st = mariadb::replica_status(&target(&bed, other).await, ROOT).await.unwrap().expect("a replica");
            assert_eq!(st.master_host, format!("{heir}.t-mdf-firecamp.com"));

            // The old primary, free to start again, comes back as the heir's replica.
            drop(hold);
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let s = bed.get("mf").await;
                let role = s.status.members.iter().find(|m| m.name == "mf-0").unwrap().role;
                if role == Role::Replica && s.status.phase == Phase::Active {
                    let primaries: Vec<&str> = s.status.members.iter().filter(|m| m.role == Role::Primary).map(|m| m.name.as_str()).collect();
                    assert_eq!(primaries, [heir.as_str()]);
                    break;
                }
                assert!(Instant::now() < deadline, "mf-0 did not rejoin: {:?}\n{}", s.status, bed.logs("mf", "mf-0").await);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            until(&bed, "mf-0", "SELECT COUNT(*) FROM app.t", "101").await;
        },
    )
    .await;
}
