//! Benchmark: a three-member Kafka service from create to ACTIVE (issue #18), on the local
//! runtime with the real servers, against starting the same three Kafka servers by hand in the
//! same run (run as root: `cargo run -p firecamp-local --example bench_kafka`).
//!
//! FireCamp: `POST /v1/services` until the service is ACTIVE (every member's storage formatted,
//! with the SCRAM credentials, three JVMs started, every member answering over TLS + SASL SCRAM
//! with one active controller).
//! By hand: what an operator following Kafka's quickstart does for three nodes: three
//! `server.properties` (PLAINTEXT, no TLS, no SASL: less work than FireCamp's), `kafka-storage
//! format` of each, three `kafka.Kafka` processes with the same heap, until each logs
//! `Kafka Server started`. Prints one `BENCH` line: FireCamp, the baseline, their ratio.

mod engine_bench;

use std::process::{Child, Command, Stdio};
use std::time::Instant;

use firecamp_local::config::KAFKA_DIR;
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
    engine_bench::wait_for_line(&mut children, "Kafka Server started", dir);
    let secs = started.elapsed().as_secs_f64();
    engine_bench::stop(&mut children);
    secs
}

#[tokio::main]
async fn main() {
    let dir = engine_bench::state_dir();
    let spec = json!({ "engine": "kafka", "replicas": 3, "zones": ["a", "b", "c"], "kafka": { "heap": "320Mi" },
        "resources": { "requests": { "memory": "768Mi" } }, "volumes": { "data": { "size": "2Gi" } } });
    let ours = engine_bench::create_until_active(dir.path(), "bench-kafka", "127.0.220.1/10", "kf", spec).await;
    engine_bench::compare(dir.path(), "local Kafka, 3 members (KRaft): create to ACTIVE vs three servers formatted and started by hand", ours, by_hand).await;
}
