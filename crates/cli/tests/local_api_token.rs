//! Issue #12, item 1 through the CLI: `local up|serve --listen` and `--dns-listen` refuse a
//! non-loopback address (exit 2 naming the flag, nothing started); service commands find the
//! local runtime's API token without flags, a user who may not read it is told which file and
//! why, and a member of the token's group (the `firecamp` group) uses the runtime without root.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

/// The CLI, copied once to a directory every user may enter: the checkout (and so the built
/// binary) may sit under a directory only root can pass, and some runs here are other users.
fn binary() -> &'static std::path::Path {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        // Earlier runs' copies go first (their processes are gone).
        for e in std::fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("firecamp-cli-bin-")
                && !std::path::Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let dir = std::env::temp_dir().join(format!("firecamp-cli-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("firecamp");
        let _ = std::fs::remove_file(&bin);
        // A hard link where it can be (the same file system), else a copy.
        if std::fs::hard_link(env!("CARGO_BIN_EXE_firecamp"), &bin).is_err() {
            std::fs::copy(env!("CARGO_BIN_EXE_firecamp"), &bin).unwrap();
        }
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    })
}

fn firecamp(local_dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(binary());
    c.args(args).env("FIRECAMP_LOCAL_DIR", local_dir).env_remove("FIRECAMP_TOKEN").env_remove("FIRECAMP_SERVER");
    c
}

/// A fresh directory under the system's temp dir (0755: other users, such as `nobody` below,
/// may pass through it), removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("firecamp-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn local_up_refuses_a_non_loopback_listen_address() {
    let dir = TempDir::new("listen");
    let state = dir.path().join("state");
    for cmd in ["up", "serve"] {
        for addr in ["0.0.0.0:27999", "10.1.2.3:27999", "[::]:27999"] {
            let o = firecamp(&state, &["local", cmd, &format!("--listen={addr}")]).output().unwrap();
            let e = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd} {addr}: {e}");
            assert!(e.contains("--listen") && e.contains("loopback") && e.contains("TLS"), "{cmd} {addr}: {e}");
            assert!(!state.exists(), "nothing started or made");
        }
    }
}

#[test]
fn local_up_refuses_a_non_loopback_dns_listen_address() {
    let dir = TempDir::new("dns-listen");
    let state = dir.path().join("state");
    for cmd in ["up", "serve"] {
        for addr in ["0.0.0.0:27998", "10.1.2.3:53", "[::]:27998"] {
            let o = firecamp(&state, &["local", cmd, "--listen=127.0.0.1:0", &format!("--dns-listen={addr}")]).output().unwrap();
            let e = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd} {addr}: {e}");
            assert!(e.contains(&format!("--dns-listen {addr}")) && e.contains("loopback"), "{cmd} {addr}: {e}");
            assert!(!state.exists(), "nothing started or made");
        }
    }
}

/// Mode, owner and group of a file.
fn stat(p: &std::path::Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).unwrap();
    (m.mode() & 0o7777, m.uid(), m.gid())
}

/// docs/local.md: the token file is the daemon's user's (root), 0640 with the `firecamp` group
/// when that group exists, so its members use the runtime without sudo; 0600 otherwise. The
/// group here is Debian's `nogroup` (the runtime's `token_group`), so the test needs no
/// `groupadd` on the machine; `nobody` in that group runs the CLI, `nobody` outside it cannot.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_of_the_token_group_uses_the_runtime_without_root() {
    let root = std::fs::read_to_string("/proc/self/status").unwrap().lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    assert!(root, "this test runs the CLI as other users: it needs root (as CI runs it)");
    let nogroup = 65534;
    let dir = TempDir::new("group");
    let state = dir.path().join("state");
    let mut cfg = firecamp_local::config::Config::new(&state);
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dns_listen = "127.0.0.1:0".parse().unwrap();
    cfg.cluster = "t-cligroup".into();
    cfg.manage_hosts = false;
    cfg.token_group = "nogroup".into();
    assert_eq!(firecamp_local::config::Config::new(&state).token_group, "firecamp", "the default group");
    let token = state.join("api-token");
    let list = |gid: u32| {
        let (state, server) = (state.clone(), format!("--server={}", std::fs::read_to_string(state.join("firecamp-local.addr")).unwrap().trim()));
        tokio::task::spawn_blocking(move || firecamp(&state, &["service", "list", &server]).uid(65534).gid(gid).output().unwrap())
    };
    let daemon = firecamp_local::start(cfg.clone()).await.expect("the local runtime starts");
    let result = async {
        assert_eq!(stat(&token), (0o640, 0, nogroup), "root's, readable by the group");
        let o = list(nogroup).await.unwrap();
        assert_eq!(o.status.code(), Some(0), "a member of the group: {}", stderr(&o));
        let o = list(65533).await.unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains(&token.display().to_string()) && stderr(&o).contains("ermission denied"), "{}", stderr(&o));
    };
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(result)).await;
    daemon.stop().await;
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
    // The mode is set again at the next start; without the group the file is 0600.
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let before = std::fs::read_to_string(&token).unwrap();
    cfg.token_group = "firecamp-test-no-such-group".into();
    let daemon = firecamp_local::start(cfg).await.expect("the local runtime starts again");
    let mode = stat(&token).0;
    let o = list(nogroup).await.unwrap();
    daemon.stop().await;
    assert_eq!(mode, 0o600);
    assert_eq!(std::fs::read_to_string(&token).unwrap(), before, "the same token");
    assert_eq!(o.status.code(), Some(1), "the group no longer reads it: {}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn service_commands_find_the_token_without_flags() {
    let dir = TempDir::new("token");
    let state = dir.path().join("state");
    let mut cfg = firecamp_local::config::Config::new(&state);
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dns_listen = "127.0.0.1:0".parse().unwrap();
    cfg.cluster = "t-clitoken".into();
    cfg.manage_hosts = false;
    let daemon = firecamp_local::start(cfg).await.expect("the local runtime starts");
    let server = format!("--server={}", daemon.url());
    let localhost = format!("--server=http://localhost:{}", daemon.addr.port());
    let run = |dir: std::path::PathBuf, args: Vec<String>, uid: Option<u32>| {
        tokio::task::spawn_blocking(move || {
            let mut c = firecamp(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
            if let Some(u) = uid {
                c.uid(u).gid(u);
            }
            c.output().unwrap()
        })
    };
    let result = async {
        // The state directory tells the CLI where the token is: no flag, any loopback name.
        for s in [&server, &localhost] {
            let o = run(state.clone(), vec!["service".into(), "list".into(), s.clone()], None).await.unwrap();
            assert_eq!(o.status.code(), Some(0), "{s}: {}", stderr(&o));
        }
        // Another state directory (no runtime there): the token is not sent, the 401 says what to set.
        let o = run(dir.path().join("elsewhere"), vec!["service".into(), "list".into(), server.clone()], None).await.unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("FIRECAMP_LOCAL_DIR"), "{}", stderr(&o));
        // A user who may not read the token (nobody) is told which file and why.
        let o = run(state.clone(), vec!["service".into(), "list".into(), server.clone()], Some(65534)).await.unwrap();
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{e}");
        assert!(e.contains(&state.join("api-token").display().to_string()) && e.contains("ermission denied"), "{e}");
    };
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(result)).await;
    daemon.stop().await;
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}
