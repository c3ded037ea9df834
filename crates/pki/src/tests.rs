use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{RootCertStore, crypto::ring};

use super::*;

fn verify(ca: &CaPem, leaf: &LeafPem, name: &str, at: OffsetDateTime) -> Result<(), String> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.cert.as_bytes()).unwrap()).unwrap();
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::new(ring::default_provider())).build().unwrap();
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(at.unix_timestamp() as u64));
    let der = CertificateDer::from_pem_slice(leaf.cert.as_bytes()).unwrap();
    verifier.verify_server_cert(&der, &[], &ServerName::try_from(name.to_string()).unwrap(), &[], at).map(|_| ()).map_err(|e| e.to_string())
}

fn names() -> Vec<String> {
    vec!["pg-0.db.prod-firecamp.com".to_string(), "pg-0.pg-headless.db.svc".to_string()]
}

#[test]
fn a_leaf_verifies_for_its_names_and_ips_only_and_only_while_valid() {
    let now = OffsetDateTime::now_utc();
    let ca = new_ca("FireCamp CA db/pg", Duration::days(3650), now).unwrap();
    check_ca(&ca, "test").unwrap();
    let ips: Vec<IpAddr> = vec!["10.0.1.7".parse().unwrap()];
    let leaf = issue(&ca, &names(), &ips, Usage::ServerAndClient, Duration::days(365), now).unwrap();
    for name in ["pg-0.db.prod-firecamp.com", "pg-0.pg-headless.db.svc", "10.0.1.7"] {
        verify(&ca, &leaf, name, now).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for other in ["pg-1.db.prod-firecamp.com", "example.com", "10.0.1.8"] {
        assert!(verify(&ca, &leaf, other, now).is_err(), "{other} must not verify");
    }
    assert!(verify(&ca, &leaf, "pg-0.db.prod-firecamp.com", now + Duration::days(366)).is_err(), "expired");
    let other = new_ca("another", Duration::days(10), now).unwrap();
    let foreign = issue(&other, &names(), &ips, Usage::Server, Duration::days(1), now).unwrap();
    assert!(verify(&ca, &foreign, "pg-0.db.prod-firecamp.com", now).is_err(), "another CA's leaf");
    assert!(!format!("{ca:?}{leaf:?}").contains("PRIVATE KEY"), "a key in Debug output");
}

#[test]
fn inspect_reads_back_names_ips_and_expiry_and_still_good_says_when_to_renew() {
    let now = OffsetDateTime::now_utc();
    let ca = new_ca("c", Duration::days(3650), now).unwrap();
    let ips: Vec<IpAddr> = vec!["10.0.1.7".parse().unwrap(), "::1".parse().unwrap()];
    let leaf = issue(&ca, &names(), &ips, Usage::ServerAndClient, Duration::days(90), now).unwrap();
    let info = inspect(&leaf.cert, "pg-0.crt").unwrap();
    assert_eq!((info.names, info.ips), (names(), ips.clone()));
    assert!((info.not_after - (now + Duration::days(90))).abs() < Duration::seconds(2));
    assert!(still_good(&leaf.cert, &names(), &ips, Duration::days(30), now));
    // Inside the renewal window, with a name or an address more or fewer, or not a certificate: renew.
    assert!(!still_good(&leaf.cert, &names(), &ips, Duration::days(30), now + Duration::days(61)));
    assert!(!still_good(&leaf.cert, &names()[..1], &ips, Duration::days(30), now));
    assert!(!still_good(&leaf.cert, &names(), &ips[..1], Duration::days(30), now));
    assert!(!still_good("nonsense", &names(), &ips, Duration::days(30), now));
}

#[test]
fn a_damaged_ca_is_refused_naming_the_part() {
    let ca = new_ca("c", Duration::days(1), OffsetDateTime::now_utc()).unwrap();
    let e = check_ca(&CaPem { key: "nonsense".into(), ..ca.clone() }, "Secret db/pg-tls").unwrap_err().to_string();
    assert!(e.contains("Secret db/pg-tls's key"), "{e}");
    let e = check_ca(&CaPem { cert: "nonsense".into(), ..ca.clone() }, "Secret db/pg-tls").unwrap_err().to_string();
    assert!(e.contains("Secret db/pg-tls's certificate"), "{e}");
    assert!(matches!(issue(&CaPem { key: "x".into(), ..ca }, &names(), &[], Usage::Server, Duration::days(1), OffsetDateTime::now_utc()), Err(PkiError::Parse { .. })));
}
