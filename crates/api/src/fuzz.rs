//! Generators for property tests over the API's request bodies (feature `fuzz`, for tests
//! only): the manage service's tests and the local runtime's share them. Bodies come in two
//! kinds: arbitrary JSON (and arbitrary bytes), and near-valid bodies, a valid body with one
//! field changed to a hostile value (huge or negative numbers, unicode, control characters,
//! paths, reserved label prefixes, unknown keys, deep nesting, very long strings), which says
//! which field it changed so a test can check that a refusal names it.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::ApiError;

/// The text a [`Mutation::Raw`] value stands for is spliced into the serialized body in place
/// of this string: numbers JSON can write but `serde_json::Value` cannot hold.
const RAW: &str = "\u{1}firecamp-fuzz-raw\u{1}";

/// Strings users type, and strings attackers type.
pub fn hostile_string() -> impl Strategy<Value = String> {
    let fixed: Vec<String> = [
        "",
        " ",
        "..",
        "../../../etc/passwd",
        "/etc/shadow",
        "a/../../b",
        "%2e%2e%2f%2e%2e%2f",
        "C:\\Windows\\system32",
        "$(id)",
        "`reboot`",
        "x; rm -rf / #",
        "a\nloadmodule /tmp/evil.so",
        "a\r\nHost: evil.example",
        "\u{0}",
        "a\u{0}b",
        "\u{7f}\u{1b}[31m",
        "\u{202e}gnp.exe",
        "😀",
        "ß∂ƒ©˙∆˚¬",
        "ｆｕｌｌｗｉｄｔｈ",
        "kubernetes.io/x",
        "firecamp.dev/service",
        "node-role.kubernetes.io/control-plane",
        "x.k8s.io/y",
        "storageclass.kubernetes.io/is-default-class",
        "-1",
        "0",
        "1e309",
        "NaN",
        "Infinity",
        "0x10",
        "1Gi",
        "-1Gi",
        "999999999999999999999999Ti",
        "18446744073709551616",
        "true",
        "null",
        "{}",
        "PrimaryLast",
        "redis",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    prop_oneof![
        4 => prop::sample::select(fixed),
        2 => "[a-z0-9][a-z0-9.-]{0,20}",
        2 => any::<String>(),
        1 => "[\\x00-\\x1f\\x7f]{1,8}",
        1 => "\\PC{1,30}",
        1 => (1u32..=5).prop_map(|k| "a".repeat(10usize.pow(k) + 1)),
        1 => (0usize..300).prop_map(|n| "9".repeat(n + 20)),
    ]
}

/// A value of any JSON type, mostly not the one the field wants.
pub fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => hostile_string().prop_map(Value::from),
        1 => prop::sample::select(vec![json!(u64::MAX), json!(i64::MIN), json!(-1), json!(0), json!(1u64 << 32), json!(1e308), json!(-0.5), json!(1.5)]),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(Value::from),
        1 => prop::sample::select(vec![Value::Null, json!(true), json!(false), json!([]), json!({})]),
        1 => (1usize..300, any::<bool>()).prop_map(|(depth, arrays)| nested(depth, arrays)),
        1 => any_json(),
    ]
}

/// `depth` arrays (or objects) inside each other.
pub fn nested(depth: usize, arrays: bool) -> Value {
    let mut v = json!(1);
    for _ in 0..depth {
        v = if arrays { json!([v]) } else { json!({ "a": v }) };
    }
    v
}

/// Arbitrary JSON whose object keys are mostly the API's own field names.
pub fn any_json() -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        3 => prop::sample::select(
            [
                "name", "spec", "engine", "version", "replicas", "zones", "resources", "requests", "limits", "cpu", "memory", "volumes", "data",
                "journal", "size", "type", "iops", "postgresql", "redis", "zookeeper", "mode", "shards", "updatePolicy", "config",
                "memberConfig", "stopped", "labels", "annotations", "clients", "kind", "policy", "stepTimeoutSeconds",
            ]
            .map(String::from)
            .to_vec()
        ),
        1 => hostile_string(),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(vec!["redis", "postgresql", "zookeeper", "restart", "config", "10Gi", "us-east-1a", "rd-1"]).prop_map(Value::from),
        hostile_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// What a near-valid body changed.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// The field's value replaced.
    Set(Value),
    /// A JSON number (or other text) `serde_json::Value` cannot hold, as written.
    Raw(&'static str),
    /// A key added to the object (an unknown field, or a new key of a map such as `labels`).
    Insert(String, Value),
    /// The field removed.
    Remove,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => hostile_value().prop_map(Mutation::Set),
        1 => prop::sample::select(vec!["1e400", "-1e400", "123456789012345678901234567890", "-0", "1.0e-400", "4294967296", "-4294967297"])
            .prop_map(Mutation::Raw),
        3 => (hostile_string(), hostile_value()).prop_map(|(k, v)| Mutation::Insert(k, v)),
        1 => Just(Mutation::Remove),
    ]
}

