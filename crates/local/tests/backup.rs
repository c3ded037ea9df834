//! Backups and restores of a real PostgreSQL service (issue #15, docs/backup.md): a base backup
//! taken from a replica while a client writes, a point-in-time restore into a new service that
//! holds exactly the rows committed before the chosen moment, refusals that create nothing, and
//! the retention of `spec.backup`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::writer::with_writer;
use common::{Bed, backup_id, hold_after_steps, pg_connect, pg_ids, require, spec, with_bed};
use firecamp_api::{ApiError, BackupList, OperationPhase, Phase};
use firecamp_core::EngineKind;
use serde_json::{Value, json};

async fn backups(bed: &Bed, name: &str) -> BackupList {
    let r = bed.http.get(format!("{}/v1/services/{name}/backups", bed.url)).send().await.unwrap();
    assert!(r.status().is_success(), "GET backups of {name}: {}", r.status());
    r.json().await.unwrap()
}

async fn restore(bed: &Bed, source: &str, body: Value) -> Result<firecamp_api::Service, (u16, ApiError)> {
    let r = bed.http.post(format!("{}/v1/services/{source}/restore", bed.url)).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    if status == 201 { Ok(r.json().await.unwrap()) } else { Err((status, r.json().await.unwrap())) }
}

/// A refused restore: its status, the field or words its error names, and nothing made.
async fn refused(bed: &Bed, body: Value, status: u16, says: &str) {
    let before: Vec<String> = bed.list().await.items.into_iter().map(|s| s.name).collect();
    let (got, e) = restore(bed, "pg", body.clone()).await.expect_err("refused");
    let text = serde_json::to_string(&e).unwrap();
    assert_eq!(got, status, "{body}: {text}");
    assert!(text.contains(says), "{body}: {text} does not say {says:?}");
    let after: Vec<String> = bed.list().await.items.into_iter().map(|s| s.name).collect();
    assert_eq!(after, before, "{body}: nothing created");
    assert!(!bed.cfg.service_dir("pgx").exists(), "{body}: no directory made");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_point_in_time_restore_has_exactly_the_rows_committed_before_that_time() {
    require(EngineKind::Postgresql);
    with_bed(
        "t-bk",
        "127.0.180.1/20",
        |_| {},
        |bed: Arc<Bed>| async move {
            let mut s = spec("postgresql", 2, "256Mi");
            s["backup"] = json!({ "retention": 2 });
            bed.create(json!({ "name": "pg", "spec": s })).await.expect("created");
            bed.wait_phase("pg", Phase::Active, Duration::from_secs(240)).await;
            let login = bed.pg_login("pg");
            let primary = pg_connect(&bed.ip("pg", "pg-0").await, &login).await.unwrap();
            primary.batch_execute("CREATE TABLE t (id bigint PRIMARY KEY)").await.unwrap();

            // A base backup while a client writes; every acknowledged row stays on the primary.
            let (op, writes) = with_writer(&bed, "pg", &login, json!({ "kind": "backup" })).await;
            assert_eq!(op.steps.len(), 1);
            assert!(!writes.acked.is_empty());
            let list = backups(&bed, "pg").await;
            assert_eq!(list.items.len(), 1, "{list:?}");
            let first = list.items[0].clone();
            assert_eq!(first.member, "pg-1", "taken from the streaming replica, not the primary");
            assert!(first.size_bytes > 1 << 20, "{first:?}");
            assert!(first.id.starts_with("pg-"), "{first:?}");

            // T: after every row so far, before the rows and the mistake that follow.
            let before_t = pg_ids(&bed, "pg").await;
            let t: String =
                primary.query_one(r#"SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#, &[]).await.unwrap().get(0);
            primary.batch_execute("INSERT INTO t SELECT -g FROM generate_series(1, 100) g").await.unwrap();
            primary.batch_execute("DROP TABLE t").await.unwrap();

            let made = restore(&bed, "pg", json!({ "backup": first.id, "name": "pgr", "toTime": t })).await.expect("restore accepted");
            assert_eq!(made.spec.replicas, 2, "the source's shape");
            bed.wait_phase("pgr", Phase::Active, Duration::from_secs(240)).await;
            assert_eq!(pg_ids(&bed, "pgr").await, before_t, "exactly the rows committed before {t}");
            // A whole service: its replica streams from the restored primary, with its own passwords.
            let c = pg_connect(&bed.ip("pgr", "pgr-0").await, &bed.pg_login("pgr")).await.unwrap();
            let streaming: i64 = c.query_one("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'", &[]).await.unwrap().get(0);
            assert_eq!(streaming, 1, "pgr-1 streams from pgr-0");
            assert_ne!(bed.pg_login("pgr").password, login.password, "the new service has its own passwords");
            // Its metrics exporter's role too (docs/monitoring.md): the backup's role, given the
            // new service's password.
            let ip = bed.ip("pgr", "pgr-0").await;
            let monitor = bed.secret("pgr", "pgr-0", "monitor-password");
            assert_ne!(monitor, bed.secret("pg", "pg-0", "monitor-password"));
            let t = firecamp_probe::Target::new(ip.clone(), 5432).with_password(monitor).with_tls(bed.pg_login("pgr").ca, ip);
            firecamp_probe::postgresql::connect(&t, "firecamp_monitor").await.expect("the monitoring role logs in with the new service's password");

            // Refusals: each names what is wrong and makes nothing.
            refused(&bed, json!({ "backup": "../../etc", "name": "pgx" }), 400, "backup").await;
            refused(&bed, json!({ "backup": "pg-20000101T000000000Z", "name": "pgx" }), 404, "has no backup").await;
            refused(&bed, json!({ "backup": first.id, "name": "pgx", "toTime": "2000-01-01T00:00:00Z" }), 400, "toTime").await;
            refused(&bed, json!({ "backup": first.id, "name": "pgx", "toTime": "yesterday" }), 400, "RFC 3339").await;
            refused(&bed, json!({ "backup": first.id, "name": "pgr" }), 409, "already exists").await;
            refused(&bed, json!({ "backup": first.id, "name": "pgx", "extra": 1 }), 400, "extra").await;
            // A service name that would climb out of the backups directory (`..%2Fpg` arrives as
            // `../pg`) is refused before it reaches a path, for listing, restoring and deleting.
            let r = bed.http.get(format!("{}/v1/services/..%2Fpg/backups", bed.url)).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 400, "listing");
            let (status, e) = restore(&bed, "..%2Fpg", json!({ "backup": first.id, "name": "pgx" })).await.expect_err("refused");
            assert_eq!(status, 400, "restoring: {e:?}");
            let r = bed.http.delete(format!("{}/v1/services/..%2Fpg/backups/{}", bed.url, first.id)).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 400, "deleting");
            assert_eq!(backups(&bed, "pg").await.items.len(), 1, "nothing deleted");
            // A foreign backup: another service's, put where this one's would be.
            let dir = std::fs::read_dir(bed.cfg.backup_dir().join("pgr")).unwrap().next().unwrap().unwrap().path().join("base");
            let copy = dir.join(&first.id);
            std::fs::create_dir_all(&copy).unwrap();
            let src = std::fs::read_dir(bed.cfg.backup_dir().join("pg")).unwrap().next().unwrap().unwrap().path().join("base").join(&first.id);
            for f in std::fs::read_dir(&src).unwrap() {
                let f = f.unwrap();
                std::fs::copy(f.path(), copy.join(f.file_name())).unwrap();
            }
            let (status, e) = restore(&bed, "pgr", json!({ "backup": first.id, "name": "pgx" })).await.expect_err("refused");
            assert_eq!(status, 400, "{e:?}");
            assert!(e.message.contains("service \"pg\"") || serde_json::to_string(&e).unwrap().contains("service \\\"pg\\\""), "{e:?}");
            assert!(!bed.cfg.service_dir("pgx").exists());
            // A truncated one.
            let tar = src.join("base.tar");
            let len = std::fs::metadata(&tar).unwrap().len();
            std::fs::OpenOptions::new().write(true).open(&tar).unwrap().set_len(len / 2).unwrap();
            refused(&bed, json!({ "backup": first.id, "name": "pgx" }), 400, "damaged").await;

            // Retention 2: a third backup removes the oldest.
            primary.batch_execute("CREATE TABLE t (id bigint PRIMARY KEY)").await.unwrap();
            for _ in 0..2 {
                let op = bed.operate("pg", json!({ "kind": "backup" })).await.expect("accepted");
                bed.wait_operation("pg", &op.id, Duration::from_secs(120)).await;
            }
            let list = backups(&bed, "pg").await;
            assert_eq!(list.items.len(), 2, "{list:?}");
            assert!(list.items.iter().all(|b| b.id != first.id), "the oldest went: {list:?}");
        },
    )
    .await;
}

