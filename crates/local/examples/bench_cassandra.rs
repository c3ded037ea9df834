//! Benchmark: a three-member Cassandra service from create to ACTIVE (issue #18), on the local
//! runtime with the real servers, against starting the same three Cassandra servers by hand in
//! the same run (run as root: `cargo run -p firecamp-local --example bench_cassandra`).
//!
//! FireCamp: `POST /v1/services` until the service is ACTIVE (three JVMs started together, TLS
//! between members and to clients, the default superuser replaced by FireCamp's, every member's
//! gossip showing the three NORMAL). By hand: three `cassandra.yaml` with the three as seeds
//! (plain TCP, no logins: less work than FireCamp's), the same Java 17 flags, heap and first-start
//! waits, three `CassandraDaemon` processes, until each logs `Startup complete`. Prints one
//! `BENCH` line: FireCamp, the baseline, their ratio.

mod engine_bench;

use std::process::{Child, Command, Stdio};
use std::time::Instant;

use firecamp_local::config::CASSANDRA_DIR;
use serde_json::json;

const LOGBACK: &str = r#"<configuration><appender name="O" class="ch.qos.logback.core.ConsoleAppender"><encoder><pattern>%msg%n</pattern></encoder></appender><root level="INFO"><appender-ref ref="O"/></root></configuration>"#;

/// Three Cassandra servers by hand; the seconds until all three have started. Stopped after.
fn by_hand(dir: &std::path::Path) -> f64 {
    let lib = format!("{CASSANDRA_DIR}/lib");
    let jamm = std::fs::read_dir(&lib).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).find(|p| p.to_string_lossy().contains("/jamm-")).unwrap();
    let ips = ["127.0.224.1", "127.0.224.2", "127.0.224.3"];
    let seeds: Vec<String> = ips.iter().map(|ip| format!("{ip}:7000")).collect();
    let args = dir.join("jvm.args");
    std::fs::write(&args, firecamp_catalog::cassandra::JVM_ARGS).unwrap();
    let logback = dir.join("logback.xml");
    std::fs::write(&logback, LOGBACK).unwrap();
    let started = Instant::now();
    let mut children: Vec<Child> = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        let node = dir.join(format!("node-{i}"));
        std::fs::create_dir_all(&node).unwrap();
        let d = node.display();
        let yaml = format!(
            "cluster_name: 'bench'\nnum_tokens: 16\npartitioner: org.apache.cassandra.dht.Murmur3Partitioner\n\
             seed_provider:\n  - class_name: org.apache.cassandra.locator.SimpleSeedProvider\n    parameters:\n      - seeds: \"{}\"\n\
             listen_address: {ip}\nrpc_address: {ip}\nstorage_port: 7000\nnative_transport_port: 9042\nendpoint_snitch: GossipingPropertyFileSnitch\n\
             data_file_directories: [{d}/data]\ncommitlog_directory: {d}/commitlog\nsaved_caches_directory: {d}/saved_caches\n\
             hints_directory: {d}/hints\ncdc_raw_directory: {d}/cdc_raw\ncommitlog_sync: periodic\ncommitlog_sync_period: 10000ms\n",
            seeds.join(",")
        );
        std::fs::write(node.join("cassandra.yaml"), yaml).unwrap();
        std::fs::write(node.join("rackdc.properties"), format!("dc=dc1\nrack=r{i}\n")).unwrap();
        children.push(
            Command::new("java")
                .arg(format!("@{}", args.display()))
                .args(["-Xms512m", "-Xmx512m", "-Dcassandra.ring_delay_ms=5000", "-Dcassandra.skip_wait_for_gossip_to_settle=0"])
                .arg(format!("-Dcassandra.config=file://{d}/cassandra.yaml"))
                .arg(format!("-Dcassandra-rackdc.properties=file://{d}/rackdc.properties"))
                .arg(format!("-Dlogback.configurationFile={}", logback.display()))
                .arg(format!("-Dcassandra.logdir={d}/logs"))
                .arg(format!("-Dcassandra.storagedir={d}"))
                .arg(format!("-javaagent:{}", jamm.display()))
                .args(["-cp", &format!("{lib}/*"), "org.apache.cassandra.service.CassandraDaemon"])
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(node.join("stderr")).unwrap())
                .spawn()
                .unwrap(),
        );
    }
    // Each server's log: wait for the line Cassandra prints once it serves clients.
    engine_bench::wait_for_line(&mut children, "Startup complete", dir);
    let secs = started.elapsed().as_secs_f64();
    engine_bench::stop(&mut children);
    secs
}

#[tokio::main]
async fn main() {
    let dir = engine_bench::state_dir();
    let spec = json!({ "engine": "cassandra", "replicas": 3, "zones": ["us-east-1a", "us-east-1b", "us-east-1c"], "cassandra": { "heap": "512Mi" },
        "resources": { "requests": { "memory": "1Gi" } }, "volumes": { "data": { "size": "2Gi" } } });
    let ours = engine_bench::create_until_active(dir.path(), "bench-cassandra", "127.0.225.1/10", "cs", spec).await;
    engine_bench::compare(dir.path(), "local Cassandra, 3 members: create to ACTIVE vs three servers started by hand", ours, by_hand).await;
}
