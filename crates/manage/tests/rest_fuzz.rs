//! Issue #12, item 9 on the manage service's REST API: property tests over its request bodies
//! and paths, through the in-process router and a fake Kubernetes API (tests/common) that
//! approves every token and records every request. Bodies are arbitrary JSON, arbitrary bytes,
//! and near-valid bodies (a valid one with one field made hostile; see `firecamp_api::fuzz`).
//! Whatever arrives: no panic and no 5xx (a panic would be the catch_panic layer's 500); an
//! accepted body writes exactly the one resource it should; a refused one is a JSON ApiError
//! that names a field (for a near-valid body, the field it changed) and writes nothing; every
//! request Kubernetes sees stays on a FireCampService named by a DNS label.

mod common;

use axum::http::{Method, StatusCode, header};
use common::{App, Seen, confined};
use firecamp_api::fuzz::{NearValid, any_json, create_bodies, hostile_string, names_field, near_valid, operation_bodies, refusal};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

/// Runs `property` over `cases` values of `strategy` on a thread with a 64 MiB stack (deeply
/// nested bodies, and a debug build's strategies), each case a request to one shared router.
fn check<S: Strategy>(
    cases: u32,
    strategy: impl FnOnce() -> S + Send + 'static,
    property: impl Fn(&App, &tokio::runtime::Runtime, S::Value) -> Result<(), TestCaseError> + Send + 'static,
) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let app = {
                let _in = rt.enter();
                App::new()
            };
            let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
            if let Err(e) = runner.run(&strategy(), |v| property(&app, &rt, v)) {
                panic!("{e}");
            }
            // What the cases came to (`cargo test -- --nocapture` shows it).
            println!("{cases} cases, answers by status: {:?}", TALLY.take());
        })
        .unwrap()
        .join()
        .unwrap();
}

fn text(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() > 2000 { format!("{}…", &s[..s.floor_char_boundary(2000)]) } else { s.into_owned() }
}

thread_local! {
    static TALLY: std::cell::RefCell<std::collections::BTreeMap<u16, u32>> = Default::default();
}

fn tally(status: StatusCode) {
    TALLY.with_borrow_mut(|t| *t.entry(status.as_u16()).or_default() += 1);
}

/// What every answer must be: no 5xx; every Kubernetes request confined; a refusal is an
/// ApiError naming a field, and wrote nothing; an acceptance wrote exactly `write`.
fn verdict(status: StatusCode, body: &[u8], seen: &[Seen], accepted: StatusCode, write: &str) -> Result<Option<firecamp_api::ApiError>, TestCaseError> {
    tally(status);
    prop_assert!(!status.is_server_error(), "{status}: {}", text(body));
    if let Some(s) = seen.iter().find(|s| !confined(s)) {
        return Err(TestCaseError::fail(format!("a request left its collection: {s} ({status}: {})", text(body))));
    }
    let writes: Vec<String> = seen.iter().filter(|s| s.is_write()).map(Seen::to_string).collect();
    if status == accepted {
        prop_assert_eq!(writes, vec![write.to_string()], "{}", text(body));
        return Ok(None);
    }
    prop_assert!(status.is_client_error(), "{status}: {}", text(body));
    let e = refusal(status.as_u16(), body).map_err(TestCaseError::fail)?;
    prop_assert!(writes.is_empty(), "refused ({status}: {}) yet written: {writes:?}", e.message);
    Ok(Some(e))
}

const CREATED: &str = "POST /apis/firecamp.dev/v1alpha1/namespaces/default/firecampservices";
const REPLACED: &str = "PUT /apis/firecamp.dev/v1alpha1/namespaces/default/firecampservices/rd";

fn create(app: &App, rt: &tokio::runtime::Runtime, case: NearValid) -> Result<(), TestCaseError> {
    let (status, body, seen) = rt.block_on(app.call(Method::POST, "/v1/services", case.body.clone()));
    if let Some(e) = verdict(status, &body, &seen, StatusCode::CREATED, CREATED)?
        && status == StatusCode::BAD_REQUEST
    {
        prop_assert!(names_field(&e, &case.steps, false), "{:?} changed {} and the refusal names {:?}: {}", case.mutation, case.field, e.fields, e.message);
    }
    Ok(())
}

