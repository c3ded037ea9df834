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
    assert!(matches!(
        issue(&CaPem { key: "x".into(), ..ca }, &names(), &[], Usage::Server, Duration::days(1), OffsetDateTime::now_utc()),
        Err(PkiError::Parse { .. })
    ));
}

#[test]
fn a_bundle_is_made_once_then_only_what_changed_is_reissued() {
    use bundle::{MemberNames, renew};
    let now = OffsetDateTime::now_utc();
    let member = |i: u32, ip: Option<&str>| MemberNames {
        member: format!("pg-{i}"),
        names: vec![format!("pg-{i}.db.prod-firecamp.com")],
        ips: ip.map(|a| a.parse().unwrap()).into_iter().collect(),
    };
    let first = renew(&Default::default(), "FireCamp CA db/pg", &[member(0, None), member(1, None)], now, "Secret db/pg-tls").unwrap();
    assert!(first.new_ca);
    assert_eq!(first.issued, ["pg-0", "pg-1"]);
    assert_eq!(first.data.keys().collect::<Vec<_>>(), ["ca.crt", "ca.key", "pg-0.crt", "pg-0.key", "pg-1.crt", "pg-1.key"]);

    // Nothing changed: nothing issued, the same bytes.
    let again = renew(&first.data, "ignored", &[member(0, None), member(1, None)], now, "Secret db/pg-tls").unwrap();
    assert!(!again.new_ca && again.issued.is_empty());
    assert_eq!(again.data, first.data);

    // A member added, another's address changed, one removed; and later an expiry near.
    let grown = renew(&first.data, "ignored", &[member(0, None), member(2, None), member(1, Some("10.0.0.9"))], now, "x").unwrap();
    assert_eq!(grown.issued, ["pg-2", "pg-1"]);
    assert_eq!(grown.data["ca.crt"], first.data["ca.crt"], "the CA stays");
    assert_eq!(grown.data["pg-0.crt"], first.data["pg-0.crt"]);
    let shrunk = renew(&grown.data, "ignored", &[member(0, None)], now, "x").unwrap();
    assert!(!shrunk.data.contains_key("pg-2.crt") && !shrunk.data.contains_key("pg-1.key"));
    let later = renew(&shrunk.data, "ignored", &[member(0, None)], now + Duration::days(340), "x").unwrap();
    assert_eq!(later.issued, ["pg-0"]);
    assert_ne!(later.data["pg-0.key"], shrunk.data["pg-0.key"], "a renewal makes a new key");

    // A damaged CA is an error naming the store, never a silent new CA.
    let mut broken = first.data.clone();
    broken.insert("ca.key".into(), "nonsense".into());
    let e = renew(&broken, "ignored", &[member(0, None)], now, "Secret db/pg-tls").unwrap_err().to_string();
    assert!(e.contains("Secret db/pg-tls"), "{e}");
}
