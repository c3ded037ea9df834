//! Issue #12, item 9 on the local runtime's REST API: property tests over its request bodies
//! and paths, against a daemon in this process whose state holds one service (`rd`, Redis, 3
//! members) and whose server directories are empty, so no input can start a server: a body
//! that passes validation ends at "not installed" (503) instead. Bodies are arbitrary JSON,
//! arbitrary bytes and near-valid bodies (`firecamp_api::fuzz`). Whatever arrives: no 5xx but
//! that one, a refusal is a JSON ApiError naming a field (for a near-valid body, the field it
//! changed), and nothing is created: no service, no operation, no directory, and `rd` is as it
//! was.

mod common;

use std::path::PathBuf;

use firecamp_api::fuzz::{NearValid, any_json, create_bodies, hostile_string, names_field, near_valid, operation_bodies, refusal};
use firecamp_api::{ApiError, ErrorCode, Service};
use firecamp_local::config::Config;
use proptest::prelude::*;
use proptest::test_runner::{Config as Cases, TestCaseError, TestRunner};
use serde_json::{Value, json};

/// A daemon with `rd` in its store and no server binaries.
struct Local {
    rt: tokio::runtime::Runtime,
    daemon: Option<firecamp_local::Daemon>,
    http: reqwest::Client,
    url: String,
    cfg: Config,
    no_servers: PathBuf,
    /// `rd` as the API showed it at the start.
    rd: Option<Service>,
    _dir: tempfile::TempDir,
}

impl Local {
    fn start(cluster: &str, pool: &str) -> Local {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
        let no_servers = dir.path().join("no-servers");
        std::fs::create_dir(&no_servers).unwrap();
        let mut cfg = Config::new(dir.path().join("state"));
        cfg.listen = "127.0.0.1:0".parse().unwrap();
        cfg.dns_listen = "127.0.0.1:0".parse().unwrap();
        cfg.cluster = cluster.into();
        cfg.ips = firecamp_local::ips::IpPool::parse(pool).unwrap();
        cfg.manage_hosts = false;
        cfg.bin_dirs.postgresql = Some(no_servers.clone());
        cfg.bin_dirs.redis = Some(no_servers.clone());
        cfg.bin_dirs.zookeeper = Some(no_servers.clone());
        std::fs::create_dir(&cfg.dir).unwrap();
        std::fs::set_permissions(&cfg.dir, std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
        let first: std::net::Ipv4Addr = pool.split('/').next().unwrap().parse().unwrap();
        let ip = |i: u32| std::net::Ipv4Addr::from(u32::from(first) + i).to_string();
        let mut spec = serde_json::to_value(firecamp_catalog::examples::spec(firecamp_core::EngineKind::Redis, 3)).unwrap();
        spec["version"] = json!("7.2");
        let record: firecamp_local::store::ServiceRecord = serde_json::from_value(json!({
            "name": "rd", "spec": spec, "serverVersion": "7.2.4",
            "ips": { "rd-0": ip(0), "rd-1": ip(1), "rd-2": ip(2) },
            "secrets": { "password": "not-a-real-one" }, "desired": "running", "init": { "done": true },
        }))
        .unwrap();
        firecamp_local::store::Store::open(&cfg.store_path()).unwrap().put(&record).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let daemon = rt.block_on(firecamp_local::start(cfg.clone())).expect("the local runtime starts");
        let url = daemon.url();
        let http = common::client(&cfg);
        let mut l = Local { rt, daemon: Some(daemon), http, url, cfg, no_servers, rd: None, _dir: dir };
        l.rd = Some(l.rd_now());
        l
    }

    fn send(&self, method: reqwest::Method, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        let (status, body, _) = self.try_send(method, path, body).unwrap();
        (status, body)
    }

    /// As [`Self::send`], and whether the server said it closes the connection; an error when
    /// the connection broke while the body was written.
    fn try_send(&self, method: reqwest::Method, path: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>, bool), reqwest::Error> {
        self.rt.block_on(async {
            let r = self.http.request(method, format!("{}{path}", self.url)).header("content-type", "application/json").body(body).send().await?;
            let closes = r.headers().get(reqwest::header::CONNECTION).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            Ok((r.status().as_u16(), r.bytes().await?.to_vec(), closes))
        })
    }

    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let (status, body) = self.send(reqwest::Method::GET, path, Vec::new());
        assert_eq!(status, 200, "GET {path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    fn rd_now(&self) -> Service {
        self.get("/v1/services/rd")
    }

    /// Nothing was created or changed: `rd` alone, as it was, with no operation, and no
    /// service directory.
    fn nothing_changed(&self) -> Result<(), TestCaseError> {
        let list: firecamp_api::ServiceList = self.get("/v1/services");
        prop_assert_eq!(list.items.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), vec!["rd"]);
        prop_assert_eq!(Some(&list.items[0].spec), self.rd.as_ref().map(|r| &r.spec));
        let ops: firecamp_api::OperationList = self.get("/v1/services/rd/operations");
        prop_assert!(ops.items.is_empty(), "an operation was recorded: {:?}", ops.items);
        let dirs: Vec<_> = std::fs::read_dir(self.cfg.services_dir()).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
        prop_assert!(dirs.is_empty(), "directories made: {dirs:?}");
        Ok(())
    }

