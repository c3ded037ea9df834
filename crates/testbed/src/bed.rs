//! Finding and reaching the running bed from tests.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::await_condition;
use kube::{Api, Client, Config};

/// The admin kubeconfig of the bed.
///
/// `FIRECAMP_TESTBED_KUBECONFIG`, else `$FIRECAMP_TESTBED_DIR/admin.kubeconfig`, else
/// `<repo>/.testbed/admin.kubeconfig`. `KUBECONFIG` is deliberately NOT consulted: tests create
/// and delete objects, and must not land on whatever cluster a developer's shell points at.
pub fn kubeconfig_path() -> PathBuf {
    if let Some(p) = std::env::var_os("FIRECAMP_TESTBED_KUBECONFIG") {
        return p.into();
    }
    let dir = std::env::var_os("FIRECAMP_TESTBED_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join(".testbed"));
    dir.join("admin.kubeconfig")
}

/// The repository (the folder holding `testbed/bed`), found from where the tests run: cargo sets
/// CARGO_MANIFEST_DIR at run time to the crate under test. The compile-time path is the fallback,
/// as it is wrong for a binary built in another checkout.
fn repo_root() -> PathBuf {
    let starts = [std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from), std::env::current_dir().ok()];
    starts
        .into_iter()
        .flatten()
        .find_map(|start| start.ancestors().find(|d| d.join("testbed/bed").is_file()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")))
}

/// A client for the bed, checked by asking the API server for its version.
pub async fn try_client() -> Result<Client> {
    install_crypto_provider();
    let path = kubeconfig_path();
    let kc = Kubeconfig::read_from(&path).with_context(|| format!("reading {}", path.display()))?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.with_context(|| format!("loading {}", path.display()))?;
    let client = Client::try_from(config).context("building the client")?;
    let v = tokio::time::timeout(Duration::from_secs(10), client.apiserver_version())
        .await
        .context("the API server did not answer within 10 s")?
        .context("asking the API server for its version")?;
    tracing::debug!(version = %v.git_version, "test bed reachable");
    Ok(client)
}

/// A client for the bed. Panics (tests must never skip silently) if the bed is not running.
pub async fn client() -> Client {
    match try_client().await {
        Ok(c) => c,
        Err(e) => panic!("the Kubernetes test bed is not running: start it with `testbed/bed build && testbed/bed up` ({e:#})"),
    }
}

/// Creates a namespace named `<prefix>-<random suffix>` and waits for its `default`
/// ServiceAccount (pods are rejected by admission until the controller-manager creates it).
pub async fn fresh_namespace(client: &Client, prefix: &str) -> String {
    let name = format!("{prefix}-{}", suffix());
    let ns = Namespace { metadata: ObjectMeta { name: Some(name.clone()), ..Default::default() }, ..Default::default() };
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
    let sa = Api::<ServiceAccount>::namespaced(client.clone(), &name);
    let exists = |o: Option<&ServiceAccount>| o.is_some();
    tokio::time::timeout(Duration::from_secs(30), await_condition(sa, "default", exists))
        .await
        .unwrap_or_else(|_| panic!("namespace {name}: no default ServiceAccount after 30 s"))
        .unwrap_or_else(|e| panic!("namespace {name}: watching ServiceAccounts: {e}"));
    name
}

/// A short lowercase suffix unique enough across test runs against one bed.
fn suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let mix = nanos ^ (u128::from(std::process::id()) << 64) ^ u128::from(N.fetch_add(1, Ordering::Relaxed));
    format!("{:08x}", (mix as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32)
}

/// kube brings rustls with ring and other crates (reqwest, the AWS SDK) with aws-lc-rs; with both
/// compiled in, rustls cannot pick one itself, so every process installs ring first.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Deletes a test's namespace and waits (up to a minute) until it is gone, so that its pods'
/// host ports and its volumes are free for the tests that follow. Best effort: a namespace that
/// lingers is logged, not fatal, since the test itself has passed.
pub async fn drop_namespace(client: &Client, name: &str) {
    let api = Api::<Namespace>::all(client.clone());
    if api.delete(name, &Default::default()).await.is_err() {
        return;
    }
    let gone = |o: Option<&Namespace>| o.is_none();
    if tokio::time::timeout(Duration::from_secs(60), await_condition(api, name, gone)).await.is_err() {
        eprintln!("namespace {name} still terminating after 60 s");
    }
}

/// The zone of every node, by node name.
pub async fn node_zones(client: &Client) -> std::collections::BTreeMap<String, String> {
    let nodes =
        Api::<k8s_openapi::api::core::v1::Node>::all(client.clone()).list(&Default::default()).await.unwrap_or_else(|e| panic!("listing the bed's nodes: {e}"));
    nodes
        .into_iter()
        .filter_map(|n| {
            let zone = n.metadata.labels.as_ref()?.get(crate::ZONE_LABEL)?.clone();
            Some((n.metadata.name?, zone))
        })
        .collect()
}

/// A ServiceAccount `sa` of `ns` allowed `verbs` on FireCampServices (none: no Role at all), and
/// a one-hour token for it: a user of the REST API as the cluster's RBAC sees them.
pub async fn service_account_token(client: &Client, ns: &str, sa: &str, verbs: &[&str]) -> String {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
    let meta = |name: &str| ObjectMeta { name: Some(name.into()), namespace: Some(ns.into()), ..Default::default() };
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    sas.create(&PostParams::default(), &ServiceAccount { metadata: meta(sa), ..Default::default() }).await.expect("create the ServiceAccount");
    if !verbs.is_empty() {
        let rule = PolicyRule {
            api_groups: Some(vec!["firecamp.dev".into()]),
            resources: Some(vec!["firecampservices".into()]),
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        };
        Api::<Role>::namespaced(client.clone(), ns)
            .create(&PostParams::default(), &Role { metadata: meta(sa), rules: Some(vec![rule]) })
            .await
            .expect("create the Role");
        let binding = RoleBinding {
            metadata: meta(sa),
            role_ref: RoleRef { api_group: Some("rbac.authorization.k8s.io".into()), kind: "Role".into(), name: sa.into() },
            subjects: Some(vec![Subject { kind: "ServiceAccount".into(), name: sa.into(), namespace: Some(ns.into()), ..Default::default() }]),
        };
        Api::<RoleBinding>::namespaced(client.clone(), ns).create(&PostParams::default(), &binding).await.expect("create the RoleBinding");
    }
    // For FireCamp's REST API only (its TokenReviews ask for this audience).
    let tr = TokenRequest {
        spec: Some(TokenRequestSpec { expiration_seconds: Some(3600), audiences: Some(vec!["firecamp".into()]), ..Default::default() }),
        ..Default::default()
    };
    sas.create_token_request(sa, &PostParams::default(), &tr).await.expect("a token request").status.and_then(|s| s.token).expect("a token")
}

/// A ServiceAccount `sa` of `ns` bound to `role` (applied first, e.g. `install render`'s
/// metrics reader), and a one-hour token for the API server's audience: what a scraper's pod
/// mounts. The ClusterRoleBinding is named after the namespace, so tests do not share one.
pub async fn cluster_role_token(client: &Client, ns: &str, sa: &str, role: &k8s_openapi::api::rbac::v1::ClusterRole) -> String {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleRef, Subject};
    use kube::api::{Patch, PatchParams};
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    if sas.get_opt(sa).await.expect("read the ServiceAccount").is_none() {
        let meta = ObjectMeta { name: Some(sa.into()), namespace: Some(ns.into()), ..Default::default() };
        sas.create(&PostParams::default(), &ServiceAccount { metadata: meta, ..Default::default() }).await.expect("create the ServiceAccount");
        let name = role.metadata.name.clone().expect("the ClusterRole's name");
        Api::<ClusterRole>::all(client.clone())
            .patch(&name, &PatchParams::apply("firecamp-test").force(), &Patch::Apply(role))
            .await
            .expect("apply the ClusterRole");
        let binding = ClusterRoleBinding {
            metadata: ObjectMeta { name: Some(format!("{name}-{ns}-{sa}")), ..Default::default() },
            role_ref: RoleRef { api_group: Some("rbac.authorization.k8s.io".into()), kind: "ClusterRole".into(), name },
            subjects: Some(vec![Subject { kind: "ServiceAccount".into(), name: sa.into(), namespace: Some(ns.into()), ..Default::default() }]),
        };
        Api::<ClusterRoleBinding>::all(client.clone()).create(&PostParams::default(), &binding).await.expect("create the ClusterRoleBinding");
    }
    let tr = TokenRequest { spec: Some(TokenRequestSpec { expiration_seconds: Some(3600), ..Default::default() }), ..Default::default() };
    sas.create_token_request(sa, &PostParams::default(), &tr).await.expect("a token request").status.and_then(|s| s.token).expect("a token")
}