fn operate(app: &App, rt: &tokio::runtime::Runtime, case: NearValid) -> Result<(), TestCaseError> {
    let (status, body, seen) = rt.block_on(app.call(Method::POST, "/v1/services/rd/operations", case.body.clone()));
    if let Some(e) = verdict(status, &body, &seen, StatusCode::ACCEPTED, REPLACED)?
        && status == StatusCode::BAD_REQUEST
    {
        prop_assert!(names_field(&e, &case.steps, true), "{:?} changed {} and the refusal names {:?}: {}", case.mutation, case.field, e.fields, e.message);
    }
    Ok(())
}

/// The valid bodies the mutations start from are accepted, each writing its one resource.
#[tokio::test]
async fn the_valid_bodies_are_accepted() {
    let app = App::new();
    for b in create_bodies(&ZONES) {
        let (status, body, seen) = app.call(Method::POST, "/v1/services", serde_json::to_vec(&b).unwrap()).await;
        assert_eq!(status, StatusCode::CREATED, "{b}: {}", text(&body));
        assert_eq!(seen.iter().filter(|s| s.is_write()).map(Seen::to_string).collect::<Vec<_>>(), vec![CREATED]);
    }
    for b in operation_bodies() {
        let (status, body, seen) = app.call(Method::POST, "/v1/services/rd/operations", serde_json::to_vec(&b).unwrap()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{b}: {}", text(&body));
        assert_eq!(seen.iter().filter(|s| s.is_write()).map(Seen::to_string).collect::<Vec<_>>(), vec![REPLACED]);
    }
}

#[test]
fn near_valid_create_bodies() {
    check(4000, || near_valid(create_bodies(&ZONES)), create);
}

#[test]
fn near_valid_operation_bodies() {
    check(3000, || near_valid(operation_bodies()), operate);
}

/// Arbitrary JSON and arbitrary bytes as a service and as an operation.
#[test]
fn arbitrary_bodies() {
    let body = || {
        prop_oneof![
            3 => any_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            1 => prop::collection::vec(any::<u8>(), 0..300),
        ]
    };
    check(
        2000,
        move || (any::<bool>(), body()),
        |app, rt, (operation, body)| {
            let (path, accepted, write) =
                if operation { ("/v1/services/rd/operations", StatusCode::ACCEPTED, REPLACED) } else { ("/v1/services", StatusCode::CREATED, CREATED) };
            let (status, answer, seen) = rt.block_on(app.call(Method::POST, path, body));
            verdict(status, &answer, &seen, accepted, write)?;
            Ok(())
        },
    );
}

fn encoded(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// A path segment: a hostile string percent-encoded, or bytes that are not UTF-8.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        // Within what an HTTP server takes as a request line (hyper refuses longer ones itself).
        6 => hostile_string().prop_filter("a path segment", |s| !s.is_empty() && s.len() < 2000).prop_map(|s| encoded(&s)),
        1 => prop::collection::vec(any::<u8>(), 1..12).prop_map(|b| b.iter().map(|b| format!("%{b:02X}")).collect()),
    ]
}

