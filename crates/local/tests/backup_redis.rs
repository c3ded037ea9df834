//! Redis backups and restores (issue #15, docs/backup.md): a snapshot taken from the replica
//! (`redis-cli --rdb`), kept like PostgreSQL's base backups; a restore makes a new service of the
//! same shape whose every member holds exactly the snapshot's keys, kept across a restart (the
//! snapshot becomes the base of the append-only file).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Bed, require, spec, with_bed};
use firecamp_api::{BackupList, OperationPhase, Phase};
use firecamp_core::EngineKind;
use firecamp_local::config::Config;
use serde_json::json;

async fn dbsize(bed: &Bed, name: &str, member: &str) -> Option<i64> {
    let t = bed.redis_target(name, member).await;
    match firecamp_probe::redis::command(&t, &["DBSIZE"]).await.ok()? {
        redis::Value::Int(n) => Some(n),
        _ => None,
    }
}

/// Polls until `member` holds `want` keys (a replica catching up, a member starting again).
async fn wait_dbsize(bed: &Bed, name: &str, member: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = dbsize(bed, name, member).await;
        if got == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "{member} holds {got:?} keys, not {want}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_restore_holds_exactly_the_snapshots_keys_on_every_member() {
    require(EngineKind::Redis);
    with_bed(
        "t-bkr",
        "127.0.186.1/20",
        |cfg: &mut Config| {
            // A fixed API port: the test restarts the daemon.
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            cfg.listen = format!("127.0.0.1:{port}").parse().unwrap();
        },
        |bed: Arc<Bed>| async move {
            let mut s = spec("redis", 2, "256Mi");
            s["backup"] = json!({});
            bed.create(json!({ "name": "rd", "spec": s })).await.expect("created");
            bed.wait_phase("rd", Phase::Active, Duration::from_secs(120)).await;
            let mut mset = vec!["MSET".to_string()];
            for i in 0..1000 {
                mset.extend([format!("k{i}"), format!("v{i}")]);
            }
            let args: Vec<&str> = mset.iter().map(String::as_str).collect();
            bed.redis("rd", "rd-0", &args).await;
            // The replica has them before its snapshot is taken.
            bed.redis("rd", "rd-0", &["WAIT", "1", "10000"]).await;

            let op = bed.operate("rd", json!({ "kind": "backup" })).await.expect("accepted");
            let done = bed.wait_operation("rd", &op.id, Duration::from_secs(120)).await;
            assert_eq!(done.phase, OperationPhase::Succeeded);
            let list: BackupList = bed.http.get(format!("{}/v1/services/rd/backups", bed.url)).send().await.unwrap().json().await.unwrap();
            assert_eq!(list.items.len(), 1, "{list:?}");
            let b = list.items[0].clone();
            assert_eq!(b.member, "rd-1", "taken from the replica");
            assert!(b.size_bytes > 1000, "{b:?}");
            assert_eq!((b.wal_start.as_str(), b.recoverable_until.as_deref()), ("", None), "a snapshot has no WAL: {b:?}");

            // After the snapshot: more keys, one deleted.
            bed.redis("rd", "rd-0", &["MSET", "later0", "x", "later1", "y"]).await;
            bed.redis("rd", "rd-0", &["DEL", "k0"]).await;

            let restore = |body: serde_json::Value| {
                let bed = bed.clone();
                async move { bed.http.post(format!("{}/v1/services/rd/restore", bed.url)).json(&body).send().await.unwrap() }
            };
            let r = restore(json!({ "backup": b.id, "name": "rdx", "toTime": "2026-12-03T00:00:00Z" })).await;
            assert_eq!(r.status().as_u16(), 400);
            assert!(r.text().await.unwrap().contains("toTime"));
            assert!(bed.list().await.items.iter().all(|s| s.name != "rdx"), "nothing created");

            let r = restore(json!({ "backup": "latest", "name": "rdr" })).await;
            assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
            let made = bed.wait_phase("rdr", Phase::Active, Duration::from_secs(120)).await;
            assert_eq!(made.spec.replicas, 2, "the source's shape");
            for m in ["rdr-0", "rdr-1"] {
                wait_dbsize(&bed, "rdr", m, 1000).await;
                assert_eq!(bed.try_redis("rdr", m, &["GET", "k0"]).await.as_deref(), Some("v0"), "{m}: the snapshot's value");
                assert_eq!(bed.try_redis("rdr", m, &["GET", "later0"]).await, None, "{m}: nothing written after the snapshot");
            }
            assert_ne!(bed.secret("rdr", "rdr-0", "password"), bed.secret("rd", "rd-0", "password"), "its own password");

            // Written on, restarted: the restored keys and the new ones are in its append-only file.
            bed.redis("rdr", "rdr-0", &["SET", "after", "1"]).await;
            bed.restart_daemon(bed.cfg.clone()).await;
            bed.wait_phase("rdr", Phase::Active, Duration::from_secs(120)).await;
            wait_dbsize(&bed, "rdr", "rdr-0", 1001).await;
            assert_eq!(bed.try_redis("rdr", "rdr-0", &["GET", "k999"]).await.as_deref(), Some("v999"));
        },
    )
    .await;
}

