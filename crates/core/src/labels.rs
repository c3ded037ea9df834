//! Kubernetes label and annotation keys and values, validated before they reach an API server.

use crate::names::{MAX_LABEL, dns1123_subdomain_problem};

/// Domains whose key prefixes (and their subdomains') Kubernetes and FireCamp give meaning to:
/// `storageclass.kubernetes.io/is-default-class` on a StorageClass, `firecamp.dev/service` in a
/// selector. Users may not set them.
pub const RESERVED_DOMAINS: &[&str] = &["kubernetes.io", "k8s.io", "firecamp.dev"];

/// The reserved domain `prefix` (the part of a key before `/`) is, or is a subdomain of.
pub fn reserved_domain(prefix: &str) -> Option<&'static str> {
    let prefix = prefix.to_ascii_lowercase();
    RESERVED_DOMAINS.iter().copied().find(|d| prefix == *d || prefix.strip_suffix(d).is_some_and(|rest| rest.ends_with('.')))
}

/// Why `key` is not a valid label or annotation key (`[prefix/]name`).
pub fn key_problem(key: &str) -> Option<String> {
    if let Some(domain) = key.split_once('/').and_then(|(prefix, _)| reserved_domain(prefix)) {
        return Some(format!(
            "{key:?}: the prefix {:?} is reserved ({domain} and its subdomains belong to Kubernetes and FireCamp)",
            key.split('/').next().unwrap_or_default()
        ));
    }
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix.and_then(dns1123_subdomain_problem) {
        return Some(format!("the prefix {p}"));
    }
    name_problem(name).map(|p| format!("the name part {p}"))
}

/// Why `value` is not a valid label value (empty, or a name of at most 63 characters).
pub fn value_problem(value: &str) -> Option<String> {
    if value.is_empty() { None } else { name_problem(value) }
}

fn name_problem(s: &str) -> Option<String> {
    if s.is_empty() || s.len() > MAX_LABEL {
        return Some(format!("must be 1 to {MAX_LABEL} characters"));
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Some("may contain only letters, digits, '-', '_' and '.'".into());
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) || !s.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return Some("must start and end with a letter or digit".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values() {
        assert_eq!(key_problem("team"), None);
        assert_eq!(key_problem("example.com/team"), None);
        for reserved in [
            "firecamp.dev/service",
            "x.firecamp.dev/y",
            "kubernetes.io/hostname",
            "app.kubernetes.io/name",
            "storageclass.kubernetes.io/is-default-class",
            "k8s.io/x",
            "node.k8s.io/x",
            "Storageclass.Kubernetes.IO/is-default-class",
        ] {
            let p = key_problem(reserved).unwrap_or_else(|| panic!("{reserved}"));
            assert!(p.contains("reserved") && p.contains(reserved), "{p}");
        }
        for free in ["example.com/team", "mykubernetes.io/x", "k8s.io.example.com/x", "notfirecamp.dev/x", "kubernetes.io"] {
            assert!(key_problem(free).is_none_or(|p| !p.contains("reserved")), "{free}");
        }
        assert!(key_problem("bad key").unwrap().contains("only letters"));
        assert!(key_problem("Bad_Domain/x").unwrap().contains("prefix"));
        assert_eq!(value_problem(""), None);
        assert!(value_problem(&"v".repeat(64)).unwrap().contains("1 to 63"));
    }
}
