//! FireCamp's certificate authorities and what they issue, as pure functions over PEM text:
//! the manage service's own CA (its REST API) and one CA per service (its members' TLS). Keys are
//! ECDSA P-256. Nothing here reads a clock, a file or the network: callers pass `now`.

pub mod bundle;
pub mod rotate;

use std::net::IpAddr;

use rcgen::string::Ia5String;
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
pub use time::{Duration, OffsetDateTime};

/// Tolerated clock skew between the issuer and the verifiers.
const BACKDATE: Duration = Duration::hours(1);

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{what} is not a usable PEM {kind}")]
    Parse { what: String, kind: &'static str },
    #[error("making a certificate: {0}")]
    Make(#[from] rcgen::Error),
    #[error("{0:?} is not a valid DNS name for a certificate")]
    Name(String),
}

/// A CA's certificate and private key, PEM. Its `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct CaPem {
    pub cert: String,
    pub key: String,
}

impl std::fmt::Debug for CaPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaPem").field("cert", &self.cert).field("key", &"<redacted>").finish()
    }
}

/// An issued certificate and its private key (PKCS#8), PEM. Its `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct LeafPem {
    pub cert: String,
    pub key: String,
}

impl std::fmt::Debug for LeafPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafPem").field("cert", &self.cert).field("key", &"<redacted>").finish()
    }
}

fn subject(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// A new CA named `name`, valid `validity` from `now`. It signs leaves only, never another CA.
pub fn new_ca(name: &str, validity: Duration, now: OffsetDateTime) -> Result<CaPem, PkiError> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::default();
    p.distinguished_name = subject(name);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p.not_before = now - BACKDATE;
    p.not_after = now + validity;
    let cert = p.self_signed(&key)?;
    Ok(CaPem { cert: cert.pem(), key: key.serialize_pem() })
}

/// What a leaf is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A server's certificate.
    Server,
    /// A member's: it serves, and it is the client of its peers (replication, cluster bus, quorum).
    ServerAndClient,
}

/// A leaf for `names` and `ips` signed by `ca`, valid `validity` from `now`.
pub fn issue(ca: &CaPem, names: &[String], ips: &[IpAddr], usage: Usage, validity: Duration, now: OffsetDateTime) -> Result<LeafPem, PkiError> {
    let issuer = issuer(ca, "the CA")?;
    let mut p = CertificateParams::default();
    p.distinguished_name = subject(names.first().map(String::as_str).unwrap_or("firecamp"));
    p.subject_alt_names = names
        .iter()
        .map(|n| Ia5String::try_from(n.as_str()).map(SanType::DnsName).map_err(|_| PkiError::Name(n.clone())))
        .chain(ips.iter().map(|ip| Ok(SanType::IpAddress(*ip))))
        .collect::<Result<_, _>>()?;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = match usage {
        Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
        Usage::ServerAndClient => vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
    };
    p.use_authority_key_identifier_extension = true;
    p.not_before = now - BACKDATE;
    p.not_after = now + validity;
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, &issuer)?;
    Ok(LeafPem { cert: cert.pem(), key: key.serialize_pem() })
}

fn issuer(ca: &CaPem, what: &str) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let key = KeyPair::from_pem(&ca.key).map_err(|_| PkiError::Parse { what: format!("{what}'s key"), kind: "private key" })?;
    Issuer::from_ca_cert_pem(&ca.cert, key).map_err(|_| PkiError::Parse { what: format!("{what}'s certificate"), kind: "certificate" })
}

/// Checks that a stored CA can sign: both parts parse. `what` names where they came from.
pub fn check_ca(ca: &CaPem, what: &str) -> Result<(), PkiError> {
    issuer(ca, what).map(|_| ())
}

/// What a stored certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub not_after: OffsetDateTime,
    pub names: Vec<String>,
    pub ips: Vec<IpAddr>,
}

/// The expiry and subject alternative names of a PEM certificate.
pub fn inspect(cert: &str, what: &str) -> Result<CertInfo, PkiError> {
    let bad = || PkiError::Parse { what: what.to_string(), kind: "certificate" };
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert.as_bytes()).map_err(|_| bad())?;
    let x509 = pem.parse_x509().map_err(|_| bad())?;
    let not_after = OffsetDateTime::from_unix_timestamp(x509.validity().not_after.timestamp()).map_err(|_| bad())?;
    let (mut names, mut ips) = (Vec::new(), Vec::new());
    if let Ok(Some(san)) = x509.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                    4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).map_err(|_| bad())?)),
                    16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).map_err(|_| bad())?)),
                    _ => return Err(bad()),
                },
                _ => {}
            }
        }
    }
    Ok(CertInfo { not_after, names, ips })
}

/// Whether a stored leaf still serves: it names exactly `names` and `ips` and lives past
/// `now + renew_before`. A leaf that fails to parse does not.
pub fn still_good(cert: &str, names: &[String], ips: &[IpAddr], renew_before: Duration, now: OffsetDateTime) -> bool {
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    match inspect(cert, "the certificate") {
        Ok(i) => {
            let (mut have_ips, mut want_ips) = (i.ips.clone(), ips.to_vec());
            have_ips.sort();
            want_ips.sort();
            i.not_after > now + renew_before && sorted(i.names) == sorted(names.to_vec()) && have_ips == want_ips
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests;
