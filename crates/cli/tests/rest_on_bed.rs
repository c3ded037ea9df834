//! The manage service's REST API end to end on the real Kubernetes test bed: a `firecamp manage`
//! process per test, confined to a fresh namespace, reached over HTTP(S) with ServiceAccount
//! tokens that the cluster's RBAC allows (or does not). Needs `testbed/bed up`.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use firecamp_api::{ApiError, CreateService, ErrorCode, MemberStatus, Phase, Service, ServiceList};
use firecamp_core::EngineKind;
use firecamp_testbed::{PROVISIONER, client, fresh_namespace, kubeconfig_path};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use reqwest::StatusCode;

const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

/// A `firecamp manage` child process, killed on drop; its log in the temp dir.
struct Manage {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Drop for Manage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// How the process serves.
#[derive(Clone, Copy)]
enum Serving<'a> {
    Plain,
    Files(&'a Tls),
    /// `--tls-ca-secret` with this Secret name.
    OwnCa(&'a str),
}

impl Manage {
    fn spawn(ns: &str, serving: Serving<'_>) -> Manage {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("firecamp-rest-{ns}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_firecamp"));
        cmd.args(["manage", "--cluster=bed", &format!("--volume-provisioner={PROVISIONER}")])
            .args([format!("--watch-namespace={ns}"), format!("--lease-namespace={ns}"), format!("--identity=rest-{ns}")])
            .arg(format!("--listen=127.0.0.1:{port}"))
            .env("KUBECONFIG", kubeconfig_path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        match serving {
            Serving::Plain => {}
            Serving::Files(t) => {
                cmd.arg("--tls-cert").arg(&t.cert).arg("--tls-key").arg(&t.key);
            }
            Serving::OwnCa(secret) => {
                cmd.arg(format!("--tls-ca-secret={secret}"));
            }
        }
        let child = cmd.spawn().unwrap();
        let scheme = if matches!(serving, Serving::Plain) { "http" } else { "https" };
        Manage { child, base: format!("{scheme}://127.0.0.1:{port}"), log }
    }

    /// Starts it and waits until `/healthz` answers, trusting the certificate it serves.
    async fn start(ns: &str, serving: Serving<'_>) -> Manage {
        let mut m = Manage::spawn(ns, serving);
        let kube = client().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let http = match serving {
                Serving::Plain => Some(http_client(None)),
                Serving::Files(t) => Some(http_client(Some(&std::fs::read(&t.cert).unwrap()))),
                // Its CA is published once it has made or read it.
                Serving::OwnCa(name) => published_ca(&kube, ns, name).await.map(|ca| http_client(Some(ca.as_bytes()))),
            };
            if let Some(http) = http
                && let Ok(r) = http.get(format!("{}/healthz", m.base)).send().await
                && r.status() == StatusCode::OK
            {
                return m;
            }
            if let Ok(Some(status)) = m.child.try_wait() {
                panic!("firecamp manage exited ({status}): {}", m.log_text());
            }
            assert!(Instant::now() < deadline, "the REST API did not come up in 30 s: {}", m.log_text());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The CA certificate a manage service published in ConfigMap `name`.
async fn published_ca(client: &Client, ns: &str, name: &str) -> Option<String> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    cms.get_opt(name).await.unwrap().and_then(|cm| cm.data?.get("ca.crt").cloned())
}

/// A self-signed certificate for 127.0.0.1.
struct Tls {
    _dir: TempDir,
    cert: PathBuf,
    key: PathBuf,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn self_signed(ns: &str) -> Tls {
    let dir = std::env::temp_dir().join(format!("firecamp-rest-tls-{ns}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        // A leaf, not a CA: rustls refuses a CA certificate as the server's own.
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed to make the test's certificate");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    Tls { _dir: TempDir(dir), cert, key }
}

/// A client trusting `ca` (PEM) when given.
fn http_client(ca: Option<&[u8]>) -> reqwest::Client {
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(20));
    if let Some(pem) = ca {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap());
    }
    b.build().unwrap()
}

/// The CRD, the namespace, and a token allowed to manage FireCamp services there.
async fn setup(prefix: &str) -> (Client, String) {
    let client = client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = firecamp_manage::crd::crd();
    crds.patch("firecampservices.firecamp.dev", &PatchParams::apply("firecamp-test").force(), &Patch::Apply(&crd)).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        kube::runtime::wait::await_condition(crds, "firecampservices.firecamp.dev", kube::runtime::conditions::is_crd_established()),
    )
    .await
    .expect("CRD established")
    .unwrap();
    let ns = fresh_namespace(&client, prefix).await;
    (client, ns)
}

/// A ServiceAccount's token; with `verbs`, a Role and RoleBinding granting them on
/// firecampservices in the namespace.
async fn token(client: &Client, ns: &str, sa: &str, verbs: &[&str]) -> String {
    firecamp_testbed::service_account_token(client, ns, sa, verbs).await
}

/// One request: its status and body.
async fn call(http: &reqwest::Client, method: reqwest::Method, url: String, token: Option<&str>, body: Option<serde_json::Value>) -> (StatusCode, String) {
    let mut r = http.request(method, url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap())
}

fn api_error(status: StatusCode, body: &str) -> ApiError {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{status}: not an ApiError ({e}): {body}"))
}

fn zk(name: &str) -> serde_json::Value {
    serde_json::to_value(CreateService { name: name.into(), spec: firecamp_catalog::examples::spec(EngineKind::Zookeeper, 3) }).unwrap()
}

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firecamp")).args(args).env_remove("KUBECONFIG").output().unwrap()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "firecamp failed ({:?}): {}{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[tokio::test]
async fn rest_api_creates_reads_and_deletes_services_as_rbac_allows() {
    use reqwest::Method;
    let (client, ns) = setup("fc-rest").await;
    let user = token(&client, &ns, "fc-user", &["get", "list", "create", "delete"]).await;
    let nobody = token(&client, &ns, "fc-nobody", &[]).await;
    let manage = Manage::start(&ns, Serving::Plain).await;
    let http = http_client(None);
    let services = format!("{}/v1/services?namespace={ns}", manage.base);
    let one = |name: &str| format!("{}/v1/services/{name}?namespace={ns}", manage.base);

    // The open endpoints.
    let (s, doc) = call(&http, Method::GET, format!("{}/openapi.json", manage.base), None, None).await;
    assert_eq!(s, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert!(doc["paths"]["/v1/services"]["post"].is_object(), "{doc}");

    // No token: 401; a token RBAC gives nothing: 403; a token Kubernetes does not know: 401.
    let (s, b) = call(&http, Method::GET, services.clone(), None, None).await;
    assert_eq!((s, api_error(s, &b).code), (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized));
    let (s, b) = call(&http, Method::GET, services.clone(), Some("not-a-token"), None).await;
    assert_eq!((s, api_error(s, &b).code), (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized), "{b}");
    let (s, b) = call(&http, Method::POST, services.clone(), Some(&nobody), Some(zk("zk"))).await;
    assert_eq!((s, api_error(s, &b).code), (StatusCode::FORBIDDEN, ErrorCode::Forbidden), "{b}");
    let (s, b) = call(&http, Method::GET, services.clone(), Some(&nobody), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");

    // The user's RoleBinding may take a moment to reach the authorizer.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (s, b) = call(&http, Method::GET, services.clone(), Some(&user), None).await;
        if s == StatusCode::OK {
            let list: ServiceList = serde_json::from_str(&b).unwrap();
            assert!(list.items.is_empty());
            break;
        }
        assert!(s == StatusCode::FORBIDDEN && Instant::now() < deadline, "{s}: {b}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The same user's token minted for the API server (what a pod mounts, what a stolen pod
    // token is) is refused: the REST API takes only tokens meant for FireCamp.
    let api_token = {
        use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
        let tr = TokenRequest { spec: Some(TokenRequestSpec { expiration_seconds: Some(600), ..Default::default() }), ..Default::default() };
        let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client.clone(), &ns);
        sas.create_token_request("fc-user", &Default::default(), &tr).await.unwrap().status.and_then(|s| s.token).unwrap()
    };
    let (s, b) = call(&http, Method::GET, services.clone(), Some(&api_token), None).await;
    assert_eq!((s, api_error(s, &b).code), (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized), "{b}");
    assert!(api_error(s, &b).message.contains("--audience firecamp"), "{b}");

    // An invalid spec is refused whole, naming every broken field, and creates nothing.
    let mut bad = zk("Bad_Name");
    bad["spec"]["replicas"] = 4.into();
    let (s, b) = call(&http, Method::POST, services.clone(), Some(&user), Some(bad)).await;
    let e = api_error(s, &b);
    assert_eq!((s, e.code), (StatusCode::BAD_REQUEST, ErrorCode::Invalid), "{b}");
    let fields: Vec<&str> = e.fields.iter().map(|f| f.field.as_str()).collect();
    assert!(fields.contains(&"name") && fields.contains(&"spec.replicas"), "{fields:?}");
    let mut unknown = zk("zk");
    unknown["spec"]["colour"] = "red".into();
    let (s, b) = call(&http, Method::POST, services.clone(), Some(&user), Some(unknown)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(api_error(s, &b).message.contains("unknown field `colour`"), "{b}");
    let crs: Api<firecamp_manage::crd::FireCampService> = Api::namespaced(client.clone(), &ns);
    assert!(crs.list(&ListParams::default()).await.unwrap().items.is_empty(), "an invalid request created a resource");

    // Create; a second create of the same name is 409.
    let (s, b) = call(&http, Method::POST, services.clone(), Some(&user), Some(zk("zk"))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let created: Service = serde_json::from_str(&b).unwrap();
    assert_eq!(created.name, "zk");
    let (s, b) = call(&http, Method::POST, services.clone(), Some(&user), Some(zk("zk"))).await;
    assert_eq!((s, api_error(s, &b).code), (StatusCode::CONFLICT, ErrorCode::AlreadyExists), "{b}");

    // GET until ACTIVE.
    let deadline = Instant::now() + Duration::from_secs(120);
    let svc = loop {
        let (s, b) = call(&http, Method::GET, one("zk"), Some(&user), None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let svc: Service = serde_json::from_str(&b).unwrap();
        if svc.status.phase == Phase::Active {
            break svc;
        }
        assert!(Instant::now() < deadline, "zk not ACTIVE in 120 s: {:?}\n{}", svc.status, manage.log_text());
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(svc.status.members.len(), 3);
    metrics_need_rbac_and_report_the_service(&client, &ns, &http, &manage, &user, &api_token).await;

    // List and members: each member in its zone.
    let (s, b) = call(&http, Method::GET, services.clone(), Some(&user), None).await;
    assert_eq!(s, StatusCode::OK);
    let list: ServiceList = serde_json::from_str(&b).unwrap();
    assert_eq!(list.items.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["zk"]);
    let (s, b) = call(&http, Method::GET, format!("{}/v1/services/zk/members?namespace={ns}", manage.base), Some(&user), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let members: Vec<MemberStatus> = serde_json::from_str(&b).unwrap();
    let nodes = firecamp_testbed::node_zones(&client).await;
    for (i, m) in members.iter().enumerate() {
        assert_eq!(m.name, format!("zk-{i}"));
        assert_eq!(m.zone, ZONES[i]);
        assert!(m.ready, "{m:?}");
        let node = m.node.as_deref().unwrap_or_else(|| panic!("{m:?}"));
        assert_eq!(nodes.get(node).map(String::as_str), Some(ZONES[i]), "{} runs in its zone", m.name);
    }

    // Another namespace than the one this manage service watches is refused.
    let (s, b) = call(&http, Method::GET, format!("{}/v1/services?namespace=kube-system", manage.base), Some(&user), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");

    // Operations (stop among them) need `update` on the service, which this user lacks.
    let (s, b) = call(&http, Method::POST, format!("{}/v1/services/zk/stop?namespace={ns}", manage.base), Some(&user), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(b.contains("may not update"), "{b}");
    let (s, b) = call(&http, Method::GET, format!("{}/v1/services/zk/operations?namespace={ns}", manage.base), Some(&user), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(serde_json::from_str::<firecamp_api::OperationList>(&b).unwrap().items.len(), 0);
    // Member logs live in CloudWatch: a manage service without --aws says so.
    let (s, b) = call(&http, Method::GET, format!("{}/v1/services/zk/logs?namespace={ns}", manage.base), Some(&user), None).await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED, "{b}");
    assert!(b.contains("--aws"), "{b}");

    // Delete: DELETING, then gone (404); deleting again is 404.
    let (s, b) = call(&http, Method::DELETE, format!("{}/v1/services/zk?namespace={ns}&deleteVolumes=true", manage.base), Some(&user), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let deleting: Service = serde_json::from_str(&b).unwrap();
    assert_eq!(deleting.status.phase, Phase::Deleting);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, b) = call(&http, Method::GET, one("zk"), Some(&user), None).await;
        if s == StatusCode::NOT_FOUND {
            assert_eq!(api_error(s, &b).code, ErrorCode::NotFound);
            break;
        }
        assert_eq!(s, StatusCode::OK, "{b}");
        assert!(Instant::now() < deadline, "zk not deleted in 60 s: {b}\n{}", manage.log_text());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (s, b) = call(&http, Method::DELETE, one("zk"), Some(&user), None).await;
    assert_eq!((s, api_error(s, &b).code), (StatusCode::NOT_FOUND, ErrorCode::NotFound));

    // Requests are counted by route and status code.
    let scraper = scraper_token(&client, &ns).await;
    let (s, metrics) = call(&http, Method::GET, format!("{}/metrics", manage.base), Some(&scraper), None).await;
    assert_eq!(s, StatusCode::OK, "{metrics}");
    assert!(metrics.contains("firecamp_http_requests_total{route=\"/v1/services\",method=\"POST\",code=\"201\"} 1"), "{metrics}");
    // No token, an unknown token, an API-server token.
    assert!(metrics.contains("firecamp_http_requests_total{route=\"/v1/services\",method=\"GET\",code=\"401\"} 3"), "{metrics}");
}

/// A ServiceAccount token for the API server's audience (what Prometheus's pod mounts), its
/// ServiceAccount bound to `install render`'s metrics-reader ClusterRole.
async fn scraper_token(client: &Client, ns: &str) -> String {
    firecamp_testbed::cluster_role_token(client, ns, "fc-scraper", &firecamp_manage::install::metrics_reader()).await
}

/// `/metrics` names every namespace's services: refused without a token, with FireCamp's own
/// audience, and to a ServiceAccount RBAC gives no `get` on it; a scraper bound to the
/// metrics-reader ClusterRole reads the service's phase, members and leader.
async fn metrics_need_rbac_and_report_the_service(client: &Client, ns: &str, http: &reqwest::Client, manage: &Manage, user: &str, api_token: &str) {
    use reqwest::Method;
    let url = format!("{}/metrics", manage.base);
    let (s, b) = call(http, Method::GET, url.clone(), None, None).await;
    assert_eq!((s, api_error(s, &b).code), (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized), "{b}");
    let (s, b) = call(http, Method::GET, url.clone(), Some(user), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a token for FireCamp's audience: {b}");
    assert!(api_error(s, &b).message.contains("ordinary ServiceAccount token"), "{b}");
    let (s, b) = call(http, Method::GET, url.clone(), Some(api_token), None).await;
    assert_eq!((s, api_error(s, &b).code), (StatusCode::FORBIDDEN, ErrorCode::Forbidden), "no RBAC for /metrics: {b}");
    assert!(b.contains("nonResourceURLs"), "{b}");
    let scraper = scraper_token(client, ns).await;
    // The ClusterRoleBinding may take a moment to reach the authorizer.
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let (s, b) = call(http, Method::GET, url.clone(), Some(&scraper), None).await;
        if s == StatusCode::OK {
            break b;
        }
        assert!(s == StatusCode::FORBIDDEN && Instant::now() < deadline, "{s}: {b}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let samples = firecamp_api::metrics::parse(&text);
    let value =
        |name: &str, labels: &[(&str, &str)]| samples.iter().find(|x| x.name == name && labels.iter().all(|(k, v)| x.label(k) == Some(*v))).map(|x| x.value);
    let zk = [("namespace", ns), ("service", "zk")];
    assert_eq!(value("firecamp_service_phase", &[zk[0], zk[1], ("phase", "ACTIVE")]), Some(1.0), "{text}");
    assert_eq!(value("firecamp_service_members_desired", &zk), Some(3.0), "{text}");
    assert_eq!(value("firecamp_service_info", &[zk[0], zk[1], ("engine", "zookeeper")]), Some(1.0), "{text}");
    assert_eq!(value("firecamp_leader", &[]), Some(1.0), "this replica leads: {text}");
    // The service's members as its status lists them (readiness and the leader follow it).
    assert_eq!(samples.iter().filter(|x| x.name == "firecamp_member_ready" && x.label("namespace") == Some(ns)).count(), 3, "{text}");
    // Its requests to Kubernetes by verb, resource and answer (the reviews of these very calls
    // among them), and its reconciles' durations.
    assert!(
        value("firecamp_kube_api_requests_total", &[("verb", "create"), ("resource", "tokenreviews"), ("code", "201")]).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        value("firecamp_kube_api_requests_total", &[("verb", "watch"), ("resource", "firecampservices"), ("code", "200")]).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(value("firecamp_reconcile_duration_seconds_count", &[]).is_some_and(|n| n >= 1.0), "{text}");
}

#[tokio::test]
async fn the_cli_talks_to_the_api_over_https() {
    let (client, ns) = setup("fc-tls").await;
    let user = token(&client, &ns, "fc-user", &["get", "list", "create", "delete"]).await;
    let tls = self_signed(&ns);
    let manage = Manage::start(&ns, Serving::Files(&tls)).await;
    let ca = tls.cert.to_str().unwrap();
    let server = ["--server", manage.base.as_str(), "--token", user.as_str(), "--ca-cert", ca, "-n", ns.as_str()];
    let with = |args: &[&str]| -> Vec<String> { args.iter().chain(server.iter()).map(|s| s.to_string()).collect() };
    let run = |args: &[&str]| cli(&with(args).iter().map(String::as_str).collect::<Vec<_>>());

    // The RoleBinding may take a moment to reach the authorizer.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = run(&["service", "list"]);
        if out.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "list: {}", String::from_utf8_lossy(&out.stderr));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Plain HTTP to the HTTPS port, and HTTPS without the CA, fail.
    let plain = manage.base.replace("https://", "http://");
    let out = cli(&["service", "list", "--server", &plain, "--token", &user, "-n", &ns]);
    assert!(!out.status.success());
    let out = cli(&["service", "list", "--server", &manage.base, "--token", &user, "-n", &ns]);
    assert!(!out.status.success(), "the self-signed certificate was trusted without --ca-cert");

    let out = ok(run(&["service", "create", "zookeeper", "zk", "--zones=us-east-1a,us-east-1b,us-east-1c", "--wait", "--timeout=120"]));
    assert!(out.contains("zk"), "{out}");
    let json = ok(run(&["service", "get", "zk", "-o", "json"]));
    let svc: Service = serde_json::from_str(&json).unwrap();
    assert_eq!(svc.status.phase, Phase::Active, "{json}");
    let list = ok(run(&["service", "list"]));
    assert!(list.lines().any(|l| l.starts_with("zk") && l.contains("ACTIVE")), "{list}");
    // Issue #13: the CA clients verify members with, as the manage service issued it.
    let creds: serde_json::Value = serde_json::from_str(&ok(run(&["service", "credentials", "zk", "-o", "json"]))).unwrap();
    let tls = Api::<Secret>::namespaced(client.clone(), &ns).get("zk-tls").await.unwrap();
    assert_eq!(creds["ca"].as_str().map(str::as_bytes), tls.data.as_ref().map(|d| d["ca.crt"].0.as_slice()), "{creds}");
    assert!(creds["members"][0]["connect"].as_str().unwrap().contains("zk-0."), "{creds}");
    let members = ok(run(&["service", "members", "zk"]));
    for (i, z) in ZONES.iter().enumerate() {
        assert!(members.lines().any(|l| l.starts_with(&format!("zk-{i}")) && l.contains(z)), "{members}");
    }
    ok(run(&["service", "delete", "zk", "--delete-volumes", "--wait", "--timeout=60"]));
    let out = run(&["service", "get", "zk"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    drop(manage);
}

/// #12 item 6: HTTPS by default from FireCamp's own CA. The first start makes the CA's Secret
/// and publishes its certificate (never its key); a client trusting it reaches the API by
/// address and by `localhost`, the CLI included; one that does not, or plain HTTP, gets nothing;
/// a restart keeps the CA, so clients keep trusting it.
#[tokio::test]
async fn serves_https_from_its_own_ca_and_keeps_it_across_restarts() {
    let (client, ns) = setup("fc-ownca").await;
    let user = token(&client, &ns, "fc-user", &["get", "list"]).await;
    let manage = Manage::start(&ns, Serving::OwnCa("fc-ca")).await;
    let ca = published_ca(&client, &ns, "fc-ca").await.unwrap();
    assert!(ca.contains("BEGIN CERTIFICATE") && !ca.contains("PRIVATE KEY"), "{ca}");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret = secrets.get("fc-ca").await.unwrap();
    let data = secret.data.clone().unwrap();
    assert_eq!(String::from_utf8_lossy(&data["ca.crt"].0), ca);
    assert!(String::from_utf8_lossy(&data["ca.key"].0).contains("PRIVATE KEY"));
    assert_eq!(secret.metadata.labels.as_ref().unwrap()["app.kubernetes.io/managed-by"], "firecamp");

    let trusting = http_client(Some(ca.as_bytes()));
    let localhost = manage.base.replace("127.0.0.1", "localhost");
    for base in [&manage.base, &localhost] {
        let r = trusting.get(format!("{base}/healthz")).send().await.unwrap_or_else(|e| panic!("{base}: {e:?}"));
        assert_eq!(r.status(), StatusCode::OK, "{base}");
    }
    let e = http_client(None).get(format!("{}/healthz", manage.base)).send().await.unwrap_err();
    assert!(format!("{e:?}").to_lowercase().contains("certificate"), "a client without the CA: {e:?}");
    let plain = manage.base.replace("https://", "http://");
    assert!(http_client(None).get(format!("{plain}/healthz")).send().await.is_err(), "plain HTTP to the HTTPS port answered");

    // The CLI, given the published certificate, lists the (empty) namespace.
    let ca_file = std::env::temp_dir().join(format!("firecamp-ca-{ns}.crt"));
    std::fs::write(&ca_file, &ca).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = cli(&["service", "list", "-o", "json", "--server", &localhost, "--token", &user, "--ca-cert", ca_file.to_str().unwrap(), "-n", &ns]);
        if out.status.success() {
            let list: ServiceList = serde_json::from_slice(&out.stdout).unwrap();
            assert!(list.items.is_empty());
            break;
        }
        // The RoleBinding may take a moment to reach the authorizer.
        assert!(Instant::now() < deadline, "list: {}", String::from_utf8_lossy(&out.stderr));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(!manage.log_text().contains("PRIVATE KEY"), "a key in the log: {}", manage.log_text());

    // Restarted, it serves from the same CA: the Secret untouched, the ConfigMap the same.
    let version = secret.metadata.resource_version.clone();
    drop(manage);
    let manage = Manage::start(&ns, Serving::OwnCa("fc-ca")).await;
    assert_eq!(secrets.get("fc-ca").await.unwrap().metadata.resource_version, version);
    assert_eq!(published_ca(&client, &ns, "fc-ca").await.unwrap(), ca);
    assert_eq!(trusting.get(format!("{}/healthz", manage.base)).send().await.unwrap().status(), StatusCode::OK);
    std::fs::remove_file(&ca_file).unwrap();
}

/// #12 items 4 and 6: a Secret of that name that FireCamp did not make is neither used nor
/// changed: the manage service stops, naming it, and publishes no certificate.
#[tokio::test]
async fn refuses_a_ca_secret_it_did_not_make() {
    let (client, ns) = setup("fc-notourca").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let planted: Secret = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "fc-ca" },
        "stringData": { "ca.crt": "someone else's", "ca.key": "someone else's" }
    }))
    .unwrap();
    let planted = secrets.create(&Default::default(), &planted).await.unwrap();
    let mut manage = Manage::spawn(&ns, Serving::OwnCa("fc-ca"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = manage.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "it served with a Secret it did not make: {}", manage.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!status.success());
    let log = manage.log_text();
    assert!(log.contains(&format!("Secret {ns}/fc-ca exists and FireCamp did not create it")), "{log}");
    let after = secrets.get("fc-ca").await.unwrap();
    assert_eq!((after.metadata.resource_version, after.data), (planted.metadata.resource_version, planted.data));
    assert!(published_ca(&client, &ns, "fc-ca").await.is_none(), "a certificate was published");
}