/// Hostile service names, operation ids, namespaces and query values, with every route:
/// answers as above (an undecodable path or query too is a JSON ApiError naming what it could
/// not read), and the names never reach Kubernetes unless they are DNS labels (a
/// `..%2F..%2Fapi%2Fv1%2F…secrets%2Fx` name would otherwise walk out of the collection).
#[test]
fn hostile_paths_and_queries() {
    let name = || {
        prop_oneof![
            2 => Just("rd".to_string()),
            1 => Just(encoded("../../../../../api/v1/namespaces/kube-system/secrets/x")),
            1 => Just(encoded("rd/../../../../../../api/v1/namespaces/default/secrets")),
            4 => segment(),
        ]
    };
    // Every route of a service, and a method no route has.
    let route = || {
        prop::sample::select(vec![
            (Method::GET, ""),
            (Method::DELETE, ""),
            (Method::GET, "/members"),
            (Method::POST, "/stop"),
            (Method::POST, "/start"),
            (Method::GET, "/operations"),
            (Method::POST, "/operations"),
            (Method::GET, "/operations/ID"),
            (Method::POST, "/operations/ID/cancel"),
            (Method::GET, "/logs"),
            (Method::PUT, ""),
        ])
    };
    // A query: the namespace, and every other parameter a route reads, each maybe hostile.
    let query = || {
        let value = || prop_oneof![3 => Just(String::new()), 1 => prop::sample::select(vec!["true", "false", "default", "60", "rd-1"]).prop_map(String::from), 2 => segment()];
        prop::collection::vec((prop::sample::select(vec!["namespace", "deleteVolumes", "member", "since", "follow", "x"]), value()), 0..4)
            .prop_map(|kv| kv.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"))
    };
    check(
        1500,
        move || (route(), name(), segment(), query()),
        |app, rt, ((method, suffix), name, id, query)| {
            let mut uri = format!("/v1/services/{name}{}", suffix.replace("ID", &id));
            if !query.is_empty() {
                uri.push_str(&format!("?{query}"));
            }
            let body = if suffix == "/operations" { br#"{"kind":"restart"}"#.to_vec() } else { Vec::new() };
            let (status, answer, seen) = rt.block_on(app.call(method.clone(), &uri, body));
            tally(status);
            // Logs need CloudWatch, which this manage service was not given.
            if status == StatusCode::NOT_IMPLEMENTED && suffix == "/logs" {
                prop_assert!(refusal(501, &answer).is_ok(), "{}", text(&answer));
                return Ok(());
            }
            prop_assert!(!status.is_server_error(), "{method} {uri}: {status}: {}", text(&answer));
            if let Some(s) = seen.iter().find(|s| !confined(s)) {
                return Err(TestCaseError::fail(format!("{method} {uri}: a request left its collection: {s}")));
            }
            if !status.is_success() {
                refusal(status.as_u16(), &answer).map_err(|e| TestCaseError::fail(format!("{method} {uri}: {e}")))?;
                prop_assert!(seen.iter().all(|s| !s.is_write()), "{method} {uri}: refused ({status}) yet written: {seen:?}");
            }
            Ok(())
        },
    );
}

/// A body over the 2 MiB limit (answered with `Connection: close`), and one nested deeper than the JSON parser goes: refused,
/// naming the body, nothing written.
#[tokio::test]
async fn huge_and_deep_bodies_are_refused_naming_the_body() {
    let app = App::new();
    let huge = format!(r#"{{"name":"rd","spec":{{"engine":"redis","labels":{{"a":"{}"}}}}}}"#, "a".repeat(3 << 20)).into_bytes();
    let deep = format!(r#"{{"name":"rd","spec":{{"engine":"redis","labels":{}1{}}}}}"#, "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    let deep_op = format!(r#"{{"kind":"config","config":{}{}}}"#, "{\"a\":".repeat(100_000), "}".repeat(100_000)).into_bytes();
    for (path, body, status, field) in [
        ("/v1/services", huge.clone(), StatusCode::PAYLOAD_TOO_LARGE, "body"),
        ("/v1/services/rd/operations", huge, StatusCode::PAYLOAD_TOO_LARGE, "body"),
        ("/v1/services", deep, StatusCode::BAD_REQUEST, "spec.labels"),
        ("/v1/services/rd/operations", deep_op, StatusCode::BAD_REQUEST, "config.a"),
    ] {
        let (got, headers, answer, seen) = app.call_with_headers(Method::POST, path, body).await;
        assert_eq!(got, status, "{path}: {}", text(&answer));
        // The unread rest of a body over the limit makes the connection unfit for another request.
        let closes = headers.get(header::CONNECTION).is_some_and(|v| v == "close");
        assert_eq!(closes, got == StatusCode::PAYLOAD_TOO_LARGE, "{path}: Connection: close on a 413 only");
        let e = refusal(got.as_u16(), &answer).unwrap();
        assert!(e.fields.iter().any(|f| f.field == field), "{path}: {e:?}");
        assert!(seen.iter().all(|s| !s.is_write()), "{seen:?}");
    }
}
