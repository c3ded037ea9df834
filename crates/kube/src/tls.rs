//! The service's TLS Secrets (`firecamp_pki::bundle`): `<service>-ca`, its CA's certificate and
//! key, which only the manage service reads, and `<service>-tls`, the CA's certificate and one
//! certificate and key per member, which every member's pod mounts whole (so adding a member
//! changes no pod template). The manage service makes and renews their content; what
//! [`secrets`] builds without data are the objects it owns, with placeholders for printing.
//! With `spec.tls.issuer` cert-manager issues the members' certificates ([`certificates`]) and
//! `<service>-tls` is assembled from what it issued; there is no `<service>-ca`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use firecamp_catalog::{MemberPlan, ServicePlan, tls};
use firecamp_pki::bundle::{CA_KEY, CA_ONLY_KEYS, MemberNames};
use k8s_openapi::api::core::v1::Secret;

use crate::certificate::{Certificate, CertificateSpec, IssuerRef, PrivateKey, SecretTemplate};
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
    let mounted = secret(names::tls_secret(&plan.name), mounted_keys(plan));
    // With a cert-manager issuer the CA is the issuer's: FireCamp keeps none.
    if plan.spec.tls.issuer.is_some() {
        return vec![mounted];
    }
    // A CA rotation under way keeps its pending CA and its marker with the CA.
    let mut ca_keys = vec![tls::CA_FILE.to_string(), CA_KEY.to_string()];
    ca_keys.extend(CA_ONLY_KEYS.iter().filter(|k| **k != CA_KEY && data.is_some_and(|d| d.contains_key(**k))).map(|k| k.to_string()));
    vec![secret(names::ca_secret(&plan.name), ca_keys), mounted]
}

/// With `spec.tls.issuer`, one cert-manager Certificate per member, naming what FireCamp's own
/// CA would ([`member_names`]); issued into a Secret of the same name, which carries the
/// service's labels so that it can be told from a stranger's. The key is ECDSA P-256 in PKCS#8
/// (ZooKeeper's PEM key store reads no other encoding), new at every renewal; the usages are
/// server and client (Redis's cluster bus and ZooKeeper's quorum are mutual TLS). Duration and
/// renewal are the issuer's defaults.
pub fn certificates(plan: &ServicePlan) -> Vec<Certificate> {
    let Some(issuer) = plan.spec.tls.issuer.as_ref().filter(|_| plan.tls) else {
        return Vec::new();
    };
    plan.members
        .iter()
        .map(|m| {
            let n = member_names(plan, m);
            let name = names::member_certificate(&m.member.name);
            Certificate {
                metadata: meta::namespaced(plan, name.clone(), labels::common(plan)),
                spec: CertificateSpec {
                    secret_name: name,
                    secret_template: Some(SecretTemplate { labels: labels::common(plan) }),
                    dns_names: n.names,
                    ip_addresses: n.ips.iter().map(|ip| ip.to_string()).collect(),
                    private_key: Some(PrivateKey { algorithm: "ECDSA".into(), size: 256, encoding: "PKCS8".into(), rotation_policy: "Always".into() }),
                    usages: ["digital signature", "server auth", "client auth"].map(String::from).to_vec(),
                    issuer_ref: IssuerRef { group: "cert-manager.io".into(), kind: issuer.kind.as_str().into(), name: issuer.name.clone() },
                },
                status: None,
            }
        })
        .collect()
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

/// What cert-manager issued for one member: its Secret's `tls.crt` (with any intermediates),
/// `tls.key` and `ca.crt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub cert: String,
    pub key: String,
    pub ca: String,
}

impl Issued {
    /// From an issued Secret's data; `None` while any of the three is missing or empty (an
    /// issuer that gives no `ca.crt`, such as ACME's, cannot serve members that verify each other).
    pub fn from_data(data: &BTreeMap<String, String>) -> Option<Issued> {
        let get = |k: &str| data.get(k).filter(|v| !v.trim().is_empty()).cloned();
        Some(Issued { cert: get("tls.crt")?, key: get("tls.key")?, ca: get("ca.crt")? })
    }
}

/// The members' Secret (`<service>-tls`) assembled from what cert-manager issued: each issued
/// member's certificate and key; a member not issued (yet, or being issued again) keeps what
/// `previous` held for it; `ca.crt` every distinct CA the members' certificates come from, in
/// member order (two while the issuer's CA changes under them).
pub fn mounted_from_issued(plan: &ServicePlan, issued: &BTreeMap<String, Issued>, previous: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut cas: Vec<String> = Vec::new();
    for m in &plan.members {
        let member = m.member.name.as_str();
        let (cert_key, key_key) = (tls::cert_file(member), tls::key_file(member));
        match issued.get(member) {
            Some(i) => {
                for ca in firecamp_pki::bundle::pem_certs(&i.ca) {
                    if !cas.contains(&ca) {
                        cas.push(ca);
                    }
                }
                out.insert(cert_key, i.cert.clone());
                out.insert(key_key, i.key.clone());
            }
            None => {
                for k in [cert_key, key_key] {
                    if let Some(v) = previous.get(&k) {
                        out.insert(k, v.clone());
                    }
                }
            }
        }
    }
    if cas.is_empty() {
        if let Some(ca) = previous.get(tls::CA_FILE) {
            out.insert(tls::CA_FILE.to_string(), ca.clone());
        }
    } else {
        out.insert(tls::CA_FILE.to_string(), cas.concat());
    }
    out
}
