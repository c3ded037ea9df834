//! Helpers of the real-pod tests: the bed's settings, ServiceAccount tokens, client pods.
#![allow(dead_code)] // each test binary uses some of them

use std::process::{Command, Output};
use std::time::Duration;

use firecamp_api::Phase;
use firecamp_manage::crd::FireCampService;
use firecamp_testbed::client;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{ApiResource, AttachParams, DeleteParams, DynamicObject, GroupVersionKind, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};

pub const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

pub const SYSTEM: &str = "firecamp-system";

pub fn cli(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firecamp")).args(args).output().unwrap()
}

/// `install render` for the real nodes' cluster, applied with server-side apply; the Fluent Bit
/// DaemonSet is left out: its image is not one the bed can build (docs/images.md).
pub async fn install(client: &Client, env: &BedEnv, watch_namespace: Option<&str>) {
    install_with(client, env, watch_namespace, &[]).await
}

/// [`install`] with more `install render` flags.
pub async fn install_with(client: &Client, env: &BedEnv, watch_namespace: Option<&str>, extra: &[String]) {
    let mut args: Vec<String> = vec![
        "install".into(),
        "render".into(),
        format!("--cluster={}", env.cluster),
        format!("--zones={}", ZONES.join(",")),
        format!("--volume-provisioner={}", firecamp_testbed::PROVISIONER),
        format!("--image-registry={}", env.registry),
        format!("--vpc-id={}", env.vpc),
        format!("--aws-endpoint-url={}", env.aws_endpoint),
        "--aws-credentials-secret=aws-credentials".into(),
        "--node-selector=type=real".into(),
        "-o".into(),
        "json".into(),
    ];
    args.extend(watch_namespace.iter().map(|n| format!("--watch-namespace={n}")));
    args.extend(extra.iter().cloned());
    let out = cli(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for o in list["items"].as_array().unwrap() {
        if o["kind"] == "DaemonSet" {
            continue;
        }
        let (group, version) = o["apiVersion"].as_str().unwrap().rsplit_once('/').unwrap_or(("", o["apiVersion"].as_str().unwrap()));
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, o["kind"].as_str().unwrap()));
        let name = o["metadata"]["name"].as_str().unwrap();
        let api: Api<DynamicObject> = match o["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        let obj: DynamicObject = serde_json::from_value(o.clone()).unwrap();
        api.patch(name, &PatchParams::apply("firecamp-real-pods").force(), &Patch::Apply(&obj))
            .await
            .unwrap_or_else(|e| panic!("the API server refused {} {name}: {e}", o["kind"]));
        if o["kind"] == "Namespace" {
            // moto accepts any key; the manage service reads them as it would read real ones.
            let secret: Secret = serde_json::from_value(serde_json::json!({
                "metadata": {"name": "aws-credentials", "namespace": SYSTEM},
                "stringData": {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
            }))
            .unwrap();
            Api::<Secret>::namespaced(client.clone(), SYSTEM)
                .patch("aws-credentials", &PatchParams::apply("firecamp-real-pods").force(), &Patch::Apply(&secret))
                .await
                .unwrap();
        }
    }
}

/// Stops the in-cluster manage service when the test ends, pass or fail: later tests run their
/// own manage services against the same bed.
pub struct Uninstall;

impl Drop for Uninstall {
    fn drop(&mut self) {
        // A client of its own, on a runtime of its own: the test's runtime is blocked here.
        let _ = std::thread::spawn(|| tokio::runtime::Runtime::new().unwrap().block_on(async { uninstall(&client().await).await })).join();
    }
}

/// What `testbed/bed env` exports once the bed has real nodes and CoreDNS.
pub struct BedEnv {
    pub cluster: String,
    pub registry: String,
    pub vpc: String,
    pub aws_endpoint: String,
}

impl BedEnv {
    /// A pinned image as the bed's nodes have it.
    pub fn image(&self, pinned: &str) -> String {
        firecamp_core::cluster::with_registry(pinned, &self.registry)
    }
}

/// The bed's settings; panics naming what is missing (a real-pod test never skips).
pub fn bed_env() -> BedEnv {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: these tests need the bed's real nodes and CoreDNS (testbed/bed up --real-nodes 6; testbed/bed dns --route53 <moto>; eval \"$(testbed/bed env)\"), as scripts/test.sh does")
        })
    };
    BedEnv {
        cluster: var("FIRECAMP_TESTBED_REAL_CLUSTER"),
        registry: var("FIRECAMP_TESTBED_IMAGE_REGISTRY"),
        vpc: var("FIRECAMP_TESTBED_VPC"),
        aws_endpoint: var("FIRECAMP_TESTBED_AWS_ENDPOINT"),
    }
}

