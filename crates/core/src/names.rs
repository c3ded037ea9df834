//! Name rules and the limits that follow from the names FireCamp derives from a service name.
//!
//! A service name `s` becomes, among others:
//! - member and pod names `s-<i>` (DNS-1123 labels, at most 63 characters);
//! - the StatefulSet `s`, whose pods carry the label `controller-revision-hash=s-<hash>`; the
//!   hash is a 32-bit FNV sum encoded in up to 10 characters, and a label value is at most 63
//!   characters, so a StatefulSet name longer than 52 characters yields pods that cannot be created;
//! - the headless Service `s-headless` (a DNS-1035 label, at most 63 characters);
//! - PVC names `<volume>-s-<i>` (DNS-1123 subdomains, 253 characters: never the binding limit);
//! - the member's DNS name `s-<i>.<namespace>.<cluster>-firecamp.com` (labels of 63, names of 253
//!   characters; with a namespace of 63 still far from 253, so the label limits bind).

/// Longest DNS label (RFC 1035, Kubernetes label values, Service names).
pub const MAX_LABEL: usize = 63;
/// Longest DNS name / DNS-1123 subdomain.
pub const MAX_DNS_NAME: usize = 253;
/// `-<hash>` the StatefulSet controller appends in `controller-revision-hash` (hash ≤ 10 chars).
pub const REVISION_HASH_SUFFIX: usize = 11;
/// Suffix of the headless Service that governs the StatefulSet.
pub const HEADLESS_SUFFIX: &str = "-headless";
/// Suffix of the cluster's DNS zone: `<cluster>-firecamp.com`.
pub const DOMAIN_SUFFIX: &str = "-firecamp.com";
/// Most members a service may have; keeps ordinals at two digits and the limits simple.
pub const MAX_MEMBERS: u32 = 99;

/// Longest service name allowed for a service of up to `max_members` members in `cluster`.
pub fn max_service_name_len(max_members: u32, cluster: &str) -> usize {
    let ordinal_digits = digits(max_members.saturating_sub(1));
    let member_label = MAX_LABEL - 1 - ordinal_digits; // `s-<i>` is a label
    let revision_label = MAX_LABEL - REVISION_HASH_SUFFIX; // `s-<hash>` is a label value
    let headless = MAX_LABEL - HEADLESS_SUFFIX.len(); // `s-headless` is a Service name
    // `s-<i>.<cluster>-firecamp.com` is a DNS name.
    let domain = cluster.len() + DOMAIN_SUFFIX.len();
    let dns = MAX_DNS_NAME.saturating_sub(domain + 1 + 1 + ordinal_digits);
    member_label.min(revision_label).min(headless).min(dns)
}

/// Longest cluster name: `<cluster>-firecamp` must be one DNS label.
pub const MAX_CLUSTER_NAME: usize = MAX_LABEL - "-firecamp".len();

fn digits(n: u32) -> usize {
    n.to_string().len()
}

/// Why a string is not a DNS-1035 label (lowercase letters, digits and '-', starting with a letter,
/// ending with a letter or digit), or `None` when it is one.
pub fn dns1035_label_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("must not be empty".into());
    }
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Some("must start with a lowercase letter (a-z)".into());
    }
    dns1123_label_problem(s)
}

/// Why a string is not a DNS-1123 label, or `None` when it is one.
pub fn dns1123_label_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("must not be empty".into());
    }
    if s.len() > MAX_LABEL {
        return Some(format!("must be at most {MAX_LABEL} characters, got {}", s.len()));
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Some(format!("may contain only lowercase letters, digits and '-', found {c:?}"));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Some("must start and end with a letter or digit".into());
    }
    None
}

/// Why a string is not a DNS-1123 subdomain (dot-separated labels, 253 characters at most).
pub fn dns1123_subdomain_problem(s: &str) -> Option<String> {
    if s.len() > MAX_DNS_NAME {
        return Some(format!("must be at most {MAX_DNS_NAME} characters, got {}", s.len()));
    }
    s.split('.').find_map(dns1123_label_problem).map(|p| format!("each dot-separated part {p}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_set_by_the_revision_hash_label() {
        assert_eq!(max_service_name_len(MAX_MEMBERS, "prod"), 52);
        assert_eq!(max_service_name_len(1, "prod"), 52);
    }

    #[test]
    fn longest_cluster_name_keeps_member_dns_names_legal() {
        // With the longest cluster name the DNS name is still far from 253 characters.
        let cluster = "c".repeat(MAX_CLUSTER_NAME);
        assert_eq!(max_service_name_len(MAX_MEMBERS, &cluster), 52);
        assert_eq!(format!("{cluster}-firecamp").len(), MAX_LABEL);
    }

    #[test]
    fn labels() {
        assert_eq!(dns1035_label_problem("pg"), None);
        assert_eq!(dns1035_label_problem("pg-1a"), None);
        assert!(dns1035_label_problem("1pg").unwrap().contains("start with a lowercase letter"));
        assert!(dns1035_label_problem("Pg").unwrap().contains("start with a lowercase letter"));
        assert!(dns1035_label_problem("pg_1").unwrap().contains("'_'"));
        assert!(dns1035_label_problem("pg-").unwrap().contains("end with"));
        assert!(dns1035_label_problem(&"a".repeat(64)).unwrap().contains("at most 63"));
        assert_eq!(dns1123_subdomain_problem("firecamp.ns.pg.data.us-east-1a"), None);
        assert!(dns1123_subdomain_problem("a..b").is_some());
    }
}
