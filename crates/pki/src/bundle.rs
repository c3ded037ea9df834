//! A service's TLS bundle: its CA and one certificate per member, as the key → PEM map a
//! Kubernetes Secret or a directory of files holds (`ca.crt`, `ca.key`, `<member>.crt`,
//! `<member>.key`). One function makes it and keeps it current, so the first start and every
//! later change (a member added, a name or address changed, an expiry near) take one path.
//!
//! `ca.crt` is the bundle of CAs members and clients trust: the CA that signs first, then any
//! other still trusted while a CA is replaced (`crate::rotate`), whose pending successor waits
//! under `ca-next.crt`/`ca-next.key`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::{CaPem, Duration, OffsetDateTime, PkiError, Usage};

pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
/// A CA trusted but not signing yet (between the `add` and `switch` stages of a rotation).
pub const NEXT_CA_CERT: &str = "ca-next.crt";
pub const NEXT_CA_KEY: &str = "ca-next.key";
/// The operation whose rotation the bundle holds, so applying it again changes nothing.
pub const ROTATED_BY: &str = "rotated-by";
/// The keys that belong with the CA (kept out of members' reach on Kubernetes), besides `ca.crt`.
pub const CA_ONLY_KEYS: [&str; 4] = [CA_KEY, NEXT_CA_CERT, NEXT_CA_KEY, ROTATED_BY];
/// A service CA lives ten years; member certificates a year, renewed in their last 30 days.
pub const CA_VALIDITY: Duration = Duration::days(3650);
pub const MEMBER_VALIDITY: Duration = Duration::days(365);
pub const RENEW_BEFORE: Duration = Duration::days(30);

pub fn cert_key(member: &str) -> String {
    format!("{member}.crt")
}

pub fn key_key(member: &str) -> String {
    format!("{member}.key")
}

/// What one member's certificate must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberNames {
    pub member: String,
    pub names: Vec<String>,
    pub ips: Vec<IpAddr>,
}

/// The bundle to store, and the members whose certificates were (re)issued (all of them, and
/// the CA, when there was no bundle).
#[derive(Debug)]
pub struct Bundle {
    pub data: BTreeMap<String, String>,
    pub issued: Vec<String>,
    pub new_ca: bool,
}

/// `existing` kept where it is still good; a CA made when there is none; a certificate issued
/// for each member whose own is missing, names other names or addresses, or expires within
/// [`RENEW_BEFORE`]. Certificates of members no longer listed are dropped. `ca_name` names a
/// new CA (e.g. `FireCamp CA databases/pg`). `what` names the store in errors.
pub fn renew(existing: &BTreeMap<String, String>, ca_name: &str, members: &[MemberNames], now: OffsetDateTime, what: &str) -> Result<Bundle, PkiError> {
    let (ca, new_ca) = match (existing.get(CA_CERT).and_then(|b| pem_certs(b).into_iter().next()), existing.get(CA_KEY)) {
        (Some(cert), Some(key)) => {
            let ca = CaPem { cert, key: key.clone() };
            crate::check_ca(&ca, what)?;
            (ca, false)
        }
        _ => (crate::new_ca(ca_name, CA_VALIDITY, now)?, true),
    };
    let mut data = BTreeMap::from([(CA_KEY.to_string(), ca.key.clone())]);
    if new_ca {
        data.insert(CA_CERT.to_string(), ca.cert.clone());
    } else {
        // The trusted bundle and a rotation under way stay as they are.
        for k in [CA_CERT, NEXT_CA_CERT, NEXT_CA_KEY, ROTATED_BY] {
            if let Some(v) = existing.get(k) {
                data.insert(k.to_string(), v.clone());
            }
        }
    }
    let mut issued = Vec::new();
    for m in members {
        let (ck, kk) = (cert_key(&m.member), key_key(&m.member));
        let kept = match (existing.get(&ck), existing.get(&kk)) {
            (Some(c), Some(k)) if !new_ca && crate::still_good(c, &m.names, &m.ips, RENEW_BEFORE, now) => Some((c.clone(), k.clone())),
            _ => None,
        };
        let (c, k) = match kept {
            Some(pair) => pair,
            None => {
                let leaf = crate::issue(&ca, &m.names, &m.ips, Usage::ServerAndClient, MEMBER_VALIDITY, now)?;
                issued.push(m.member.clone());
                (leaf.cert, leaf.key)
            }
        };
        data.insert(ck, c);
        data.insert(kk, k);
    }
    Ok(Bundle { data, issued, new_ca })
}

/// The certificates of a PEM bundle, each as its own PEM block, in order.
pub fn pem_certs(bundle: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = bundle;
    while let (Some(b), Some(e)) = (rest.find("-----BEGIN CERTIFICATE-----"), rest.find(END)) {
        if e < b {
            rest = &rest[e + END.len()..];
            continue;
        }
        out.push(format!("{}\n", &rest[b..e + END.len()]));
        rest = &rest[e + END.len()..];
    }
    out
}
