//! Benchmark: a three-member MariaDB service from create to ACTIVE (issue #18), on the local
//! runtime with the real servers, against starting the same three servers by hand in the same
//! run (run as root: `cargo run -p firecamp-local --example bench_mariadb`).
//!
//! FireCamp: `POST /v1/services` until the service is ACTIVE (three data directories made, the
//! primary's users, two replicas linked by GTID over TLS, every member answering over TLS).
//! By hand: what an operator does for a primary and two replicas without TLS: three
//! `mariadb-install-db`, three `mariadbd` with the binary log and GTID, a replication user on the
//! primary, `CHANGE MASTER TO … MASTER_USE_GTID=slave_pos; START SLAVE` on each replica, until
//! both replicas' threads run. Prints one `BENCH` line: FireCamp, the baseline, their ratio.

mod engine_bench;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::json;

const IPS: [&str; 3] = ["127.0.223.1", "127.0.223.2", "127.0.223.3"];

/// A statement through the server's socket as the OS user root (unix_socket), its output
/// without column names (`SHOW SLAVE STATUS\G`: one value a line, Slave_IO_Running and
/// Slave_SQL_Running the only two `Yes` lines of a linked replica).
fn sql(sock: &Path, statement: &str) -> String {
    let o = Command::new("mariadb").arg(format!("--socket={}", sock.display())).args(["-uroot", "-N", "-e", statement]).output().unwrap();
    assert!(o.status.success(), "{statement}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn until(what: &str, mut f: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match f() {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("by hand: {what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Three servers by hand; the seconds until both replicas replicate. Stopped after.
fn by_hand(dir: &Path) -> f64 {
    let started = Instant::now();
    let mut children: Vec<Child> = Vec::new();
    let socks: Vec<_> = (0..3).map(|i| dir.join(format!("node-{i}/run/mysqld.sock"))).collect();
    for (i, ip) in IPS.iter().enumerate() {
        let node = dir.join(format!("node-{i}"));
        for d in ["run", "tmp"] {
            std::fs::create_dir_all(node.join(d)).unwrap();
        }
        Command::new("chown").args(["-R", "mysql:mysql"]).arg(&node).status().unwrap();
        let ok = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--user=mysql", "--skip-test-db"])
            .arg(format!("--datadir={}", node.join("data").display()))
            .env("TMPDIR", node.join("tmp"))
            .output()
            .unwrap();
        assert!(ok.status.success(), "install-db: {}", String::from_utf8_lossy(&ok.stderr));
        children.push(
            Command::new("/usr/sbin/mariadbd")
                .arg("--no-defaults")
                .args(["--user=mysql", &format!("--datadir={}", node.join("data").display()), &format!("--socket={}", socks[i].display())])
                .args([&format!("--bind-address={ip}"), "--port=3306", &format!("--server-id={}", i + 1), "--log-bin=mariadb-bin"])
                .args(["--log-slave-updates", "--gtid-strict-mode", "--binlog-format=ROW", "--skip-name-resolve", "--skip-slave-start"])
                .arg(format!("--tmpdir={}", node.join("tmp").display()))
                .stdout(std::fs::File::create(node.join("log")).unwrap())
                .stderr(std::fs::File::create(node.join("err")).unwrap())
                .spawn()
                .unwrap(),
        );
    }
    for s in &socks {
        until("a server's socket", || {
            let o = Command::new("mariadb").arg(format!("--socket={}", s.display())).args(["-uroot", "-e", "SELECT 1"]).output().map_err(|e| e.to_string())?;
            if o.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&o.stderr).into_owned()) }
        });
    }
    sql(&socks[0], "CREATE USER 'repl'@'%' IDENTIFIED BY 'benchpass'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'");
    for s in &socks[1..] {
        sql(
            s,
            &format!(
                "CHANGE MASTER TO MASTER_HOST='{}', MASTER_USER='repl', MASTER_PASSWORD='benchpass', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE",
                IPS[0]
            ),
        );
    }
    for s in &socks[1..] {
        until("a replica's threads", || {
            let st = sql(s, "SHOW SLAVE STATUS\\G");
            if st.lines().filter(|l| *l == "Yes").count() == 2 { Ok(()) } else { Err(st) }
        });
    }
    let secs = started.elapsed().as_secs_f64();
    engine_bench::stop(&mut children);
    secs
}

#[tokio::main]
async fn main() {
    let dir = engine_bench::state_dir();
    let spec = json!({ "engine": "mariadb", "replicas": 3, "zones": ["a", "b", "c"],
        "resources": { "requests": { "memory": "512Mi" } }, "volumes": { "data": { "size": "2Gi" } } });
    let ours = engine_bench::create_until_active(dir.path(), "bench-mariadb", "127.0.222.1/10", "md", spec).await;
    engine_bench::compare(
        dir.path(),
        "local MariaDB, 3 members (GTID replicas): create to ACTIVE vs three servers and two replicas set up by hand",
        ours,
        by_hand,
    )
    .await;
}
