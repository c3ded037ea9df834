//! Backups in S3 (issue #15, docs/backup.md): the local runtime started with
//! `--backup-target s3://bucket/prefix` (moto here, with the real SDK) archives WAL and keeps base
//! backups in the bucket; a point-in-time restore reads them back; retention and refusals work
//! on the bucket's objects; the keys the runtime was given never show in a log.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::s3::{firecamp_bin, keys, moto, new_bucket, s3, target};
use common::{Bed, backup_id, hold_after_steps, pg_connect, pg_ids, require, spec, with_bed};
use firecamp_api::{BackupList, Phase};
use firecamp_core::EngineKind;
use firecamp_local::config::{Config, S3Target};
use serde_json::json;

/// The WAL file name of `lsn` on `timeline` (16 MiB segments).
fn wal_file(timeline: u32, lsn: &str) -> String {
    let (hi, lo) = lsn.split_once('/').unwrap();
    format!("{timeline:08X}{:08X}{:08X}", u64::from_str_radix(hi, 16).unwrap(), u64::from_str_radix(lo, 16).unwrap() >> 24)
}

async fn backups(bed: &Bed, name: &str) -> BackupList {
    bed.http.get(format!("{}/v1/services/{name}/backups", bed.url)).send().await.unwrap().json().await.unwrap()
}

