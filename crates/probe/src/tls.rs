//! TLS to members: trust only the service's CA and check the certificate against the member's
//! expected name (its DNS name), whatever address is dialed. FireCamp reaches members by a pod IP
//! or a static IP that the certificate need not name, so the name to verify is given, never taken
//! from the address.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::Digest;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How to reach a member over TLS: the service's CA certificate(s), PEM (during a CA rotation,
/// both CAs one after the other), and the name the member's certificate must carry (a DNS name,
/// or an IP address when the certificate names one). Its `Debug` shows only the name.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub ca_pem: String,
    pub server_name: String,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

/// TLS settings that cannot be used (before any connection).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the service's CA is not a usable PEM certificate")]
    Ca,
    #[error("{0:?} is not a valid server name for TLS")]
    Name(String),
    #[error("building the TLS client: {0}")]
    Config(String),
}

/// A rustls client (ring) that trusts only the CA certificates in `ca_pem` and accepts only a
/// certificate valid for `server_name`, whatever name or address the caller connects with.
pub fn client_config(ca_pem: &str, server_name: &str) -> Result<Arc<ClientConfig>, TlsError> {
    let verifier = verifier(ca_pem, server_name)?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn verifier(ca_pem: &str, server_name: &str) -> Result<ExpectedName, TlsError> {
    let name = ServerName::try_from(server_name.to_string()).map_err(|_| TlsError::Name(server_name.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.map_err(|_| TlsError::Ca)?).map_err(|_| TlsError::Ca)?;
    }
    if roots.is_empty() {
        return Err(TlsError::Ca);
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider()).build().map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(ExpectedName { inner, name })
}

/// rustls' WebPKI verification against the service's CA, for the expected name instead of the
/// one the connection was opened with.
#[derive(Debug)]
struct ExpectedName {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for ExpectedName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _dialed: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A handshake that failed; `verification` when the member's certificate was refused.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HandshakeError {
    pub verification: bool,
    pub message: String,
}

impl HandshakeError {
    fn from_io(e: std::io::Error, name: &str) -> Self {
        match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            Some(r) => Self::from_rustls(r, name),
            None => HandshakeError { verification: false, message: format!("TLS handshake with {name} failed: {e}") },
        }
    }

    /// The rustls error somewhere in `e`'s chain of sources (a client library's own error
    /// wrapping the handshake's), as a handshake error; `None` when TLS played no part.
    pub(crate) fn find_in(e: &(dyn std::error::Error + 'static), name: &str) -> Option<Self> {
        let mut cur = Some(e);
        while let Some(err) = cur {
            if let Some(r) = err.downcast_ref::<rustls::Error>() {
                return Some(Self::from_rustls(r, name));
            }
            if let Some(r) = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(Self::from_rustls(r, name));
            }
            cur = err.source();
        }
        None
    }

    fn from_rustls(r: &rustls::Error, name: &str) -> Self {
        match r {
            rustls::Error::InvalidCertificate(c) => {
                let message = match c {
                    CertificateError::UnknownIssuer => {
                        format!("TLS verification failed: the member's certificate is not signed by the service's CA (unknown issuer; expected {name})")
                    }
                    // Another CA of the same name (a service deleted and made again) signed it.
                    CertificateError::BadSignature => format!(
                        "TLS verification failed: the member's certificate is not signed by the service's CA (bad signature: another CA of the same name?; expected {name})"
                    ),
                    CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                        format!("TLS verification failed: wrong server name: {c}")
                    }
                    other => format!("TLS verification failed for {name}: {other}"),
                };
                HandshakeError { verification: true, message }
            }
            other => HandshakeError { verification: false, message: format!("TLS handshake with {name} failed: {other}") },
        }
    }
}

/// The client side of a member's TLS: a config from [`client_config`] and the name it checks,
/// also sent as SNI.
#[derive(Clone)]
pub(crate) struct Connector {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl Connector {
    pub(crate) fn new(s: &TlsSettings) -> Result<Self, TlsError> {
        let config = client_config(&s.ca_pem, &s.server_name)?;
        let name = ServerName::try_from(s.server_name.clone()).map_err(|_| TlsError::Name(s.server_name.clone()))?;
        Ok(Connector { config, name })
    }

    pub(crate) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(&self, stream: S) -> Result<TlsStream<S>, HandshakeError> {
        let name = self.name.to_str().into_owned();
        TlsConnector::from(self.config.clone()).connect(self.name.clone(), stream).await.map_err(|e| HandshakeError::from_io(e, &name))
    }
}

/// RFC 5929 `tls-server-end-point` of a server certificate (DER): its hash with the hash of its
/// signature algorithm (SHA-256 for MD5 and SHA-1). `None` for an algorithm without one here
/// (RSA-PSS, EdDSA), which makes SCRAM run without channel binding.
pub(crate) fn tls_server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    const SHA256: [&[u8]; 5] = [
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04], // md5WithRSAEncryption
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05], // sha1WithRSAEncryption
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b], // sha256WithRSAEncryption
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01],             // ecdsa-with-SHA1
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],       // ecdsa-with-SHA256
    ];
    const SHA384: [&[u8]; 2] = [&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c], &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03]];
    const SHA512: [&[u8]; 2] = [&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d], &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04]];
    let oid = signature_algorithm(cert)?;
    if SHA256.contains(&oid) {
        Some(sha2::Sha256::digest(cert).to_vec())
    } else if SHA384.contains(&oid) {
        Some(sha2::Sha384::digest(cert).to_vec())
    } else if SHA512.contains(&oid) {
        Some(sha2::Sha512::digest(cert).to_vec())
    } else {
        None
    }
}

