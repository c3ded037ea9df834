//! Benchmark: Redis Cluster resharding throughput (issue #16), on the local runtime with the
//! real servers (run as root: `cargo run -p firecamp-local --example bench_reshard`).
//!
//! A cluster of 3 one-member shards holding 100 000 keys is scaled to 4 shards
//! (`{"kind":"scale","shards":4}`): the `fill` step moves about a quarter of the keys to the
//! new shard. Its keys per second (keys the new primary holds afterwards / the step's time,
//! polled every 50 ms) are set against the same tool by hand on the same servers: `redis-cli
//! --cluster rebalance` with the new shard weighted 0, which moves those keys back, timed around
//! the command.

use std::process::Command;
use std::time::{Duration, Instant};

use firecamp_api::{Operation, OperationPhase, Phase, Service};
use firecamp_local::config::Config;
use firecamp_local::ips::IpPool;
use futures::StreamExt;
use serde_json::json;

const KEYS: usize = 100_000;

struct Api {
    http: reqwest::Client,
    url: String,
    auth: String,
}

impl Api {
    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let r = self.http.get(format!("{}{path}", self.url)).header("authorization", &self.auth).send().await.unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }
    async fn post<T: serde::de::DeserializeOwned>(&self, path: &str, body: serde_json::Value) -> T {
        let r = self.http.post(format!("{}{path}", self.url)).header("authorization", &self.auth).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "POST {path}: {}", r.text().await.unwrap());
        r.json().await.unwrap()
    }
}

fn redis_cli(ip: &str, password: &str, ca: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["--tls", "--cacert", ca, "-h", ip, "-p", "6379"])
        .args(args)
        .env("REDISCLI_AUTH", password)
        .output()
        .expect("redis-cli (Debian's redis-tools) is needed");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "redis-cli {}: {text}{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    text
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
    let mut cfg = Config::new(dir.path());
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dns_listen = "127.0.0.1:0".parse().unwrap();
    cfg.cluster = "bench-reshard".into();
    cfg.ips = IpPool::parse("127.0.175.1/24").unwrap();
    let daemon = firecamp_local::start(cfg.clone()).await.expect("the local runtime starts");
    let token = std::fs::read_to_string(cfg.token_path()).unwrap();
    let api = Api { http: reqwest::Client::new(), url: daemon.url(), auth: format!("Bearer {}", token.trim()) };
    let spec = json!({ "engine": "redis", "replicas": 3, "zones": ["local"], "redis": { "mode": "cluster", "shards": 3 },
        "resources": { "requests": { "memory": "512Mi" } }, "volumes": { "data": { "size": "2Gi" } } });
    let _: Service = api.post("/v1/services", json!({ "name": "rb", "spec": spec })).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    let s = loop {
        let s: Service = api.get("/v1/services/rb").await;
        if s.status.phase == Phase::Active {
            break s;
        }
        assert!(Instant::now() < deadline, "rb not ACTIVE");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let member = dir.path().join("services/rb/rb-0");
    let password = std::fs::read_to_string(member.join("secret/password")).unwrap();
    let ca_path = member.join("tls/ca.crt").display().to_string();
    let ip0 = s.status.members[0].static_ip.clone().unwrap();

    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let nodes: Vec<String> = s.status.members.iter().map(|m| format!("rediss://{}:6379", m.static_ip.as_deref().unwrap())).collect();
    let con = redis::cluster::ClusterClientBuilder::new(nodes)
        .password(password.clone())
        .certs(redis::TlsCertificates { client_tls: None, root_cert: Some(std::fs::read(&ca_path).unwrap()) })
        .build()
        .unwrap()
        .get_async_connection()
        .await
        .unwrap();
    let value = "x".repeat(100);
    futures::stream::iter(0..KEYS)
        .map(|i| {
            let (mut con, value) = (con.clone(), value.clone());
            async move { redis::AsyncCommands::set::<_, _, ()>(&mut con, format!("key-{i}"), value).await.unwrap() }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
    println!("{KEYS} keys of 100 bytes loaded");

    let op: Operation = api.post("/v1/services/rb/operations", json!({ "kind": "scale", "shards": 4 })).await;
    let (mut fill_start, mut fill_end) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(600);
    let op = loop {
        let o: Operation = api.get(&format!("/v1/services/rb/operations/{}", op.id)).await;
        let fill = o.steps.iter().find(|s| s.describe() == "fill rb-3").expect("a fill step");
        if fill.phase != OperationPhase::Pending && fill_start.is_none() {
            fill_start = Some(Instant::now());
        }
        if fill.phase == OperationPhase::Succeeded && fill_end.is_none() {
            fill_end = Some(Instant::now());
        }
        if o.phase.is_terminal() {
            break o;
        }
        assert!(Instant::now() < deadline, "the scale did not finish in 600 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(op.phase, OperationPhase::Succeeded, "{op:#?}");
    let fill = fill_end.unwrap().duration_since(fill_start.unwrap()).as_secs_f64();
    let s: Service = api.get("/v1/services/rb").await;
    let ip3 = s.status.members[3].static_ip.clone().unwrap();
    let moved: usize = redis_cli(&ip3, &password, &ca_path, &["DBSIZE"]).trim().parse().unwrap();
    println!("fill rb-3: {moved} keys in {fill:.2} s");

    let id = redis_cli(&ip3, &password, &ca_path, &["CLUSTER", "MYID"]).trim().to_string();
    let t = Instant::now();
    redis_cli(
        &ip0,
        &password,
        &ca_path,
        &["--cluster", "rebalance", &format!("{ip0}:6379"), "--cluster-pipeline", "100", "--cluster-weight", &format!("{id}=0")],
    );
    let by_hand = t.elapsed().as_secs_f64();
    let left: usize = redis_cli(&ip3, &password, &ca_path, &["DBSIZE"]).trim().parse().unwrap();
    assert_eq!(left, 0, "the rebalance by hand moved every key off rb-3");
    println!("redis-cli --cluster rebalance by hand: {moved} keys in {by_hand:.2} s");
    let (ours, theirs) = (moved as f64 / fill, moved as f64 / by_hand);
    println!(
        "BENCH\tlocal Redis Cluster reshard 3 → 4 shards ({KEYS} keys): keys/s, fill step vs redis-cli rebalance by hand\t{ours:.0} keys/s\t{theirs:.0} keys/s\t{:.2}\t-",
        ours / theirs
    );
    daemon.stop().await;
}
