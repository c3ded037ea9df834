//! The REST API's own certificate authority, pure: a CA made once and kept in a Secret, and
//! short-lived serving certificates that each replica mints from it in memory, so a serving key
//! never leaves the process that uses it and expiry needs no one's attention.

use std::net::IpAddr;

pub use firecamp_pki::{CaPem, PkiError as CaError};
use firecamp_pki::{Duration, OffsetDateTime, Usage};

/// The Secret's keys (the ConfigMap carries only the first).
pub const CA_CERT_KEY: &str = "ca.crt";
pub const CA_KEY_KEY: &str = "ca.key";
const CA_SUBJECT: &str = "FireCamp manage service CA";
pub const CA_VALIDITY: Duration = Duration::days(3650);
/// A serving certificate lives a week and is replaced daily ([`RENEW_EVERY`]).
pub const SERVING_VALIDITY: Duration = Duration::days(7);
pub const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A new CA for the REST API.
pub fn new_ca(now: OffsetDateTime) -> Result<CaPem, CaError> {
    firecamp_pki::new_ca(CA_SUBJECT, CA_VALIDITY, now)
}

/// Checks that a stored CA can sign. `what` names where it came from.
pub fn check(ca: &CaPem, what: &str) -> Result<(), CaError> {
    firecamp_pki::check_ca(ca, what)
}

/// A serving certificate and its key, DER, ready for rustls.
pub struct Serving {
    pub cert: Vec<u8>,
    /// PKCS#8.
    pub key: Vec<u8>,
}

/// A serving certificate for `names` and `ips`, signed by `ca`, valid [`SERVING_VALIDITY`].
pub fn issue_serving(ca: &CaPem, names: &[String], ips: &[IpAddr], now: OffsetDateTime) -> Result<Serving, CaError> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
    let leaf = firecamp_pki::issue(ca, names, ips, Usage::Server, SERVING_VALIDITY, now)?;
    let bad = |kind| CaError::Parse { what: "the minted certificate".into(), kind };
    let cert = CertificateDer::from_pem_slice(leaf.cert.as_bytes()).map_err(|_| bad("certificate"))?;
    let key = PrivatePkcs8KeyDer::from_pem_slice(leaf.key.as_bytes()).map_err(|_| bad("private key"))?;
    Ok(Serving { cert: cert.to_vec(), key: key.secret_pkcs8_der().to_vec() })
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
    use super::*;

    /// Verification itself is firecamp-pki's test; here: the minted pair is one rustls accepts.
    #[tokio::test]
    async fn a_minted_serving_certificate_and_key_form_a_pair_rustls_serves() {
        let now = OffsetDateTime::now_utc();
        let ca = new_ca(now).unwrap();
        check(&ca, "test").unwrap();
        let names = serving_names("firecamp-manage", "firecamp-system");
        let source = super::super::tls::CertSource::Minted { ca, names, ips: vec!["127.0.0.1".parse().unwrap()] };
        super::super::tls::server_config(source).unwrap();
    }

    #[test]
    fn a_damaged_ca_is_refused_naming_the_part() {
        let ca = new_ca(OffsetDateTime::now_utc()).unwrap();
        let bad_key = CaPem { key: "nonsense".into(), ..ca.clone() };
        let e = check(&bad_key, "Secret firecamp-system/firecamp-manage-ca").unwrap_err().to_string();
        assert!(e.contains("firecamp-manage-ca's key") && e.contains("private key"), "{e}");
        assert!(matches!(issue_serving(&bad_key, &["a".into()], &[], OffsetDateTime::now_utc()), Err(CaError::Parse { .. })));
    }
}
