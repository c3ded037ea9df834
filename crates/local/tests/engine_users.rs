//! Issue #12, item 1: every engine's server runs as its own unprivileged OS user (as a test
//! sees it: /proc/<pid>/status of the member's server), owns its data, secrets and logs, and
//! its log rotates at the size cap.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use common::{Bed, require, spec, with_bed};
use firecamp_api::Phase;
use firecamp_core::EngineKind;
use serde_json::json;

/// A small cap, so the servers' own start-up output rotates the log.
const CAP: u64 = 2048;

fn os_user(name: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let f: Vec<&str> = passwd.lines().find(|l| l.starts_with(&format!("{name}:"))).unwrap_or_else(|| panic!("no OS user {name}")).split(':').collect();
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}

/// Real, effective, saved and filesystem uids of a process.
fn uids(pid: i32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().skip(1).map(|u| u.parse().unwrap()).collect()
}

fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid())
}

fn check_member(bed: &Bed, service: &str, member: &str, user: &str) {
    let (uid, gid) = os_user(user);
    assert_ne!(uid, 0);
    let pid = bed.server_pid(service, member);
    assert_eq!(uids(pid), vec![uid; 4], "{member}'s server (pid {pid}) runs as {user}");
    let dir = bed.member_dir(service, member);
    for p in ["data", "run", "secret", "member.log"] {
        assert_eq!(owner(&dir.join(p)), (uid, gid), "{member}/{p} is {user}'s");
    }
    // Everything the server wrote into its data directory is its own too.
    for e in std::fs::read_dir(dir.join("data")).unwrap() {
        assert_eq!(owner(&e.unwrap().path()).0, uid);
    }
    let secrets: Vec<_> = std::fs::read_dir(dir.join("secret")).unwrap().map(|e| e.unwrap().path()).collect();
    // ZooKeeper has no passwords; PostgreSQL and Redis do.
    assert!(user == "zookeeper" || !secrets.is_empty(), "{member} has secrets");
    for s in secrets {
        assert_eq!(owner(&s), (uid, gid), "{}", s.display());
        assert_eq!(std::fs::metadata(&s).unwrap().permissions().mode() & 0o777, 0o600, "{}", s.display());
    }
    // The log rotated past the cap: two old files at most, each within the cap, all the user's.
    let log = dir.join("member.log");
    assert!(dir.join("member.log.1").exists(), "{member}'s log rotated past {CAP} bytes");
    assert!(!dir.join("member.log.3").exists(), "two old files kept");
    for p in [log.clone(), dir.join("member.log.1")] {
        assert!(std::fs::metadata(&p).unwrap().len() <= CAP, "{} within the cap", p.display());
        assert_eq!(owner(&p), (uid, gid), "{}", p.display());
    }
}

fn is_root() -> bool {
    uids(std::process::id() as i32)[1] == 0
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_runs_as_redis_and_owns_its_files() {
    require(EngineKind::Redis);
    assert!(is_root(), "this test checks the users servers run as when the runtime is root");
    with_bed(
        "t-usr-rd",
        "127.0.183.1/10",
        |c| c.member_log_max_bytes = CAP,
        |bed| async move {
            bed.create(json!({ "name": "rd", "spec": spec("redis", 2, "128Mi") })).await.expect("created");
            bed.wait_phase("rd", Phase::Active, Duration::from_secs(120)).await;
            // Enough of the server's own lines to pass the cap (and the API still serves the newest).
            let logs = bed.logs("rd", "rd-0").await;
            assert!(logs.contains("Ready to accept connections"), "{logs}");
            for m in ["rd-0", "rd-1"] {
                check_member(&bed, "rd", m, "redis");
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn zookeeper_runs_as_zookeeper_and_owns_its_files() {
    require(EngineKind::Zookeeper);
    assert!(is_root(), "this test checks the users servers run as when the runtime is root");
    with_bed(
        "t-usr-zk",
        "127.0.184.1/10",
        |c| c.member_log_max_bytes = CAP,
        |bed| async move {
            let mut s = spec("zookeeper", 1, "512Mi");
            s["zookeeper"] = json!({ "heap": "128Mi" });
            bed.create(json!({ "name": "zk", "spec": s })).await.expect("created");
            bed.wait_phase("zk", Phase::Active, Duration::from_secs(180)).await;
            check_member(&bed, "zk", "zk-0", "zookeeper");
        },
    )
    .await;
}
