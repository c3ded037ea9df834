//! Issue #12, item 1: the local runtime's API refuses a local user without the token, a web
//! page's "simple" cross-site POST and a DNS-rebinding page, and listens (API and DNS) on
//! loopback only;
//! a refused request leaves nothing behind. The attacks are sent as raw HTTP, as a browser or
//! another user's process would send them.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use common::{Bed, with_bed};
use firecamp_local::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One raw HTTP/1.1 request; the status and the whole answer.
async fn raw(bed: &Bed, method: &str, path: &str, headers: &[(&str, String)], body: &str) -> (u16, String) {
    let addr = bed.url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out)
}

fn host(bed: &Bed) -> (&'static str, String) {
    ("Host", bed.url.trim_start_matches("http://").to_string())
}

fn token(bed: &Bed) -> String {
    std::fs::read_to_string(bed.cfg.token_path()).unwrap().trim().to_string()
}

const CREATE: &str =
    r#"{"name":"rd","spec":{"engine":"redis","replicas":1,"zones":["local"],"resources":{"requests":{"memory":"128Mi"}},"volumes":{"data":{"size":"1Gi"}}}}"#;

async fn nothing_created(bed: &Arc<Bed>) {
    assert!(bed.list().await.items.is_empty(), "no service recorded");
    assert!(!bed.cfg.service_dir("rd").exists(), "no directory made");
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_without_the_token_get_401_and_change_nothing() {
    with_bed(
        "t-guard1",
        "127.0.180.1/10",
        |_| {},
        |bed| async move {
            let mode = std::fs::metadata(bed.cfg.token_path()).unwrap().permissions().mode() & 0o777;
            assert!(mode == 0o600 || mode == 0o640, "token file mode {mode:o}");
            let json = ("Content-Type", "application/json".to_string());
            for auth in [None, Some("Bearer wrong".to_string()), Some(format!("Bearer {}x", token(&bed))), Some(format!("Basic {}", token(&bed)))] {
                let mut headers = vec![host(&bed), json.clone()];
                if let Some(a) = &auth {
                    headers.push(("Authorization", a.clone()));
                }
                let (status, out) = raw(&bed, "POST", "/v1/services", &headers, CREATE).await;
                assert_eq!(status, 401, "{auth:?}: {out}");
                assert!(out.to_ascii_lowercase().contains("www-authenticate: bearer"), "{out}");
                assert!(!out.contains("api-token") && !out.contains(&token(&bed)), "no detail leaks: {out}");
                let (status, _) = raw(&bed, "GET", "/v1/services", &headers[..1], "").await;
                assert_eq!(status, 401, "reading needs the token too");
            }
            nothing_created(&bed).await;
            // /healthz stays open (it says only "ok"), for `local up` and monitors.
            let (status, out) = raw(&bed, "GET", "/healthz", &[host(&bed)], "").await;
            assert_eq!(status, 200, "{out}");
        },
    )
    .await;
}

/// A running service: without the token it can be neither stopped nor deleted, nor can an
/// operation be started on it.
#[tokio::test(flavor = "multi_thread")]
async fn a_service_cannot_be_stopped_deleted_or_operated_without_the_token() {
    common::require(firecamp_core::EngineKind::Redis);
    with_bed(
        "t-guard4",
        "127.0.185.1/10",
        |_| {},
        |bed| async move {
            bed.create(serde_json::from_str::<serde_json::Value>(CREATE).unwrap()).await.expect("created with the token");
            let pid = {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                loop {
                    if let Ok(p) = std::fs::read_to_string(bed.member_dir("rd", "rd-0").join("server.pid")) {
                        break p;
                    }
                    assert!(std::time::Instant::now() < deadline, "rd-0 started");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            };
            let json = ("Content-Type", "application/json".to_string());
            for (method, path, body) in [
                ("DELETE", "/v1/services/rd?deleteVolumes=true", ""),
                ("POST", "/v1/services/rd/stop", ""),
                ("POST", "/v1/services/rd/operations", r#"{"kind":"restart"}"#),
                ("GET", "/v1/services/rd/logs", ""),
            ] {
                let (status, out) = raw(&bed, method, path, &[host(&bed), json.clone()], body).await;
                assert_eq!(status, 401, "{method} {path}: {out}");
            }
            assert_eq!(bed.list().await.items.len(), 1, "the service is still there");
            assert!(bed.operations("rd").await.is_empty(), "no operation recorded");
            let now = std::fs::read_to_string(bed.member_dir("rd", "rd-0").join("server.pid")).unwrap();
            assert_eq!(now, pid, "the same server runs");
            bed.delete("rd", true).await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_style_post_that_is_not_json_gets_415() {
    with_bed(
        "t-guard2",
        "127.0.181.1/10",
        |_| {},
        |bed| async move {
            let auth = ("Authorization", format!("Bearer {}", token(&bed)));
            for ct in ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
                let (status, out) = raw(&bed, "POST", "/v1/services", &[host(&bed), auth.clone(), ("Content-Type", ct.into())], CREATE).await;
                assert_eq!(status, 415, "{ct}: {out}");
            }
            // No Content-Type at all, with a body.
            let (status, out) = raw(&bed, "POST", "/v1/services", &[host(&bed), auth.clone()], CREATE).await;
            assert_eq!(status, 415, "{out}");
            nothing_created(&bed).await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dns_rebinding_host_is_refused() {
    with_bed(
        "t-guard3",
        "127.0.182.1/10",
        |_| {},
        |bed| async move {
            let auth = ("Authorization", format!("Bearer {}", token(&bed)));
            let json = ("Content-Type", "application/json".to_string());
            let port = bed.url.rsplit(':').next().unwrap().to_string();
            for h in ["evil.example".to_string(), format!("evil.example:{port}"), format!("localhost.evil.example:{port}"), format!("10.1.2.3:{port}")] {
                let (status, out) = raw(&bed, "POST", "/v1/services", &[("Host", h.clone()), auth.clone(), json.clone()], CREATE).await;
                assert_eq!(status, 421, "{h}: {out}");
                let (status, _) = raw(&bed, "GET", "/healthz", &[("Host", h.clone())], "").await;
                assert_eq!(status, 421, "{h}: even /healthz");
            }
            nothing_created(&bed).await;
            // The loopback names are fine.
            for h in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
                let (status, out) = raw(&bed, "GET", "/v1/services", &[("Host", h.clone()), auth.clone()], "").await;
                assert_eq!(status, 200, "{h}: {out}");
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_loopback_listen_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::new(dir.path().join("state"));
    cfg.listen = "0.0.0.0:0".parse().unwrap();
    cfg.dns_listen = "127.0.0.1:0".parse().unwrap();
    let e = firecamp_local::start(cfg.clone()).await.err().expect("refused").to_string();
    assert!(e.contains("--listen 0.0.0.0:0") && e.contains("loopback"), "{e}");
    assert!(!cfg.dir.exists(), "nothing made");
}

/// The DNS server answers for the members' loopback addresses: loopback only, like the API.
#[tokio::test(flavor = "multi_thread")]
async fn a_non_loopback_dns_listen_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let mut cfg = Config::new(dir.path().join("state"));
        cfg.listen = "127.0.0.1:0".parse().unwrap();
        cfg.dns_listen = addr.parse().unwrap();
        let e = firecamp_local::start(cfg.clone()).await.err().expect("refused").to_string();
        assert!(e.contains(&format!("--dns-listen {addr}")) && e.contains("loopback"), "{e}");
        assert!(!cfg.dir.exists(), "nothing made");
    }
}

/// The runtime does not chmod a state directory it did not create: one its members could not
/// enter is refused, naming it; any other keeps its mode.
#[tokio::test(flavor = "multi_thread")]
async fn a_state_directory_it_did_not_create_keeps_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let start = |mode: u32| {
        let state = dir.path().join(format!("state-{mode:o}"));
        std::fs::create_dir(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut cfg = Config::new(&state);
        cfg.listen = "127.0.0.1:0".parse().unwrap();
        cfg.dns_listen = "127.0.0.1:0".parse().unwrap();
        cfg.cluster = format!("t-mode{mode:o}");
        cfg.manage_hosts = false;
        (state, cfg)
    };
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let (state, cfg) = start(0o750);
    if nix_root() {
        let e = firecamp_local::start(cfg).await.err().expect("refused").to_string();
        assert!(e.contains(&state.display().to_string()) && e.contains("o+x"), "{e}");
    }
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&state), 0o750, "mode left alone");
    let (state, cfg) = start(0o755);
    let d = firecamp_local::start(cfg).await.expect("starts");
    d.stop().await;
    assert_eq!(mode(&state), 0o755, "not chmodded to 0711");
}

fn nix_root() -> bool {
    std::fs::read_to_string("/proc/self/status").unwrap().lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}
