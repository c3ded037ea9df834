//! The probes against real servers started here (the local runtime's tests cover full clusters).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use firecamp_probe::{redis, zookeeper, ProbeError, Role, Target};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_server() -> String {
    ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("redis-server is not installed (scripts/setup.d/30-local.sh installs it)")
        .to_string()
}

#[tokio::test]
async fn a_lone_redis_is_a_primary_and_a_silent_address_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(redis_server())
        .args(["--bind", "127.0.160.1", "--port", "6379", "--save", "", "--appendonly", "no", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Killed(child);
    let t = Target::new("127.0.160.1", 6379);
    // The server needs a moment to listen: ask until it answers, within a deadline.
    let deadline = Instant::now() + Duration::from_secs(20);
    let role = loop {
        match redis::role(&t).await {
            Ok(r) => break r,
            Err(e) if Instant::now() > deadline => panic!("redis never answered: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert_eq!(role, Role::Primary);
    assert_eq!(redis::replication(&t).await.unwrap().get("role").map(String::as_str), Some("master"));

    let nobody = Target::new("127.0.160.2", 6379);
    assert!(matches!(redis::role(&nobody).await, Err(ProbeError::Failed { .. } | ProbeError::Timeout { .. })));
    let nobody = Target::new("127.0.160.2", 2181);
    assert!(zookeeper::role(&nobody).await.is_err());
}
