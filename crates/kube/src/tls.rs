//! The service's TLS Secrets (`firecamp_pki::bundle`): `<service>-ca`, its CA's certificate and
//! key, which only the manage service reads, and `<service>-tls`, the CA's certificate and one
//! certificate and key per member, which every member's pod mounts whole (so adding a member
//! changes no pod template). The manage service makes and renews their content; what
//! [`secrets`] builds without data are the objects it owns, with placeholders for printing.

use std::collections::BTreeMap;
use std::net::IpAddr;

use firecamp_catalog::{MemberPlan, ServicePlan, tls};
use firecamp_pki::bundle::{CA_KEY, CA_ONLY_KEYS, MemberNames};
use k8s_openapi::api::core::v1::Secret;

use crate::{labels, meta, names};

/// What each member's certificate names: its FireCamp DNS name, the service's primary and
/// replicas endpoints (any member may come to hold either role), its pod's names under the
/// headless Service, the client (and replicas) Service's names, `localhost`; its static IP and
/// 127.0.0.1.
pub fn member_names(plan: &ServicePlan, m: &MemberPlan) -> MemberNames {
    let ns = &plan.cluster.namespace;
    let (pod, headless) = (names::pod_of(&m.member.name), names::headless_service(&plan.name));
    let mut dns = vec![m.member.dns_name.clone()];
    dns.extend(plan.endpoints.iter().flat_map(|e| e.names().map(String::from)));
    for suffix in ["svc", "svc.cluster.local"] {
        dns.push(format!("{pod}.{headless}.{ns}.{suffix}"));
    }
    let mut services = vec![names::client_service(&plan.name)];
    services.extend(plan.endpoints.as_ref().map(|_| names::replicas_service(&plan.name)));
    for service in services {
        for suffix in ["svc", "svc.cluster.local"] {
            dns.push(format!("{service}.{ns}.{suffix}"));
        }
    }
    dns.push("localhost".into());
    let mut ips: Vec<IpAddr> = m.member.static_ip.map(IpAddr::from).into_iter().collect();
    ips.push(IpAddr::from([127, 0, 0, 1]));
    MemberNames { member: m.member.name.to_string(), names: dns, ips }
}

/// Every member's names, in member order.
pub fn members_names(plan: &ServicePlan) -> Vec<MemberNames> {
    plan.members.iter().map(|m| member_names(plan, m)).collect()
}

/// What the TLS Secrets hold where they are printed: their content is never printed.
pub const PLACEHOLDER: &str = "<issued by the manage service>";

/// The two Secrets, CA first, from the bundle `data`, or with a placeholder for each key
/// when `None`; none when the engine serves no TLS.
pub fn secrets(plan: &ServicePlan, data: Option<&BTreeMap<String, String>>) -> Vec<Secret> {
    if !plan.tls {
        return Vec::new();
    }
    let value = |k: &str| match data {
        Some(d) => d.get(k).cloned().unwrap_or_default(),
        None => PLACEHOLDER.to_string(),
    };
    let secret = |name: String, keys: Vec<String>| Secret {
        metadata: meta::namespaced(plan, name, labels::common(plan)),
        type_: Some("Opaque".into()),
        string_data: Some(keys.into_iter().map(|k| (k.clone(), value(&k))).collect()),
        ..Default::default()
    };
    // A CA rotation under way keeps its pending CA and its marker with the CA.
    let mut ca_keys = vec![tls::CA_FILE.to_string(), CA_KEY.to_string()];
    ca_keys.extend(CA_ONLY_KEYS.iter().filter(|k| **k != CA_KEY && data.is_some_and(|d| d.contains_key(**k))).map(|k| k.to_string()));
    vec![secret(names::ca_secret(&plan.name), ca_keys), secret(names::tls_secret(&plan.name), mounted_keys(plan))]
}

/// What the members' Secret holds: the CA's certificate, each member's certificate and key.
pub fn mounted_keys(plan: &ServicePlan) -> Vec<String> {
    let mut keys = vec![tls::CA_FILE.to_string()];
    for m in &plan.members {
        keys.push(tls::cert_file(m.member.name.as_str()));
        keys.push(tls::key_file(m.member.name.as_str()));
    }
    keys
}
