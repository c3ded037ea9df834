//! What the engines' create benchmarks share (`bench_kafka`, `bench_mariadb`, `bench_cassandra`):
//! FireCamp's side (a fresh runtime, one create, until ACTIVE), the stop of the servers started
//! by hand, and the `BENCH` line. Each example uses some of it.
#![allow(dead_code)]

use std::process::Child;
use std::time::{Duration, Instant};

use firecamp_api::{Phase, Service};
use firecamp_local::config::Config;
use firecamp_local::ips::IpPool;
use serde_json::{Value, json};

/// Seconds from `POST /v1/services` of `name` with `spec` until it is ACTIVE, on a fresh local
/// runtime (cluster `cluster`, members from `pool`) under `dir`, stopped after.
pub async fn create_until_active(dir: &std::path::Path, cluster: &str, pool: &str, name: &str, spec: Value) -> f64 {
    let mut cfg = Config::new(dir.join("runtime"));
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dns_listen = "127.0.0.1:0".parse().unwrap();
    cfg.cluster = cluster.into();
    cfg.ips = IpPool::parse(pool).unwrap();
    let daemon = firecamp_local::start(cfg.clone()).await.expect("the local runtime starts");
    let token = std::fs::read_to_string(cfg.token_path()).unwrap();
    let http = reqwest::Client::new();
    let auth = format!("Bearer {}", token.trim());
    let started = Instant::now();
    let r =
        http.post(format!("{}/v1/services", daemon.url())).header("authorization", &auth).json(&json!({ "name": name, "spec": spec })).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let deadline = started + Duration::from_secs(300);
    loop {
        let s: Service = http.get(format!("{}/v1/services/{name}", daemon.url())).header("authorization", &auth).send().await.unwrap().json().await.unwrap();
        if s.status.phase == Phase::Active {
            break;
        }
        assert!(Instant::now() < deadline, "{name} not ACTIVE: {:?}", s.status);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    daemon.stop().await;
    secs
}

/// Waits until every server started by hand (stdout piped) prints a line containing `marker`.
pub fn wait_for_line(children: &mut [Child], marker: &'static str, dir: &std::path::Path) {
    use std::io::{BufRead, BufReader};
    let waits: Vec<_> = children
        .iter_mut()
        .map(|c| {
            let out = c.stdout.take().expect("the server's stdout is piped");
            std::thread::spawn(move || BufReader::new(out).lines().map_while(Result::ok).any(|l| l.contains(marker)))
        })
        .collect();
    for w in waits {
        assert!(w.join().unwrap(), "a server by hand did not start (its stderr and log in {})", dir.display());
    }
}

/// SIGTERM to each server started by hand, then waits for all.
pub fn stop(children: &mut [Child]) {
    for c in children.iter() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM);
    }
    for c in children.iter_mut() {
        let _ = c.wait();
    }
}

/// Runs `by_hand` in `<dir>/by-hand` (blocking) and prints the `BENCH` line of `what`.
pub async fn compare(dir: &std::path::Path, what: &str, ours: f64, by_hand: fn(&std::path::Path) -> f64) {
    let hand_dir = dir.join("by-hand");
    std::fs::create_dir_all(&hand_dir).unwrap();
    let base = tokio::task::spawn_blocking(move || by_hand(&hand_dir)).await.unwrap();
    println!("BENCH\t{what}\t{ours:.2} s\t{base:.2} s\t{:.2}\t-", ours / base);
}

/// A temporary directory other users (the members' servers) may pass through.
pub fn state_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
    dir
}
