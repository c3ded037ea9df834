//! Benchmark: how long writes stop when a primary dies, and during a switchover (issue #14), on
//! the local runtime with real servers (run as root:
//! `cargo run -p firecamp-local --example bench_failover -- [postgresql|redis]`).
//!
//! Three members (PostgreSQL with synchronous replication; Redis in replication mode),
//! `failover.delaySeconds` 5. A writer writes without pause through the service's **primary
//! endpoint**, `primary.<pg|rd>.bench-fo-firecamp.com`, resolved by the system resolver from the
//! runtime's hosts block at each (re)connection, as a client would (TLS verifies the endpoint's
//! name). Each round kills the primary with SIGKILL and takes its address, so it cannot restart,
//! and measures from the kill: when the failover operation was recorded (detection: the delay
//! plus the watcher's look), when it ended (fence and promotion), and the first write accepted
//! through the endpoint by the new primary; then frees the address and waits until the old
//! primary is a replica again. Last, a PrimaryLast restart (one switchover) and the longest gap
//! between two accepted writes while it ran. Prints each round and the medians.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use firecamp_api::{Operation, OperationKind, OperationList, Phase, Role, Service};
use firecamp_local::config::Config;
use firecamp_local::ips::IpPool;
use serde_json::json;

const ROUNDS: usize = 5;
const DELAY: u64 = 5;

struct Api {
    /// The service's name: `pg` or `rd`.
    name: &'static str,
    http: reqwest::Client,
    url: String,
    auth: String,
}

