//! Engine parameters a service sets itself: `spec.config` for every member and
//! `spec.memberConfig[member]` for one (the member's value wins). They are appended to each
//! engine's own config file, after FireCamp's lines, so they take effect over FireCamp's
//! defaults (PostgreSQL, Redis and ZooKeeper all keep the last value of a key).
//!
//! Only the tuning parameters of each engine's allow-list are accepted, each value parsed as
//! its type and range: a config file is code to an engine (PostgreSQL's `archive_command`,
//! Redis's `loadmodule`, ZooKeeper's system properties), and whoever may create a service must
//! not get a shell in its pods from it.

pub mod cassandra;
pub mod kafka;
mod kind;
pub mod mariadb;
pub mod postgresql;
pub mod redis;
pub mod zookeeper;

use std::collections::BTreeMap;

use firecamp_core::{EngineKind, ServiceSpec, ValidationErrors, member::MemberName};

pub use kind::{Kind, Param};

use crate::engine::Engine;
use crate::render::Conf;

/// The parameters of one member: `config` overlaid with `memberConfig[member]`.
pub fn effective(spec: &ServiceSpec, member: &str) -> BTreeMap<String, String> {
    let mut out = spec.config.clone();
    if let Some(own) = spec.member_config.get(member) {
        out.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out
}

/// The parameters a service of `kind` may set.
pub fn allowed(kind: EngineKind) -> &'static [Param] {
    match kind {
        EngineKind::Postgresql => postgresql::PARAMS,
        EngineKind::Redis => redis::PARAMS,
        EngineKind::Zookeeper => zookeeper::PARAMS,
        EngineKind::Kafka => kafka::PARAMS,
        EngineKind::Mariadb => mariadb::PARAMS,
        EngineKind::Cassandra => cassandra::PARAMS,
    }
}

/// The allowed parameter `key` of `kind`, if it is one.
pub fn lookup(kind: EngineKind, key: &str) -> Option<&'static Param> {
    allowed(kind).iter().find(|p| p.key == key)
}

fn engine_name(kind: EngineKind) -> &'static str {
    match kind {
        EngineKind::Postgresql => "PostgreSQL",
        EngineKind::Redis => "Redis",
        EngineKind::Zookeeper => "ZooKeeper",
        EngineKind::Kafka => "Kafka",
        EngineKind::Mariadb => "MariaDB",
        EngineKind::Cassandra => "Cassandra",
    }
}

/// Where the docs list the parameters of `kind`.
pub fn docs_anchor(kind: EngineKind) -> String {
    format!("docs/service-spec.md#{}-parameters", kind.as_str())
}

/// A key or member as it appears in a field name: as given, unless it holds characters a
/// terminal would act on.
fn shown(s: &str) -> String {
    if s.chars().any(char::is_control) { format!("{s:?}") } else { s.to_string() }
}

/// At most 40 characters of a value, for messages.
fn clipped(v: &str) -> String {
    let cut: String = v.chars().take(40).collect();
    if cut.len() < v.len() { format!("{cut:?}…") } else { format!("{cut:?}") }
}

fn check(eng: &dyn Engine, field: &str, key: &str, value: &str, errs: &mut ValidationErrors) {
    let kind = eng.kind();
    if let Some(why) = eng.owned_config_key(key) {
        errs.push(field, format!("FireCamp sets {key} itself: {why}"));
        return;
    }
    let Some(param) = lookup(kind, key) else {
        let near = allowed(kind).iter().find(|p| close(p.key, key)).map(|p| format!("did you mean {}? ", p.key)).unwrap_or_default();
        errs.push(field, format!("{} is not an allowed {} parameter; {near}allowed: see {}", clipped(key), engine_name(kind), docs_anchor(kind)));
        return;
    };
    if value.is_empty() {
        errs.push(field, "an empty value; leave the key out instead");
    } else if let Err(want) = param.check(value) {
        errs.push(field, format!("{} is not valid: {key} takes {want}", clipped(value)));
    }
}

/// Whether two keys differ by at most two single-character edits (a typo).
fn close(a: &str, b: &str) -> bool {
    if a.len().abs_diff(b.len()) > 2 || b.len() > 64 {
        return false;
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()] <= if a.len() < 6 { 1 } else { 2 }
}

/// The Markdown table of the parameters of `kind`, as docs/service-spec.md shows it (a test
/// keeps the two the same).
pub fn docs_table(kind: EngineKind) -> String {
    let mut out = String::from("| parameter | value |\n| --- | --- |\n");
    for p in allowed(kind) {
        out.push_str(&format!("| `{}` | {} |\n", p.key, p.describe()));
    }
    out
}

/// Every key of `config` and `memberConfig` is a parameter FireCamp lets the service set, and
/// every member of `memberConfig` is a member of the service.
pub fn validate(name: &str, spec: &ServiceSpec, eng: &dyn Engine, errs: &mut ValidationErrors) {
    for (k, v) in &spec.config {
        check(eng, &format!("spec.config.{}", shown(k)), k, v, errs);
    }
    // At most the largest service's members: `replicas` is not validated yet, and 4 billion
    // names would hold the caller for minutes.
    let members: Vec<String> = (0..spec.replicas.min(firecamp_core::names::MAX_MEMBERS)).map(|i| MemberName::new(name, i).to_string()).collect();
    for (m, params) in &spec.member_config {
        if !members.contains(m) {
            errs.push(
                format!("spec.memberConfig.{}", shown(m)),
                format!("{} is not a member of service {name:?}; members: {}", clipped(m), members.join(", ")),
            );
        }
        for (k, v) in params {
            check(eng, &format!("spec.memberConfig.{}.{}", shown(m), shown(k)), k, v, errs);
        }
    }
}

/// Appends the member's parameters as a last section; nothing when there are none, so a spec
/// without parameters renders exactly as before.
pub(crate) fn append(c: &mut Conf, spec: &ServiceSpec, member: &str, value: impl Fn(&str) -> String) {
    let params = effective(spec, member);
    if params.is_empty() {
        return;
    }
    c.section("Engine parameters of the service (spec.config, spec.memberConfig); they win over the lines above.");
    for (k, v) in &params {
        c.set(k, value(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::examples::spec;
    use firecamp_core::EngineKind;

    #[test]
    fn the_member_value_wins() {
        let mut s = spec(EngineKind::Postgresql, 3);
        s.config.insert("work_mem".into(), "8MB".into());
        s.config.insert("log_min_duration_statement".into(), "100".into());
        s.member_config.insert("pg-1".into(), BTreeMap::from([("work_mem".into(), "16MB".into())]));
        assert_eq!(effective(&s, "pg-1")["work_mem"], "16MB");
        assert_eq!(effective(&s, "pg-0")["work_mem"], "8MB");
        assert_eq!(effective(&s, "pg-1")["log_min_duration_statement"], "100");
    }

    #[test]
    fn typos_are_close() {
        assert!(close("work_mem", "work_mme") && close("hz", "h") && !close("work_mem", "loadmodule"));
    }
}
