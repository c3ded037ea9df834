//! cert-manager on the bed: its controller, built from its library module by `testbed/bed build`
//! (testbed/cert-manager), with its CRDs from the same module. A CA Issuer issues a Certificate
//! whose Secret verifies against that CA and names exactly what was asked. This is what member
//! certificates from a cert-manager issuer (issue #13) are to be tested on.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::conditions::is_crd_established;
use kube::{Api, Client};

use crate::util::{cleanup, wait};

fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testbed/bin")
}

/// The CRDs, applied (idempotent: every test that needs them may apply them again).
async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let dir = bin_dir().join("cert-manager-crds");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e} (testbed/bed build makes it)", dir.display())).map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "no CRDs in {}", dir.display());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let name = crd.metadata.name.clone().expect("a CRD's name");
        crds.patch(&name, &PatchParams::apply("firecamp-test").force(), &Patch::Apply(&crd)).await.unwrap();
        wait(&crds, &name, "CRD established", is_crd_established()).await;
    }
}

/// The controller, stopped when dropped; its log in `log`.
struct Controller(Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_controller(log: &Path, cluster_namespace: &str) -> Controller {
    let exe = bin_dir().join("cert-manager-controller");
    let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG (eval \"$(testbed/bed env)\")");
    let out = std::fs::File::create(log).unwrap();
    let child = Command::new(&exe)
        .args(["--kubeconfig", &kubeconfig, "--cluster-resource-namespace", cluster_namespace])
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (testbed/bed build makes it)", exe.display()));
    Controller(child)
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cm(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("cert-manager.io", "v1", kind))
}

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
    let _controller = start_controller(&tmp.join("controller.log"), &ns);

    // The CA, made by openssl, in the Secret the Issuer names.
    let (ca_key, ca_crt) = (tmp.join("ca.key"), tmp.join("ca.crt"));
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", ca_key.to_str().unwrap()]);
    openssl(&["req", "-x509", "-new", "-key", ca_key.to_str().unwrap(), "-subj", "/CN=bed test CA", "-days", "2", "-out", ca_crt.to_str().unwrap()]);
    let bytes = |p: &Path| ByteString(std::fs::read(p).unwrap());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let ca_secret = Secret {
        metadata: ObjectMeta { name: Some("ca".into()), ..Default::default() },
        type_: Some("kubernetes.io/tls".into()),
        data: Some([("tls.crt".to_string(), bytes(&ca_crt)), ("tls.key".to_string(), bytes(&ca_key))].into()),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &ca_secret).await.unwrap();
    let issuers: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &cm("Issuer"));
    let issuer: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Issuer",
        "metadata": {"name": "bed-ca"},
        "spec": {"ca": {"secretName": "ca"}}
    }))
    .unwrap();
    issuers.create(&PostParams::default(), &issuer).await.unwrap();

    let certificates: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &cm("Certificate"));
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
    let ready = |o: Option<&DynamicObject>| {
        o.and_then(|o| o.data["status"]["conditions"].as_array().cloned()).is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
    };
    let waited = tokio::time::timeout(Duration::from_secs(60), kube::runtime::wait::await_condition(certificates.clone(), "pg-0", ready)).await;
    if !matches!(waited, Ok(Ok(Some(_)))) {
        let log = std::fs::read_to_string(tmp.join("controller.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        panic!("the Certificate is not Ready within 60 s; the controller's log ends:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }

    let issued = secrets.get("pg-0-tls").await.expect("the Certificate's Secret");
    let data = issued.data.expect("data");
    let leaf = tmp.join("leaf.crt");
    std::fs::write(&leaf, &data["tls.crt"].0).unwrap();
    assert_eq!(data["ca.crt"].0, std::fs::read(&ca_crt).unwrap(), "ca.crt is the issuer's CA");
    assert!(!data["tls.key"].0.is_empty());
    let verified = openssl(&["verify", "-CAfile", ca_crt.to_str().unwrap(), leaf.to_str().unwrap()]);
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