/// A near-valid body: its bytes, the field it changed (`spec.zones[1]`, `spec.labels.<key>`,
/// `body` for the whole body) and how.
#[derive(Debug, Clone)]
pub struct NearValid {
    pub body: Vec<u8>,
    pub field: String,
    /// The field's steps, keys as sent (`spec`, `labels`, `a.b/c`); empty for the whole body.
    pub steps: Vec<String>,
    pub mutation: Mutation,
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

fn show(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(if k.is_empty() { "\"\"" } else { k });
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    if s.is_empty() { "body".into() } else { s }
}

fn paths(v: &Value, here: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                here.push(Seg::Key(k.clone()));
                paths(c, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                here.push(Seg::Index(i));
                paths(c, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[Seg]) -> &'a mut Value {
    path.iter().fold(v, |v, seg| match seg {
        Seg::Key(k) => &mut v[k.as_str()],
        Seg::Index(i) => &mut v[*i],
    })
}

/// One of `bases` (valid bodies) with one field, chosen anywhere in it, mutated.
pub fn near_valid(bases: Vec<Value>) -> impl Strategy<Value = NearValid> {
    (prop::sample::select(bases), any::<prop::sample::Index>(), mutation()).prop_map(|(base, pick, m)| mutate(base, &pick, m))
}

fn mutate(mut body: Value, pick: &prop::sample::Index, m: Mutation) -> NearValid {
    let mut all = Vec::new();
    paths(&body, &mut Vec::new(), &mut all);
    let mut path = pick.get(&all).clone();
    let mut raw = None;
    let m = match m {
        Mutation::Insert(k, v) if at(&mut body, &path).is_object() => {
            at(&mut body, &path).as_object_mut().expect("an object").insert(k.clone(), v.clone());
            path.push(Seg::Key(k.clone()));
            Mutation::Insert(k, v)
        }
        Mutation::Remove if !path.is_empty() => {
            let last = path.pop().expect("not the root");
            match (at(&mut body, &path), &last) {
                (Value::Object(o), Seg::Key(k)) => {
                    o.remove(k);
                    // A missing key is named by its own path; an array's element by the array's.
                    path.push(last);
                }
                (Value::Array(a), Seg::Index(i)) => {
                    a.remove(*i);
                }
                _ => unreachable!("paths() follows the value"),
            }
            Mutation::Remove
        }
        Mutation::Raw(text) => {
            *at(&mut body, &path) = Value::from(RAW);
            raw = Some(text);
            Mutation::Raw(text)
        }
        Mutation::Set(v) => {
            *at(&mut body, &path) = v.clone();
            Mutation::Set(v)
        }
        // An insert into a non-object or the removal of the whole body: replace the value.
        Mutation::Insert(_, v) => {
            *at(&mut body, &path) = v.clone();
            Mutation::Set(v)
        }
        Mutation::Remove => {
            body = Value::Null;
            Mutation::Set(Value::Null)
        }
    };
    let mut bytes = serde_json::to_vec(&body).expect("a Value serializes");
    if let Some(text) = raw {
        let placeholder = serde_json::to_string(RAW).expect("a string serializes");
        bytes = String::from_utf8(bytes).expect("JSON is UTF-8").replacen(&placeholder, text, 1).into_bytes();
    }
    let steps = path
        .iter()
        .map(|s| match s {
            Seg::Key(k) => k.clone(),
            Seg::Index(i) => i.to_string(),
        })
        .collect();
    NearValid { body: bytes, field: show(&path), steps, mutation: m }
}

/// Valid `POST /v1/services` bodies, one per engine and mode, with every optional field set.
pub fn create_bodies(zones: &[&str]) -> Vec<Value> {
    let resources = json!({ "requests": { "cpu": "500m", "memory": "1Gi" }, "limits": { "cpu": "2", "memory": "2Gi" } });
    let clients = json!({ "namespaces": ["app"], "cidrs": ["10.0.0.0/8"], "networkPolicy": true });
    vec![
        json!({ "name": "pg", "spec": {
            "engine": "postgresql", "version": "16", "replicas": 3, "zones": zones, "resources": resources,
            "volumes": { "data": { "size": "10Gi", "type": "gp3", "iops": 3000, "throughput": 125, "encrypted": true }, "journal": { "size": "2Gi" } },
            "postgresql": { "replication": "async", "maxConnections": 200 }, "updatePolicy": "PrimaryLast",
            "config": { "work_mem": "8MB" }, "memberConfig": { "pg-1": { "work_mem": "16MB" } },
            "labels": { "team": "db" }, "annotations": { "owner": "alice" }, "clients": clients,
        } }),
        json!({ "name": "rc", "spec": {
            "engine": "redis", "version": "7.2", "replicas": 6, "zones": zones, "resources": resources,
            "volumes": { "data": { "size": "10Gi" } }, "redis": { "mode": "cluster", "shards": 3, "maxmemoryPolicy": "allkeys-lru" },
            "config": { "maxmemory-samples": "5" }, "labels": { "team": "cache" }, "clients": clients,
        } }),
        json!({ "name": "rd", "spec": {
            "engine": "redis", "replicas": 3, "zones": zones, "volumes": { "data": { "size": "1Gi" } },
            "redis": { "mode": "replication" }, "memberConfig": { "rd-2": { "maxclients": "100" } }, "stopped": false,
        } }),
        json!({ "name": "zk", "spec": {
            "engine": "zookeeper", "replicas": 3, "zones": zones, "resources": { "requests": { "memory": "1Gi" } },
            "volumes": { "data": { "size": "10Gi" } }, "zookeeper": { "heap": "512Mi" }, "config": { "tickTime": "2000" },
            "annotations": { "example.com/owner": "alice" },
        } }),
    ]
}

/// Valid `POST …/operations` bodies for a running 3-member Redis replication service `rd`.
pub fn operation_bodies() -> Vec<Value> {
    vec![
        json!({ "kind": "restart", "policy": "PrimaryLast", "stepTimeoutSeconds": 600 }),
        json!({ "kind": "config", "config": { "maxmemory-samples": "10", "timeout": "0" }, "memberConfig": { "rd-1": { "maxclients": "100" } } }),
        json!({ "kind": "resources", "resources": { "requests": { "cpu": "1", "memory": "1Gi" }, "limits": { "memory": "2Gi" } } }),
        json!({ "kind": "upgrade", "version": "7.2", "policy": "PrimaryFirst" }),
        json!({ "kind": "stop" }),
    ]
}

/// Rules across the spec's top level: a change of the first field may be refused at the second.
const CROSS_FIELD: &[(&str, &str)] = &[
    // memberConfig is keyed by member names, `<name>-<i>` for i below replicas.
    ("name", "spec.memberConfig"),
    ("spec.replicas", "spec.memberConfig"),
    // The engine decides the rules of every other field (its options, parameters, versions).
    ("spec.engine", "spec"),
    // An operation's fields belong to its kind.
    ("kind", "config"),
    ("kind", "memberConfig"),
    ("kind", "version"),
    ("kind", "resources"),
];

/// The steps of a field name as refusals write it: `spec.zones[1]`, `spec.labels["a.b/c"]`,
/// `spec.config."\u{7f}"` (keys that are not plain are quoted and escaped as Rust's `{:?}`
/// does) become `spec`, `zones`, `1`, … with every key as it was sent.
fn steps(field: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' | '[' | ']' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            '"' if cur.is_empty() => {
                let mut key = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('n') => key.push('\n'),
                            Some('r') => key.push('\r'),
                            Some('t') => key.push('\t'),
                            Some('0') => key.push('\0'),
                            Some('u') => {
                                let hex: String = chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                                key.extend(u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32));
                            }
                            Some(other) => key.push(other),
                            None => {}
                        },
                        c => key.push(c),
                    }
                }
                out.push(key);
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether the refusal names the field a near-valid body changed (`changed`, its steps), a
/// field inside it or holding it (changing `spec.volumes` may be refused at
/// `spec.volumes.data`), or, below the spec's top level, a sibling (a rule over two fields of
/// one object: without `spec.redis.mode`, `spec.redis.shards` is wrong), or a field whose
/// message names it. An operation's
/// refusals name the spec it would make (`spec.config.x` for the request's `config.x`).
pub fn names_field(e: &ApiError, changed: &[String], operation: bool) -> bool {
    if changed.is_empty() {
        // The whole body was replaced: any field of it will do.
        return !e.fields.is_empty();
    }
    // Keys may hold dots and brackets themselves: compare the pieces between them.
    let pieces =
        |steps: &[String]| -> Vec<String> { steps.iter().flat_map(|s| s.split(['.', '[', ']'])).filter(|p| !p.is_empty()).map(str::to_string).collect() };
    let want = pieces(changed);
    let parent = pieces(&changed[..changed.len() - 1]);
    // A rule over two fields is reported at one, its message naming the other
    // (`spec.resources.requests.cpu: must not exceed spec.resources.limits.cpu`).
    let path = if operation { format!("spec.{}", changed.join(".")) } else { changed.join(".") };
    if e.fields.iter().any(|f| f.message.contains(&path)) {
        return true;
    }
    // A key is quoted only when it needs to be, so a key that starts with `"` is ambiguous:
    // the field is read both ways.
    e.fields.iter().flat_map(|f| [steps(&f.field), vec![f.field.clone()]]).any(|mut got| {
        if operation && got.first().is_some_and(|s| s == "spec" || s.starts_with("spec.")) {
            got[0] = got[0].trim_start_matches("spec").trim_start_matches('.').to_string();
        }
        let got = pieces(&got);
        let split = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        let cross = CROSS_FIELD.iter().any(|(a, b)| want.starts_with(&split(a)) && got.starts_with(&split(b)));
        got.starts_with(&want) || want.starts_with(&got) || (parent.len() >= 2 && got.starts_with(&parent)) || cross
    })
}

