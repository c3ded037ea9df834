//! ZooKeeper backups and restores (issue #15, docs/backup.md): a copy of the leader's snapshots
//! and transaction logs; a restore makes a new ensemble whose every member starts from it, so
//! each holds exactly the backup's znodes, with their ACLs (SASL identities are user names,
//! the same in the new service, whose passwords are its own).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::zk::zk_cli_async;
use common::{Bed, require, spec, with_bed};
use firecamp_api::{BackupList, OperationPhase, Phase};
use firecamp_core::EngineKind;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_zookeeper_restore_holds_exactly_the_backups_znodes_on_every_member() {
    require(EngineKind::Zookeeper);
    with_bed(
        "t-bkz",
        "127.0.188.1/20",
        |_| {},
        |bed: Arc<Bed>| async move {
            let mut s = spec("zookeeper", 3, "512Mi");
            s["backup"] = json!({});
            bed.create(json!({ "name": "zk", "spec": s })).await.expect("created");
            bed.wait_phase("zk", Phase::Active, Duration::from_secs(180)).await;
            let at = format!("{}:2181", bed.ip("zk", "zk-0").await);
            let (client, admin) = (bed.zk_client("zk", "client"), bed.zk_client("zk", "super"));
            for args in [&["create", "/app", "v1"][..], &["create", "/app/a", "x"]] {
                let out = zk_cli_async(at.clone(), client.clone(), args).await;
                assert!(out.contains("Created"), "{out}");
            }
            let out = zk_cli_async(at.clone(), admin.clone(), &["create", "/admin-only", "secret-of-super", "sasl:super:cdrwa"]).await;
            assert!(out.contains("Created"), "{out}");

            let op = bed.operate("zk", json!({ "kind": "backup" })).await.expect("accepted");
            let done = bed.wait_operation("zk", &op.id, Duration::from_secs(120)).await;
            assert_eq!(done.phase, OperationPhase::Succeeded);
            let list: BackupList = bed.http.get(format!("{}/v1/services/zk/backups", bed.url)).send().await.unwrap().json().await.unwrap();
            assert_eq!(list.items.len(), 1, "{list:?}");

            // After the backup: a znode more, one less.
            let out = zk_cli_async(at.clone(), client.clone(), &["create", "/later", "y"]).await;
            assert!(out.contains("Created"), "{out}");
            let out = zk_cli_async(at.clone(), client.clone(), &["delete", "/app/a"]).await;
            assert!(!out.contains("Exception"), "{out}");

            let r = bed.http.post(format!("{}/v1/services/zk/restore", bed.url)).json(&json!({ "backup": "latest", "name": "zkr" })).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
            bed.wait_phase("zkr", Phase::Active, Duration::from_secs(180)).await;
            let (client, admin) = (bed.zk_client("zkr", "client"), bed.zk_client("zkr", "super"));
            assert_ne!(bed.secret("zkr", "zkr-0", "client-password"), bed.secret("zk", "zk-0", "client-password"), "its own passwords");
            for m in ["zkr-0", "zkr-2"] {
                let at = format!("{}:2181", bed.ip("zkr", m).await);
                let out = zk_cli_async(at.clone(), client.clone(), &["get", "/app"]).await;
                assert!(out.contains("v1"), "{m}: {out}");
                let out = zk_cli_async(at.clone(), client.clone(), &["stat", "/app/a"]).await;
                assert!(out.contains("numChildren") && !out.contains("does not exist"), "{m}: the backup's /app/a: {out}");
                let out = zk_cli_async(at.clone(), client.clone(), &["stat", "/later"]).await;
                assert!(out.contains("Node does not exist"), "{m}: nothing after the backup: {out}");
            }
            let at = format!("{}:2181", bed.ip("zkr", "zkr-1").await);
            let out = zk_cli_async(at.clone(), client.clone(), &["get", "/admin-only"]).await;
            assert!(out.contains("Insufficient permission") && !out.contains("secret-of-super"), "the ACL came along: {out}");
            let out = zk_cli_async(at, admin, &["get", "/admin-only"]).await;
            assert!(out.contains("secret-of-super"), "{out}");
        },
    )
    .await;
}

/// The same through an S3 target (moto), for a one-member ensemble: the backup's files and its
/// record in the bucket, and a restore from there holding the backup's znodes and not the later.
#[tokio::test(flavor = "multi_thread")]
async fn a_zookeeper_backup_in_s3_restores() {
    require(EngineKind::Zookeeper);
    let s3 = common::s3::s3(&common::s3::moto());
    let bucket = common::s3::new_bucket(&s3, "fc-zk").await;
    with_bed("t-bkz2", "127.0.197.1/20", common::s3::backing_up_to(&bucket), |bed: Arc<Bed>| async move {
        let mut s = spec("zookeeper", 1, "512Mi");
        s["backup"] = json!({});
        bed.create(json!({ "name": "zs", "spec": s })).await.expect("created");
        bed.wait_phase("zs", Phase::Active, Duration::from_secs(180)).await;
        let at = format!("{}:2181", bed.ip("zs", "zs-0").await);
        let client = bed.zk_client("zs", "client");
        let out = zk_cli_async(at.clone(), client.clone(), &["create", "/kept", "in-the-backup"]).await;
        assert!(out.contains("Created"), "{out}");

        let op = bed.operate("zs", json!({ "kind": "backup" })).await.expect("accepted");
        let done = bed.wait_operation("zs", &op.id, Duration::from_secs(120)).await;
        assert_eq!(done.phase, OperationPhase::Succeeded, "{done:?}");
        let objects = common::s3::keys(&s3, &bucket, "team-a/zs/").await;
        assert!(objects.iter().any(|k| k.ends_with("/backup.json")), "no record in {objects:?}");
        assert!(objects.len() >= 2, "the snapshot or logs beside the record: {objects:?}");
        let out = zk_cli_async(at, client, &["create", "/later", "after-the-backup"]).await;
        assert!(out.contains("Created"), "{out}");

        let r = bed.http.post(format!("{}/v1/services/zs/restore", bed.url)).json(&json!({ "backup": "latest", "name": "zsr" })).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
        bed.wait_phase("zsr", Phase::Active, Duration::from_secs(180)).await;
        let at = format!("{}:2181", bed.ip("zsr", "zsr-0").await);
        let client = bed.zk_client("zsr", "client");
        let out = zk_cli_async(at.clone(), client.clone(), &["get", "/kept"]).await;
        assert!(out.contains("in-the-backup"), "{out}");
        let out = zk_cli_async(at, client, &["stat", "/later"]).await;
        assert!(out.contains("Node does not exist"), "nothing after the backup: {out}");
        assert!(!bed.cfg.dir.join("restores").join("zsr").exists(), "the download is dropped once started");
    })
    .await;
}
