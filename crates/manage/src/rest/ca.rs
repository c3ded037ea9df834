//! The REST API's own certificate authority, pure: a CA made once and kept in a Secret, and
//! short-lived serving certificates that each replica mints from it in memory, so a serving key
//! never leaves the process that uses it and expiry needs no one's attention.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, string::Ia5String,
};
use time::{Duration, OffsetDateTime};

/// The Secret's keys (the ConfigMap carries only the first).
pub const CA_CERT_KEY: &str = "ca.crt";
pub const CA_KEY_KEY: &str = "ca.key";
/// The CA's subject. Leaves name it as their issuer, so it never changes.
const CA_SUBJECT: &str = "FireCamp manage service CA";
pub const CA_VALIDITY: Duration = Duration::days(3650);
/// A serving certificate lives a week and is replaced daily ([`RENEW_EVERY`]).
pub const SERVING_VALIDITY: Duration = Duration::days(7);
pub const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// Tolerated clock skew between the replicas and their clients.
const BACKDATE: Duration = Duration::hours(1);

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{what} is not a usable PEM {kind}: {source}")]
    Parse { what: String, kind: &'static str, source: rcgen::Error },
    #[error("making a certificate: {0}")]
    Make(#[from] rcgen::Error),
    #[error("{0:?} is not a valid DNS name for a certificate")]
    Name(String),
}

/// A CA's certificate and private key, PEM.
#[derive(Clone)]
pub struct CaPem {
    pub cert: String,
    pub key: String,
}

impl std::fmt::Debug for CaPem {
    // The key stays out of logs and errors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaPem").field("cert", &self.cert).field("key", &"<redacted>").finish()
    }
}

fn subject(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// The CA's parameters; the issuer of every leaf is rebuilt from them with the stored key.
fn ca_params(now: OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = subject(CA_SUBJECT);
    // It signs serving certificates only, never another CA.
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p.not_before = now - BACKDATE;
    p.not_after = now + CA_VALIDITY;
    p
}

/// A new CA (ECDSA P-256).
pub fn new_ca(now: OffsetDateTime) -> Result<CaPem, CaError> {
    let key = KeyPair::generate()?;
    let cert = ca_params(now).self_signed(&key)?;
    Ok(CaPem { cert: cert.pem(), key: key.serialize_pem() })
}

/// Checks that a stored CA can sign: both parts parse. `what` names where they came from.
pub fn check(ca: &CaPem, what: &str) -> Result<(), CaError> {
    KeyPair::from_pem(&ca.key).map_err(|source| CaError::Parse { what: format!("{what} {CA_KEY_KEY}"), kind: "private key", source })?;
    rustls_pki_cert(&ca.cert).map_err(|source| CaError::Parse { what: format!("{what} {CA_CERT_KEY}"), kind: "certificate", source })?;
    Ok(())
}

fn rustls_pki_cert(pem: &str) -> Result<(), rcgen::Error> {
    use tokio_rustls::rustls::pki_types::{CertificateDer, pem::PemObject};
    CertificateDer::from_pem_slice(pem.as_bytes()).map(|_| ()).map_err(|_| rcgen::Error::CouldNotParseCertificate)
}

/// A serving certificate and its key, DER, ready for rustls.
pub struct Serving {
    pub cert: Vec<u8>,
    /// PKCS#8.
    pub key: Vec<u8>,
}

/// A serving certificate for `names` and `ips`, signed by `ca`, valid [`SERVING_VALIDITY`].
pub fn issue_serving(ca: &CaPem, names: &[String], ips: &[IpAddr], now: OffsetDateTime) -> Result<Serving, CaError> {
    let ca_key = KeyPair::from_pem(&ca.key).map_err(|source| CaError::Parse { what: "the CA".into(), kind: "private key", source })?;
    let issuer = Issuer::new(ca_params(now), ca_key);
    let mut p = CertificateParams::default();
    p.distinguished_name = subject(names.first().map(String::as_str).unwrap_or("firecamp-manage"));
    p.subject_alt_names = names
        .iter()
        .map(|n| Ia5String::try_from(n.as_str()).map(SanType::DnsName).map_err(|_| CaError::Name(n.clone())))
        .chain(ips.iter().map(|ip| Ok(SanType::IpAddress(*ip))))
        .collect::<Result<_, _>>()?;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    p.not_before = now - BACKDATE;
    p.not_after = now + SERVING_VALIDITY;
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, &issuer)?;
    Ok(Serving { cert: cert.der().to_vec(), key: key.serialize_der() })
}

/// The names a manage service in `namespace` is reached by: its Service's DNS names, and
/// `localhost` for a port-forward.
pub fn serving_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
        "localhost".to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio_rustls::rustls::client::WebPkiServerVerifier;
    use tokio_rustls::rustls::client::danger::ServerCertVerifier;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use tokio_rustls::rustls::{RootCertStore, crypto::ring};

    use super::*;

    fn verifier(ca: &CaPem) -> Arc<WebPkiServerVerifier> {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(ca.cert.as_bytes()).unwrap()).unwrap();
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::new(ring::default_provider())).build().unwrap()
    }

    fn verify(ca: &CaPem, leaf: &Serving, name: &str, at: OffsetDateTime) -> Result<(), String> {
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(at.unix_timestamp() as u64));
        verifier(ca)
            .verify_server_cert(&CertificateDer::from(leaf.cert.clone()), &[], &ServerName::try_from(name.to_string()).unwrap(), &[], at)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_serving_certificate_verifies_for_its_names_and_ips_only_and_only_while_valid() {
        let now = OffsetDateTime::now_utc();
        let ca = new_ca(now).unwrap();
        check(&ca, "test").unwrap();
        let names = serving_names("firecamp-manage", "firecamp-system");
        let ips: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "10.244.1.7".parse().unwrap()];
        let leaf = issue_serving(&ca, &names, &ips, now).unwrap();
        for name in names.iter().map(String::as_str).chain(["127.0.0.1", "10.244.1.7"]) {
            verify(&ca, &leaf, name, now).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        for other in ["firecamp-manage.other", "example.com", "10.244.1.8"] {
            assert!(verify(&ca, &leaf, other, now).is_err(), "{other} must not verify");
        }
        assert!(verify(&ca, &leaf, "localhost", now + SERVING_VALIDITY + Duration::hours(1)).is_err(), "expired");
        // A leaf from another CA does not verify against this one.
        let other = new_ca(now).unwrap();
        let foreign = issue_serving(&other, &names, &ips, now).unwrap();
        assert!(verify(&ca, &foreign, "localhost", now).is_err());
        // The CA's key stays out of Debug output.
        assert!(!format!("{ca:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn a_damaged_ca_is_refused_naming_the_part() {
        let ca = new_ca(OffsetDateTime::now_utc()).unwrap();
        let bad_key = CaPem { key: "nonsense".into(), ..ca.clone() };
        let e = check(&bad_key, "Secret firecamp-system/firecamp-manage-ca").unwrap_err().to_string();
        assert!(e.contains("firecamp-manage-ca ca.key") && e.contains("private key"), "{e}");
        let bad_cert = CaPem { cert: "nonsense".into(), ..ca };
        let e = check(&bad_cert, "Secret x/y").unwrap_err().to_string();
        assert!(e.contains("y ca.crt"), "{e}");
        assert!(matches!(issue_serving(&bad_key, &["a".into()], &[], OffsetDateTime::now_utc()), Err(CaError::Parse { .. })));
    }
}