/// Every refusal of a body is JSON [`ApiError`] whose code gives its status and, for 400, names
/// at least one field (`fields`), each also in the message. `Err` says what is wrong.
pub fn refusal(status: u16, body: &[u8]) -> Result<ApiError, String> {
    let e: ApiError = serde_json::from_slice(body).map_err(|err| format!("{status} is not an ApiError ({err}): {}", String::from_utf8_lossy(body)))?;
    if e.message.trim().is_empty() {
        return Err(format!("{status} with an empty message: {e:?}"));
    }
    if status == 400 {
        if e.fields.is_empty() {
            return Err(format!("400 naming no field: {e:?}"));
        }
        if let Some(f) = e.fields.iter().find(|f| f.field.is_empty() || !e.message.contains(&f.field)) {
            return Err(format!("400 whose message does not name its field {:?}: {e:?}", f.field));
        }
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FieldErrorBody;

    fn refused(field: &str) -> ApiError {
        ApiError { code: crate::ErrorCode::Invalid, message: field.into(), fields: vec![FieldErrorBody { field: field.into(), message: "m".into() }] }
    }

    fn s(steps: &[&str]) -> Vec<String> {
        steps.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn field_names_are_compared_step_by_step() {
        assert_eq!(steps(r#"spec.annotations["\u{11c38}."]"#), s(&["spec", "annotations", "\u{11c38}."]));
        assert_eq!(steps(r#"spec.config."\u{7f}""#), s(&["spec", "config", "\u{7f}"]));
        assert_eq!(steps(r#"spec.labels["a\"b\n"]"#), s(&["spec", "labels", "a\"b\n"]));
        assert_eq!(steps("spec.zones[1]"), s(&["spec", "zones", "1"]));
        assert!(names_field(&refused(r#"spec.labels["example.com/x"]"#), &s(&["spec", "labels", "example.com/x"]), false));
        assert!(names_field(&refused("spec.volumes.data.size"), &s(&["spec", "volumes"]), false));
        assert!(names_field(&refused("spec.redis"), &s(&["spec", "redis", "mode"]), false));
        assert!(names_field(&refused("spec.redis.shards"), &s(&["spec", "redis", "mode"]), false));
        assert!(names_field(&refused("spec.config.hz"), &s(&["config", "hz"]), true));
        assert!(!names_field(&refused("spec.replicas"), &s(&["spec", "zones", "1"]), false));
        assert!(!names_field(&refused("spec.redis.shards"), &s(&["spec", "replicas"]), false));
        assert!(names_field(&refused("name"), &[], false));
        assert!(names_field(&refused("a..0"), &s(&["a..0"]), false));
        let mut e = refused("spec.resources.requests.cpu");
        e.fields[0].message = "must not exceed spec.resources.limits.cpu".into();
        assert!(names_field(&e, &s(&["resources", "limits", "cpu"]), true));
        assert!(names_field(&refused("\"¡"), &s(&["\"¡"]), true));
        assert!(names_field(&refused("spec.config.\"x"), &s(&["config", "\"x"]), true));
        assert!(names_field(&refused(r#"spec.labels["a.b"]"#), &s(&["spec", "labels", "a.b"]), false));
    }
}