/// The same through an S3 target (moto): the snapshot and its record in the bucket, the restore
/// downloaded (readable by the engine's user, who loads it) and dropped once started.
#[tokio::test(flavor = "multi_thread")]
async fn a_redis_snapshot_in_s3_restores() {
    require(EngineKind::Redis);
    let client = common::s3::s3(&common::s3::moto());
    let bucket = common::s3::new_bucket(&client, "fc-redis").await;
    with_bed("t-bkr2", "127.0.187.1/20", common::s3::backing_up_to(&bucket), |bed: Arc<Bed>| async move {
        let mut s = spec("redis", 1, "256Mi");
        s["backup"] = json!({});
        bed.create(json!({ "name": "rs", "spec": s })).await.expect("created");
        bed.wait_phase("rs", Phase::Active, Duration::from_secs(120)).await;
        bed.redis("rs", "rs-0", &["MSET", "a", "1", "b", "2", "c", "3"]).await;
        let op = bed.operate("rs", json!({ "kind": "backup" })).await.expect("accepted");
        bed.wait_operation("rs", &op.id, Duration::from_secs(120)).await;
        let objects = common::s3::keys(&client, &bucket, "team-a/rs/").await;
        for f in ["dump.rdb", "backup.json"] {
            assert!(objects.iter().any(|k| k.ends_with(&format!("/{f}"))), "{f} not in {objects:?}");
        }
        let r = bed.http.post(format!("{}/v1/services/rs/restore", bed.url)).json(&json!({ "backup": "latest", "name": "rsr" })).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
        bed.wait_phase("rsr", Phase::Active, Duration::from_secs(120)).await;
        wait_dbsize(&bed, "rsr", "rsr-0", 3).await;
        assert_eq!(bed.try_redis("rsr", "rsr-0", &["GET", "c"]).await.as_deref(), Some("3"));
        assert!(!bed.cfg.dir.join("restores").join("rsr").exists(), "the download is dropped once started");
        assert!(!bed.member_dir("rsr", "rsr-0").join("secret").join("aws-credentials").exists(), "Redis members need no S3 keys");
    })
    .await;
}

