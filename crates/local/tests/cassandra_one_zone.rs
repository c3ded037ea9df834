//! A Cassandra ring with more members than zones (issue #18): three members in one zone, so
//! one seed and two members that join by bootstrap. The runtime starts those one at a time, each
//! once the members before it have joined: two bootstraps at once pick the same tokens.

mod common;

use std::time::Duration;

use common::{require, spec, with_bed};
use firecamp_api::Phase;
use firecamp_core::EngineKind;
use firecamp_probe::Target;
use firecamp_probe::cassandra::{self, Consistency};
use serde_json::json;

/// The timestamp of the first line of `log` that contains `what` (lines start with one).
fn when<'a>(log: &'a str, what: &str) -> &'a str {
    log.lines().find(|l| l.contains(what)).and_then(|l| l.split_whitespace().next()).unwrap_or_else(|| panic!("no {what:?} in:\n{log}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn members_beyond_the_seeds_bootstrap_one_at_a_time() {
    require(EngineKind::Cassandra);
    with_bed(
        "t-c1",
        "127.0.216.1/10",
        |_| {},
        |bed| async move {
            let mut s = spec("cassandra", 3, "1Gi");
            s["zones"] = json!(["us-east-1a"]);
            s["cassandra"] = json!({ "heap": "512Mi" });
            bed.create(json!({ "name": "c1", "spec": s })).await.expect("created");
            bed.wait_phase("c1", Phase::Active, Duration::from_secs(300)).await;

            // c1-0 is the seed; c1-1 bootstrapped once c1-0 served, c1-2 once c1-1 had joined.
            let logs = [bed.logs("c1", "c1-0").await, bed.logs("c1", "c1-1").await, bed.logs("c1", "c1-2").await];
            for log in &logs {
                assert!(!log.contains("Token collision"), "{log}");
            }
            assert!(!logs[0].contains("Starting to bootstrap"), "the seed does not bootstrap:\n{}", logs[0]);
            for (m, log) in ["c1-1", "c1-2"].iter().zip(&logs[1..]) {
                assert!(log.contains(&format!("firecamp: {m} bootstraps now")) && log.contains("Bootstrap completed"), "{m}:\n{log}");
            }
            assert!(when(&logs[2], "firecamp: c1-2 bootstraps now") > when(&logs[1], "Bootstrap completed"), "c1-2 started before c1-1 had joined");

            // A row written at QUORUM through the seed is read at QUORUM through the last member.
            let login = |m: &'static str| {
                let bed = bed.clone();
                async move {
                    let ip = bed.ip("c1", m).await;
                    let t = Target::new(ip.clone(), 9042).with_password(bed.secret("c1", m, "admin-password")).with_tls(bed.ca("c1", m), ip);
                    cassandra::session(&t, "admin").await.unwrap_or_else(|e| panic!("{m}: {e}"))
                }
            };
            let s0 = login("c1-0").await;
            s0.exec("CREATE KEYSPACE app WITH replication = {'class': 'NetworkTopologyStrategy', 'us-east-1': 3}", Consistency::All).await.unwrap();
            s0.exec("CREATE TABLE app.t (id int PRIMARY KEY, v text)", Consistency::All).await.unwrap();
            // A session pinned to one member does not wait for the others to have the schema:
            // wait for each member's.
            let mut sessions = Vec::new();
            for m in ["c1-0", "c1-1", "c1-2"] {
                let s = login(m).await;
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                while s.texts("SELECT table_name FROM system_schema.tables WHERE keyspace_name = 'app'", Consistency::One).await.unwrap().is_empty() {
                    assert!(std::time::Instant::now() < deadline, "{m} never got the table");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                sessions.push(s);
            }
            s0.exec("INSERT INTO app.t (id, v) VALUES (1, 'one zone')", Consistency::Quorum).await.unwrap();
            let got = sessions[2].texts("SELECT v FROM app.t WHERE id = 1", Consistency::Quorum).await.unwrap();
            assert_eq!(got, vec!["one zone".to_string()]);
        },
    )
    .await;
}
