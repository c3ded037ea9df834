//! A local runtime per test: its own temp directory, API and DNS ports, cluster name and
//! loopback range, so tests run in parallel; members are always stopped when the test ends.

#![allow(dead_code)]

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use firecamp_api::{ApiError, Phase, Service, ServiceList};
use firecamp_core::EngineKind;
use firecamp_local::config::Config;
use firecamp_local::ips::IpPool;
use firecamp_local::{Daemon, servers};
use futures::FutureExt;
use serde_json::{Value, json};

pub mod kafka;
pub mod s3;
pub mod writer;
pub mod zk;

pub struct Bed {
    pub url: String,
    pub dns_addr: std::net::SocketAddr,
    pub cfg: Config,
    pub http: reqwest::Client,
    daemon: Mutex<Option<Daemon>>,
    _dir: tempfile::TempDir,
}

/// A daemon that holds every operation after its first `steps` steps (the test hook), on a
/// fixed API port so that the daemon restarted by the test answers at the same address: for
/// tests that restart the daemon in the middle of an operation.
pub fn hold_after_steps(steps: usize) -> impl FnOnce(&mut Config) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    move |c: &mut Config| {
        c.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.hold_operations_after_steps = Some(steps);
    }
}

/// A server this test needs must be installed: a missing one fails the test, loudly.
pub fn require(engine: EngineKind) {
    let cfg = Config::new("/nonexistent");
    if let Err(e) = servers::detect(&cfg, engine, None, engine == EngineKind::Redis) {
        panic!("{e}\n(the real-server tests need it: scripts/setup.d/30-local.sh installs it)");
    }
}

/// Runs `body` against a fresh runtime (cluster `cluster`, members from `pool` = FIRST/COUNT)
/// and stops it, and every member, whatever happens.
pub async fn with_bed<F, Fut>(cluster: &str, pool: &str, tweak: impl FnOnce(&mut Config), body: F)
where
    F: FnOnce(Arc<Bed>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    // The runtime never chmods a state directory it did not create, and member servers (other
    // users) must pass through this one.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
    let mut cfg = Config::new(dir.path());
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dns_listen = "127.0.0.1:0".parse().unwrap();
    cfg.cluster = cluster.into();
    cfg.ips = IpPool::parse(pool).unwrap();
    tweak(&mut cfg);
    let daemon = firecamp_local::start(cfg.clone()).await.expect("the local runtime starts");
    let bed = Arc::new(Bed { url: daemon.url(), dns_addr: daemon.dns_addr, http: client(&cfg), cfg, daemon: Mutex::new(Some(daemon)), _dir: dir });
    let result = AssertUnwindSafe(body(bed.clone())).catch_unwind().await;
    let daemon = bed.daemon.lock().unwrap().take();
    if let Some(d) = daemon {
        d.stop().await;
    }
    if let Err(p) = result {
        // FIRECAMP_KEEP_BED=1 keeps a failed test's state directory (members' logs) to read.
        if std::env::var_os("FIRECAMP_KEEP_BED").is_some() {
            eprintln!("keeping {}", bed.cfg.dir.display());
            std::mem::forget(bed);
        }
        std::panic::resume_unwind(p);
    }
}

