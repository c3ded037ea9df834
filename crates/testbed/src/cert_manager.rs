//! cert-manager on the bed: its controller, built from its library module by `testbed/bed build`
//! (testbed/cert-manager), its CRDs from the same module, and a CA Issuer whose CA openssl makes.
//! Tests that need cert-manager start it here and fail loudly when the build is missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::conditions::is_crd_established;
use kube::{Api, Client};

fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testbed/bin")
}

/// cert-manager's kinds (`cert-manager.io/v1`).
pub fn resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("cert-manager.io", "v1", kind))
}

/// The CRDs, applied and established (idempotent: every test that needs them may apply them).
pub async fn install_crds(client: &Client) {
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
        let established = kube::runtime::wait::await_condition(crds.clone(), &name, is_crd_established());
        match tokio::time::timeout(Duration::from_secs(60), established).await {
            Ok(Ok(_)) => {}
            other => panic!("CRD {name} not established: {other:?}"),
        }
    }
}

/// The controller, stopped when dropped; its log in `log`.
pub struct Controller {
    child: Child,
    pub log: PathBuf,
}

impl Controller {
    /// The last `n` lines of its log, for a failure's message.
    pub fn tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(n).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the controller with the bed's admin kubeconfig (`KUBECONFIG`), ClusterIssuers' Secrets
/// read from `cluster_namespace`.
pub fn start_controller(log: &Path, cluster_namespace: &str) -> Controller {
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
    Controller { child, log: log.to_path_buf() }
}

pub fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A CA made by openssl in `dir` (`ca.crt`, `ca.key`), kept in the Secret `<issuer>-ca` of `ns`,
/// and an Issuer `issuer` of `ns` signing with it. Returns the CA's certificate (PEM).
pub async fn ca_issuer(client: &Client, ns: &str, issuer: &str, dir: &Path) -> String {
    let (ca_key, ca_crt) = (dir.join("ca.key"), dir.join("ca.crt"));
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", ca_key.to_str().unwrap()]);
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        ca_key.to_str().unwrap(),
        "-subj",
        &format!("/CN=bed CA {issuer}"),
        "-days",
        "2",
        "-out",
        ca_crt.to_str().unwrap(),
    ]);
    let bytes = |p: &Path| ByteString(std::fs::read(p).unwrap());
    let secret_name = format!("{issuer}-ca");
    let ca_secret = Secret {
        metadata: ObjectMeta { name: Some(secret_name.clone()), ..Default::default() },
        type_: Some("kubernetes.io/tls".into()),
        data: Some([("tls.crt".to_string(), bytes(&ca_crt)), ("tls.key".to_string(), bytes(&ca_key))].into()),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns).create(&PostParams::default(), &ca_secret).await.unwrap();
    let issuers: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource("Issuer"));
    let object: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Issuer",
        "metadata": {"name": issuer},
        "spec": {"ca": {"secretName": secret_name}}
    }))
    .unwrap();
    issuers.create(&PostParams::default(), &object).await.unwrap();
    std::fs::read_to_string(&ca_crt).unwrap()
}

/// Whether a cert-manager object's `Ready` condition is True.
pub fn is_ready(o: Option<&DynamicObject>) -> bool {
    o.and_then(|o| o.data["status"]["conditions"].as_array().cloned()).is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}