/// Every file under `dir`, read whole (logs, configs, records): where a secret must not be.
fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file()
                && p.file_name().is_some_and(|n| n != "aws-credentials")
                && std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            {
                found.push(p);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn backups_in_s3_restore_to_a_point_in_time_and_keep_their_keys_out_of_sight() {
    require(EngineKind::Postgresql);
    let client = s3(&moto());
    let bucket = new_bucket(&client, "fc-pitr").await;
    let secret = format!("SeCrEt{}x{}", std::process::id(), "9f8e7d6c5b4a");
    let (b2, s2) = (bucket.clone(), secret.clone());
    with_bed(
        "t-bks",
        "127.0.184.1/20",
        move |cfg: &mut Config| {
            cfg.backup_target = Some(target(&b2, &s2));
            cfg.firecamp_bin = Some(firecamp_bin());
            // A fixed API port: the test restarts the daemon in the middle of a restore.
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            cfg.listen = format!("127.0.0.1:{port}").parse().unwrap();
        },
        |bed: Arc<Bed>| async move {
            let mut s = spec("postgresql", 2, "256Mi");
            s["backup"] = json!({ "retention": 1 });
            bed.create(json!({ "name": "pg", "spec": s })).await.expect("created");
            bed.wait_phase("pg", Phase::Active, Duration::from_secs(240)).await;
            let login = bed.pg_login("pg");
            let primary = pg_connect(&bed.ip("pg", "pg-0").await, &login).await.unwrap();
            primary.batch_execute("CREATE TABLE t (id bigint PRIMARY KEY); INSERT INTO t SELECT g FROM generate_series(1, 500) g").await.unwrap();

            let op = bed.operate("pg", json!({ "kind": "backup" })).await.expect("accepted");
            let done = bed.wait_operation("pg", &op.id, Duration::from_secs(180)).await;
            assert_eq!(done.phase, firecamp_api::OperationPhase::Succeeded, "{done:?}");
            let list = backups(&bed, "pg").await;
            assert_eq!(list.items.len(), 1, "{list:?}");
            let first = list.items[0].clone();
            // In the bucket, under the prefix: the files, the record last; nothing kept locally.
            let objects = keys(&client, &bucket, "team-a/pg/").await;
            for f in ["base.tar", "pg_wal.tar", "backup_manifest", "backup.json"] {
                assert!(objects.iter().any(|k| k.ends_with(&format!("/base/{}/{f}", first.id))), "{f} not in {objects:?}");
            }
            let inc = std::fs::read_dir(bed.cfg.backup_dir().join("pg")).unwrap().next().unwrap().unwrap().path();
            assert_eq!(std::fs::read_dir(inc.join("base")).unwrap().count(), 0, "the staged backup is gone once uploaded");
            assert!(!inc.join("wal").exists(), "no local archive");
            // The daemon's /metrics counts its requests to S3 (the uploads among them).
            let text = bed.http.get(format!("{}/metrics", bed.url)).send().await.unwrap().text().await.unwrap();
            let uploads: f64 = firecamp_api::metrics::parse(&text)
                .iter()
                .filter(|x| x.name == "firecamp_aws_requests_total" && x.label("service") == Some("s3") && x.label("outcome") == Some("ok"))
                .filter(|x| matches!(x.label("operation"), Some("PutObject" | "UploadPart")))
                .map(|x| x.value)
                .sum();
            assert!(uploads >= 1.0, "no upload counted:\n{text}");

            // T, then more rows and the mistake.
            let before_t = pg_ids(&bed, "pg").await;
            let t: String =
                primary.query_one(r#"SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#, &[]).await.unwrap().get(0);
            primary.batch_execute("INSERT INTO t SELECT -g FROM generate_series(1, 100) g").await.unwrap();
            primary.batch_execute("DROP TABLE t").await.unwrap();

            let r = bed
                .http
                .post(format!("{}/v1/services/pg/restore", bed.url))
                .json(&json!({ "backup": first.id, "name": "pgr", "toTime": t }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
            // The daemon stopped while the first member recovers from the bucket: the next one
            // takes the restore up where it was and ends it.
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while !bed.logs("pgr", "pgr-0").await.contains("recovering from the archive s3://") {
                assert!(std::time::Instant::now() < deadline, "pgr-0 never started recovering: {}", bed.logs("pgr", "pgr-0").await);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(bed.cfg.dir.join("restores").join("pgr").exists(), "the download waits for the first start");
            bed.restart_daemon(bed.cfg.clone()).await;
            let log = bed.logs("pgr", "pgr-0").await;
            assert!(!log.contains("did not stop within"), "a recovering member stops when asked, not at the end of its grace:\n{log}");
            bed.wait_phase("pgr", Phase::Active, Duration::from_secs(240)).await;
            assert_eq!(pg_ids(&bed, "pgr").await, before_t, "exactly the rows committed before {t}");
            assert!(!bed.cfg.dir.join("restores").join("pgr").exists(), "the downloaded backup is dropped once restored");
            // Every WAL file came from the bucket: the source archived there.
            let wal = keys(&client, &bucket, &format!("team-a/pg/{}/wal/", inc.file_name().unwrap().to_string_lossy())).await;
            assert!(!wal.is_empty(), "the archive is in the bucket");

            // The keys: in each member's own 0600 file, nowhere else under the state directory.
            let creds = bed.member_dir("pg", "pg-0").join("secret").join("aws-credentials");
            let meta = std::fs::metadata(&creds).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
            assert_ne!(meta.uid(), 0, "owned by the engine's user");
            assert!(std::fs::read_to_string(&creds).unwrap().contains(&secret));
            assert_eq!(files_containing(&bed.cfg.dir, &secret), Vec::<PathBuf>::new(), "the secret key leaked into these files");

            // A damaged backup in the bucket (its WAL tar cut short) is refused and makes nothing.
            let key = format!("team-a/pg/{}/base/{}/pg_wal.tar", inc.file_name().unwrap().to_string_lossy(), first.id);
            let whole = client.get_object().bucket(&bucket).key(&key).send().await.unwrap().body.collect().await.unwrap().into_bytes();
            client.put_object().bucket(&bucket).key(&key).body(whole.slice(..whole.len() / 2).into()).send().await.unwrap();
            let r = bed.http.post(format!("{}/v1/services/pg/restore", bed.url)).json(&json!({ "backup": first.id, "name": "pgx" })).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 400);
            assert!(r.text().await.unwrap().contains("damaged"));
            assert!(bed.list().await.items.iter().all(|s| s.name != "pgx"), "nothing created");
            assert!(!bed.cfg.dir.join("restores").join("pgx").exists(), "no download left");

            // Retention 1: a second backup removes the first's objects and the WAL only it needed
            // (a checkpoint in a new WAL file first: a replica's backup starts at the last
            // checkpoint it replayed).
            bed.wait_phase("pg", Phase::Active, Duration::from_secs(240)).await;
            // (The daemon's restart restarted its members.)
            let primary = pg_connect(&bed.ip("pg", "pg-0").await, &login).await.unwrap();
            primary.batch_execute("SELECT pg_switch_wal(); CHECKPOINT").await.unwrap();
            let op = bed.operate("pg", json!({ "kind": "backup" })).await.expect("accepted");
            let done = bed.wait_operation("pg", &op.id, Duration::from_secs(180)).await;
            assert_eq!(done.phase, firecamp_api::OperationPhase::Succeeded, "{done:?}");
            let list = backups(&bed, "pg").await;
            assert_eq!(list.items.len(), 1, "{list:?}");
            let second = list.items[0].clone();
            assert_ne!(second.id, first.id);
            let objects = keys(&client, &bucket, "team-a/pg/").await;
            assert!(objects.iter().all(|k| !k.contains(&first.id)), "the first backup's objects are gone: {objects:?}");
            let start = wal_file(second.timeline, &second.wal_start);
            let left = keys(&client, &bucket, &format!("team-a/pg/{}/wal/", inc.file_name().unwrap().to_string_lossy())).await;
            let older: Vec<&String> = wal.iter().filter(|k| k.rsplit('/').next().is_some_and(|n| n.len() >= 24 && n[8..24] < start[8..])).collect();
            assert!(!older.is_empty(), "the second backup starts after some archived WAL ({start}): {wal:?}");
            assert!(older.iter().all(|k| !left.contains(k)), "WAL before {start} removed: {left:?}");
        },
    )
    .await;
}

/// A target that cannot work stops the runtime from starting, saying why; a state directory
/// keeps the target its backups went to.
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_or_changed_backup_target_is_refused_at_start() {
    let client = s3(&moto());
    let bucket = new_bucket(&client, "fc-pin").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::new(dir.path());
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dns_listen = "127.0.0.1:0".parse().unwrap();
    cfg.ips = firecamp_local::ips::IpPool::parse("127.0.185.1/4").unwrap();
    cfg.manage_hosts = false;
    cfg.firecamp_bin = Some(firecamp_bin());

    for (url, says) in [("s3://Bad_Bucket/x", "bucket"), ("s3://fc-pin-none-such/x", "create it first"), ("s3://fc-pin/../y", "segments")] {
        cfg.backup_target = Some(S3Target { url: url.into(), ..target(&bucket, "k") });
        let e = firecamp_local::start(cfg.clone()).await.err().expect("refused").to_string();
        assert!(e.contains(says), "{url}: {e}");
    }
    // A runtime that never kept a backup may move to S3; from then on the directory keeps it.
    cfg.backup_target = None;
    firecamp_local::start(cfg.clone()).await.expect("starts").stop().await;
    assert!(!dir.path().join("backup-target").exists(), "nothing local to pin");
    cfg.backup_target = Some(target(&bucket, "k"));
    firecamp_local::start(cfg.clone()).await.expect("starts").stop().await;
    cfg.backup_target = None;
    let e = firecamp_local::start(cfg.clone()).await.err().expect("refused").to_string();
    assert!(e.contains(&format!("s3://{bucket}/team-a")) && e.contains("--backup-target"), "{e}");
}

/// A daemon stopped while a backup was being uploaded: what it left in the bucket (no record,
/// so no backup) is removed, and the backup is taken again under its id, whole.
#[tokio::test(flavor = "multi_thread")]
async fn an_upload_cut_short_is_taken_again_whole() {
    require(EngineKind::Postgresql);
    let client = s3(&moto());
    let bucket = new_bucket(&client, "fc-cut").await;
    let (hold, backing_up) = (hold_after_steps(0), common::s3::backing_up_to(&bucket));
    let tweak = move |cfg: &mut Config| {
        hold(cfg);
        backing_up(cfg);
    };
    with_bed("t-bks2", "127.0.190.1/20", tweak, |bed: Arc<Bed>| async move {
        let mut s = spec("postgresql", 1, "256Mi");
        s["backup"] = json!({});
        bed.create(json!({ "name": "pg", "spec": s })).await.expect("created");
        bed.wait_phase("pg", Phase::Active, Duration::from_secs(240)).await;
        let c = pg_connect(&bed.ip("pg", "pg-0").await, &bed.pg_login("pg")).await.unwrap();
        c.batch_execute("CREATE TABLE t (id bigint PRIMARY KEY); INSERT INTO t SELECT g FROM generate_series(1, 50) g").await.unwrap();
        let op = bed.operate("pg", json!({ "kind": "backup" })).await.expect("accepted");
        bed.wait_operation_until("pg", &op.id, Duration::from_secs(60), |o| o.phase == firecamp_api::OperationPhase::Running).await;
        // What a daemon stopped mid-upload leaves: some of the backup's files, no record.
        let id = backup_id("pg", &op.id);
        let inc = std::fs::read_dir(bed.cfg.backup_dir().join("pg")).unwrap().next().unwrap().unwrap().file_name();
        let key = format!("team-a/pg/{}/base/{id}/base.tar", inc.to_string_lossy());
        client.put_object().bucket(&bucket).key(&key).body(b"half a tar".to_vec().into()).send().await.unwrap();
        assert!(backups(&bed, "pg").await.items.is_empty(), "objects without a record are no backup");

        let mut cfg = bed.cfg.clone();
        cfg.hold_operations_after_steps = None;
        bed.restart_daemon(cfg).await;
        let done = bed.wait_operation("pg", &op.id, Duration::from_secs(180)).await;
        assert_eq!(done.phase, firecamp_api::OperationPhase::Succeeded);
        let list = backups(&bed, "pg").await;
        assert_eq!(list.items.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
        let head = client.head_object().bucket(&bucket).key(&key).send().await.unwrap();
        assert!(head.content_length().unwrap_or_default() > 1 << 20, "base.tar uploaded whole: {head:?}");
        let r = bed.http.post(format!("{}/v1/services/pg/restore", bed.url)).json(&json!({ "backup": id, "name": "pgr" })).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
        bed.wait_phase("pgr", Phase::Active, Duration::from_secs(240)).await;
        assert_eq!(pg_ids(&bed, "pgr").await, (1..=50).collect::<Vec<i64>>());
    })
    .await;
}
