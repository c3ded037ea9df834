//! Real Redis: cluster mode formed by the init task from the catalog's shard layout, and
//! replication mode.

mod common;

use std::time::Duration;

use common::{require, spec, with_bed};
use firecamp_api::{Phase, Role};
use firecamp_core::EngineKind;
use redis::AsyncCommands;
use serde_json::json;

fn url(ip: &str, password: &str) -> String {
    format!("redis://:{password}@{ip}:6379/")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_of_three_shards_covers_every_slot() {
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

            let password = bed.secret("rc", "rc-0", "password");
            for m in &svc.status.members {
                let t = firecamp_probe::Target::new(m.static_ip.clone().unwrap(), 6379).with_password(password.clone());
                let ci = firecamp_probe::redis::cluster_info(&t).await.unwrap();
                assert!(ci.covers_all_slots(), "{}: {ci:?}", m.name);
                assert_eq!((ci.known_nodes, ci.size), (6, 3), "{}", m.name);
            }
            // Each replica follows its own shard's primary.
            for (replica, primary) in [("rc-1", "rc-0"), ("rc-3", "rc-2"), ("rc-5", "rc-4")] {
                let t = firecamp_probe::Target::new(bed.ip("rc", replica).await, 6379).with_password(password.clone());
                let info = firecamp_probe::redis::replication(&t).await.unwrap();
                assert_eq!(info.get("master_host"), Some(&bed.ip("rc", primary).await), "{replica}");
            }

            // A key written through one member is read through another.
            let ips: Vec<String> = svc.status.members.iter().map(|m| m.static_ip.clone().unwrap()).collect();
            let writer = redis::cluster::ClusterClient::new(vec![url(&ips[0], &password)]).unwrap();
            let mut w = writer.get_async_connection().await.unwrap();
            for i in 0..20 {
                let _: () = w.set(format!("key-{i}"), format!("value-{i}")).await.unwrap();
            }
            let reader = redis::cluster::ClusterClient::new(vec![url(&ips[3], &password)]).unwrap();
            let mut r = reader.get_async_connection().await.unwrap();
            for i in 0..20 {
                let v: String = r.get(format!("key-{i}")).await.unwrap();
                assert_eq!(v, format!("value-{i}"));
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replication_mode_copies_the_primary() {
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
            let password = bed.secret("rr", "rr-0", "password");
            let primary = redis::Client::open(url("rr-0.t-rr-firecamp.com", &password)).unwrap();
            let mut p = primary.get_multiplexed_async_connection().await.unwrap();
            let _: () = p.set("greeting", "hello").await.unwrap();
            // Replicas copy writes asynchronously: read until the replica has it, within a deadline.
            let replica = redis::Client::open(url(&bed.ip("rr", "rr-2").await, &password)).unwrap();
            let mut r = replica.get_multiplexed_async_connection().await.unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let v = loop {
                let v: Option<String> = r.get("greeting").await.unwrap();
                if v.is_some() || std::time::Instant::now() > deadline {
                    break v.unwrap_or_default();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            assert_eq!(v, "hello");
        },
    )
    .await;
}
