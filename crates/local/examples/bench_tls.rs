//! Benchmark: what TLS costs a simple write workload (issue #13), on the local runtime with the
//! real server (run as root: `cargo run -p firecamp-local --example bench_tls`).
//!
//! One PostgreSQL member that also accepts plain connections (`spec.tls.allowPlaintext`), so the
//! same server, data and run serve both. pgbench's built-in `simple-update` script (`-N`: one
//! UPDATE, one SELECT, one INSERT per transaction), 4 clients, alternating plain
//! (`sslmode=disable`) and TLS (`sslmode=verify-full` against the service's CA) rounds so drift
//! hits both alike; then the same with a new connection per transaction (`-C`), where the TLS
//! handshake shows. Prints each round's transactions per second and the TLS/plain ratio of the
//! medians. Then one Redis member the same way: redis-benchmark's SET, plain on 6380 against TLS
//! on 6379 (`--tls --cacert`), 8 clients, pipelining off, alternating rounds.

use std::process::Command;
use std::time::{Duration, Instant};

use firecamp_api::{Phase, Service};
use firecamp_local::config::Config;
use firecamp_local::ips::IpPool;
use serde_json::json;

const ROUNDS: usize = 3;
const SECONDS: &str = "8";

fn pgbench(bin: &str, conninfo: &str, password: &str, extra: &[&str]) -> f64 {
    let out = Command::new(bin)
        .args(["-n", "-N", "-c", "4", "-j", "2", "-T", SECONDS])
        .args(extra)
        .arg(conninfo)
        .env("PGPASSWORD", password)
        .output()
        .expect("pgbench (Debian's postgresql) is needed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pgbench failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    text.lines()
        .find_map(|l| l.strip_prefix("tps = ").and_then(|r| r.split_whitespace().next()).and_then(|v| v.parse().ok()))
        .unwrap_or_else(|| panic!("no tps in pgbench's output: {text}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
    let mut cfg = Config::new(dir.path());
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dns_listen = "127.0.0.1:0".parse().unwrap();
    cfg.cluster = "bench-tls".into();
    cfg.ips = IpPool::parse("127.0.172.1/24").unwrap();
    let daemon = firecamp_local::start(cfg.clone()).await.expect("the local runtime starts");
    let token = std::fs::read_to_string(cfg.token_path()).unwrap();
    let http = reqwest::Client::new();
    let auth = format!("Bearer {}", token.trim());
    let spec = json!({ "engine": "postgresql", "replicas": 1, "zones": ["local"], "tls": { "allowPlaintext": true },
        "resources": { "requests": { "memory": "512Mi" } }, "volumes": { "data": { "size": "2Gi" } } });
    let r =
        http.post(format!("{}/v1/services", daemon.url())).header("authorization", &auth).json(&json!({ "name": "pg", "spec": spec })).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(300);
    let ip = loop {
        let s: Service = http.get(format!("{}/v1/services/pg", daemon.url())).header("authorization", &auth).send().await.unwrap().json().await.unwrap();
        if s.status.phase == Phase::Active {
            break s.status.members[0].static_ip.clone().unwrap();
        }
        assert!(Instant::now() < deadline, "pg not ACTIVE");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let member = dir.path().join("services/pg/pg-0");
    let password = std::fs::read_to_string(member.join("secret/superuser-password")).unwrap();
    let ca = member.join("tls/ca.crt");
    let installed = std::fs::read_dir("/usr/lib/postgresql").unwrap().filter_map(|e| e.ok()).map(|e| e.path().join("bin/pgbench")).find(|p| p.exists());
    let bin = installed.expect("pgbench under /usr/lib/postgresql/*/bin").display().to_string();
    let plain = format!("host={ip} user=postgres dbname=postgres sslmode=disable");
    let tls = format!("host={ip} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}", ca.display());
    let init = Command::new(&bin).args(["-i", "-q", "-s", "4", &plain]).env("PGPASSWORD", &password).output().unwrap();
    assert!(init.status.success(), "pgbench -i: {}", String::from_utf8_lossy(&init.stderr));

    println!("PostgreSQL 1 member, local runtime, pgbench -N (simple-update), 4 clients, {SECONDS} s per round, {ROUNDS} rounds each");
    for (label, extra) in [("persistent connections", &[][..]), ("a connection per transaction (-C)", &["-C"][..])] {
        let (mut p, mut t) = (Vec::new(), Vec::new());
        for round in 1..=ROUNDS {
            p.push(pgbench(&bin, &plain, &password, extra));
            t.push(pgbench(&bin, &tls, &password, extra));
            println!("  {label}, round {round}: plain {:.0} tps, TLS {:.0} tps", p[round - 1], t[round - 1]);
        }
        let (mp, mt) = (median(p), median(t));
        println!("{label}: median plain {mp:.0} tps, TLS {mt:.0} tps, TLS/plain = {:.2}", mt / mp);
        println!("BENCH\tlocal PostgreSQL pgbench -N, {label}: throughput, TLS vs plain\t{mt:.0} tps\t{mp:.0} tps\t{:.2}\t-", mt / mp);
    }
    redis(&http, &auth, &daemon.url(), dir.path()).await;
    // A clean stop: members stopped, the runtime's hosts block removed.
    daemon.stop().await;
}

fn redis_benchmark(ip: &str, port: u16, password: &str, tls: Option<&std::path::Path>) -> f64 {
    let mut cmd = Command::new("redis-benchmark");
    cmd.args(["-h", ip, "-p", &port.to_string(), "-a", password, "-t", "set", "-n", "100000", "-c", "8", "-q", "--csv"]);
    if let Some(ca) = tls {
        cmd.args(["--tls", "--cacert", &ca.display().to_string()]);
    }
    let out = cmd.output().expect("redis-benchmark (Debian's redis-tools) is needed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "redis-benchmark failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    // "SET","<requests per second>",…
    text.lines()
        .find_map(|l| l.strip_prefix("\"SET\",\"").and_then(|r| r.split('"').next()).and_then(|v| v.parse().ok()))
        .unwrap_or_else(|| panic!("no SET line in redis-benchmark's output: {text}"))
}

async fn redis(http: &reqwest::Client, auth: &str, url: &str, dir: &std::path::Path) {
    let spec = json!({ "engine": "redis", "replicas": 1, "zones": ["local"], "tls": { "allowPlaintext": true },
        "resources": { "requests": { "memory": "256Mi" } }, "volumes": { "data": { "size": "1Gi" } } });
    let r = http.post(format!("{url}/v1/services")).header("authorization", auth).json(&json!({ "name": "rd", "spec": spec })).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(120);
    let ip = loop {
        let s: Service = http.get(format!("{url}/v1/services/rd")).header("authorization", auth).send().await.unwrap().json().await.unwrap();
        if s.status.phase == Phase::Active {
            break s.status.members[0].static_ip.clone().unwrap();
        }
        assert!(Instant::now() < deadline, "rd not ACTIVE");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let member = dir.join("services/rd/rd-0");
    let password = std::fs::read_to_string(member.join("secret/password")).unwrap();
    let ca = member.join("tls/ca.crt");
    println!("Redis 1 member, local runtime, redis-benchmark SET, 100000 requests, 8 clients, {ROUNDS} rounds each");
    let (mut p, mut t) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        p.push(redis_benchmark(&ip, firecamp_catalog::redis::PLAIN_PORT, &password, None));
        t.push(redis_benchmark(&ip, firecamp_catalog::redis::PORT, &password, Some(&ca)));
        println!("  round {round}: plain {:.0} req/s, TLS {:.0} req/s", p[round - 1], t[round - 1]);
    }
    let (mp, mt) = (median(p), median(t));
    println!("Redis SET: median plain {mp:.0} req/s, TLS {mt:.0} req/s, TLS/plain = {:.2}", mt / mp);
    println!("BENCH\tlocal Redis SET throughput, TLS vs plain\t{mt:.0} req/s\t{mp:.0} req/s\t{:.2}\t-", mt / mp);
}