/// The OID of a certificate's `signatureAlgorithm` (Certificate ::= SEQUENCE { tbsCertificate,
/// signatureAlgorithm AlgorithmIdentifier, signature }).
fn signature_algorithm(cert: &[u8]) -> Option<&[u8]> {
    let (0x30, cert, _) = der(cert)? else { return None };
    let (0x30, _tbs, rest) = der(cert)? else { return None };
    let (0x30, algorithm, _) = der(rest)? else { return None };
    let (0x06, oid, _) = der(algorithm)? else { return None };
    Some(oid)
}

/// One DER element: (tag, contents, what follows).
fn der(d: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, d) = d.split_first()?;
    let (&first, d) = d.split_first()?;
    let (len, d) = if first < 0x80 {
        (usize::from(first), d)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || d.len() < n {
            return None;
        }
        (d[..n].iter().fold(0usize, |len, b| len << 8 | usize::from(*b)), &d[n..])
    };
    (d.len() >= len).then(|| (tag, &d[..len], &d[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(names: &[&str]) -> (firecamp_pki::CaPem, firecamp_pki::LeafPem) {
        issued_by("FireCamp CA test", names)
    }

    fn issued_by(ca_name: &str, names: &[&str]) -> (firecamp_pki::CaPem, firecamp_pki::LeafPem) {
        let now = firecamp_pki::OffsetDateTime::now_utc();
        let ca = firecamp_pki::new_ca(ca_name, firecamp_pki::Duration::days(1), now).unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let leaf = firecamp_pki::issue(&ca, &names, &[], firecamp_pki::Usage::ServerAndClient, firecamp_pki::Duration::days(1), now).unwrap();
        (ca, leaf)
    }

    fn der_of(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn the_expected_name_is_checked_whatever_address_is_dialed() {
        let (ca, leaf) = issued(&["pg-0.db.prod-firecamp.com"]);
        let cert = der_of(&leaf.cert);
        let dialed = ServerName::try_from("10.0.0.7").unwrap();
        let verify = |ca: &str, name: &str| verifier(ca, name).unwrap().verify_server_cert(&cert, &[], &dialed, &[], UnixTime::now());
        assert!(verify(&ca.cert, "pg-0.db.prod-firecamp.com").is_ok());
        let wrong = verify(&ca.cert, "pg-1.db.prod-firecamp.com").unwrap_err();
        assert!(matches!(wrong, rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })), "{wrong:?}");
        let (other_ca, _) = issued_by("FireCamp CA other", &["x"]);
        let unknown = verify(&other_ca.cert, "pg-0.db.prod-firecamp.com").unwrap_err();
        assert_eq!(unknown, rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer));
        // A CA of the same name (the service made again) is found, and its signature refused.
        let (same_name, _) = issued(&["x"]);
        let forged = verify(&same_name.cert, "pg-0.db.prod-firecamp.com").unwrap_err();
        assert_eq!(forged, rustls::Error::InvalidCertificate(CertificateError::BadSignature));
    }

    #[test]
    fn unusable_settings_are_refused_before_any_connection() {
        let (ca, _) = issued(&["a"]);
        assert!(matches!(client_config("not a certificate", "a"), Err(TlsError::Ca)));
        assert!(matches!(client_config(&ca.key, "a"), Err(TlsError::Ca)));
        assert!(matches!(client_config(&ca.cert, "not a name!"), Err(TlsError::Name(_))));
        // Two CAs (a rotation) are both trusted; an IP address is a name too.
        let (ca2, _) = issued(&["b"]);
        assert!(client_config(&format!("{}{}", ca.cert, ca2.cert), "10.0.0.7").is_ok());
    }

    #[test]
    fn settings_print_only_the_name() {
        let (ca, _) = issued(&["a"]);
        let s = format!("{:?}", TlsSettings { ca_pem: ca.cert.clone(), server_name: "pg-0.x".into() });
        assert!(s.contains("pg-0.x") && !s.contains("BEGIN"), "{s}");
    }

    #[test]
    fn the_end_point_of_an_ecdsa_sha256_certificate_is_its_sha256() {
        let (_, leaf) = issued(&["a"]);
        let cert = der_of(&leaf.cert);
        assert_eq!(tls_server_end_point(&cert), Some(sha2::Sha256::digest(&cert).to_vec()));
        assert_eq!(tls_server_end_point(b"\x30\x03\x02\x01\x00"), None);
        assert_eq!(tls_server_end_point(b""), None);
    }
}