pub use firecamp_testbed::service_account_token as token;

/// Runs `script` with bash in pod `name` of `image` as `uid`, with `secret` (if any) at /secret, on a
/// real node; returns its log, read through the API server, once it has ended.
/// `secrets`: (Secret, mount path) pairs, read-only.
pub async fn run_client_pod(client: &Client, ns: &str, name: &str, image: &str, uid: i64, secrets: &[(&str, &str)], script: &str) -> String {
    let mounts: Vec<serde_json::Value> =
        secrets.iter().enumerate().map(|(i, (_, path))| serde_json::json!({"name": format!("secret{i}"), "mountPath": path, "readOnly": true})).collect();
    let volumes: Vec<serde_json::Value> = secrets
        .iter()
        .enumerate()
        .map(|(i, (s, _))| match s.ends_with("-tls") {
            // A client needs the CA's certificate, never the members' keys the Secret also holds.
            true => serde_json::json!({"name": format!("secret{i}"), "secret": {"secretName": s, "items": [{"key": "ca.crt", "path": "ca.crt"}]}}),
            false => serde_json::json!({"name": format!("secret{i}"), "secret": {"secretName": s}}),
        })
        .collect();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"type": "real"},
            "automountServiceAccountToken": false,
            "securityContext": {"runAsUser": uid, "runAsGroup": uid, "runAsNonRoot": true},
            "containers": [{
                "name": "client", "image": image, "imagePullPolicy": "Never",
                "command": ["/bin/bash", "-c", script],
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi", "ephemeral-storage": "16Mi"}},
                "volumeMounts": mounts
            }],
            "volumes": volumes
        }
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let ended = |p: Option<&Pod>| p.and_then(|p| p.status.as_ref()).and_then(|s| s.phase.as_deref()).is_some_and(|ph| ph == "Succeeded" || ph == "Failed");
    tokio::time::timeout(Duration::from_secs(600), await_condition(pods.clone(), name, ended)).await.expect("the client pod ends").unwrap();
    let logs = pods.logs(name, &LogParams::default()).await.unwrap();
    let phase = pods.get(name).await.unwrap().status.and_then(|s| s.phase).unwrap_or_default();
    assert_eq!(phase, "Succeeded", "the client pod failed; its log:\n{logs}");
    logs
}

/// [`run_client_pod`] in the background; the handle gives its log once it has ended.
pub fn spawn_client_pod(
    client: &Client,
    ns: &str,
    name: &'static str,
    image: String,
    secrets: &'static [(&'static str, &'static str)],
    script: String,
) -> tokio::task::JoinHandle<String> {
    let (client, ns) = (client.clone(), ns.to_string());
    tokio::spawn(async move { run_client_pod(&client, &ns, name, &image, 999, secrets, &script).await })
}

/// Deletes the manage service's Deployment and waits until it is gone: an apply to a Deployment
/// under foreground deletion is deleted with it, and another test's (install_on_bed's, on kwok
/// nodes) must not lend its pods to this one.
pub async fn uninstall(client: &Client) {
    let api = Api::<Deployment>::namespaced(client.clone(), SYSTEM);
    let _ = api.delete("firecamp-manage", &DeleteParams::foreground()).await;
    let gone = |d: Option<&Deployment>| d.is_none();
    let _ = tokio::time::timeout(Duration::from_secs(120), await_condition(api, "firecamp-manage", gone)).await;
}

/// The manage service's pods that serve: Ready, not going away, on the bed's real nodes. Only
/// their IPs (the bed's own 10.251.0.0/16) are ever called.
pub async fn manage_pods(client: &Client) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), SYSTEM);
    let lp = kube::api::ListParams::default().labels("app.kubernetes.io/name=firecamp-manage");
    let ready = |p: &Pod| p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let ours = |p: &Pod| p.status.as_ref().and_then(|s| s.pod_ip.as_deref()).is_some_and(|ip| ip.starts_with("10.251."));
    pods.list(&lp).await.unwrap().items.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none() && ready(p) && ours(p)).collect()
}

/// Installs FireCamp, waits until both manage-service replicas are available on real nodes, and
/// returns the REST API's address (a manage pod's IP: the host routes to every node's pods).
pub async fn installed(client: &Client, env: &BedEnv) -> String {
    installed_watching(client, env, None).await
}

/// [`installed`], the manage service serving only `watch_namespace` when given (its rights
/// there from a Role, `install render --watch-namespace`).
pub async fn installed_watching(client: &Client, env: &BedEnv, watch_namespace: Option<&str>) -> String {
    installed_with(client, env, watch_namespace, &[]).await
}