/// Redis Cluster: a snapshot per shard, each from a replica of the shard; the restored cluster
/// is formed empty and then gets every key through its own owner of the key's slot, before it
/// counts as ACTIVE.
#[tokio::test(flavor = "multi_thread")]
async fn a_redis_cluster_restore_holds_every_key_of_the_shards_snapshots() {
    require(EngineKind::Redis);
    with_bed(
        "t-bkr3",
        "127.0.189.1/20",
        |_| {},
        |bed: Arc<Bed>| async move {
            let mut s = spec("redis", 6, "128Mi");
            s["redis"] = json!({ "mode": "cluster", "shards": 3 });
            s["backup"] = json!({});
            bed.create(json!({ "name": "rc", "spec": s })).await.expect("created");
            bed.wait_phase("rc", Phase::Active, Duration::from_secs(180)).await;
            let mut con = common::redis_cluster_client(&bed, "rc").await;
            for i in 0..300 {
                let () = redis::cmd("SET").arg(format!("k{i}")).arg(format!("v{i}")).query_async(&mut con).await.unwrap();
            }
            let () = redis::cmd("SET").arg("{tag}expiring").arg("x").arg("EX").arg(3600).query_async(&mut con).await.unwrap();
            // Every shard's replica has its primary's keys before the snapshots.
            for i in 0..6 {
                let t = bed.redis_target("rc", &format!("rc-{i}")).await;
                let _ = firecamp_probe::redis::command(&t, &["WAIT", "1", "10000"]).await;
            }

            let op = bed.operate("rc", json!({ "kind": "backup" })).await.expect("accepted");
            let done = bed.wait_operation("rc", &op.id, Duration::from_secs(120)).await;
            assert_eq!(done.phase, OperationPhase::Succeeded);
            let list: BackupList = bed.http.get(format!("{}/v1/services/rc/backups", bed.url)).send().await.unwrap().json().await.unwrap();
            let b = &list.items[0];
            assert_eq!(b.member.split(',').count(), 3, "one snapshot per shard: {b:?}");

            let () = redis::cmd("SET").arg("later").arg("x").query_async(&mut con).await.unwrap();
            let () = redis::cmd("DEL").arg("k0").query_async(&mut con).await.unwrap();

            let r = bed.http.post(format!("{}/v1/services/rc/restore", bed.url)).json(&json!({ "backup": b.id, "name": "rcr" })).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
            bed.wait_phase("rcr", Phase::Active, Duration::from_secs(240)).await;
            let mut con = common::redis_cluster_client(&bed, "rcr").await;
            for i in 0..300 {
                let v: Option<String> = redis::cmd("GET").arg(format!("k{i}")).query_async(&mut con).await.unwrap();
                assert_eq!(v.as_deref(), Some(format!("v{i}").as_str()), "k{i}");
            }
            let later: Option<String> = redis::cmd("GET").arg("later").query_async(&mut con).await.unwrap();
            assert_eq!(later, None, "nothing written after the snapshots");
            let ttl: i64 = redis::cmd("TTL").arg("{tag}expiring").query_async(&mut con).await.unwrap();
            assert!((1..=3600).contains(&ttl), "the expiry came along: {ttl}");
        },
    )
    .await;
}

/// Redis Cluster through an S3 target (moto): three one-member shards, a snapshot of each in the
/// bucket, and a restore from there holding every key.
#[tokio::test(flavor = "multi_thread")]
async fn a_redis_cluster_backup_in_s3_restores() {
    require(EngineKind::Redis);
    let client = common::s3::s3(&common::s3::moto());
    let bucket = common::s3::new_bucket(&client, "fc-rcs").await;
    with_bed("t-bkr4", "127.0.198.1/20", common::s3::backing_up_to(&bucket), |bed: Arc<Bed>| async move {
        let mut s = spec("redis", 3, "128Mi");
        s["redis"] = json!({ "mode": "cluster", "shards": 3 });
        s["backup"] = json!({});
        bed.create(json!({ "name": "rs3", "spec": s })).await.expect("created");
        bed.wait_phase("rs3", Phase::Active, Duration::from_secs(180)).await;
        let mut con = common::redis_cluster_client(&bed, "rs3").await;
        for i in 0..100 {
            let () = redis::cmd("SET").arg(format!("k{i}")).arg(format!("v{i}")).query_async(&mut con).await.unwrap();
        }
        let op = bed.operate("rs3", json!({ "kind": "backup" })).await.expect("accepted");
        let done = bed.wait_operation("rs3", &op.id, Duration::from_secs(120)).await;
        assert_eq!(done.phase, OperationPhase::Succeeded, "{done:?}");
        let objects = common::s3::keys(&client, &bucket, "team-a/rs3/").await;
        assert_eq!(objects.iter().filter(|k| k.ends_with(".rdb")).count(), 3, "a snapshot per shard: {objects:?}");
        assert!(objects.iter().any(|k| k.ends_with("/backup.json")), "no record in {objects:?}");
        let () = redis::cmd("SET").arg("later").arg("x").query_async(&mut con).await.unwrap();

        let r = bed.http.post(format!("{}/v1/services/rs3/restore", bed.url)).json(&json!({ "backup": "latest", "name": "rs3r" })).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
        bed.wait_phase("rs3r", Phase::Active, Duration::from_secs(240)).await;
        let mut con = common::redis_cluster_client(&bed, "rs3r").await;
        for i in 0..100 {
            let v: Option<String> = redis::cmd("GET").arg(format!("k{i}")).query_async(&mut con).await.unwrap();
            assert_eq!(v.as_deref(), Some(format!("v{i}").as_str()), "k{i}");
        }
        let later: Option<String> = redis::cmd("GET").arg("later").query_async(&mut con).await.unwrap();
        assert_eq!(later, None, "nothing written after the snapshots");
        assert!(!bed.cfg.dir.join("restores").join("rs3r").exists(), "the download is dropped once started");
    })
    .await;
}