    /// The answer's verdict: a refusal (the ApiError), or `None` when the body passed every
    /// check and met the missing servers.
    fn verdict(&self, status: u16, body: &[u8]) -> Result<Option<ApiError>, TestCaseError> {
        tally(status);
        let e = refusal(status, body).map_err(TestCaseError::fail)?;
        if status == 503 {
            prop_assert!(
                e.code == ErrorCode::Unavailable && e.message.contains(&self.no_servers.display().to_string()),
                "503 other than the missing servers: {e:?}"
            );
            return Ok(None);
        }
        prop_assert!((400..500).contains(&status), "{status}: {e:?}");
        Ok(Some(e))
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.take() {
            self.rt.block_on(d.stop());
        }
    }
}

thread_local! {
    static TALLY: std::cell::RefCell<std::collections::BTreeMap<u16, u32>> = Default::default();
}

fn tally(status: u16) {
    TALLY.with_borrow_mut(|t| *t.entry(status).or_default() += 1);
}

/// Runs `property` over `cases` values on a thread with a 64 MiB stack, against one daemon.
fn check<S: Strategy>(
    cluster: &'static str,
    pool: &'static str,
    cases: u32,
    strategy: impl FnOnce() -> S + Send + 'static,
    property: impl Fn(&Local, S::Value) -> Result<(), TestCaseError> + Send + 'static,
) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let local = Local::start(cluster, pool);
            let mut runner = TestRunner::new(Cases { cases, failure_persistence: None, ..Cases::default() });
            let result = runner.run(&strategy(), |v| property(&local, v));
            drop(local);
            if let Err(e) = result {
                panic!("{e}");
            }
            println!("{cases} cases, answers by status: {:?}", TALLY.take());
        })
        .unwrap()
        .join()
        .unwrap();
}

/// The create bodies, with the Redis one renamed so that it does not meet `rd` (409).
fn creates() -> Vec<Value> {
    create_bodies(&["local"])
        .into_iter()
        .map(|mut b| {
            if b["name"] == "rd" {
                b["name"] = json!("rs");
                b["spec"]["memberConfig"] = json!({ "rs-2": { "maxclients": "100" } });
            }
            b
        })
        .collect()
}

fn create(l: &Local, case: NearValid) -> Result<(), TestCaseError> {
    let (status, body) = l.send(reqwest::Method::POST, "/v1/services", case.body.clone());
    if let Some(e) = l.verdict(status, &body)?
        && status == 400
    {
        prop_assert!(names_field(&e, &case.steps, false), "{:?} changed {} and the refusal names {:?}: {}", case.mutation, case.field, e.fields, e.message);
    }
    l.nothing_changed()
}

fn operate(l: &Local, case: NearValid) -> Result<(), TestCaseError> {
    let (status, body) = l.send(reqwest::Method::POST, "/v1/services/rd/operations", case.body.clone());
    if let Some(e) = l.verdict(status, &body)?
        && status == 400
    {
        prop_assert!(names_field(&e, &case.steps, true), "{:?} changed {} and the refusal names {:?}: {}", case.mutation, case.field, e.fields, e.message);
    }
    l.nothing_changed()
}

/// The valid bodies pass every check and stop only at the missing servers.
#[test]
fn the_valid_bodies_meet_only_the_missing_servers() {
    let l = Local::start("t-fuzz0", "127.0.191.1/10");
    for (path, bodies) in [("/v1/services", creates()), ("/v1/services/rd/operations", operation_bodies())] {
        for b in bodies {
            let (status, body) = l.send(reqwest::Method::POST, path, serde_json::to_vec(&b).unwrap());
            assert_eq!(status, 503, "{b}: {}", String::from_utf8_lossy(&body));
            assert!(l.verdict(status, &body).unwrap().is_none(), "{}", String::from_utf8_lossy(&body));
            l.nothing_changed().unwrap();
        }
    }
}

#[test]
fn near_valid_create_bodies() {
    check("t-fuzz1", "127.0.192.1/10", 1500, || near_valid(creates()), create);
}

#[test]
fn near_valid_operation_bodies() {
    check("t-fuzz2", "127.0.193.1/10", 1500, || near_valid(operation_bodies()), operate);
}

#[test]
fn arbitrary_bodies() {
    let body = || {
        prop_oneof![
            3 => any_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            1 => prop::collection::vec(any::<u8>(), 0..300),
        ]
    };
    check(
        "t-fuzz3",
        "127.0.194.1/10",
        800,
        move || (any::<bool>(), body()),
        |l, (operation, body)| {
            let path = if operation { "/v1/services/rd/operations" } else { "/v1/services" };
            let (status, answer) = l.send(reqwest::Method::POST, path, body);
            l.verdict(status, &answer)?;
            l.nothing_changed()
        },
    );
}

