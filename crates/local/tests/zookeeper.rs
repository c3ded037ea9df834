//! A real ZooKeeper ensemble: one leader, the others followers, znodes shared.

mod common;

use std::time::Duration;

use common::{require, spec, with_bed, zk_cli};
use firecamp_api::{Phase, Role};
use firecamp_core::EngineKind;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn an_ensemble_of_three_elects_one_leader_and_shares_znodes() {
    require(EngineKind::Zookeeper);
    with_bed(
        "t-zk",
        "127.0.130.1/20",
        |_| {},
        |bed| async move {
            let mut s = spec("zookeeper", 3, "512Mi");
            s["zookeeper"] = json!({ "heap": "128Mi" });
            bed.create(json!({ "name": "zk", "spec": s })).await.expect("created");
            let svc = bed.wait_phase("zk", Phase::Active, Duration::from_secs(180)).await;

            // `srvr` on every member: one leader, the rest followers.
            let mut roles = Vec::new();
            for m in &svc.status.members {
                let t = firecamp_probe::Target::new(m.static_ip.clone().unwrap(), 2181);
                roles.push(firecamp_probe::zookeeper::role(&t).await.unwrap());
            }
            assert_eq!(roles.iter().filter(|r| **r == Role::Leader).count(), 1, "{roles:?}");
            assert_eq!(roles.iter().filter(|r| **r == Role::Follower).count(), 2, "{roles:?}");

            // A znode written on one member is read on another (after `sync`, reads are current).
            let ip0 = format!("{}:2181", bed.ip("zk", "zk-0").await);
            let ip2 = "zk-2.t-zk-firecamp.com:2181".to_string();
            let out = zk_cli(&ip0, &["create", "/firecamp-test", "written-on-zk-0"]);
            assert!(out.contains("Created /firecamp-test"), "{out}");
            let out = tokio::task::spawn_blocking(move || zk_cli(&ip2, &["get", "/firecamp-test"])).await.unwrap();
            assert!(out.contains("written-on-zk-0"), "{out}");
        },
    )
    .await;
}