/// [`installed_watching`] with more `install render` flags.
pub async fn installed_with(client: &Client, env: &BedEnv, watch_namespace: Option<&str>, extra: &[String]) -> String {
    uninstall(client).await;
    install_with(client, env, watch_namespace, extra).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), SYSTEM);
    let available = |d: Option<&Deployment>| d.and_then(|d| d.status.as_ref()).and_then(|s| s.available_replicas) == Some(2);
    tokio::time::timeout(Duration::from_secs(240), await_condition(deployments, "firecamp-manage", available))
        .await
        .expect("the manage service's 2 replicas become available on real nodes")
        .unwrap();
    let pods = manage_pods(client).await;
    assert_eq!(pods.len(), 2, "two serving manage pods on real nodes");
    // The first replica made the REST API's CA and published its certificate.
    let cm =
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), SYSTEM).get("firecamp-manage-ca").await.expect("ConfigMap firecamp-manage-ca");
    let ca = cm.data.and_then(|d| d.get("ca.crt").cloned()).expect("ca.crt in ConfigMap firecamp-manage-ca");
    std::fs::write(ca_file(), ca).unwrap();
    server(&pods[0])
}

/// Where the published CA certificate of the manage service is kept for the CLI (`--ca-cert`).
pub fn ca_file() -> std::path::PathBuf {
    std::env::temp_dir().join("firecamp-real-manage-ca.crt")
}

/// The REST API of a manage pod, by its IP (in its minted certificate), over HTTPS.
pub fn server(pod: &Pod) -> String {
    format!("https://{}:27040", pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).expect("a pod IP"))
}