fn encoded(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Hostile names (never `rd`, which these routes would stop or delete), operation ids and query
/// values on every route: a JSON ApiError, nothing created, `rd` untouched.
#[test]
fn hostile_paths_and_queries() {
    let segment = || {
        prop_oneof![
            6 => hostile_string().prop_filter("a path segment", |s| !s.is_empty() && s.len() < 2000 && s != "rd").prop_map(|s| encoded(&s)),
            1 => prop::collection::vec(any::<u8>(), 1..12).prop_map(|b| b.iter().map(|b| format!("%{b:02X}")).collect()),
        ]
    };
    let route = || {
        prop::sample::select(vec![
            (reqwest::Method::GET, ""),
            (reqwest::Method::DELETE, ""),
            (reqwest::Method::GET, "/members"),
            (reqwest::Method::POST, "/stop"),
            (reqwest::Method::POST, "/start"),
            (reqwest::Method::GET, "/operations"),
            (reqwest::Method::POST, "/operations"),
            (reqwest::Method::GET, "/operations/ID"),
            (reqwest::Method::POST, "/operations/ID/cancel"),
            (reqwest::Method::GET, "/logs"),
            (reqwest::Method::PUT, ""),
        ])
    };
    let query = move || {
        let value = move || prop_oneof![2 => Just(String::new()), 1 => prop::sample::select(vec!["true", "false", "60", "rd-1"]).prop_map(String::from), 2 => segment()];
        prop::collection::vec((prop::sample::select(vec!["deleteVolumes", "member", "since", "follow", "x"]), value()), 0..4)
            .prop_map(|kv| kv.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"))
    };
    check(
        "t-fuzz4",
        "127.0.195.1/10",
        600,
        move || (route(), segment(), segment(), query()),
        |l, ((method, suffix), name, id, query)| {
            let mut path = format!("/v1/services/{name}{}", suffix.replace("ID", &id));
            if !query.is_empty() {
                path.push_str(&format!("?{query}"));
            }
            let body = if suffix == "/operations" { br#"{"kind":"restart"}"#.to_vec() } else { Vec::new() };
            let (status, answer) = l.send(method.clone(), &path, body);
            tally(status);
            prop_assert!((400..500).contains(&status), "{method} {path}: {status}: {}", String::from_utf8_lossy(&answer));
            refusal(status, &answer).map_err(|e| TestCaseError::fail(format!("{method} {path}: {e}")))?;
            l.nothing_changed()?;
            prop_assert_eq!(Some(l.rd_now().spec), l.rd.as_ref().map(|r| r.spec.clone()));
            Ok(())
        },
    );
}

/// A body over axum's 2 MiB limit (plain text from axum before), a body nested deeper than the
/// JSON parser goes, a query value of the wrong type and a path that is not UTF-8: each a JSON
/// ApiError naming what could not be read, nothing created.
#[test]
fn unreadable_requests_are_refused_naming_what_could_not_be_read() {
    let l = Local::start("t-fuzz5", "127.0.196.1/10");
    let huge = format!(r#"{{"name":"x","spec":{{"engine":"redis","labels":{{"a":"{}"}}}}}}"#, "a".repeat(3 << 20)).into_bytes();
    let deep = format!(r#"{{"name":"x","spec":{{"engine":"redis","labels":{}1{}}}}}"#, "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    for (method, path, body, status, field) in [
        (reqwest::Method::POST, "/v1/services", huge.clone(), 413, "body"),
        (reqwest::Method::POST, "/v1/services/rd/operations", huge, 413, "body"),
        (reqwest::Method::POST, "/v1/services", deep, 400, "spec.labels"),
        (reqwest::Method::DELETE, "/v1/services/x?deleteVolumes=maybe", Vec::new(), 400, "deleteVolumes"),
        (reqwest::Method::GET, "/v1/services/rd/logs?follow=2", Vec::new(), 400, "follow"),
        (reqwest::Method::GET, "/v1/services/rd/logs?since=yesterday", Vec::new(), 400, "since"),
        (reqwest::Method::GET, "/v1/services/rd/logs?member=rd-9", Vec::new(), 400, "member"),
        (reqwest::Method::GET, "/v1/services/%FF%FE", Vec::new(), 400, "name"),
        (reqwest::Method::POST, "/v1/services/rd/operations/%C3%28/cancel", Vec::new(), 400, "id"),
    ] {
        let (got, answer) = match l.try_send(method.clone(), path, body) {
            // The rest of an unread body is still on the connection: the client is told not to
            // reuse it (else its next request may meet the server closing it).
            Ok((got, answer, closes)) => {
                assert_eq!(closes, got == 413, "{method} {path}: Connection: close on a 413 only");
                (got, answer)
            }
            // The server may answer 413 and close before the client has written the whole
            // body; the client then sees a broken pipe instead of the answer. Still refused.
            Err(e) if status == 413 && e.is_request() => {
                l.nothing_changed().unwrap();
                continue;
            }
            Err(e) => panic!("{method} {path}: {e:?}"),
        };
        assert_eq!(got, status, "{method} {path}: {}", String::from_utf8_lossy(&answer[..answer.len().min(500)]));
        let e = refusal(got, &answer).unwrap();
        assert!(e.fields.iter().any(|f| f.field == field), "{method} {path}: {e:?}");
        l.nothing_changed().unwrap();
    }
}
