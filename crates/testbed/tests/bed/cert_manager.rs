//! cert-manager on the bed (`firecamp_testbed::cert_manager`): a CA Issuer issues a Certificate
//! whose Secret verifies against that CA and names exactly what was asked. FireCamp's members'
//! certificates from an issuer (issue #13) are tested on real pods in crates/cli/tests.

use std::path::PathBuf;
use std::time::Duration;

use firecamp_testbed::cert_manager::{ca_issuer, install_crds, is_ready, openssl, resource, start_controller};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{DynamicObject, ObjectMeta, PostParams};

use crate::util::cleanup;

#[tokio::test]
async fn a_ca_issuer_issues_a_certificate_that_verifies_against_its_ca() {
    let client = firecamp_testbed::client().await;
    install_crds(&client).await;
    let ns = format!("cert-manager-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(&PostParams::default(), &Namespace { metadata: ObjectMeta { name: Some(ns.clone()), ..Default::default() }, ..Default::default() })
        .await
        .unwrap();
    let tmp = tempdir();
    let controller = start_controller(&tmp.join("controller.log"), &ns);
    let ca = ca_issuer(&client, &ns, "bed-ca", &tmp).await;

    let certificates: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource("Certificate"));
    let certificate: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "pg-0"},
        "spec": {
            "secretName": "pg-0-tls",
            "dnsNames": ["pg-0.ns.bed-firecamp.com", "pg-0.pg-headless.ns.svc"],
            "ipAddresses": ["127.0.0.1"],
            "privateKey": {"algorithm": "ECDSA", "size": 256},
            "usages": ["server auth", "client auth"],
            "issuerRef": {"group": "cert-manager.io", "kind": "Issuer", "name": "bed-ca"}
        }
    }))
    .unwrap();
    certificates.create(&PostParams::default(), &certificate).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(60), kube::runtime::wait::await_condition(certificates.clone(), "pg-0", is_ready)).await;
    assert!(matches!(waited, Ok(Ok(Some(_)))), "the Certificate is not Ready within 60 s; the controller's log ends:\n{}", controller.tail(30));

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let issued = secrets.get("pg-0-tls").await.expect("the Certificate's Secret");
    let data = issued.data.expect("data");
    let leaf = tmp.join("leaf.crt");
    std::fs::write(&leaf, &data["tls.crt"].0).unwrap();
    assert_eq!(String::from_utf8_lossy(&data["ca.crt"].0), ca, "ca.crt is the issuer's CA");
    assert!(!data["tls.key"].0.is_empty());
    let verified = openssl(&["verify", "-CAfile", tmp.join("ca.crt").to_str().unwrap(), leaf.to_str().unwrap()]);
    assert!(verified.trim_end().ends_with(": OK"), "{verified}");
    let san = openssl(&["x509", "-in", leaf.to_str().unwrap(), "-noout", "-ext", "subjectAltName"]);
    for name in ["DNS:pg-0.ns.bed-firecamp.com", "DNS:pg-0.pg-headless.ns.svc", "IP Address:127.0.0.1"] {
        assert!(san.contains(name), "{name} missing from {san}");
    }
    cleanup(&client, &ns).await;
}

/// A fresh directory under the system's temporary one, left for post-mortems.
fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("firecamp-cert-manager-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