/// The CLI against the REST API as the ServiceAccount `token` of `ns`; panics on failure.
pub fn rest(server: &str, token: &str, ns: &str, args: &[&str]) -> String {
    let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    a.extend([format!("--server={server}"), format!("--token={token}"), format!("--namespace={ns}"), format!("--ca-cert={}", ca_file().display())]);
    let out = cli(&a);
    assert!(out.status.success(), "{args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `script` with bash in `container` of pod `pod`, as `kubectl exec` does: through the API
/// server to the node's kubelet. Returns its stdout; panics with its stderr when it fails.
pub async fn exec(client: &Client, ns: &str, pod: &str, container: &str, script: &str) -> String {
    use tokio::io::AsyncReadExt;
    let run = async {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let ap = AttachParams::default().container(container).stdin(false).stdout(true).stderr(true);
        let mut p = pods.exec(pod, ["/bin/bash", "-c", script], &ap).await.unwrap_or_else(|e| panic!("exec in {pod}: {e}"));
        let (mut out, mut err) = (p.stdout().unwrap(), p.stderr().unwrap());
        let status = p.take_status().unwrap();
        let (mut o, mut e) = (String::new(), String::new());
        let (a, b) = tokio::join!(out.read_to_string(&mut o), err.read_to_string(&mut e));
        a.and(b).unwrap_or_else(|x| panic!("reading exec's output in {pod}: {x}"));
        let status = status.await;
        let _ = p.join().await;
        (o, e, status)
    };
    let (o, e, status) = tokio::time::timeout(Duration::from_secs(60), run).await.unwrap_or_else(|_| panic!("exec in {pod} hung: {script}"));
    let ok = status.as_ref().and_then(|s| s.status.as_deref()) == Some("Success");
    assert!(ok, "exec in {pod} failed ({status:?}): {script}\nstdout: {o}\nstderr: {e}");
    o
}

/// SQL through psql on the member's own socket (local connections are trusted), with `kubectl exec`.
pub async fn psql(client: &Client, ns: &str, pod: &str, sql: &str) -> String {
    let script = format!("psql -v ON_ERROR_STOP=1 -qAt -h /run/firecamp -U postgres -d postgres <<'SQL'\n{sql}\nSQL");
    exec(client, ns, pod, "postgresql", &script).await.trim().to_string()
}

/// The WAL senders of a PostgreSQL primary that stream.
pub const STREAMING: &str = "select count(*) from pg_stat_replication where state = 'streaming'";

/// Polls `sql` on `pod` until it returns `want`, for up to `secs`.
pub async fn psql_until(client: &Client, ns: &str, pod: &str, sql: &str, want: &str, secs: u64) {
    poll_until(pod, sql, want, secs, || psql(client, ns, pod, sql)).await
}

/// Runs `run` until it gives `want`, for up to `secs` (`what` on `pod` names it in the failure).
async fn poll_until<F: std::future::Future<Output = String>>(pod: &str, what: &str, want: &str, secs: u64, mut run: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let got = run().await;
        if got == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{pod}: {what} gave {got:?}, not {want:?}, for {secs} s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A script on a Redis member's own server through `kubectl exec`, calling redis-cli as `rc`
/// (TLS verified against the service's CA, the service's password).
pub async fn redis(client: &Client, ns: &str, pod: &str, script: &str) -> String {
    let rc = r#"rc() { REDISCLI_AUTH="$(cat /etc/firecamp/secret/password)" redis-cli --tls --cacert /etc/firecamp/tls/ca.crt -h 127.0.0.1 -p 6379 "$@" | tr -d '\r'; }"#;
    exec(client, ns, pod, "redis", &format!("{rc}\n{script}")).await.trim().to_string()
}

/// Polls `script` on Redis member `pod` until it prints `want`, for up to `secs`.
pub async fn redis_until(client: &Client, ns: &str, pod: &str, script: &str, want: &str, secs: u64) {
    poll_until(pod, script, want, secs, || redis(client, ns, pod, script)).await
}

// Faults: zones going dark, partitions, the manage service's leader, services' status.

pub const BED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testbed/bed");

pub fn bed(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BED).args(args).output().expect("testbed/bed runs")
}

/// A real node whose zone went dark. It comes back when dropped, so a failing test leaves the
/// bed whole for the tests after it.
pub struct Dark(usize);

impl Dark {
    pub fn new(i: usize) -> Dark {
        Dark::with("dark", i)
    }
    /// Only its kubelet stops: the node goes NotReady, its pods still serve whoever reaches them.
    pub fn mute(i: usize) -> Dark {
        Dark::with("mute", i)
    }
    pub fn with(how: &str, i: usize) -> Dark {
        let out = bed(&["node", how, &i.to_string()]);
        assert!(out.status.success(), "testbed/bed node {how} {i}: {}", String::from_utf8_lossy(&out.stderr));
        Dark(i)
    }
    pub fn light(self) {
        let out = bed(&["node", "light", &self.0.to_string()]);
        assert!(out.status.success(), "testbed/bed node light {}: {}", self.0, String::from_utf8_lossy(&out.stderr));
        std::mem::forget(self);
    }
}

impl Drop for Dark {
    fn drop(&mut self) {
        let out = bed(&["node", "light", &self.0.to_string()]);
        if !out.status.success() {
            eprintln!("testbed/bed node light {}: {}", self.0, String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// The pods at `from` no longer reach the address `to`; healed when dropped.
pub struct Cut {
    from: Vec<String>,
    to: String,
}

impl Cut {
    pub fn new(from: &[String], to: &str) -> Cut {
        let cut = Cut { from: from.to_vec(), to: to.to_string() };
        for f in from {
            let out = bed(&["cut", f, to]);
            assert!(out.status.success(), "testbed/bed cut {f} {to}: {}", String::from_utf8_lossy(&out.stderr));
        }
        cut
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        for f in &self.from {
            let out = bed(&["uncut", f, &self.to]);
            if !out.status.success() {
                eprintln!("testbed/bed uncut {f} {}: {}", self.to, String::from_utf8_lossy(&out.stderr));
            }
        }
    }
}

/// The bed's node index from its name (`ip-10-250-<16+zone>-<11+i>.ec2.internal`).
pub fn node_index(name: &str) -> usize {
    let last = name.split('.').next().and_then(|h| h.rsplit('-').next()).and_then(|o| o.parse::<usize>().ok());
    last.and_then(|o| o.checked_sub(11)).unwrap_or_else(|| panic!("{name} is not a name of the bed's real nodes"))
}

pub fn is_ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub async fn leader(client: &Client) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), SYSTEM).get_opt("firecamp-manage").await.unwrap()?.spec?.holder_identity
}

/// Waits until service `name`'s status satisfies `ok`; panics with the last status after `secs`.
pub async fn service_until(client: &Client, ns: &str, name: &str, what: &str, secs: u64, ok: impl Fn(&FireCampService) -> bool) -> FireCampService {
    let api: Api<FireCampService> = Api::namespaced(client.clone(), ns);
    let cond = |s: Option<&FireCampService>| s.is_some_and(&ok);
    match tokio::time::timeout(Duration::from_secs(secs), await_condition(api.clone(), name, cond)).await {
        Ok(Ok(Some(s))) => s,
        _ => panic!("{name}: {what}: not within {secs} s; the service's status: {:#?}", api.get(name).await.ok().and_then(|s| s.status)),
    }
}

pub fn phase(s: &FireCampService) -> Option<Phase> {
    s.status.as_ref().map(|st| st.phase)
}
