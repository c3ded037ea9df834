//! The manage service end to end on the real Kubernetes test bed, driven through the CLI
//! (`--kube`: FireCampService resources through the kubeconfig). Each test runs its own
//! `firecamp manage` process, confined to its own namespace (and Lease), and kills it at will.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use firecamp_api::{Phase, Service};
use firecamp_manage::crd::FireCampService;
use firecamp_testbed::{PROVISIONER, client, fresh_namespace, kubeconfig_path};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};

const ZONES: &str = "--zones=us-east-1a,us-east-1b,us-east-1c";

struct Manage(Child);

impl Manage {
    fn start(ns: &str) -> Manage {
        let log = std::fs::File::create(std::env::temp_dir().join(format!("firecamp-manage-{ns}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_firecamp"))
            .args(["manage", "--cluster=bed", &format!("--volume-provisioner={PROVISIONER}")])
            .args([format!("--watch-namespace={ns}"), format!("--lease-namespace={ns}"), format!("--identity=test-{ns}")])
            // Its REST API on a port of its own, so parallel tests (and restarts) never collide.
            .arg("--listen=127.0.0.1:0")
            .env("KUBECONFIG", kubeconfig_path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Manage(child)
    }

    /// SIGKILL: no chance to finish anything.
    fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Manage {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cli(ns: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firecamp")).args(args).args(["--kube", "-n", ns]).env("KUBECONFIG", kubeconfig_path()).output().unwrap()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "firecamp failed ({:?}): {}{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn get(ns: &str, name: &str) -> Service {
    serde_json::from_str(&ok(cli(ns, &["service", "get", name, "-o", "json"]))).unwrap()
}

async fn setup(prefix: &str) -> (Client, String) {
    let client = client().await;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(client.clone());
    let crd = firecamp_manage::crd::crd();
    crds.patch("firecampservices.firecamp.dev", &PatchParams::apply("firecamp-test").force(), &Patch::Apply(&crd)).await.unwrap();
    let cond = kube::runtime::conditions::is_crd_established();
    tokio::time::timeout(Duration::from_secs(30), kube::runtime::wait::await_condition(crds, "firecampservices.firecamp.dev", cond))
        .await
        .expect("CRD established")
        .unwrap();
    let ns = fresh_namespace(&client, prefix).await;
    (client, ns)
}

fn create(ns: &str, args: &[&str]) {
    let mut a = vec!["service", "create"];
    a.extend_from_slice(args);
    a.extend_from_slice(&[ZONES, "--wait", "--timeout=120"]);
    ok(cli(ns, &a));
}

#[tokio::test]
async fn services_become_active_in_their_zones_and_delete_cleans_up() {
    let (client, ns) = setup("fc-e2e").await;
    let _manage = Manage::start(&ns);
    let t0 = std::time::Instant::now();
    create(&ns, &["postgresql", "pg", "--replicas=3"]);
    // Next to real_pods' figure for the same service on real nodes (docs/testbed.md).
    eprintln!("postgresql 3 on kwok nodes: create -> ACTIVE in {:.1} s", t0.elapsed().as_secs_f64());
    create(&ns, &["zookeeper", "zk"]);
    create(&ns, &["redis", "rc", "--option=mode=cluster", "--option=shards=3"]);

    let nodes = firecamp_testbed::node_zones(&client).await;
    for (name, n) in [("pg", 3), ("zk", 3), ("rc", 6)] {
        let s = get(&ns, name);
        assert_eq!(s.status.phase, Phase::Active, "{name}: {:?}", s.status);
        assert_eq!(s.status.members.len(), n);
        for m in &s.status.members {
            assert!(m.ready, "{name}: {m:?}");
            assert_eq!(nodes.get(m.node.as_deref().unwrap()), Some(&m.zone), "{} runs in its zone", m.name);
            assert_eq!(m.dns_name, format!("{}.{ns}.bed-firecamp.com", m.name));
        }
    }
    // Services sharing a namespace keep their own zone-pinned StorageClasses.
    let scs: Api<StorageClass> = Api::all(client.clone());
    for name in ["pg", "zk", "rc"] {
        let lp = ListParams::default().labels(&format!("firecamp.dev/service={name},firecamp.dev/namespace={ns}"));
        assert_eq!(scs.list(&lp).await.unwrap().items.len(), 3, "{name}: one StorageClass per zone");
    }
    // The PostgreSQL primary is labelled so the client Service finds it.
    let members = ok(cli(&ns, &["service", "members", "pg"]));
    assert!(members.lines().any(|l| l.starts_with("pg-0") && l.contains("primary")), "{members}");
    // The Redis Cluster's init task ran as a Job.
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    assert!(jobs.get_opt("rc-init").await.unwrap().is_some());
    let list = ok(cli(&ns, &["service", "list"]));
    assert_eq!(list.lines().filter(|l| l.contains("ACTIVE")).count(), 3, "{list}");

    // Delete keeps the data volumes unless asked.
    let out = ok(cli(&ns, &["service", "delete", "pg", "--wait", "--timeout=60"]));
    assert!(out.contains("data volumes are kept"), "{out}");
    ok(cli(&ns, &["service", "delete", "zk", "--delete-volumes", "--wait", "--timeout=60"]));
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let scs: Api<StorageClass> = Api::all(client.clone());
    let with = |s: &str| ListParams::default().labels(&format!("firecamp.dev/service={s}"));
    assert_eq!(pvcs.list(&with("pg")).await.unwrap().items.len(), 3, "pg's volumes are kept");
    let pvcs_gone = |o: Option<&PersistentVolumeClaim>| o.is_none();
    tokio::time::timeout(Duration::from_secs(60), kube::runtime::wait::await_condition(pvcs.clone(), "data-zk-0", pvcs_gone))
        .await
        .expect("zk's volumes deleted")
        .unwrap();
    for s in ["pg", "zk"] {
        let sc = scs.list(&ListParams::default().labels(&format!("firecamp.dev/service={s},firecamp.dev/namespace={ns}"))).await.unwrap();
        assert!(sc.items.is_empty(), "{s}: StorageClasses left: {:?}", sc.items.len());
        let gone = |o: Option<&StatefulSet>| o.is_none();
        tokio::time::timeout(Duration::from_secs(60), kube::runtime::wait::await_condition(sts.clone(), s, gone))
            .await
            .unwrap_or_else(|_| panic!("{s}: StatefulSet not garbage-collected"))
            .unwrap();
    }
    assert!(cli(&ns, &["service", "get", "pg"]).status.code() == Some(1));
    ok(cli(&ns, &["service", "delete", "rc", "--delete-volumes", "--wait", "--timeout=60"]));
    drop_namespace(&client, &ns).await;
}

/// Frees the bed's host ports and volumes for the next tests.
async fn drop_namespace(client: &Client, ns: &str) {
    firecamp_testbed::drop_namespace(client, ns).await;
}

#[tokio::test]
async fn a_killed_manage_service_resumes_without_duplicates_or_lost_init_tasks() {
    let (client, ns) = setup("fc-kill").await;
    let manage = Manage::start(&ns);
    // Redis members use the host network (one per node): keep these clusters small.
    ok(cli(&ns, &["service", "create", "redis", "rc", "--option=mode=cluster", "--option=shards=3", "--replicas=3", ZONES]));
    // Kill the manage service as soon as it has started creating the members' objects.
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let exists = |o: Option<&StatefulSet>| o.is_some();
    tokio::time::timeout(Duration::from_secs(60), kube::runtime::wait::await_condition(sts.clone(), "rc", exists)).await.unwrap().unwrap();
    manage.kill();
    let _manage = Manage::start(&ns);
    let out =
        ok(cli(&ns, &["service", "create", "redis", "rc2", "--option=mode=cluster", "--option=shards=3", "--replicas=3", ZONES, "--wait", "--timeout=120"]));
    assert!(out.contains("created rc2"), "{out}");
    ok(cli(&ns, &["service", "get", "rc", "-o", "json"]));
    let fcs: Api<FireCampService> = Api::namespaced(client.clone(), &ns);
    let active = |o: Option<&FireCampService>| o.and_then(|s| s.status.as_ref()).is_some_and(|s| s.phase == Phase::Active);
    tokio::time::timeout(Duration::from_secs(120), kube::runtime::wait::await_condition(fcs, "rc", active))
        .await
        .unwrap_or_else(|_| panic!("rc not ACTIVE after the restart: {:?}", get(&ns, "rc").status))
        .unwrap();
    let s = get(&ns, "rc");
    assert!(s.status.members.iter().all(|m| m.ready));
    // Exactly one of each object, and the init task ran once.
    let lp = ListParams::default().labels("firecamp.dev/service=rc");
    assert_eq!(sts.list(&lp).await.unwrap().items.len(), 1);
    assert_eq!(Api::<ConfigMap>::namespaced(client.clone(), &ns).list(&lp).await.unwrap().items.len(), 3);
    // The credentials, the CA's and the members' TLS Secrets.
    assert_eq!(Api::<Secret>::namespaced(client.clone(), &ns).list(&lp).await.unwrap().items.len(), 3);
    assert_eq!(Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns).list(&lp).await.unwrap().items.len(), 3);
    let jobs = Api::<Job>::namespaced(client.clone(), &ns).list(&lp).await.unwrap();
    assert_eq!(jobs.items.len(), 1);
    let raw: serde_json::Value =
        serde_json::to_value(Api::<firecamp_manage::crd::FireCampService>::namespaced(client.clone(), &ns).get("rc").await.unwrap().status).unwrap();
    assert_eq!(raw["initTasks"][0]["phase"], "Succeeded", "{raw}");
    for s in ["rc", "rc2"] {
        ok(cli(&ns, &["service", "delete", s, "--delete-volumes", "--wait", "--timeout=60"]));
    }
    drop_namespace(&client, &ns).await;
}

#[tokio::test]
async fn a_member_whose_zone_has_no_node_leaves_the_service_degraded_with_the_reason() {
    let (_client, ns) = setup("fc-deg").await;
    let _manage = Manage::start(&ns);
    ok(cli(&ns, &["service", "create", "postgresql", "pg", "--replicas=4", "--zones=us-east-1a,us-east-1b,us-east-1c,us-east-1d"]));
    let api: Api<FireCampService> = Api::namespaced(_client.clone(), &ns);
    let degraded = |o: Option<&FireCampService>| o.and_then(|s| s.status.as_ref()).is_some_and(|s| s.phase == Phase::Degraded && s.ready_members == 3);
    let s = tokio::time::timeout(Duration::from_secs(120), kube::runtime::wait::await_condition(api, "pg", degraded))
        .await
        .unwrap_or_else(|_| panic!("not DEGRADED with 3 members running: {:?}", get(&ns, "pg").status))
        .unwrap()
        .unwrap();
    let st = s.status.unwrap();
    let msg = st.message.clone().unwrap_or_default();
    assert!(msg.contains("pg-3 cannot be scheduled in us-east-1d"), "{msg}");
    let m3 = st.members.iter().find(|m| m.name == "pg-3").unwrap();
    assert!(!m3.ready && m3.node.is_none());
}

#[tokio::test]
async fn invalid_specs_are_refused_whole() {
    let (client, ns) = setup("fc-bad").await;
    let o = cli(&ns, &["service", "create", "zookeeper", "zk", "--replicas=4", ZONES]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("spec.replicas: a ZooKeeper ensemble needs an odd number"));
    // Written directly (kubectl), a spec the schema accepts but FireCamp's rules refuse is
    // reported FAILED in status and creates nothing.
    let _manage = Manage::start(&ns);
    let api: Api<firecamp_manage::crd::FireCampService> = Api::namespaced(client.clone(), &ns);
    let mut spec = firecamp_catalog::examples::spec(firecamp_core::EngineKind::Zookeeper, 4);
    spec.zones = vec!["us-east-1a".into()];
    let r = firecamp_manage::crd::FireCampService::new("zk", firecamp_manage::crd::FireCampServiceSpec(spec));
    api.create(&Default::default(), &r).await.unwrap();
    let failed = |o: Option<&firecamp_manage::crd::FireCampService>| o.and_then(|s| s.status.as_ref()).is_some_and(|s| s.phase == Phase::Failed);
    let s = tokio::time::timeout(Duration::from_secs(60), kube::runtime::wait::await_condition(api, "zk", failed)).await.unwrap().unwrap().unwrap();
    assert!(s.status.unwrap().message.unwrap().contains("odd number of members"));
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    assert!(sts.get_opt("zk").await.unwrap().is_none());
}

/// Issue #12, items 2 and 5: a resource applied directly (kubectl), past the REST API's checks,
/// with a parameter that would load code into Redis and a reserved annotation, ends FAILED naming
/// both fields, and the controller creates nothing from it.
#[tokio::test]
async fn a_resource_with_a_dangerous_parameter_ends_failed_naming_it() {
    let (client, ns) = setup("fc-params").await;
    let _manage = Manage::start(&ns);
    let api: Api<FireCampService> = Api::namespaced(client.clone(), &ns);
    let mut spec = firecamp_catalog::examples::spec(firecamp_core::EngineKind::Redis, 3);
    spec.config.insert("loadmodule".into(), "/tmp/evil.so".into());
    spec.annotations.insert("storageclass.kubernetes.io/is-default-class".into(), "true".into());
    api.create(&Default::default(), &FireCampService::new("rd", firecamp_manage::crd::FireCampServiceSpec(spec))).await.unwrap();
    let failed = |o: Option<&FireCampService>| o.and_then(|s| s.status.as_ref()).is_some_and(|s| s.phase == Phase::Failed);
    let s = tokio::time::timeout(Duration::from_secs(60), kube::runtime::wait::await_condition(api, "rd", failed)).await.unwrap().unwrap().unwrap();
    let msg = s.status.unwrap().message.unwrap();
    assert!(msg.contains("spec.config.loadmodule") && msg.contains("not an allowed Redis parameter"), "{msg}");
    assert!(msg.contains("storageclass.kubernetes.io/is-default-class"), "{msg}");
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    assert!(sts.get_opt("rd").await.unwrap().is_none());
    let classes: Api<StorageClass> = Api::all(client.clone());
    let ours = classes.list(&ListParams::default().labels(&format!("firecamp.dev/namespace={ns}"))).await.unwrap();
    assert!(ours.items.is_empty(), "no StorageClass made");
}

/// Issue #16: `spec.replicas` edited directly (kubectl) becomes a scale operation; a change the
/// engine cannot make (a single ZooKeeper member runs standalone, without `reconfig`) is refused,
/// naming the field, the reason and the size to go back to, and the StatefulSet keeps its size; set back,
/// the service is ACTIVE again. (The edit that scales: `operations_on_bed`'s scale test.)
#[tokio::test]
async fn a_size_edited_that_cannot_scale_here_is_refused_and_the_statefulset_keeps_its_size() {
    let (client, ns) = setup("fc-size").await;
    let _manage = Manage::start(&ns);
    create(&ns, &["zookeeper", "zk", "--replicas=1"]);
    let crs: Api<FireCampService> = Api::namespaced(client.clone(), &ns);
    crs.patch("zk", &PatchParams::default(), &Patch::Merge(&serde_json::json!({"spec": {"replicas": 3}}))).await.unwrap();
    let failed = |o: Option<&FireCampService>| o.and_then(|s| s.status.as_ref()).is_some_and(|s| s.phase == Phase::Failed);
    let s = tokio::time::timeout(Duration::from_secs(60), kube::runtime::wait::await_condition(crs.clone(), "zk", failed))
        .await
        .expect("FAILED once the size changed")
        .unwrap()
        .unwrap();
    let msg = s.status.unwrap().message.unwrap();
    assert!(msg.contains("spec.replicas") && msg.contains("needs a scale") && msg.contains("standalone") && msg.contains("set it back to 1"), "{msg}");
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    assert_eq!(sts.get("zk").await.unwrap().spec.unwrap().replicas, Some(1), "the StatefulSet keeps its size");
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns).list(&ListParams::default().labels("firecamp.dev/service=zk")).await.unwrap();
    assert_eq!(pvcs.items.len(), 1, "no volume made for a member that was refused");

    crs.patch("zk", &PatchParams::default(), &Patch::Merge(&serde_json::json!({"spec": {"replicas": 1}}))).await.unwrap();
    let active = |o: Option<&FireCampService>| o.and_then(|s| s.status.as_ref()).is_some_and(|s| s.phase == Phase::Active);
    tokio::time::timeout(Duration::from_secs(60), kube::runtime::wait::await_condition(crs, "zk", active)).await.expect("ACTIVE once set back").unwrap();
    ok(cli(&ns, &["service", "delete", "zk", "--delete-volumes", "--wait", "--timeout=60"]));
}

#[tokio::test]
async fn the_network_policy_admits_the_named_clients_and_goes_when_the_spec_turns_it_off() {
    let (client, ns) = setup("fc-netpol").await;
    let _manage = Manage::start(&ns);
    create(&ns, &["zookeeper", "zk", "--replicas=1", "--client-namespace=apps", "--client-cidr=10.20.0.0/16"]);
    let nps: Api<k8s_openapi::api::networking::v1::NetworkPolicy> = Api::namespaced(client.clone(), &ns);
    let np = nps.get("zk").await.expect("the service's NetworkPolicy, accepted by the API server");
    let from = serde_json::to_value(&np.spec.as_ref().unwrap().ingress.as_ref().unwrap()[0].from).unwrap();
    assert!(from.to_string().contains(r#""kubernetes.io/metadata.name":"apps""#) && from.to_string().contains("10.20.0.0/16"), "{from}");
    // The manage service of this test runs in the test's namespace (its Lease's): admitted.
    assert!(from.to_string().contains(&format!(r#""kubernetes.io/metadata.name":"{ns}""#)), "{from}");

    // Turned off in the spec, the policy is deleted (it is the service's own).
    let crs: Api<FireCampService> = Api::namespaced(client.clone(), &ns);
    let off = serde_json::json!({"spec": {"clients": {"namespaces": [], "cidrs": [], "networkPolicy": false}}});
    crs.patch("zk", &PatchParams::default(), &Patch::Merge(&off)).await.unwrap();
    let gone = |o: Option<&k8s_openapi::api::networking::v1::NetworkPolicy>| o.is_none();
    tokio::time::timeout(Duration::from_secs(60), kube::runtime::wait::await_condition(nps, "zk", gone))
        .await
        .expect("the NetworkPolicy is deleted once the spec turns it off")
        .unwrap();
    ok(cli(&ns, &["service", "delete", "zk", "--delete-volumes", "--wait", "--timeout=60"]));
}

#[tokio::test]
async fn a_deletion_refused_leaves_no_delete_volumes_mark_behind() {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
    use kube::api::PostParams;
    let (client, ns) = setup("fc-unmark").await;
    let _manage = Manage::start(&ns);
    create(&ns, &["zookeeper", "zk", "--replicas=1"]);
    // A user who may mark the service but not delete it.
    let meta = |name: &str| kube::api::ObjectMeta { name: Some(name.into()), namespace: Some(ns.clone()), ..Default::default() };
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    sas.create(&PostParams::default(), &ServiceAccount { metadata: meta("patcher"), ..Default::default() }).await.unwrap();
    let rule = PolicyRule {
        api_groups: Some(vec!["firecamp.dev".into()]),
        resources: Some(vec!["firecampservices".into()]),
        verbs: ["get", "list", "watch", "patch"].map(String::from).to_vec(),
        ..Default::default()
    };
    Api::<Role>::namespaced(client.clone(), &ns).create(&PostParams::default(), &Role { metadata: meta("patcher"), rules: Some(vec![rule]) }).await.unwrap();
    let binding = RoleBinding {
        metadata: meta("patcher"),
        role_ref: RoleRef { api_group: Some("rbac.authorization.k8s.io".into()), kind: "Role".into(), name: "patcher".into() },
        subjects: Some(vec![Subject { kind: "ServiceAccount".into(), name: "patcher".into(), namespace: Some(ns.clone()), ..Default::default() }]),
    };
    Api::<RoleBinding>::namespaced(client.clone(), &ns).create(&PostParams::default(), &binding).await.unwrap();
    let tr = TokenRequest { spec: Some(TokenRequestSpec { expiration_seconds: Some(600), ..Default::default() }), ..Default::default() };
    let token = sas.create_token_request("patcher", &PostParams::default(), &tr).await.unwrap().status.and_then(|s| s.token).unwrap();
    // The bed's admin kubeconfig, as that user.
    let admin = std::fs::read_to_string(kubeconfig_path()).unwrap();
    let line = admin.lines().find(|l| l.trim_start().starts_with("token:")).expect("the admin kubeconfig has a token");
    let kubeconfig = std::env::temp_dir().join(format!("firecamp-patcher-{ns}.kubeconfig"));
    std::fs::write(&kubeconfig, admin.replace(line, &format!("    token: {token}"))).unwrap();

    let crs: Api<FireCampService> = Api::namespaced(client.clone(), &ns);
    // RBAC may take a moment to reach the authorizer: until the patch is allowed, nothing is marked.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_firecamp"))
            .args(["service", "delete", "zk", "--delete-volumes", "--kube", "-n", &ns])
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "the delete was refused");
        let annotations = crs.get("zk").await.unwrap().metadata.annotations.unwrap_or_default();
        assert!(!annotations.contains_key(firecamp_manage::crd::DELETE_VOLUMES_ANNOTATION), "a refused deletion left its mark: {annotations:?} ({err})");
        // Refused at the deletion itself (after the mark was set), not at the mark.
        if err.contains("cannot delete") || std::time::Instant::now() > deadline {
            assert!(err.contains("cannot delete"), "{err}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = std::fs::remove_file(&kubeconfig);
    ok(cli(&ns, &["service", "delete", "zk", "--delete-volumes", "--wait", "--timeout=60"]));
}

/// A pass applies only what would change (`reconcile/applied.rs`), so it must still see what
/// someone else changed: a member's ConfigMap rewritten by hand and a label of the StatefulSet
/// (whose generation does not move with its metadata) are put back.
#[tokio::test]
async fn objects_edited_by_hand_are_put_back() {
    let (client, ns) = setup("fc-drift").await;
    let _manage = Manage::start(&ns);
    create(&ns, &["zookeeper", "zk", "--replicas=1"]);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let original = cms.get("zk-0-config").await.unwrap().data.unwrap();
    let tampered = serde_json::json!({"data": {"zoo.cfg": "tampered=true\n"}});
    cms.patch("zk-0-config", &PatchParams::default(), &Patch::Merge(&tampered)).await.unwrap();
    let restored = |o: Option<&ConfigMap>| o.and_then(|c| c.data.as_ref()).is_some_and(|d| d.get("zoo.cfg") == original.get("zoo.cfg"));
    tokio::time::timeout(Duration::from_secs(60), kube::runtime::wait::await_condition(cms, "zk-0-config", restored))
        .await
        .expect("the ConfigMap put back")
        .unwrap();

    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let relabel = serde_json::json!({"metadata": {"labels": {"firecamp.dev/service": "someone-else"}}});
    sts.patch("zk", &PatchParams::default(), &Patch::Merge(&relabel)).await.unwrap();
    let ours =
        |o: Option<&StatefulSet>| o.and_then(|s| s.metadata.labels.as_ref()).is_some_and(|l| l.get("firecamp.dev/service").map(String::as_str) == Some("zk"));
    tokio::time::timeout(Duration::from_secs(60), kube::runtime::wait::await_condition(sts, "zk", ours))
        .await
        .expect("the StatefulSet's label put back")
        .unwrap();
    ok(cli(&ns, &["service", "delete", "zk", "--delete-volumes", "--wait", "--timeout=60"]));
    drop_namespace(&client, &ns).await;
}
