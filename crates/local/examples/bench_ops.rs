//! Benchmark of ordered updates on the local runtime (run as root: scripts/bench-local-ops.sh).
//!
//! A PostgreSQL service of 3 real members; a continuous writer (one row per INSERT, autocommit,
//! to the member the runtime reports as primary, looked up again after an error). For each
//! policy it runs an ordered update (`upgrade` to the installed catalog version: every member
//! restarted on the new spec) and prints:
//! - the operation's total time (request to end) and the sum of its members' own restart times
//!   (each restart step: clean stop, start, and back in the membership, i.e. streaming from the
//!   primary or accepting writes as the primary), both from the operation record of the same run,
//!   and their ratio: what the ordering, the switchover and the waits between steps cost;
//! - the longest pause between two acknowledged writes, and how many writes failed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use firecamp_api::{Operation, OperationPhase, Phase, Role, Service};
use firecamp_local::config::Config;
use firecamp_local::ips::IpPool;
use serde_json::json;

struct Api {
    url: String,
    http: reqwest::Client,
}

impl Api {
    async fn get(&self, name: &str) -> Service {
        self.http.get(format!("{}/v1/services/{name}", self.url)).send().await.unwrap().json().await.unwrap()
    }
    async fn wait_active(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while self.get(name).await.status.phase != Phase::Active {
            assert!(Instant::now() < deadline, "{name} not ACTIVE");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    async fn primary_ip(&self, name: &str) -> Option<String> {
        self.get(name).await.status.members.into_iter().find(|m| m.role == Role::Primary).and_then(|m| m.static_ip)
    }
    async fn operate(&self, name: &str, body: serde_json::Value) -> Operation {
        let r = self.http.post(format!("{}/v1/services/{name}/operations", self.url)).json(&body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());
        r.json().await.unwrap()
    }
    async fn wait_op(&self, name: &str, id: &str) -> Operation {
        loop {
            let op: Operation = self.http.get(format!("{}/v1/services/{name}/operations/{id}", self.url)).send().await.unwrap().json().await.unwrap();
            if op.phase.is_terminal() {
                assert_eq!(op.phase, OperationPhase::Succeeded, "{op:#?}");
                return op;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Over TLS, verified against the service's CA (the member's certificate names its address).
async fn connect(ip: &str, password: &str, ca: &str) -> Option<tokio_postgres::Client> {
    let t = firecamp_probe::Target::new(ip, 5432).with_password(password).with_tls(ca, ip);
    firecamp_probe::postgresql::connect(&t, "postgres").await.ok()
}

fn secs(a: &str, b: &str) -> f64 {
    let t = |s: &str| humantime::parse_rfc3339_weak(s).unwrap();
    t(b).duration_since(t(a)).unwrap_or_default().as_secs_f64()
}

#[derive(Default)]
struct Writes {
    acks: Vec<Instant>,
    failures: usize,
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    // The runtime leaves a directory it did not create as it is; the postgres user must pass.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
    let mut cfg = Config::new(dir.path());
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dns_listen = "127.0.0.1:0".parse().unwrap();
    cfg.cluster = "bench-ops".into();
    cfg.ips = IpPool::parse("127.0.170.1/20").unwrap();
    let daemon = firecamp_local::start(cfg.clone()).await.expect("the local runtime starts");
    // The API wants the token the daemon wrote into its state directory.
    let token = std::fs::read_to_string(cfg.token_path()).unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {}", token.trim()).parse().unwrap());
    let http = reqwest::Client::builder().default_headers(headers).build().unwrap();
    let api = Arc::new(Api { url: daemon.url(), http });
    let spec = json!({ "engine": "postgresql", "replicas": 3, "zones": ["local"],
        "resources": { "requests": { "memory": "256Mi" } }, "volumes": { "data": { "size": "1Gi" } } });
    let r = api.http.post(format!("{}/v1/services", api.url)).json(&json!({ "name": "pg", "spec": spec })).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    api.wait_active("pg").await;
    let password = std::fs::read_to_string(dir.path().join("services/pg/pg-0/secret/superuser-password")).unwrap();
    let ca = std::fs::read_to_string(dir.path().join("services/pg/pg-0/tls/ca.crt")).unwrap();
    let c = connect(&api.primary_ip("pg").await.unwrap(), &password, &ca).await.unwrap();
    c.batch_execute("CREATE TABLE t (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())").await.unwrap();
    let version = api.get("pg").await.spec.version.unwrap();
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(1);

    println!("PostgreSQL, 3 members, local runtime; {rounds} round(s) per policy");
    for round in 1..=rounds {
        for policy in ["PrimaryLast", "PrimaryFirst"] {
            let w = Arc::new(Mutex::new(Writes::default()));
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let task = {
                let (api, w, stop, password, ca) = (api.clone(), w.clone(), stop.clone(), password.clone(), ca.clone());
                tokio::spawn(async move {
                    let mut client = None;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        if client.is_none() {
                            client = match api.primary_ip("pg").await {
                                Some(ip) => connect(&ip, &password, &ca).await,
                                None => None,
                            };
                            if client.is_none() {
                                w.lock().unwrap().failures += 1;
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                continue;
                            }
                        }
                        let ok = matches!(
                            tokio::time::timeout(Duration::from_secs(5), client.as_ref().unwrap().execute("INSERT INTO t DEFAULT VALUES", &[])).await,
                            Ok(Ok(_))
                        );
                        let mut g = w.lock().unwrap();
                        if ok {
                            g.acks.push(Instant::now());
                        } else {
                            g.failures += 1;
                            client = None;
                        }
                    }
                })
            };
            while w.lock().unwrap().acks.len() < 50 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let started = Instant::now();
            let op = api.operate("pg", json!({ "kind": "upgrade", "version": version, "policy": policy })).await;
            let op = api.wait_op("pg", &op.id).await;
            let ended = Instant::now();
            let n = w.lock().unwrap().acks.len();
            while w.lock().unwrap().acks.len() < n + 50 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            task.await.unwrap();
            let w = w.lock().unwrap();
            let during: Vec<&Instant> = w.acks.iter().filter(|t| **t >= started - Duration::from_secs(1)).collect();
            let longest = during.windows(2).map(|p| p[1].duration_since(*p[0])).max().unwrap_or_default();
            let total = secs(&op.created, op.finished.as_deref().unwrap());
            let restarts: Vec<(String, f64)> = op
                .steps
                .iter()
                .filter(|s| s.action == firecamp_api::StepAction::Restart)
                .map(|s| (s.member.clone(), secs(s.started.as_deref().unwrap(), s.finished.as_deref().unwrap())))
                .collect();
            let sum: f64 = restarts.iter().map(|(_, d)| d).sum();
            let switchover = match op.steps.iter().find(|s| s.action == firecamp_api::StepAction::Switchover) {
                Some(s) => format!("{:.2}s", secs(s.started.as_deref().unwrap(), s.finished.as_deref().unwrap())),
                None => "none".into(),
            };
            let each: Vec<String> = restarts.iter().map(|(m, d)| format!("{m} {d:.2}s")).collect();
            println!(
                "round {round} {policy:<12} total {total:.2}s (client saw {:.2}s) | member restarts {sum:.2}s [{}] | switchover {switchover} | ratio {:.2} | longest write pause {:.3}s | failed writes {} of {}",
                ended.duration_since(started).as_secs_f64(),
                each.join(", "),
                total / sum,
                longest.as_secs_f64(),
                w.failures,
                w.acks.len() + w.failures,
            );
            // The lines scripts/bench.sh gathers: what, FireCamp, baseline, ratio, budget.
            println!("BENCH\tlocal ordered restart {policy} (round {round}), vs its members' own restarts\t{total:.2} s\t{sum:.2} s\t{:.2}\t-", total / sum);
            if policy == "PrimaryLast" {
                println!("BENCH\tlocal PostgreSQL switchover: longest write pause (round {round})\t{:.3} s\t-\t-\t< 0.5 s", longest.as_secs_f64());
            }
        }
    }
    daemon.stop().await;
}