/// A client with the runtime's API token, read from its file as the CLI reads it.
pub fn client(cfg: &Config) -> reqwest::Client {
    let token = std::fs::read_to_string(cfg.token_path()).expect("the daemon wrote its API token");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {}", token.trim()).parse().unwrap());
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

impl Bed {
    /// Stops the daemon (its members stop with it) and starts a new one with `cfg` on the same
    /// directory and API address, as `local down` + `local up` would.
    pub async fn restart_daemon(&self, cfg: Config) {
        let old = self.daemon.lock().unwrap().take();
        if let Some(d) = old {
            d.stop().await;
        }
        let d = firecamp_local::start(cfg).await.expect("the local runtime starts again");
        assert_eq!(d.url(), self.url, "same API address");
        *self.daemon.lock().unwrap() = Some(d);
    }

    /// `POST …/operations`: the recorded operation (202), or the API error with its status.
    pub async fn operate(&self, name: &str, body: Value) -> Result<firecamp_api::Operation, (u16, ApiError)> {
        let r = self.http.post(format!("{}/v1/services/{name}/operations", self.url)).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        if status == 202 { Ok(r.json().await.unwrap()) } else { Err((status, r.json().await.unwrap())) }
    }

    pub async fn operations(&self, name: &str) -> Vec<firecamp_api::Operation> {
        let r = self.http.get(format!("{}/v1/services/{name}/operations", self.url)).send().await.unwrap();
        assert!(r.status().is_success(), "GET operations of {name}: {}", r.status());
        r.json::<firecamp_api::OperationList>().await.unwrap().items
    }

    pub async fn operation(&self, name: &str, id: &str) -> firecamp_api::Operation {
        let r = self.http.get(format!("{}/v1/services/{name}/operations/{id}", self.url)).send().await.unwrap();
        assert!(r.status().is_success(), "GET operation {id} of {name}: {}", r.status());
        r.json().await.unwrap()
    }

    /// Polls the operation until `done` holds (or it ends otherwise), within a deadline.
    pub async fn wait_operation_until(
        &self,
        name: &str,
        id: &str,
        within: Duration,
        done: impl Fn(&firecamp_api::Operation) -> bool,
    ) -> firecamp_api::Operation {
        let deadline = Instant::now() + within;
        loop {
            let op = self.operation(name, id).await;
            if done(&op) || op.phase.is_terminal() {
                return op;
            }
            if Instant::now() > deadline {
                panic!("operation {id} of {name} not done within {within:?}: {op:#?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits for the operation's end and asserts it succeeded.
    pub async fn wait_operation(&self, name: &str, id: &str, within: Duration) -> firecamp_api::Operation {
        let op = self.wait_operation_until(name, id, within, |o| o.phase.is_terminal()).await;
        if op.phase != firecamp_api::OperationPhase::Succeeded {
            let logs = self.logs(name, "").await;
            let tail: Vec<&str> = logs.lines().rev().take(60).collect();
            panic!("operation {id} of {name} did not succeed: {op:#?}\nlast log lines:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        op
    }

    /// `POST /v1/services`; the API error when refused.
    pub async fn create(&self, body: Value) -> Result<Service, (u16, ApiError)> {
        let r = self.http.post(format!("{}/v1/services", self.url)).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        if r.status().is_success() { Ok(r.json().await.unwrap()) } else { Err((status, r.json().await.unwrap())) }
    }

    pub async fn get(&self, name: &str) -> Service {
        let r = self.http.get(format!("{}/v1/services/{name}", self.url)).send().await.unwrap();
        assert!(r.status().is_success(), "GET {name}: {}", r.status());
        r.json().await.unwrap()
    }

    pub async fn list(&self) -> ServiceList {
        self.http.get(format!("{}/v1/services", self.url)).send().await.unwrap().json().await.unwrap()
    }

    pub async fn delete(&self, name: &str, delete_volumes: bool) {
        let r = self.http.delete(format!("{}/v1/services/{name}?deleteVolumes={delete_volumes}", self.url)).send().await.unwrap();
        assert!(r.status().is_success(), "DELETE {name}: {}", r.status());
    }

    pub async fn logs(&self, name: &str, member: &str) -> String {
        let r = self.http.get(format!("{}/v1/services/{name}/logs?member={member}", self.url)).send().await.unwrap();
        r.text().await.unwrap()
    }

    /// Polls the service (whose status is the engines' own answers) until `phase`, within a
    /// deadline; the last status is in the failure message.
    pub async fn wait_phase(&self, name: &str, phase: Phase, within: Duration) -> Service {
        let deadline = Instant::now() + within;
        loop {
            let s = self.get(name).await;
            if s.status.phase == phase {
                return s;
            }
            assert!(s.status.phase != Phase::Failed, "{name} failed: {:?}", s.status);
            if Instant::now() > deadline {
                let logs = self.logs(name, "").await;
                let tail: Vec<&str> = logs.lines().rev().take(40).collect();
                panic!("{name} not {phase:?} within {within:?}: {:#?}\nlast log lines:\n{}", s.status, tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The member's address.
    pub async fn ip(&self, name: &str, member: &str) -> String {
        let s = self.get(name).await;
        s.status.members.iter().find(|m| m.name == member).and_then(|m| m.static_ip.clone()).expect("member has an IP")
    }

    pub fn member_dir(&self, name: &str, member: &str) -> std::path::PathBuf {
        self.cfg.service_dir(name).join(member)
    }

    pub fn secret(&self, name: &str, member: &str, key: &str) -> String {
        std::fs::read_to_string(self.member_dir(name, member).join("secret").join(key)).unwrap()
    }

    /// The superuser's password and the CA of PostgreSQL service `name`.
    pub fn pg_login(&self, name: &str) -> PgLogin {
        let first = format!("{name}-0");
        PgLogin { password: self.secret(name, &first, "superuser-password"), ca: self.ca(name, &first) }
    }

    /// The service's CA certificate as its member's TLS directory holds it (PEM).
    pub fn ca(&self, name: &str, member: &str) -> String {
        std::fs::read_to_string(self.ca_path(name, member)).unwrap()
    }

    pub fn ca_path(&self, name: &str, member: &str) -> std::path::PathBuf {
        self.member_dir(name, member).join("tls").join("ca.crt")
    }

    /// A probe target for a Redis member over TLS, verified against the service's CA under the
    /// member's address (its certificate names it).
    pub async fn redis_target(&self, name: &str, member: &str) -> firecamp_probe::Target {
        let ip = self.ip(name, member).await;
        firecamp_probe::Target::new(ip.clone(), 6379).with_password(self.secret(name, member, "password")).with_tls(self.ca(name, member), ip)
    }

    /// One command on a Redis member over TLS (FireCamp's probe, verified against the CA).
    pub async fn redis(&self, name: &str, member: &str, args: &[&str]) -> redis::Value {
        let t = self.redis_target(name, member).await;
        firecamp_probe::redis::command(&t, args).await.unwrap_or_else(|e| panic!("{} on {member}: {e}", args.join(" ")))
    }

    /// One command on a Redis member over TLS and its text answer; None when it fails (a member
    /// starting again).
    pub async fn try_redis(&self, name: &str, member: &str, args: &[&str]) -> Option<String> {
        let t = self.redis_target(name, member).await;
        match firecamp_probe::redis::command(&t, args).await.ok()? {
            redis::Value::BulkString(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            redis::Value::VerbatimString { text, .. } => Some(text),
            redis::Value::SimpleString(s) => Some(s),
            _ => None,
        }
    }

    /// `CONFIG GET key` on a Redis member, over TLS.
    pub async fn redis_config(&self, name: &str, member: &str, key: &str) -> String {
        match self.redis(name, member, &["CONFIG", "GET", key]).await {
            redis::Value::Array(kv) if kv.len() == 2 => match &kv[1] {
                redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("CONFIG GET {key} on {member}: {other:?}"),
            },
            other => panic!("CONFIG GET {key} on {member}: {other:?}"),
        }
    }

    /// redis-cli in cluster mode (`-c`: it follows redirections) over TLS with the service's CA,
    /// entering at `member`; its output, asserting it exited 0.
    pub async fn redis_cluster_cli(&self, name: &str, member: &str, args: &[&str]) -> String {
        let (ip, password, ca) = (self.ip(name, member).await, self.secret(name, member, "password"), self.ca_path(name, member));
        let mut all = vec!["--tls", "--cacert", ca.to_str().unwrap(), "-c"];
        all.extend_from_slice(args);
        let (ok, out) = redis_cli(&ip, 6379, &password, &all);
        assert!(ok, "redis-cli {} through {member}: {out}", args.join(" "));
        out.trim().to_string()
    }

    /// The pid of the member's server (written by the supervisor).
    pub fn server_pid(&self, name: &str, member: &str) -> i32 {
        std::fs::read_to_string(self.member_dir(name, member).join("server.pid")).unwrap().trim().parse().unwrap()
    }
}

/// A small spec: members on the one local zone, little memory.
pub fn spec(engine: &str, replicas: u32, memory: &str) -> Value {
    json!({
        "engine": engine,
        "replicas": replicas,
        "zones": ["local"],
        "resources": { "requests": { "memory": memory } },
        "volumes": { "data": { "size": "1Gi" } }
    })
}

pub fn kill9(pid: i32) {
    let status = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill -9 {pid}");
}

/// Kills the member's server and takes its address:`port`, so every restart fails (the fault
/// the supervisor cannot repair); the returned listener holds it until dropped.
pub async fn kill_and_block(bed: &Bed, name: &str, member: &str, port: u16) -> std::net::TcpListener {
    let ip = bed.ip(name, member).await;
    kill9(bed.server_pid(name, member));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match std::net::TcpListener::bind((ip.as_str(), port)) {
            Ok(l) => return l,
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "{ip}:{port} stays taken after the kill: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// A PostgreSQL connection as the superuser (3 s to connect).
/// What a test logs in to a PostgreSQL service with: the superuser's password and the service's CA.
#[derive(Clone)]
pub struct PgLogin {
    pub password: String,
    pub ca: String,
}

/// FireCamp's own PostgreSQL connection over TLS, verifying `host` (an address or a DNS name:
/// the member's certificate names both) against the service's CA.
pub async fn pg_connect(host: &str, login: &PgLogin) -> Result<tokio_postgres::Client, firecamp_probe::ProbeError> {
    pg_connect_as(host, host, login).await
}

/// Connects to `host` and verifies that its certificate names `server_name`.
pub async fn pg_connect_as(host: &str, server_name: &str, login: &PgLogin) -> Result<tokio_postgres::Client, firecamp_probe::ProbeError> {
    let t = firecamp_probe::Target::new(host, 5432).with_password(login.password.clone()).with_tls(login.ca.clone(), server_name);
    firecamp_probe::postgresql::connect(&t, "postgres").await
}

/// Runs redis-cli `-h host -p port` with `args` (options such as `--tls --cacert <file>` first,
/// then the command) and the password in REDISCLI_AUTH: whether it exited 0, and its output
/// (stdout then stderr).
pub fn redis_cli(host: &str, port: u16, password: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("redis-cli")
        .args(["-h", host, "-p", &port.to_string()])
        .args(args)
        .env("REDISCLI_AUTH", password)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

/// A minimal DNS A query for `name`, sent over UDP; returns the answer's addresses.
pub async fn query_a(server: std::net::SocketAddr, name: &str) -> Vec<std::net::Ipv4Addr> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&q, server).await.unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf)).await.expect("a DNS answer").unwrap();
    let answers = u16::from_be_bytes([buf[6], buf[7]]);
    let mut at = q.len();
    let mut out = Vec::new();
    for _ in 0..answers {
        // The owner name: labels ending in a zero byte, or a compression pointer.
        while at < n {
            let b = buf[at];
            if b & 0xC0 == 0xC0 {
                at += 2;
                break;
            }
            at += 1 + b as usize;
            if b == 0 {
                break;
            }
        }
        let rtype = u16::from_be_bytes([buf[at], buf[at + 1]]);
        let rdlen = u16::from_be_bytes([buf[at + 8], buf[at + 9]]) as usize;
        let data = &buf[at + 10..at + 10 + rdlen];
        if rtype == 1 && rdlen == 4 {
            out.push(std::net::Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        at += 10 + rdlen;
    }
    out
}

/// A Redis Cluster client of `name` as its users get one: every member's address, TLS verified
/// against the service's CA, MOVED/ASK redirects followed.
pub async fn redis_cluster_client(bed: &Bed, name: &str) -> redis::cluster_async::ClusterConnection {
    let s = bed.get(name).await;
    let first = format!("{name}-0");
    let nodes: Vec<String> = s.status.members.iter().map(|m| format!("rediss://{}:6379", m.static_ip.as_deref().unwrap())).collect();
    let ca = std::fs::read(bed.ca_path(name, &first)).unwrap();
    // rustls needs a process-wide provider; the first caller installs it.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    redis::cluster::ClusterClientBuilder::new(nodes)
        .password(bed.secret(name, &first, "password"))
        .certs(redis::TlsCertificates { client_tls: None, root_cert: Some(ca) })
        .build()
        .unwrap()
        .get_async_connection()
        .await
        .unwrap()
}

/// The backup id the runtime derives from an operation's id (`op-<unix millis>`).
pub fn backup_id(service: &str, op_id: &str) -> String {
    let millis: u64 = op_id.strip_prefix("op-").unwrap().parse().unwrap();
    let t = std::time::UNIX_EPOCH + Duration::from_millis(millis);
    let stamp: String = humantime::format_rfc3339_millis(t).to_string().chars().filter(|c| !matches!(c, '-' | ':' | '.')).collect();
    format!("{service}-{stamp}")
}

/// The ids in `t` on the service's first member.
pub async fn pg_ids(bed: &Bed, name: &str) -> Vec<i64> {
    let c = pg_connect(&bed.ip(name, &format!("{name}-0")).await, &bed.pg_login(name)).await.unwrap();
    let mut ids: Vec<i64> = c.query("SELECT id FROM t", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    ids.sort();
    ids
}
