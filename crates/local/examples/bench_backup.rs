//! Benchmark: backup and restore of a PostgreSQL service on the local runtime (issue #15), next
//! to the same work by hand in the same run (run as root:
//! `cargo run -p firecamp-local --example bench_backup`; `FIRECAMP_BENCH_BACKUP_MB` sets the
//! database's size, 1024 by default).
//!
//! A service of 2 members with `spec.backup` is filled with a table of about that size. Then:
//! - FireCamp's backup (the `backup` operation: `pg_basebackup` from the replica, checksums,
//!   fsync, the record) against `pg_basebackup` from the same replica by hand plus a copy of its
//!   files to another directory (what a user without FireCamp would script);
//! - FireCamp's restore of that backup into a new service, until its first member serves as a
//!   primary and until the service is ACTIVE (its replica cloned), against unpacking the same
//!   backup by hand and starting one server on it until it leaves recovery.
//!
//! Prints `BENCH` lines: FireCamp, the baseline, their ratio.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use firecamp_api::{BackupList, Phase, Service};
use firecamp_local::config::Config;
use firecamp_local::ips::IpPool;
use serde_json::json;

struct Api {
    url: String,
    http: reqwest::Client,
    auth: String,
}

impl Api {
    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let r = self.http.get(format!("{}{path}", self.url)).header("authorization", &self.auth).send().await.unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }
    async fn post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let r = self.http.post(format!("{}{path}", self.url)).header("authorization", &self.auth).json(&body).send().await.unwrap();
        let status = r.status();
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(status.is_success(), "POST {path}: {status} {v}");
        v
    }
    async fn wait_phase(&self, name: &str, phase: Phase) {
        let deadline = Instant::now() + Duration::from_secs(1800);
        loop {
            let s: Service = self.get(&format!("/v1/services/{name}")).await;
            if s.status.phase == phase {
                return;
            }
            assert!(Instant::now() < deadline, "{name} not {phase:?}: {:?}", s.status);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Runs a command as the `postgres` user; panics with its output when it fails.
fn as_postgres(program: &Path, args: &[&str], env: &[(&str, &str)]) {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(program).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("runuser");
    assert!(out.status.success(), "{} {args:?}: {}{}", program.display(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

fn psql(bin: &Path, socket: &str, port: &str, sql: &str) -> String {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join("psql"))
        .args(["-Atq", "-h", socket, "-p", port, "-U", "postgres", "-d", "postgres", "-c", sql])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn line(what: &str, ours: f64, base: f64, unit: &str) {
    println!("BENCH\t{what}\t{ours:.2} {unit}\t{base:.2} {unit}\t{:.2}\t-", ours / base);
}

#[tokio::main]
async fn main() {
    let mb: u64 = std::env::var("FIRECAMP_BENCH_BACKUP_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
    let mut cfg = Config::new(dir.path());
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dns_listen = "127.0.0.1:0".parse().unwrap();
    cfg.cluster = "bench-bk".into();
    cfg.ips = IpPool::parse("127.0.182.1/24").unwrap();
    let daemon = firecamp_local::start(cfg.clone()).await.expect("the local runtime starts");
    let token = std::fs::read_to_string(cfg.token_path()).unwrap();
    let api = Api { url: daemon.url(), http: reqwest::Client::new(), auth: format!("Bearer {}", token.trim()) };
    let spec = json!({ "engine": "postgresql", "replicas": 2, "zones": ["local"], "backup": {},
        "resources": { "requests": { "memory": "1Gi" } }, "volumes": { "data": { "size": "8Gi" } } });
    api.post("/v1/services", json!({ "name": "pg", "spec": spec })).await;
    api.wait_phase("pg", Phase::Active).await;
    let bin = firecamp_local::servers::detect(&cfg, firecamp_core::EngineKind::Postgresql, None, false).unwrap().bin_dir;
    let bin = Path::new(&bin);
    let m0 = cfg.service_dir("pg").join("pg-0");
    let m1 = cfg.service_dir("pg").join("pg-1");
    let socket0 = m0.join("run").display().to_string();

    // About `mb` MiB of rows (a row of 1 KiB of text, stored uncompressed).
    let rows = mb * 1024;
    let t = Instant::now();
    psql(bin, &socket0, "5432", &format!("CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 32) AS pad FROM generate_series(1, {rows}) g"));
    let size = psql(bin, &socket0, "5432", "SELECT pg_database_size('postgres')");
    let db_mib = size.parse::<f64>().unwrap_or(0.0) / (1 << 20) as f64;
    eprintln!("loaded {db_mib:.0} MiB in {:.1} s", t.elapsed().as_secs_f64());
    psql(bin, &socket0, "5432", "CHECKPOINT");

    // FireCamp's backup.
    let t = Instant::now();
    let op = api.post("/v1/services/pg/operations", json!({ "kind": "backup", "stepTimeoutSeconds": 3600 })).await;
    let id = op["id"].as_str().unwrap().to_string();
    loop {
        let o: firecamp_api::Operation = api.get(&format!("/v1/services/pg/operations/{id}")).await;
        if o.phase.is_terminal() {
            assert_eq!(o.phase, firecamp_api::OperationPhase::Succeeded, "{o:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ours_backup = t.elapsed().as_secs_f64();
    let list: BackupList = api.get("/v1/services/pg/backups").await;
    let backup = list.items.first().expect("a backup").clone();
    let backup_mib = backup.size_bytes as f64 / (1 << 20) as f64;

    // By hand: pg_basebackup from the same replica, then its files copied elsewhere.
    let hand = dir.path().join("by-hand");
    std::fs::create_dir(&hand).unwrap();
    Command::new("chown").args(["postgres:postgres"]).arg(&hand).status().unwrap();
    let ip1 = api.get::<Service>("/v1/services/pg").await.status.members.iter().find(|m| m.name == "pg-1").unwrap().static_ip.clone().unwrap();
    let pgpass = m1.join("run").join("pgpass").display().to_string();
    let ca = m1.join("tls").join("ca.crt").display().to_string();
    let run1 = m1.join("run").display().to_string();
    let t = Instant::now();
    let base = hand.join("base").display().to_string();
    as_postgres(
        &bin.join("pg_basebackup"),
        &["-h", &ip1, "-U", "replicator", "-w", "-Ft", "-X", "stream", "-c", "fast", "-D", &base],
        &[("PGPASSFILE", &pgpass), ("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", &ca), ("HOME", &run1)],
    );
    let copy = hand.join("copy").display().to_string();
    as_postgres(Path::new("/bin/cp"), &["-r", &base, &copy], &[]);
    as_postgres(Path::new("/bin/sync"), &[], &[]);
    let hand_backup = t.elapsed().as_secs_f64();
    line(
        &format!("local PostgreSQL backup of {backup_mib:.0} MiB: throughput, FireCamp vs pg_basebackup + cp"),
        backup_mib / ours_backup,
        backup_mib / hand_backup,
        "MiB/s",
    );

    // FireCamp's restore into a new service.
    let t = Instant::now();
    api.post("/v1/services/pg/restore", json!({ "backup": backup.id, "name": "pgr" })).await;
    let pgr0 = cfg.service_dir("pgr").join("pgr-0").join("run").display().to_string();
    let deadline = Instant::now() + Duration::from_secs(1800);
    while psql(bin, &pgr0, "5432", "SELECT pg_is_in_recovery()") != "f" || cfg.service_dir("pgr").join("pgr-0/data/pgdata/firecamp-restoring").exists() {
        assert!(Instant::now() < deadline, "pgr-0 never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ours_first = t.elapsed().as_secs_f64();
    api.wait_phase("pgr", Phase::Active).await;
    let ours_active = t.elapsed().as_secs_f64();

    // By hand: the same backup unpacked and one server started on it, recovering from the archive
    // (hot_standby off: no connection before it has left recovery, and none of the settings a
    // hot standby must match).
    let archive = std::fs::read_dir(cfg.backup_dir().join("pg")).unwrap().next().unwrap().unwrap().path().join("wal");
    let data = hand.join("restored");
    let data_s = data.display().to_string();
    let t = Instant::now();
    as_postgres(Path::new("/bin/mkdir"), &["-m", "0700", &data_s], &[]);
    as_postgres(Path::new("/bin/tar"), &["-xf", &format!("{base}/base.tar"), "-C", &data_s], &[]);
    as_postgres(Path::new("/bin/tar"), &["-xf", &format!("{base}/pg_wal.tar"), "-C", &format!("{data_s}/pg_wal")], &[]);
    as_postgres(Path::new("/bin/rm"), &["-f", &format!("{data_s}/standby.signal")], &[]);
    as_postgres(Path::new("/bin/touch"), &[&format!("{data_s}/recovery.signal")], &[]);
    let conf = format!("restore_command = 'cp {}/%f %p'\nrecovery_target_action = 'promote'\n", archive.display());
    std::fs::write(data.join("postgresql.auto.conf"), conf).unwrap();
    Command::new("chown").args(["postgres:postgres"]).arg(data.join("postgresql.auto.conf")).status().unwrap();
    let opts =
        format!("-c listen_addresses='' -c unix_socket_directories='{data_s}' -c port=5499 -c ssl=off -c hba_file={data_s}/pg_hba.conf -c hot_standby=off");
    as_postgres(&bin.join("pg_ctl"), &["-D", &data_s, "-w", "-t", "3600", "-l", &format!("{}/restore.log", hand.display()), "-o", &opts, "start"], &[]);
    while psql(bin, &data_s, "5499", "SELECT pg_is_in_recovery()") != "f" {
        assert!(Instant::now() < deadline, "the server restored by hand never left recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hand_restore = t.elapsed().as_secs_f64();
    as_postgres(&bin.join("pg_ctl"), &["-D", &data_s, "-m", "immediate", "stop"], &[]);
    line(&format!("local PostgreSQL restore of {backup_mib:.0} MiB: first member serving, FireCamp vs tar + pg_ctl by hand"), ours_first, hand_restore, "s");
    println!("BENCH\tlocal PostgreSQL restore of {backup_mib:.0} MiB: the new service ACTIVE (its replica cloned too)\t{ours_active:.2} s\t-\t-\t-");
    daemon.stop().await;
}
