//! Benchmark of the manage service on the test bed (not a test; it prints figures):
//! - create → ACTIVE of a 3-member service, against a bare StatefulSet of the same shape
//!   applied directly (Ready), median of 3 runs each, and the ratio;
//! - Kubernetes API requests the manage service makes per service created and per idle minute
//!   (its own `firecamp_kube_requests_total`; idle: also its writes other than the Lease's and the
//!   Lease's own);
//! - its RSS with 1 and with 100 + 4 services (`BENCH_SERVICES`: how many instead of 100), and
//!   its requests in an idle minute with those services.
//!
//! It prints `BENCH` lines, which `scripts/bench.sh` gathers into its table (docs/benchmarks.md).
//!
//! `BENCH_RSS_ONLY=1` measures only the RSS (with `BENCH_SERVICES=1000`, the budget's figure).
//!
//! Run: `testbed/bed up --nodes 12 && cargo build -p firecamp && cargo run -p firecamp --example bench_manage`

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use firecamp_api::Phase;
use firecamp_manage::crd::{FireCampService, FireCampServiceSpec};
use firecamp_testbed::{PROVISIONER, STORAGE_CLASS, client, fresh_namespace, kubeconfig_path};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{Container, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec, VolumeResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_manage(ns: &str, port: u16) -> Child {
    let bin = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("firecamp");
    Command::new(bin)
        .args(["manage", "--cluster=bed", &format!("--volume-provisioner={PROVISIONER}"), &format!("--listen=127.0.0.1:{port}")])
        .args([format!("--watch-namespace={ns}"), format!("--lease-namespace={ns}"), "--identity=bench".into()])
        .env("KUBECONFIG", kubeconfig_path())
        .stdout(Stdio::null())
        // BENCH_MANAGE_LOG=file: the manage service's log, to see where the time goes.
        .stderr(std::env::var_os("BENCH_MANAGE_LOG").and_then(|p| std::fs::File::create(p).ok()).map(Stdio::from).unwrap_or_else(Stdio::null))
        .spawn()
        .expect("build the binary first: cargo build -p firecamp")
}

/// The token the bench scrapes `/metrics` with (a ServiceAccount bound to the metrics reader).
static SCRAPER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// A counter of the manage service. Its Kubernetes requests leave out the reviews of the bench's
/// own scrapes (a TokenReview and a SubjectAccessReview when its answer is not cached).
async fn metric(port: u16, name: &str) -> u64 {
    let token = SCRAPER.get().expect("the scraper's token");
    let resp = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/metrics")).bearer_auth(token).send().await.unwrap();
    assert!(resp.status().is_success(), "/metrics: {}", resp.status());
    let text = resp.text().await.unwrap();
    let value = |name: &str| -> u64 { text.lines().find_map(|l| l.strip_prefix(&format!("{name} ")).and_then(|v| v.trim().parse().ok())).unwrap_or(0) };
    match name {
        "firecamp_kube_requests_total" => value(name) - value("firecamp_token_reviews_total") - value("firecamp_access_reviews_total"),
        _ => value(name),
    }
}

async fn wait_ready(port: u16) {
    for _ in 0..300 {
        if reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("manage service did not come up");
}

fn rss_mib(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok()).unwrap_or(0.0) / 1024.0
}

async fn bare_statefulset(client: &Client, ns: &str, name: &str) -> Duration {
    let labels = BTreeMap::from([("app".to_string(), name.to_string())]);
    let sts = StatefulSet {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        spec: Some(StatefulSetSpec {
            replicas: Some(3),
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy { type_: Some("OnDelete".into()), rolling_update: None }),
            selector: LabelSelector { match_labels: Some(labels.clone()), ..Default::default() },
            service_name: Some(name.into()),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
                spec: Some(PodSpec {
                    containers: vec![Container { name: "db".into(), image: Some("example.invalid/db:1".into()), ..Default::default() }],
                    ..Default::default()
                }),
            },
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta { name: Some("data".into()), ..Default::default() },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".into()]),
                    storage_class_name: Some(STORAGE_CLASS.into()),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([("storage".into(), Quantity("1Gi".into()))])),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let t = Instant::now();
    api.create(&PostParams::default(), &sts).await.unwrap();
    let ready = |s: Option<&StatefulSet>| s.and_then(|s| s.status.as_ref()).and_then(|s| s.ready_replicas) == Some(3);
    kube::runtime::wait::await_condition(api, name, ready).await.unwrap();
    t.elapsed()
}

async fn firecamp_service(api: &Api<FireCampService>, name: &str, replicas: u32) -> Duration {
    let mut spec = firecamp_catalog::examples::spec(firecamp_core::EngineKind::Zookeeper, replicas);
    spec.volumes.data.size = "1Gi".into();
    let t = Instant::now();
    api.create(&PostParams::default(), &FireCampService::new(name, FireCampServiceSpec(spec))).await.unwrap();
    let active = |s: Option<&FireCampService>| s.and_then(|s| s.status.as_ref()).is_some_and(|s| s.phase == Phase::Active);
    kube::runtime::wait::await_condition(api.clone(), name, active).await.unwrap();
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The manage service's requests over one minute with nothing happening: all, the writes
/// other than the Lease's, the Lease's.
async fn idle_minute(port: u16) -> [u64; 3] {
    let names = ["firecamp_kube_requests_total", "firecamp_kube_writes_total", "firecamp_kube_lease_requests_total"];
    let mut before = [0; 3];
    for (b, n) in before.iter_mut().zip(names) {
        *b = metric(port, n).await;
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    let mut idle = [0; 3];
    for ((d, n), b) in idle.iter_mut().zip(names).zip(before) {
        *d = metric(port, n).await - b;
    }
    idle
}

/// create → ACTIVE against a bare StatefulSet, requests per create, and one idle minute.
async fn create_and_idle(client: &Client, api: &Api<FireCampService>, ns: &str, port: u16) {
    let (mut bare, mut fc) = (Vec::new(), Vec::new());
    let mut per_create = Vec::new();
    for i in 0..3 {
        bare.push(bare_statefulset(client, ns, &format!("bare{i}")).await);
        let before = metric(port, "firecamp_kube_requests_total").await;
        fc.push(firecamp_service(api, &format!("zk{i}"), 3).await);
        // Count until the service's last status write has settled.
        tokio::time::sleep(Duration::from_secs(3)).await;
        per_create.push(metric(port, "firecamp_kube_requests_total").await - before);
    }
    let (b, f) = (median(bare), median(fc));
    println!(
        "create → ready, 3 members (median of 3): bare StatefulSet {:.2} s, FireCamp service {:.2} s, ratio {:.2}",
        b.as_secs_f64(),
        f.as_secs_f64(),
        f.as_secs_f64() / b.as_secs_f64()
    );
    println!("Kubernetes API requests per service created: {per_create:?}");
    // The lines scripts/bench.sh gathers: what, FireCamp, baseline, ratio, budget.
    println!(
        "BENCH\tbed: create → ACTIVE of 3 members (median of 3), vs a bare StatefulSet → Ready\t{:.2} s\t{:.2} s\t{:.2}\t≤ 1.2",
        f.as_secs_f64(),
        b.as_secs_f64(),
        f.as_secs_f64() / b.as_secs_f64()
    );
    let mut sorted = per_create.clone();
    sorted.sort();
    println!("BENCH\tbed: Kubernetes API requests per service created (3 members, median of 3)\t{}\t-\t-\t-", sorted[sorted.len() / 2]);

    let idle = idle_minute(port).await;
    println!("Kubernetes API requests in one idle minute (4 services): {} ({} writes other than the Lease's, {} the Lease's)", idle[0], idle[1], idle[2]);
    println!("BENCH\tbed: Kubernetes API requests in one idle minute, 4 services: all\t{}\t-\t-\t-", idle[0]);
    println!("BENCH\tbed: … of which writes other than the Lease's\t{}\t-\t-\t0", idle[1]);
    println!("BENCH\tbed: … of which the Lease's (leader election)\t{}\t-\t-\t-", idle[2]);
}

#[tokio::main]
async fn main() {
    firecamp_testbed::bed::install_crypto_provider();
    let client = client().await;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(client.clone());
    crds.patch("firecampservices.firecamp.dev", &PatchParams::apply("bench").force(), &Patch::Apply(firecamp_manage::crd::crd())).await.unwrap();
    let ns = fresh_namespace(&client, "bench").await;
    let scraper = firecamp_testbed::cluster_role_token(&client, &ns, "bench-scraper", &firecamp_manage::install::metrics_reader()).await;
    SCRAPER.set(scraper).expect("set once");
    let port = free_port();
    let mut manage = start_manage(&ns, port);
    wait_ready(port).await;
    let api: Api<FireCampService> = Api::namespaced(client.clone(), &ns);
    // Let the controller start its watches before measuring.
    firecamp_service(&api, "warmup", 1).await;
    let rss0 = rss_mib(manage.id());

    let rss_only = std::env::var("BENCH_RSS_ONLY").is_ok_and(|v| v == "1");
    if !rss_only {
        create_and_idle(&client, &api, &ns, port).await;
    }
    // BENCH_SERVICES: how many one-member services to add for the RSS figure (default 100).
    let many: usize = std::env::var("BENCH_SERVICES").ok().and_then(|n| n.parse().ok()).unwrap_or(100);
    let t = Instant::now();
    for i in 0..many {
        let mut spec = firecamp_catalog::examples::spec(firecamp_core::EngineKind::Zookeeper, 1);
        spec.volumes.data.size = "1Gi".into();
        api.create(&PostParams::default(), &FireCampService::new(&format!("s{i}"), FireCampServiceSpec(spec))).await.unwrap();
    }
    let mut active = std::collections::BTreeSet::new();
    let mut stream = watcher(api.clone(), watcher::Config::default()).applied_objects().boxed();
    while let Some(s) = stream.try_next().await.unwrap() {
        if s.name_any().starts_with('s') && s.status.as_ref().is_some_and(|st| st.phase == Phase::Active) {
            active.insert(s.name_any());
        }
        if active.len() == many {
            break;
        }
    }
    let took = t.elapsed().as_secs_f64();
    let rss = rss_mib(manage.id());
    // The warm-up service, the new ones and (unless RSS only) the three of create_and_idle.
    let total = many + if rss_only { 1 } else { 4 };
    println!("{many} one-member services ACTIVE after {took:.1} s");
    println!("manage service RSS: {rss0:.1} MiB with 1 service, {rss:.1} MiB with {total} services");
    println!("BENCH\tbed: {many} one-member services created at once → all ACTIVE\t{took:.1} s\t-\t-\t-");
    println!("BENCH\tbed: manage service RSS with {total} services, vs with 1\t{rss:.1} MiB\t{rss0:.1} MiB\t{:.2}\t≤ 64 MiB at 1 000", rss / rss0);
    if !rss_only {
        idle_with_many(port, total).await;
    }
    let _ = manage.kill();
    let _ = manage.wait();
    // With the manage service gone nobody would remove the services' finalizer, and the
    // namespace would stay Terminating: the bench takes it off itself.
    let unfinalize = Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}}));
    let names: Vec<String> = api.list_metadata(&Default::default()).await.map(|l| l.items.iter().map(|m| m.name_any()).collect()).unwrap_or_default();
    let pp = PatchParams::default();
    futures::stream::iter(names.iter().map(|n| api.patch_metadata(n, &pp, &unfinalize))).buffer_unordered(8).for_each(|_| async {}).await;
    let _ = Api::<k8s_openapi::api::core::v1::Namespace>::all(client).delete(&ns, &Default::default()).await;
}

async fn idle_with_many(port: u16, n: usize) {
    let idle = idle_minute(port).await;
    println!("Kubernetes API requests in one idle minute ({n} services): {} ({} writes other than the Lease's, {} the Lease's)", idle[0], idle[1], idle[2]);
    println!("BENCH\tbed: Kubernetes API requests in one idle minute, {n} services: all\t{}\t-\t-\t-", idle[0]);
    println!("BENCH\tbed: … of which writes other than the Lease's\t{}\t-\t-\t0", idle[1]);
}
