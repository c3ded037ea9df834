//! Benchmark: a three-member Kafka service from create to ACTIVE (issue #18), on the local
//! runtime with the real servers, against starting the same three Kafka servers by hand in the
//! same run (run as root: `cargo run -p firecamp-local --example bench_kafka`).
//!
//! FireCamp: `POST /v1/services` until the service is ACTIVE (every member's storage formatted,
//! three JVMs started, every member answering over TLS + SASL with one active controller).
//! By hand: what an operator following Kafka's quickstart does for three nodes: three
//! `server.properties` (PLAINTEXT, no TLS, no SASL: less work than FireCamp's), `kafka-storage
//! format` of each, three `kafka.Kafka` processes with the same heap, until each logs
//! `Kafka Server started`. Prints one `BENCH` line: FireCamp, the baseline, their ratio.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use firecamp_api::{Phase, Service};
use firecamp_local::config::{Config, KAFKA_DIR};
use firecamp_local::ips::IpPool;
use serde_json::json;

const HEAP: &str = "-Xmx320m";

/// `java` with the heap, `jvm` flags and Kafka's jars, running `class`.
fn java(lib: &str, jvm: &[String], class: &str) -> Command {
    let mut c = Command::new("java");
    c.args(["-Xms320m", HEAP]).args(jvm).args(["-cp", &format!("{lib}/*"), class]);
    c
}

/// Three Kafka servers by hand; the seconds until all three have started. Stopped after.
fn by_hand(dir: &std::path::Path) -> f64 {
    let lib = format!("{KAFKA_DIR}/lib");
    let ips = ["127.0.221.1", "127.0.221.2", "127.0.221.3"];
    let voters: Vec<String> = ips.iter().enumerate().map(|(i, ip)| format!("{i}@{ip}:9093")).collect();
    let log4j = dir.join("log4j2.properties");
    std::fs::write(&log4j, "status = error\nappender.o.type = Console\nappender.o.name = O\nappender.o.layout.type = PatternLayout\nappender.o.layout.pattern = %m%n\nrootLogger.level = INFO\nrootLogger.appenderRef.o.ref = O\n").unwrap();
    let started = Instant::now();
    let cluster = String::from_utf8(java(&lib, &[], "kafka.tools.StorageTool").arg("random-uuid").output().unwrap().stdout).unwrap().trim().to_string();
    let mut children: Vec<Child> = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        let node = dir.join(format!("node-{i}"));
        std::fs::create_dir_all(&node).unwrap();
        let props = node.join("server.properties");
        std::fs::write(
            &props,
            format!(
                "process.roles=broker,controller\nnode.id={i}\ncontroller.quorum.voters={}\nlisteners=PLAINTEXT://{ip}:9092,CONTROLLER://{ip}:9093\n\
                 advertised.listeners=PLAINTEXT://{ip}:9092\ncontroller.listener.names=CONTROLLER\ninter.broker.listener.name=PLAINTEXT\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\nlog.dirs={}\n\
                 offsets.topic.replication.factor=3\ntransaction.state.log.replication.factor=3\nshare.coordinator.state.topic.replication.factor=3\n",
                voters.join(","),
                node.join("data").display()
            ),
        )
        .unwrap();
        let ok = java(&lib, &[], "kafka.tools.StorageTool").args(["format", "-t", &cluster, "-c"]).arg(&props).output().unwrap();
        assert!(ok.status.success(), "format: {}", String::from_utf8_lossy(&ok.stderr));
    }
    for i in 0..ips.len() {
        let props = dir.join(format!("node-{i}/server.properties"));
        children.push(
            java(&lib, &[format!("-Dlog4j2.configurationFile={}", log4j.display())], "kafka.Kafka")
                .arg(&props)
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(dir.join(format!("node-{i}/stderr"))).unwrap())
                .spawn()
                .unwrap(),
        );
    }
    // Each server's log: wait for the line Kafka prints once it serves.
    let waits: Vec<_> = children
        .iter_mut()
        .map(|c| {
            let out = c.stdout.take().unwrap();
            std::thread::spawn(move || BufReader::new(out).lines().map_while(Result::ok).any(|l| l.contains("Kafka Server started")))
        })
        .collect();
    for w in waits {
        assert!(w.join().unwrap(), "a server by hand did not start (its stderr and log in {})", dir.display());
    }
    let secs = started.elapsed().as_secs_f64();
    for c in &mut children {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM);
    }
    for c in &mut children {
        let _ = c.wait();
    }
    secs
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
    let mut cfg = Config::new(dir.path().join("runtime"));
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dns_listen = "127.0.0.1:0".parse().unwrap();
    cfg.cluster = "bench-kafka".into();
    cfg.ips = IpPool::parse("127.0.220.1/10").unwrap();
    let daemon = firecamp_local::start(cfg.clone()).await.expect("the local runtime starts");
    let token = std::fs::read_to_string(cfg.token_path()).unwrap();
    let http = reqwest::Client::new();
    let auth = format!("Bearer {}", token.trim());
    let spec = json!({ "engine": "kafka", "replicas": 3, "zones": ["a", "b", "c"], "kafka": { "heap": "320Mi" },
        "resources": { "requests": { "memory": "768Mi" } }, "volumes": { "data": { "size": "2Gi" } } });
    let started = Instant::now();
    let r =
        http.post(format!("{}/v1/services", daemon.url())).header("authorization", &auth).json(&json!({ "name": "kf", "spec": spec })).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let deadline = started + Duration::from_secs(300);
    loop {
        let s: Service = http.get(format!("{}/v1/services/kf", daemon.url())).header("authorization", &auth).send().await.unwrap().json().await.unwrap();
        if s.status.phase == Phase::Active {
            break;
        }
        assert!(Instant::now() < deadline, "kf not ACTIVE: {:?}", s.status);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ours = started.elapsed().as_secs_f64();
    daemon.stop().await;
    let hand_dir = dir.path().join("by-hand");
    std::fs::create_dir_all(&hand_dir).unwrap();
    let base = tokio::task::spawn_blocking(move || by_hand(&hand_dir)).await.unwrap();
    println!(
        "BENCH\tlocal Kafka, 3 members (KRaft): create to ACTIVE vs three servers formatted and started by hand\t{ours:.2} s\t{base:.2} s\t{:.2}\t-",
        ours / base
    );
}
