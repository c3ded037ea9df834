//! Day-2 operations on the Kubernetes test bed. The bed's pods run no server, so the manage
//! service runs with `--role-source=labels`: the pods' role labels are the engine's view (the
//! test plays the engine; a switchover swaps the labels). What is real: the StatefulSet
//! controller with OnDelete, the scheduler, the order of pod deletions, the revisions, the
//! manage service being killed mid-operation. Each test has nodes of its own (its own cluster
//! label), so cordoning one never disturbs another test.

use std::collections::BTreeMap;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use firecamp_api::{OperationKind, OperationList, OperationPhase, Phase};
use firecamp_manage::crd::FireCampService;
use firecamp_testbed::nodes::{NodePlan, WORKER_LABEL, create_nodes_and_wait};
use firecamp_testbed::{PROVISIONER, client, fresh_namespace, kubeconfig_path};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Node, PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

struct Manage(Child, u16);

impl Manage {
    fn start(ns: &str, cluster: &str) -> Manage {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(std::env::temp_dir().join(format!("firecamp-manage-{ns}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_firecamp"))
            .args(["manage", &format!("--cluster={cluster}"), &format!("--volume-provisioner={PROVISIONER}"), "--role-source=labels"])
            .args([format!("--watch-namespace={ns}"), format!("--lease-namespace={ns}"), format!("--identity=test-{ns}"), format!("--listen=127.0.0.1:{port}")])
            .env("KUBECONFIG", kubeconfig_path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Manage(child, port)
    }

    /// Its `/metrics`, read with `token` once RBAC lets it (a new binding takes a moment).
    async fn metrics(&self, token: &str) -> Vec<firecamp_api::metrics::Sample> {
        let http = reqwest::Client::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let resp = http.get(format!("http://127.0.0.1:{}/metrics", self.1)).bearer_auth(token).send().await.unwrap();
            let status = resp.status();
            let text = resp.text().await.unwrap();
            if status.is_success() {
                return firecamp_api::metrics::parse(&text);
            }
            assert!(status.as_u16() == 403 && std::time::Instant::now() < deadline, "{status}: {text}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Drop for Manage {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cli(ns: &str, cluster: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firecamp"))
        .args(args)
        .args(["--kube", "-n", ns])
        .env("KUBECONFIG", kubeconfig_path())
        .env("FIRECAMP_CLUSTER", cluster)
        .output()
        .unwrap()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "firecamp failed ({:?}): {}{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// A bed of its own: a namespace, three nodes (one per zone) labelled for a cluster name no
/// other test uses, the CRD.
struct Bed {
    client: Client,
    ns: String,
    cluster: String,
    nodes: Vec<String>,
}

impl Bed {
    async fn new(prefix: &str) -> Bed {
        Bed::with_nodes(prefix, 3).await
    }

    async fn with_nodes(prefix: &str, count: usize) -> Bed {
        let client = client().await;
        let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(client.clone());
        crds.patch("firecampservices.firecamp.dev", &PatchParams::apply("firecamp-test").force(), &Patch::Apply(&firecamp_manage::crd::crd())).await.unwrap();
        let established = kube::runtime::conditions::is_crd_established();
        tokio::time::timeout(Duration::from_secs(30), await_condition(crds, "firecampservices.firecamp.dev", established)).await.unwrap().unwrap();
        let ns = fresh_namespace(&client, prefix).await;
        let cluster = ns.clone();
        let plan =
            NodePlan { count, zones: ZONES.map(String::from).to_vec(), region: "us-east-1".into(), cluster: cluster.clone(), instance_type: "m5.large".into() };
        let nodes: Vec<Node> = plan
            .nodes()
            .into_iter()
            .map(|mut n| {
                let name = format!("{cluster}-{}", n.name_any());
                n.metadata.name = Some(name.clone());
                n.metadata.labels.as_mut().unwrap().insert("kubernetes.io/hostname".into(), name);
                n.metadata.labels.as_mut().unwrap().insert(WORKER_LABEL.into(), cluster.clone());
                n
            })
            .collect();
        create_nodes_and_wait(&client, &nodes, Duration::from_secs(60)).await.unwrap();
        Bed { client, ns, cluster, nodes: nodes.iter().map(|n| n.name_any()).collect() }
    }

    fn cli(&self, args: &[&str]) -> Output {
        cli(&self.ns, &self.cluster, args)
    }

    fn manage(&self) -> Manage {
        Manage::start(&self.ns, &self.cluster)
    }

    async fn cordon(&self, zone: usize, on: bool) {
        let api: Api<Node> = Api::all(self.client.clone());
        api.patch(&self.nodes[zone], &PatchParams::default(), &Patch::Merge(serde_json::json!({"spec": {"unschedulable": on}}))).await.unwrap();
    }

    fn services(&self) -> Api<FireCampService> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    async fn uids(&self) -> BTreeMap<String, String> {
        self.pods().list(&ListParams::default()).await.unwrap().items.iter().map(|p| (p.name_any(), p.metadata.uid.clone().unwrap())).collect()
    }

    async fn roles(&self) -> BTreeMap<String, String> {
        let pods = self.pods().list(&ListParams::default()).await.unwrap().items;
        pods.iter().map(|p| (p.name_any(), p.labels().get("firecamp.dev/role").cloned().unwrap_or_default())).collect()
    }

    /// Each Redis member's `redis.conf` as its ConfigMap holds it.
    async fn redis_conf(&self) -> BTreeMap<String, String> {
        let cms = Api::<ConfigMap>::namespaced(self.client.clone(), &self.ns).list(&ListParams::default()).await.unwrap();
        cms.items.into_iter().filter_map(|c| Some((c.name_any().strip_suffix("-config")?.to_string(), c.data?.get("redis.conf")?.clone()))).collect()
    }

    fn operations(&self, name: &str) -> OperationList {
        serde_json::from_str(&ok(self.cli(&["service", "operations", name, "-o", "json"]))).unwrap()
    }

    async fn wait_for(&self, name: &str, what: &str, cond: impl Fn(&FireCampService) -> bool) {
        let check = |s: Option<&FireCampService>| s.is_some_and(&cond);
        if tokio::time::timeout(Duration::from_secs(120), await_condition(self.services(), name, check)).await.is_err() {
            panic!("{name}: waiting for {what}; operations now: {:#?}", self.services().get(name).await.unwrap().status.map(|s| s.operations));
        }
    }

    /// Records the order in which pods go away, from a watch (no polling, nothing missed).
    fn deletions(&self) -> Arc<Mutex<Vec<String>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let out = seen.clone();
        let stream = watcher(self.pods(), watcher::Config::default()).default_backoff();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(ev) = stream.next().await {
                if let Ok(watcher::Event::Delete(p)) = ev {
                    out.lock().unwrap().push(p.name_any());
                }
            }
        });
        seen
    }