/// A daemon stopped in the middle of a backup leaves a partial directory; the next daemon
/// resumes the operation, starts the backup over under the same id and leaves nothing partial.
#[tokio::test(flavor = "multi_thread")]
async fn a_backup_interrupted_by_a_daemon_restart_is_taken_again_under_its_id() {
    require(EngineKind::Postgresql);
    with_bed("t-bk2", "127.0.181.1/20", hold_after_steps(0), |bed: Arc<Bed>| async move {
        let mut s = spec("postgresql", 2, "256Mi");
        s["backup"] = json!({});
        bed.create(json!({ "name": "pb", "spec": s })).await.expect("created");
        bed.wait_phase("pb", Phase::Active, Duration::from_secs(240)).await;
        let op = bed.operate("pb", json!({ "kind": "backup" })).await.expect("accepted");
        let held = bed.wait_operation_until("pb", &op.id, Duration::from_secs(60), |o| o.phase == OperationPhase::Running).await;
        assert_eq!(held.steps[0].phase, OperationPhase::Pending);
        // What a kill in the middle of pg_basebackup leaves: a partial directory, half written.
        let id = backup_id("pb", &op.id);
        let inc = std::fs::read_dir(bed.cfg.backup_dir().join("pb")).unwrap().next().unwrap().unwrap().path();
        let partial = inc.join("base").join(format!(".{id}.partial"));
        std::fs::create_dir_all(&partial).unwrap();
        std::fs::write(partial.join("base.tar"), b"half a tar").unwrap();
        assert!(backups(&bed, "pb").await.items.is_empty(), "a partial backup is not listed");

        let mut cfg = bed.cfg.clone();
        cfg.hold_operations_after_steps = None;
        bed.restart_daemon(cfg).await;
        let done = bed.wait_operation("pb", &op.id, Duration::from_secs(300)).await;
        assert_eq!(done.phase, OperationPhase::Succeeded);
        let list = backups(&bed, "pb").await;
        assert_eq!(list.items.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
        assert!(list.items[0].size_bytes > 1 << 20, "{list:?}");
        assert!(!partial.exists(), "the partial directory was replaced");

        // The source gone (its backups kept), a moment after its last archived transaction
        // cannot be reached: the restored service turns FAILED saying why, not retrying forever.
        bed.delete("pb", true).await;
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        restore(&bed, "pb", json!({ "backup": "latest", "name": "pbt", "toTime": now })).await.expect("accepted");
        let failed = bed.wait_phase("pbt", Phase::Failed, Duration::from_secs(120)).await;
        let why = failed.status.message.unwrap_or_default();
        assert!(why.contains("recovery ended before configured recovery target was reached"), "{why}");

        // The backup a restore reads is not deleted under it: refused while pbt exists, then
        // deleted once pbt is gone.
        let url = format!("{}/v1/services/pb/backups/{id}", bed.url);
        let r = bed.http.delete(&url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 409);
        let e: firecamp_api::ApiError = r.json().await.unwrap();
        assert!(e.message.contains("being restored as pbt"), "{e:?}");
        assert_eq!(backups(&bed, "pb").await.items.len(), 1, "still there");
        bed.delete("pbt", true).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while bed.list().await.items.iter().any(|s| s.name == "pbt") {
            assert!(std::time::Instant::now() < deadline, "pbt not deleted within 60 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let r = bed.http.delete(&url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
        // pb itself was deleted earlier: with its last backup gone, nothing of it is left.
        let r = bed.http.get(format!("{}/v1/services/pb/backups", bed.url)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404);
    })
    .await;
}

/// `spec.backup.schedule`: backups taken by themselves (every 3 s here), the oldest removed
/// beyond the retention; a schedule that is not a cron expression is refused naming the field.
#[tokio::test(flavor = "multi_thread")]
async fn scheduled_backups_are_taken_by_themselves_and_kept_to_the_retention() {
    require(EngineKind::Postgresql);
    with_bed(
        "t-bk3",
        "127.0.183.1/20",
        |_| {},
        |bed: Arc<Bed>| async move {
            let mut s = spec("postgresql", 2, "256Mi");
            s["backup"] = json!({ "retention": 2, "schedule": "every night" });
            let (status, e) = bed.create(json!({ "name": "ps", "spec": s.clone() })).await.expect_err("refused");
            assert_eq!(status, 400);
            assert!(serde_json::to_string(&e).unwrap().contains("spec.backup.schedule"), "{e:?}");
            assert!(bed.list().await.items.is_empty(), "nothing created");

            s["backup"] = json!({ "retention": 2, "schedule": "*/3 * * * * *" });
            bed.create(json!({ "name": "ps", "spec": s })).await.expect("created");
            bed.wait_phase("ps", Phase::Active, Duration::from_secs(240)).await;
            let deadline = std::time::Instant::now() + Duration::from_secs(180);
            loop {
                let done =
                    bed.operations("ps").await.iter().filter(|o| o.kind == firecamp_api::OperationKind::Backup && o.phase == OperationPhase::Succeeded).count();
                if done >= 3 {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "only {done} scheduled backups within 180 s");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let kept = backups(&bed, "ps").await.items.len();
            assert!(kept <= 2, "retention 2 keeps at most 2, found {kept}");
        },
    )
    .await;
}