impl Api {
    async fn service(&self) -> Service {
        self.http.get(format!("{}/v1/services/{}", self.url, self.name)).header("authorization", &self.auth).send().await.unwrap().json().await.unwrap()
    }
    async fn operations(&self) -> Vec<Operation> {
        let l: OperationList = self
            .http
            .get(format!("{}/v1/services/{}/operations", self.url, self.name))
            .header("authorization", &self.auth)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        l.items
    }
    /// Polls until `ok` holds for the service (at most `secs`).
    async fn until(&self, secs: u64, what: &str, ok: impl Fn(&Service) -> bool) -> Service {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.service().await;
            if ok(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "{what}: {:?}", s.status.members);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn at(rfc3339: &str) -> SystemTime {
    humantime::parse_rfc3339_weak(rfc3339.trim_end_matches('Z')).unwrap()
}

fn secs(a: SystemTime, b: SystemTime) -> f64 {
    b.duration_since(a).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Accepted writes: when, and by which address.
type Log = Arc<Mutex<Vec<(SystemTime, String)>>>;

#[derive(Clone, Copy, PartialEq)]
enum Engine {
    Postgresql,
    Redis,
}

impl Engine {
    fn label(self) -> &'static str {
        match self {
            Engine::Postgresql => "PostgreSQL",
            Engine::Redis => "Redis",
        }
    }
}

/// The endpoint's address now, from the system resolver (the runtime's hosts block).
async fn resolve(name: &str, port: u16) -> Option<String> {
    let addrs = tokio::net::lookup_host((name, port)).await.ok()?;
    addrs.into_iter().next().map(|a| a.ip().to_string())
}

fn writer(engine: Engine, endpoint: String, password: String, ca: String, log: Log, stop: Arc<std::sync::atomic::AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n: i64 = 0;
        let mut conn: Option<(String, tokio_postgres::Client)> = None;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            n += 1;
            if engine == Engine::Redis {
                // One connection per write: each write finds the endpoint afresh.
                let Some(ip) = resolve(&endpoint, 6379).await else { continue };
                let mut t = firecamp_probe::Target::new(ip.clone(), 6379).with_password(password.clone()).with_tls(ca.clone(), endpoint.clone());
                t.timeout = Duration::from_millis(500);
                let key = n.to_string();
                match tokio::time::timeout(Duration::from_secs(1), firecamp_probe::redis::command(&t, &["SET", &key, "x"])).await {
                    Ok(Ok(_)) => log.lock().unwrap().push((SystemTime::now(), ip)),
                    // Pacing while the endpoint leads nowhere writable.
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
                continue;
            }
            if conn.is_none() {
                let Some(ip) = resolve(&endpoint, 5432).await else { continue };
                let mut t = firecamp_probe::Target::new(ip.clone(), 5432).with_password(password.clone()).with_tls(ca.clone(), endpoint.clone());
                t.timeout = Duration::from_millis(500);
                match tokio::time::timeout(Duration::from_secs(1), firecamp_probe::postgresql::connect(&t, "postgres")).await {
                    Ok(Ok(c)) => conn = Some((ip, c)),
                    _ => {
                        // Pacing while the endpoint leads nowhere that answers.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                }
            }
            let (ip, c) = conn.as_ref().unwrap();
            match tokio::time::timeout(Duration::from_secs(2), c.execute("INSERT INTO t VALUES ($1)", &[&n])).await {
                Ok(Ok(_)) => log.lock().unwrap().push((SystemTime::now(), ip.clone())),
                _ => conn = None,
            }
        }
    })
}

#[tokio::main]
async fn main() {
    let engine = match std::env::args().nth(1).as_deref() {
        None | Some("postgresql") => Engine::Postgresql,
        Some("redis") => Engine::Redis,
        Some(other) => {
            eprintln!("bench_failover: unknown engine {other:?}; use postgresql or redis");
            std::process::exit(2);
        }
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
    let mut cfg = Config::new(dir.path());
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dns_listen = "127.0.0.1:0".parse().unwrap();
    cfg.cluster = "bench-fo".into();
    cfg.ips = IpPool::parse("127.0.174.1/24").unwrap();
    let daemon = firecamp_local::start(cfg.clone()).await.expect("the local runtime starts");
    assert!(daemon.hosts_managed(), "the benchmark resolves the endpoint through /etc/hosts: run it as root");
    let token = std::fs::read_to_string(cfg.token_path()).unwrap();
    let name = if engine == Engine::Redis { "rd" } else { "pg" };
    let api = Api { name, http: reqwest::Client::new(), url: daemon.url(), auth: format!("Bearer {}", token.trim()) };
    let (spec, port, secret) = match engine {
        Engine::Postgresql => (
            json!({ "engine": "postgresql", "replicas": 3, "zones": ["local"], "postgresql": { "replication": "sync" },
                "failover": { "delaySeconds": DELAY }, "resources": { "requests": { "memory": "256Mi" } }, "volumes": { "data": { "size": "1Gi" } } }),
            5432,
            "superuser-password",
        ),
        Engine::Redis => (
            json!({ "engine": "redis", "replicas": 3, "zones": ["local"],
                "failover": { "delaySeconds": DELAY }, "resources": { "requests": { "memory": "128Mi" } }, "volumes": { "data": { "size": "1Gi" } } }),
            6379,
            "password",
        ),
    };
    let r = api
        .http
        .post(format!("{}/v1/services", api.url))
        .header("authorization", &api.auth)
        .json(&json!({ "name": api.name, "spec": spec }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let s = api.until(300, "ACTIVE", |s| s.status.phase == Phase::Active).await;
    let ips: Vec<String> = s.status.members.iter().map(|m| m.static_ip.clone().unwrap()).collect();
    let endpoint = s.status.endpoints.iter().find(|e| e.role == "primary").and_then(|e| e.dns_name.clone()).expect("a primary endpoint");
    let member_dir = |m: &str| dir.path().join("services").join(api.name).join(m);
    let password = std::fs::read_to_string(member_dir(&format!("{}-0", api.name)).join("secret").join(secret)).unwrap();
    let ca = std::fs::read_to_string(member_dir(&format!("{}-0", api.name)).join("tls/ca.crt")).unwrap();
    if engine == Engine::Postgresql {
        let t = firecamp_probe::Target::new(ips[0].clone(), 5432).with_password(password.clone()).with_tls(ca.clone(), ips[0].clone());
        let c = firecamp_probe::postgresql::connect(&t, "postgres").await.unwrap();
        c.batch_execute("CREATE TABLE t (id bigint)").await.unwrap();
    }
    let log: Log = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let task = writer(engine, endpoint.clone(), password.trim().to_string(), ca.clone(), log.clone(), stop.clone());

    println!("writes through {endpoint}");
    println!("round  killed  detected(s)  promoted(s)  first write(s)  (delaySeconds {DELAY})");
    let (mut detect, mut promote, mut first) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let s = api.until(120, "a primary, every member ready", |s| s.status.phase == Phase::Active).await;
        let p = s.status.members.iter().find(|m| m.role == Role::Primary).unwrap().clone();
        let ip = p.static_ip.clone().unwrap();
        let before = api.operations().await.iter().filter(|o| o.kind == OperationKind::Failover).count();
        let pid: i32 = std::fs::read_to_string(member_dir(&p.name).join("server.pid")).unwrap().trim().parse().unwrap();
        let killed = SystemTime::now();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
        let hold = loop {
            if let Ok(l) = std::net::TcpListener::bind((ip.as_str(), port)) {
                break l;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        let op = loop {
            let ops: Vec<Operation> = api.operations().await.into_iter().filter(|o| o.kind == OperationKind::Failover).collect();
            if ops.len() > before && ops[0].finished.is_some() {
                break ops[0].clone();
            }
            assert!(Instant::now() < deadline, "no failover");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (created, finished) = (at(&op.created), at(op.finished.as_deref().unwrap()));
        let new_ip =
            api.until(60, "the heir answers", |s| s.status.members.iter().any(|m| m.role == Role::Primary && m.static_ip.as_deref() != Some(&ip))).await;
        let new_ip = new_ip.status.members.iter().find(|m| m.role == Role::Primary).unwrap().static_ip.clone().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let first_write = loop {
            if let Some((t, _)) = log.lock().unwrap().iter().find(|(t, by)| *t > killed && *by == new_ip) {
                break *t;
            }
            assert!(Instant::now() < deadline, "no write on the new primary");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let (d, pr, f) = (secs(killed, created), secs(created, finished), secs(killed, first_write));
        println!("{round:>5}  {:<6}  {d:>11.2}  {pr:>11.2}  {f:>14.2}", p.name);
        detect.push(d);
        promote.push(pr);
        first.push(f);
        drop(hold);
        let name = p.name.clone();
        api.until(180, "the old primary rejoins", |s| {
            s.status.phase == Phase::Active && s.status.members.iter().any(|m| m.name == name && m.role == Role::Replica)
        })
        .await;
    }
    let (d, pr, f) = (median(detect), median(promote), median(first));
    println!("median         {d:>11.2}  {pr:>11.2}  {f:>14.2}");
    println!("detection beyond the delay: {:.2} s; death to first write beyond the delay: {:.2} s", d - DELAY as f64, f - DELAY as f64);
    // The line scripts/bench.sh gathers: what, FireCamp, baseline, ratio, budget.
    println!(
        "BENCH\tlocal {} failover: primary killed → first write (median of {ROUNDS}), vs delaySeconds\t{f:.2} s\t{DELAY} s\t{:.2}\t-",
        engine.label(),
        f / DELAY as f64
    );

    // A PrimaryLast restart: one switchover; the longest gap between two accepted writes.
    let start = SystemTime::now();
    let r = api
        .http
        .post(format!("{}/v1/services/{}/operations", api.url, api.name))
        .header("authorization", &api.auth)
        .json(&json!({ "kind": "restart", "policy": "PrimaryLast" }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let op: Operation = r.json().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let o = api.operations().await.into_iter().find(|o| o.id == op.id).unwrap();
        if o.phase.is_terminal() {
            assert_eq!(o.phase, firecamp_api::OperationPhase::Succeeded, "{o:#?}");
            break;
        }
        assert!(Instant::now() < deadline, "the restart did not end");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end = SystemTime::now();
    let times: Vec<SystemTime> = log.lock().unwrap().iter().map(|(t, _)| *t).filter(|t| *t >= start && *t <= end).collect();
    let gap = times.windows(2).map(|w| secs(w[0], w[1])).fold(0.0, f64::max);
    println!("switchover (PrimaryLast restart of 3): longest write pause {gap:.2} s over {:.1} s, {} writes", secs(start, end), times.len());
    println!("BENCH\tlocal {} switchover (PrimaryLast restart of 3): longest write pause\t{gap:.3} s\t-\t-\t< 0.5 s", engine.label());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = task.await;
    daemon.stop().await;
}