    /// The namespace first (its pods end on nodes kwok still runs), then the nodes.
    async fn drop_all(self) {
        firecamp_testbed::drop_namespace(&self.client, &self.ns).await;
        let api: Api<Node> = Api::all(self.client.clone());
        for n in &self.nodes {
            let _ = api.delete(n, &DeleteParams::default()).await;
        }
    }
}

fn steps(ops: &OperationList, i: usize) -> Vec<String> {
    ops.items[i].steps.iter().map(|s| s.describe()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_follow_the_policy_and_the_roles_and_stop_start_keep_the_data() {
    let bed = Bed::new("ops").await;
    let _manage = bed.manage();
    let zones = format!("--zones={}", ZONES.join(","));
    ok(bed.cli(&["service", "create", "redis", "rd", "--version=7.0", "--replicas=3", &zones, "--wait", "--timeout=120"]));
    assert_eq!(bed.roles().await["rd-0"], "primary");

    // PrimaryLast (Redis's default): replicas, a switchover to an updated replica, the old primary.
    let deleted = bed.deletions();
    let out = ok(bed.cli(&["service", "upgrade", "rd", "--version=7.2", "--wait", "--timeout=120"]));
    assert!(out.contains("accepted"), "{out}");
    assert_eq!(*deleted.lock().unwrap(), ["rd-1", "rd-2", "rd-0"], "pod deletions in the policy's order");
    let ops = bed.operations("rd");
    assert_eq!(ops.items[0].phase, OperationPhase::Succeeded);
    assert_eq!(steps(&ops, 0), ["restart rd-1", "restart rd-2", "switchover rd-0 → rd-1", "restart rd-0"]);
    let roles = bed.roles().await;
    assert_eq!((roles["rd-0"].as_str(), roles["rd-1"].as_str(), roles["rd-2"].as_str()), ("replica", "primary", "replica"), "the primary changed exactly once");
    // The members' files follow the switchover: rd-0 (restarted after it) replicates from rd-1.
    assert_eq!(bed.services().get("rd").await.unwrap().status.unwrap().primary.as_deref(), Some("rd-1"));
    let conf = bed.redis_conf().await;
    assert!(!conf["rd-1"].contains("\nreplicaof "), "rd-1 is the primary in its file:\n{}", conf["rd-1"]);
    for m in ["rd-0", "rd-2"] {
        assert!(conf[m].contains("\nreplicaof rd-1."), "{m} replicates from rd-1 in its file:\n{}", conf[m]);
    }
    // Every member on the StatefulSet's new revision (OnDelete never advances currentRevision).
    let sts = Api::<StatefulSet>::namespaced(bed.client.clone(), &bed.ns).get("rd").await.unwrap();
    let update = sts.status.unwrap().update_revision.unwrap();
    for p in bed.pods().list(&ListParams::default()).await.unwrap() {
        assert_eq!(p.labels().get("controller-revision-hash"), Some(&update), "{} on the update revision", p.name_any());
        assert!(p.spec.unwrap().containers[0].image.as_deref().unwrap().contains(":7.2"), "the new version's image");
    }

    // PrimaryFirst: the primary (now rd-1) first, then the others by index; no switchover.
    deleted.lock().unwrap().clear();
    ok(bed.cli(&["service", "restart", "rd", "--policy=PrimaryFirst", "--wait", "--timeout=120"]));
    assert_eq!(*deleted.lock().unwrap(), ["rd-1", "rd-0", "rd-2"]);
    assert_eq!(steps(&bed.operations("rd"), 0), ["restart rd-1", "restart rd-0", "restart rd-2"]);
    assert_eq!(bed.roles().await["rd-1"], "primary", "a restarted member keeps its role");

    // Stop: no pod, every volume kept, STOPPED; start: ACTIVE again with the same roles.
    ok(bed.cli(&["service", "stop", "rd", "--wait", "--timeout=120"]));
    bed.wait_for("rd", "STOPPED with no pods", |s| s.status.as_ref().is_some_and(|st| st.phase == Phase::Stopped && st.message.is_none())).await;
    assert!(bed.pods().list(&ListParams::default()).await.unwrap().items.is_empty());
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(bed.client.clone(), &bed.ns).list(&ListParams::default()).await.unwrap();
    assert_eq!(pvcs.items.len(), 3, "volumes kept");
    ok(bed.cli(&["service", "start", "rd", "--wait", "--timeout=120"]));
    assert_eq!(bed.roles().await["rd-1"], "primary");
    let ops = bed.operations("rd");
    assert_eq!(ops.items.iter().map(|o| o.kind.as_str()).collect::<Vec<_>>(), ["start", "stop", "restart", "upgrade"], "newest first");
    assert!(ops.items.iter().all(|o| o.phase == OperationPhase::Succeeded));
    // The manage service still runs: it removes its finalizers as the namespace goes.
    bed.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_manage_service_resumes_and_a_member_that_does_not_come_back_fails_the_operation() {
    let bed = Bed::new("opsfail").await;
    let manage = bed.manage();
    let zones = format!("--zones={}", ZONES.join(","));
    ok(bed.cli(&["service", "create", "postgresql", "pg", &zones, "--wait", "--timeout=120"]));

    // Refused, nothing recorded: a version the catalog does not have.
    let o = bed.cli(&["service", "upgrade", "pg", "--version=99"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("version"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(bed.operations("pg").items.is_empty());

    // pg-2's zone can take no pod: the restart stops at pg-2, after pg-1 is done.
    bed.cordon(2, true).await;
    let deleted = bed.deletions();
    ok(bed.cli(&["service", "restart", "pg"]));
    bed.wait_for("pg", "step 2 under way", |s| {
        s.status
            .as_ref()
            .and_then(|st| st.operations.last())
            .is_some_and(|op| op.steps[0].phase == OperationPhase::Succeeded && op.steps[1].phase == OperationPhase::Running)
    })
    .await;
    // A second operation while one runs: refused with the running one's name.
    let o = bed.cli(&["service", "restart", "pg"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("one operation runs at a time"), "{}", String::from_utf8_lossy(&o.stderr));

    // The manage service dies mid-operation; a new one resumes it once pg-2 can come back.
    let pg1 = bed.uids().await["pg-1"].clone();
    drop(manage);
    let _manage = bed.manage();
    bed.cordon(2, false).await;
    bed.wait_for("pg", "the restart finished", |s| s.status.as_ref().and_then(|st| st.operations.last()).is_some_and(|op| op.phase.is_terminal())).await;
    let ops = bed.operations("pg");
    assert_eq!(ops.items[0].phase, OperationPhase::Succeeded, "{:?}", ops.items[0].message);
    assert_eq!(*deleted.lock().unwrap(), ["pg-1", "pg-2", "pg-0"], "each member restarted once, none twice");
    assert_eq!(bed.uids().await["pg-1"], pg1, "the finished step was not repeated");

    // Cancel while a step waits for a member that cannot come back: the operation ends at once,
    // no later step runs (the primary keeps its pod), and the next operation may start.
    bed.cordon(2, true).await;
    let before = bed.uids().await;
    ok(bed.cli(&["service", "restart", "pg"]));
    bed.wait_for("pg", "waiting on pg-2", |s| {
        s.status
            .as_ref()
            .and_then(|st| st.operations.last())
            .is_some_and(|op| op.steps.iter().any(|x| x.member == "pg-2" && x.phase == OperationPhase::Running))
    })
    .await;
    let out = ok(bed.cli(&["service", "cancel", "pg", "--wait", "--timeout=60"]));
    assert!(out.contains("cancelled on request"), "{out}");
    let ops = bed.operations("pg");
    assert_eq!(ops.items[0].phase, OperationPhase::Cancelled);
    let primary = bed.roles().await.into_iter().find(|(_, r)| r == "primary").map(|(m, _)| m).unwrap();
    assert_eq!(bed.uids().await[&primary], before[&primary], "the primary ({primary}) was not touched");

    // A member that never comes back: the operation fails at its step, the rest untouched.
    let before = bed.uids().await;
    // 15 s: long enough for the members that do come back (restarted before pg-2) on a loaded
    // machine, short enough to keep the test quick.
    let o = bed.cli(&["service", "restart", "pg", "--step-timeout=15", "--wait", "--timeout=120"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("restart pg-2") && err.contains("did not finish in 15 s"), "{err}");
    let ops = bed.operations("pg");
    assert_eq!(ops.items[0].phase, OperationPhase::Failed);
    let primary = bed.roles().await.into_iter().find(|(_, r)| r == "primary").map(|(m, _)| m).unwrap();
    assert_eq!(bed.uids().await[&primary], before[&primary], "the primary ({primary}) was not touched");
    bed.cordon(2, false).await;
    // The manage service still runs: it removes its finalizers as the namespace goes.
    bed.drop_all().await;
}

/// Issue #16: `resize-volume` grows every member's PVC (the bed's provisioner plays the CSI
/// resizer) and reports each member; no pod is restarted; the StatefulSet's claim templates,
/// which Kubernetes never lets change, keep their size while the claims grow; shrinking is
/// refused with nothing recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_resize_grows_every_claim_without_a_restart_and_never_shrinks() {
    let bed = Bed::new("opsvol").await;
    let manage = bed.manage();
    let zones = format!("--zones={}", ZONES.join(","));
    ok(bed.cli(&["service", "create", "redis", "rv", "--replicas=3", "--volume-size=1Gi", &zones, "--wait", "--timeout=120"]));
    let before = bed.uids().await;

    let out = ok(bed.cli(&["service", "resize-volume", "rv", "--size=3Gi", "--wait", "--timeout=120"]));
    assert!(out.contains("accepted"), "{out}");
    let ops = bed.operations("rv");
    assert_eq!(ops.items[0].phase, OperationPhase::Succeeded, "{:#?}", ops.items[0]);
    assert_eq!(ops.items[0].target.as_deref(), Some("data volume 1Gi → 3Gi"));
    assert_eq!(steps(&ops, 0), ["resize rv-0", "resize rv-1", "resize rv-2"]);
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(bed.client.clone(), &bed.ns).list(&ListParams::default()).await.unwrap();
    assert_eq!(pvcs.items.len(), 3);
    for p in &pvcs.items {
        let requested = &p.spec.as_ref().unwrap().resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"];
        let capacity = &p.status.as_ref().unwrap().capacity.as_ref().unwrap()["storage"];
        assert_eq!((requested.0.as_str(), capacity.0.as_str()), ("3Gi", "3Gi"), "{}", p.name_any());
    }
    assert_eq!(bed.uids().await, before, "an online resize restarts no member");
    let sts = Api::<StatefulSet>::namespaced(bed.client.clone(), &bed.ns).get("rv").await.unwrap();
    let template = &sts.spec.unwrap().volume_claim_templates.unwrap()[0];
    assert_eq!(template.spec.as_ref().unwrap().resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"].0, "1Gi", "claim templates never change");
    let s = bed.services().get("rv").await.unwrap().status.unwrap();
    assert_eq!((s.phase, s.message), (Phase::Active, None), "the reconcile applied everything");
    let get = ok(bed.cli(&["service", "get", "rv"]));
    assert!(get.contains("3Gi"), "service get shows the new size:\n{get}");

    // FireCamp's own metrics count the operation, its steps and the claims it patched.
    let token = firecamp_testbed::cluster_role_token(&bed.client, &bed.ns, "scraper", &firecamp_manage::install::metrics_reader()).await;
    let samples = manage.metrics(&token).await;
    let sum = |name: &str, labels: &[(&str, &str)]| -> f64 {
        samples.iter().filter(|x| x.name == name && labels.iter().all(|(k, v)| x.label(k) == Some(*v))).map(|x| x.value).sum()
    };
    let volume = OperationKind::Volume.as_str();
    assert_eq!(sum("firecamp_operations_total", &[("kind", volume), ("result", "succeeded")]), 1.0, "{samples:?}");
    let resize = firecamp_api::StepAction::Resize.as_str();
    let step = [("kind", volume), ("action", resize), ("result", "succeeded")];
    assert_eq!(sum("firecamp_operation_step_duration_seconds_count", &step), 3.0, "{samples:?}");
    let grown = sum("firecamp_kube_api_requests_total", &[("verb", "patch"), ("resource", "persistentvolumeclaims"), ("code", "200")]);
    assert!(grown >= 3.0, "{grown} claim patches: {samples:?}");
    assert!(sum("firecamp_reconcile_duration_seconds_count", &[]) >= 1.0, "{samples:?}");

    // Shrinking, or the same size, is refused with the reason and nothing recorded.
    for size in ["2Gi", "3Gi"] {
        let o = bed.cli(&["service", "resize-volume", "rv", &format!("--size={size}")]);
        assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stderr).contains("only grow"), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(bed.operations("rv").items.len(), 1);
    bed.drop_all().await;
}

/// Plays ZooKeeper for the role source `labels`: every pod of `service` the manage service
/// labels with the plan's role (`peer`, which is no engine's answer) is relabelled `follower`, so
/// a new member counts as in the ensemble once it is Ready.
fn play_followers(bed: &Bed, service: &str) {
    let pods = bed.pods();
    let stream = watcher(pods.clone(), watcher::Config::default().labels(&format!("firecamp.dev/service={service}"))).default_backoff().applied_objects();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(Ok(p)) = stream.next().await {
            if p.labels().get("firecamp.dev/role").map(String::as_str) == Some("peer") {
                let patch = serde_json::json!({"metadata": {"labels": {"firecamp.dev/role": "follower"}}});
                let _ = pods.patch(&p.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await;
            }
        }
    });
}

/// The StatefulSet's `spec.replicas` as it changes, as a watch sees them, from its size now:
/// returns once the watch has seen that one, so no change made after the call is missed.
async fn statefulset_sizes(bed: &Bed, name: &str) -> Arc<Mutex<Vec<i32>>> {
    let seen = watch_sizes(bed, name);
    tokio::time::timeout(Duration::from_secs(30), async {
        while seen.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the watch sees the StatefulSet");
    seen
}

fn watch_sizes(bed: &Bed, name: &str) -> Arc<Mutex<Vec<i32>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = seen.clone();
    let api: Api<StatefulSet> = Api::namespaced(bed.client.clone(), &bed.ns);
    let stream = watcher(api, watcher::Config::default().fields(&format!("metadata.name={name}"))).default_backoff().applied_objects();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(Ok(s)) = stream.next().await {
            let n = s.spec.and_then(|s| s.replicas).unwrap_or_default();
            let mut v = out.lock().unwrap();
            if v.last() != Some(&n) {
                v.push(n);
            }
        }
    });
    seen
}

/// Each pod's zone (its node's), by pod name.
async fn pod_zones(bed: &Bed) -> BTreeMap<String, String> {
    let nodes: BTreeMap<String, String> = Api::<Node>::all(bed.client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| Some((n.name_any(), n.labels().get("topology.kubernetes.io/zone")?.clone())))
        .collect();
    let pods = bed.pods().list(&ListParams::default()).await.unwrap().items;
    pods.iter().filter_map(|p| Some((p.name_any(), nodes.get(p.spec.as_ref()?.node_name.as_ref()?)?.clone()))).collect()
}

/// Issue #16 on Kubernetes: a scale moves the StatefulSet one member at a time as its steps
/// allow (never to the asked size at once); new members' PVCs and pods land in zone i mod 3;
/// removed members' pods and PVCs go. PostgreSQL, then ZooKeeper (Redis members use the host's
/// network, one per node of the bed's three).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_moves_the_statefulset_one_member_at_a_time_with_volumes_in_their_zones() {
    let bed = Bed::new("opsscale").await;
    let _manage = bed.manage();
    let zones = format!("--zones={}", ZONES.join(","));
    ok(bed.cli(&["service", "create", "postgresql", "ps", "--replicas=3", &zones, "--wait", "--timeout=120"]));
    let sizes = statefulset_sizes(&bed, "ps").await;
    let pvcs = || async { Api::<PersistentVolumeClaim>::namespaced(bed.client.clone(), &bed.ns).list(&ListParams::default()).await.unwrap().items };

    ok(bed.cli(&["service", "scale", "ps", "--replicas=5", "--wait", "--timeout=180"]));
    let ops = bed.operations("ps");
    assert_eq!(ops.items[0].phase, OperationPhase::Succeeded, "{:#?}", ops.items[0]);
    assert_eq!(steps(&ops, 0), ["add ps-3", "add ps-4"]);
    bed.wait_for("ps", "ACTIVE with 5 members", |s| s.status.as_ref().is_some_and(|st| st.phase == Phase::Active && st.members.len() == 5)).await;
    let zones_now = pod_zones(&bed).await;
    for (i, pod) in ["ps-0", "ps-1", "ps-2", "ps-3", "ps-4"].iter().enumerate() {
        assert_eq!(zones_now.get(*pod), Some(&ZONES[i % 3].to_string()), "{pod} in zone {i} mod 3: {zones_now:?}");
    }
    let claims: Vec<(String, String)> =
        pvcs().await.iter().map(|p| (p.name_any(), p.spec.as_ref().unwrap().storage_class_name.clone().unwrap_or_default())).collect();
    assert_eq!(claims.len(), 5, "{claims:?}");
    for (claim, class) in &claims {
        let i: usize = claim.rsplit('-').next().unwrap().parse().unwrap();
        assert!(class.ends_with(ZONES[i % 3]), "{claim} from the class of zone {}: {class}", ZONES[i % 3]);
    }

    // Scale in the way a kubectl edit does: spec.replicas alone. It becomes the same operation.
    let crs: Api<FireCampService> = Api::namespaced(bed.client.clone(), &bed.ns);
    crs.patch("ps", &PatchParams::default(), &Patch::Merge(&serde_json::json!({"spec": {"replicas": 2}}))).await.unwrap();
    bed.wait_for("ps", "ACTIVE with 2 members after a scale", |s| {
        s.status.as_ref().is_some_and(|st| {
            st.phase == Phase::Active
                && st.members.len() == 2
                && st.operations.iter().filter(|o| o.kind == OperationKind::Scale && o.phase.is_terminal()).count() == 2
        })
    })
    .await;
    let ops = bed.operations("ps");
    assert_eq!((ops.items[0].phase, ops.items[0].target.as_deref()), (OperationPhase::Succeeded, Some("replicas 5 → 2")), "{:#?}", ops.items[0]);
    assert_eq!(steps(&ops, 0), ["remove ps-4", "remove ps-3", "remove ps-2"]);
    let mut left: Vec<String> = pvcs().await.iter().map(|p| p.name_any()).collect();
    left.sort();
    assert_eq!(left, ["data-ps-0", "data-ps-1"], "removed members' volumes deleted");
    assert_eq!(*sizes.lock().unwrap(), [3, 4, 5, 4, 3, 2], "one member at a time");

    // ZooKeeper the same way (its ensemble's reconfig runs on real nodes, real_scale.rs); an even
    // size is refused with the reason, nothing recorded.
    ok(bed.cli(&["service", "delete", "ps", "--delete-volumes", "--wait", "--timeout=120"]));
    ok(bed.cli(&["service", "create", "zookeeper", "zs", "--replicas=3", &zones, "--wait", "--timeout=120"]));
    let sizes = statefulset_sizes(&bed, "zs").await;
    play_followers(&bed, "zs");
    let o = bed.cli(&["service", "scale", "zs", "--replicas=4"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("odd number"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(bed.operations("zs").items.is_empty(), "nothing recorded");
    ok(bed.cli(&["service", "scale", "zs", "--replicas=5", "--wait", "--timeout=180"]));
    ok(bed.cli(&["service", "scale", "zs", "--replicas=3", "--wait", "--timeout=180"]));
    let ops = bed.operations("zs");
    assert_eq!(steps(&ops, 0), ["remove zs-4", "remove zs-3"]);
    assert_eq!(steps(&ops, 1), ["add zs-3", "add zs-4"]);
    assert_eq!(*sizes.lock().unwrap(), [3, 4, 5, 4, 3], "one member at a time");
    bed.drop_all().await;
}

/// A Redis Cluster's scale on Kubernetes moves whole shards: the StatefulSet goes 6 → 8 → 6
/// (never 7), each `fill`/`drain` runs as the Job `<svc>-slots` made for its step (kwok's Job
/// pods succeed; the slots themselves move on real nodes, `real_scale.rs`), and the removed
/// shard's volumes go. Redis members take a node each: 8 nodes.
#[tokio::test]
async fn a_redis_cluster_scale_moves_whole_shards_and_its_slots_in_a_job_per_step() {
    let bed = Bed::with_nodes("opsshard", 8).await;
    let _manage = bed.manage();
    let zones = format!("--zones={}", ZONES.join(","));
    ok(bed.cli(&["service", "create", "redis", "rs", "--option=mode=cluster", "--option=shards=3", "--replicas=6", &zones, "--wait", "--timeout=120"]));
    let sizes = statefulset_sizes(&bed, "rs").await;
    let jobs: Api<Job> = Api::namespaced(bed.client.clone(), &bed.ns);
    let step_of_job = || async {
        let j = jobs.get("rs-slots").await.unwrap();
        let done = j.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) > 0;
        (j.annotations().get("firecamp.dev/operation-step").cloned().unwrap_or_default(), done)
    };

    ok(bed.cli(&["service", "scale", "rs", "--shards=4", "--wait", "--timeout=180"]));
    let ops = bed.operations("rs");
    assert_eq!((ops.items[0].phase, ops.items[0].target.as_deref()), (OperationPhase::Succeeded, Some("shards 3 → 4")), "{:#?}", ops.items[0]);
    assert_eq!(steps(&ops, 0), ["add rs-6", "add rs-7", "fill rs-6"]);
    assert_eq!(step_of_job().await, (format!("{}/2", ops.items[0].id), true), "the fill's Job");
    let zones_now = pod_zones(&bed).await;
    for i in [6, 7] {
        assert_eq!(zones_now.get(&format!("rs-{i}")), Some(&ZONES[i % 3].to_string()), "rs-{i} in zone {i} mod 3: {zones_now:?}");
    }

    ok(bed.cli(&["service", "scale", "rs", "--shards=3", "--wait", "--timeout=180"]));
    let ops = bed.operations("rs");
    assert_eq!(ops.items[0].phase, OperationPhase::Succeeded, "{:#?}", ops.items[0]);
    assert_eq!(steps(&ops, 0), ["drain rs-6", "remove rs-7", "remove rs-6"]);
    assert_eq!(step_of_job().await, (format!("{}/0", ops.items[0].id), true), "the drain's Job, in place of the fill's");
    let mut claims: Vec<String> = Api::<PersistentVolumeClaim>::namespaced(bed.client.clone(), &bed.ns)
        .list(&ListParams::default().labels("firecamp.dev/service=rs"))
        .await
        .unwrap()
        .iter()
        .map(|p| p.name_any())
        .collect();
    claims.sort();
    assert_eq!(claims, (0..6).map(|i| format!("data-rs-{i}")).collect::<Vec<_>>(), "the removed shard's volumes deleted");
    assert_eq!(*sizes.lock().unwrap(), [6, 8, 6], "whole shards at a time");
    bed.drop_all().await;
}
