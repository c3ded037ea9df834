//! The probes against real servers started here (the local runtime's tests cover full clusters).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use firecamp_probe::{ProbeError, Role, Target, redis, zookeeper};

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

fn start_redis(dir: &std::path::Path, ip: &str, primary: Option<&str>) -> Killed {
    let mut cmd = Command::new(redis_server());
    cmd.args(["--bind", ip, "--port", "6379", "--save", "", "--appendonly", "no", "--replica-announce-ip", ip, "--dir"]).arg(dir);
    if let Some(p) = primary {
        cmd.args(["--replicaof", p, "6379"]);
    }
    Killed(cmd.stdout(Stdio::null()).spawn().unwrap())
}

/// Polls `check` until it holds, failing with its last answer after 30 s.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match check().await {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The switchover the manage service runs on Kubernetes (and the local runtime runs too):
/// `FAILOVER TO` on the primary swaps it with the replica without losing a write, and the other
/// replica is re-pointed to the new primary.
#[tokio::test]
async fn a_redis_switchover_swaps_the_roles_and_the_other_replica_follows() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let ips = ["127.0.160.11", "127.0.160.12", "127.0.160.13"];
    let _servers =
        [start_redis(dirs[0].path(), ips[0], None), start_redis(dirs[1].path(), ips[1], Some(ips[0])), start_redis(dirs[2].path(), ips[2], Some(ips[0]))];
    let t: Vec<Target> = ips.iter().map(|ip| Target::new(*ip, 6379)).collect();
    let link_up = |t: Target, to: &'static str| async move {
        let info = redis::replication(&t).await.map_err(|e| e.to_string())?;
        match (info.get("master_host").map(String::as_str), info.get("master_link_status").map(String::as_str)) {
            (Some(h), Some("up")) if h == to => Ok(()),
            other => Err(format!("{}: {other:?}", t.host)),
        }
    };
    // Linked on both sides: FAILOVER TO wants the replica `online` in the primary's view too.
    until("replicas linked", || async {
        link_up(t[1].clone(), ips[0]).await?;
        link_up(t[2].clone(), ips[0]).await?;
        let primary = redis::replication(&t[0]).await.map_err(|e| e.to_string())?;
        let online = (0..2).filter(|i| primary.get(&format!("slave{i}")).is_some_and(|s| s.contains("state=online"))).count();
        (online == 2).then_some(()).ok_or(format!("{online} replicas online on the primary"))
    })
    .await;
    redis::command(&t[0], &["SET", "kept", "before-switchover"]).await.unwrap();

    redis::failover_to(&t[0], ips[1], 6379, 10_000).await.unwrap();
    until("roles swapped", || async {
        let (new, old) = (redis::role(&t[1]).await.map_err(|e| e.to_string())?, redis::role(&t[0]).await.map_err(|e| e.to_string())?);
        (new == Role::Primary && old == Role::Replica).then_some(()).ok_or(format!("new {new:?}, old {old:?}"))
    })
    .await;
    redis::replicate_from(&t[2], ips[1], 6379).await.unwrap();
    until("the other replica follows the new primary", || link_up(t[2].clone(), ips[1])).await;
    until("the old primary follows the new primary", || link_up(t[0].clone(), ips[1])).await;
    redis::command(&t[1], &["SET", "after", "switchover"]).await.unwrap();
    until("every write on every member", || async {
        for x in &t {
            let kept = redis::command(x, &["GET", "kept"]).await.map_err(|e| e.to_string())?;
            let after = redis::command(x, &["GET", "after"]).await.map_err(|e| e.to_string())?;
            if kept != ::redis::Value::BulkString(b"before-switchover".to_vec()) || after != ::redis::Value::BulkString(b"switchover".to_vec()) {
                return Err(format!("{}: {kept:?} {after:?}", x.host));
            }
        }
        Ok(())
    })
    .await;
    // A replica that is not connected cannot be the target: the engine says so, nothing changes.
    let err = redis::failover_to(&t[1], "127.0.160.99", 6379, 1_000).await.unwrap_err();
    assert!(err.to_string().contains("127.0.160.12"), "the error names the member asked: {err}");
    assert_eq!(redis::role(&t[1]).await.unwrap(), Role::Primary);
}
