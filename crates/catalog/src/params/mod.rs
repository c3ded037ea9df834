//! Engine parameters a service sets itself: `spec.config` for every member and
//! `spec.memberConfig[member]` for one (the member's value wins). They are checked here and
//! appended to each engine's own config file, after FireCamp's lines, so they take effect over
//! FireCamp's defaults (PostgreSQL, Redis and ZooKeeper all keep the last value of a key).

use std::collections::BTreeMap;

use firecamp_core::{ServiceSpec, ValidationErrors, member::MemberName};

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

/// PostgreSQL and Redis names: lower case letters, digits, `_`, `.` and `-`.
pub fn lower_key_ok(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'))
}

/// ZooKeeper names are camelCase (`tickTime`, `autopurge.snapRetainCount`).
pub fn mixed_key_ok(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn check(eng: &dyn Engine, field: &str, key: &str, value: &str, errs: &mut ValidationErrors) {
    if !eng.config_key_ok(key) {
        errs.push(field, format!("{key:?} is not a parameter name for {} (allowed characters: {})", eng.kind(), eng.config_key_chars()));
        return;
    }
    if let Some(why) = eng.owned_config_key(key) {
        errs.push(field, format!("FireCamp sets {key} itself: {why}"));
    }
    if value.is_empty() {
        errs.push(field, "an empty value; leave the key out instead");
    } else if value.chars().any(|c| c.is_control()) {
        errs.push(field, "the value must be one line without control characters");
    }
}

/// Every key of `config` and `memberConfig` is a parameter FireCamp lets the service set, and
/// every member of `memberConfig` is a member of the service.
pub fn validate(name: &str, spec: &ServiceSpec, eng: &dyn Engine, errs: &mut ValidationErrors) {
    for (k, v) in &spec.config {
        check(eng, &format!("spec.config.{k}"), k, v, errs);
    }
    let members: Vec<String> = (0..spec.replicas).map(|i| MemberName::new(name, i).to_string()).collect();
    for (m, params) in &spec.member_config {
        if !members.contains(m) {
            errs.push(format!("spec.memberConfig.{m}"), format!("{m:?} is not a member of service {name:?}; members: {}", members.join(", ")));
        }
        for (k, v) in params {
            check(eng, &format!("spec.memberConfig.{m}.{k}"), k, v, errs);
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
    fn key_syntax() {
        assert!(lower_key_ok("work_mem") && lower_key_ok("maxmemory-policy") && lower_key_ok("pg_stat_statements.max"));
        assert!(!lower_key_ok("Work_Mem") && !lower_key_ok("a b") && !lower_key_ok("") && !lower_key_ok("x=y"));
        assert!(mixed_key_ok("tickTime") && !mixed_key_ok("tick time"));
    }
}
