//! The manage service with its AWS parts, end to end: the real Kubernetes test bed for the
//! members, moto (through a counting proxy) for Route53, EC2 and CloudWatch Logs. The test's
//! nodes carry the providerIDs of moto's instances, so the manage service finds each member's
//! instance the way it does on EKS: from the Node, never from IMDS.

#[path = "../../aws/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use common::proxy::{Proxy, total};
use common::{REGION, World, ZONES, moto_endpoint};
use firecamp_api::Phase;
use firecamp_aws::CloudWatchLogs;
use firecamp_core::MemberName;
use firecamp_core::cloud::{DnsRecord, InstanceId, LogEvent, RecordChange, log_key};
use firecamp_manage::crd::FireCampService;
use firecamp_testbed::nodes::{NodePlan, WORKER_LABEL, create_nodes_and_wait};
use firecamp_testbed::{PROVISIONER, client, fresh_namespace, kubeconfig_path};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};

struct Manage(Child);

impl Drop for Manage {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_manage(ns: &str, w: &World, endpoint: &str, port: u16) -> Manage {
    let log = std::fs::File::create(manage_log(ns)).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_firecamp"))
        .args(["manage", &format!("--cluster={}", w.cluster), &format!("--volume-provisioner={PROVISIONER}")])
        .args([format!("--watch-namespace={ns}"), format!("--lease-namespace={ns}"), format!("--identity=test-{ns}")])
        .args([format!("--listen=127.0.0.1:{port}"), "--aws".into(), format!("--vpc-id={}", w.vpc), format!("--aws-endpoint-url={endpoint}")])
        .args([format!("--aws-region={REGION}"), "--dns-ttl=30".into()])
        .env("KUBECONFIG", kubeconfig_path())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Manage(child)
}

/// `firecamp install aws-zone`: the administrator's install step that makes the cluster's
/// private hosted zone (the manage service only finds it). Returns the zone id it printed.
fn install_zone(w: &World, endpoint: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_firecamp"))
        .args(["install", "aws-zone", &format!("--cluster={}", w.cluster), &format!("--vpc-id={}", w.vpc)])
        .args([format!("--aws-region={REGION}"), format!("--aws-endpoint-url={endpoint}")])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .unwrap();
    ok(out).trim().to_string()
}

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firecamp")).args(args).env("KUBECONFIG", kubeconfig_path()).output().unwrap()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "firecamp failed ({:?}): {}{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// Kwok nodes of the test's own cluster: names of their own, moto's instances as providerIDs.
fn nodes_for(w: &World, placement: &[(&str, &InstanceId)]) -> Vec<Node> {
    let plan =
        NodePlan { count: 3, zones: ZONES.map(String::from).to_vec(), region: REGION.into(), cluster: w.cluster.clone(), instance_type: "t3.medium".into() };
    let template = plan.nodes();
    placement
        .iter()
        .map(|(zone, instance)| {
            let zi = ZONES.iter().position(|z| z == zone).unwrap();
            let mut n = template[zi].clone();
            let name = format!("{}-{}", w.cluster.to_lowercase(), instance.0);
            n.metadata.name = Some(name.clone());
            n.metadata.labels.as_mut().unwrap().insert("kubernetes.io/hostname".into(), name);
            n.metadata.labels.as_mut().unwrap().insert(WORKER_LABEL.into(), w.cluster.clone());
            n.spec.as_mut().unwrap().provider_id = Some(format!("aws:///{zone}/{}", instance.0));
            n
        })
        .collect()
}

async fn wait_for(api: &Api<FireCampService>, name: &str, what: &str, cond: impl Fn(&FireCampService) -> bool) -> FireCampService {
    let check = |s: Option<&FireCampService>| s.is_some_and(&cond);
    match tokio::time::timeout(Duration::from_secs(180), await_condition(api.clone(), name, check)).await {
        Ok(Ok(Some(s))) => s,
        other => panic!("{name}: waiting for {what}: {other:?}; now: {:#?}", api.get_opt(name).await.ok().flatten().and_then(|s| s.status)),
    }
}

/// Every A record of the cluster's zone named after a member of `service` (in any namespace,
/// or in none).
/// The zone's A records whose names start with `<prefix>-` (a service's members) or with `prefix`
/// when it ends in a dot (`primary.rd.`: endpoints).
async fn service_records(w: &World, prefix: &str) -> BTreeMap<String, String> {
    let start = if prefix.ends_with('.') { prefix.to_string() } else { format!("{prefix}-") };
    let zones = w.route53.list_hosted_zones_by_name().dns_name(format!("{}-firecamp.com", w.cluster)).send().await.unwrap();
    let zone = zones.hosted_zones().iter().find(|z| z.name().trim_end_matches('.') == format!("{}-firecamp.com", w.cluster)).expect("the hosted zone");
    let sets = w.route53.list_resource_record_sets().hosted_zone_id(zone.id()).send().await.unwrap();
    sets.resource_record_sets()
        .iter()
        .filter(|r| r.name().starts_with(&start) && r.r#type().as_str() == "A")
        .map(|r| (r.name().trim_end_matches('.').to_string(), r.resource_records()[0].value().to_string()))
        .collect()
}

/// The sorted addresses of the zone's A record set `name`.
async fn record_set(w: &World, name: &str) -> Vec<String> {
    let zones = w.route53.list_hosted_zones_by_name().dns_name(format!("{}-firecamp.com", w.cluster)).send().await.unwrap();
    let zone = zones.hosted_zones().iter().find(|z| z.name().trim_end_matches('.') == format!("{}-firecamp.com", w.cluster)).expect("the hosted zone");
    let sets = w.route53.list_resource_record_sets().hosted_zone_id(zone.id()).send().await.unwrap();
    let set = sets.resource_record_sets().iter().find(|r| r.name().trim_end_matches('.') == name && r.r#type().as_str() == "A");
    let mut out: Vec<String> = set.map(|s| s.resource_records().iter().map(|r| r.value().to_string()).collect()).unwrap_or_default();
    out.sort();
    out
}

fn ip_of(svc: &FireCampService, member: &str) -> (Ipv4Addr, Option<String>) {
    let s = svc.status.as_ref().unwrap().static_ips.iter().find(|s| s.record.member.as_str() == member).unwrap();
    (s.record.ip, s.instance.clone())
}

async fn setup_crd(client: &Client) {
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(client.clone());
    crds.patch("firecampservices.firecamp.dev", &PatchParams::apply("firecamp-test").force(), &Patch::Apply(&firecamp_manage::crd::crd())).await.unwrap();
    let cond = kube::runtime::conditions::is_crd_established();
    tokio::time::timeout(Duration::from_secs(30), await_condition(crds, "firecampservices.firecamp.dev", cond)).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_get_static_ips_records_and_log_streams_that_follow_them() {
    let w = World::new("bed").await;
    let proxy = Proxy::start(&moto_endpoint()).await;
    let client = client().await;
    setup_crd(&client).await;
    let ns = fresh_namespace(&client, "aws").await;
    let nodes_api: Api<Node> = Api::all(client.clone());
    let [a, b, c] = ZONES.map(|z| w.instances[z].clone());
    let nodes = nodes_for(&w, &[(ZONES[0], &a[0]), (ZONES[1], &b[0]), (ZONES[2], &c[0]), (ZONES[1], &b[1])]);
    // The spare node of zone b stays cordoned until a member has to move onto it.
    let spare = nodes[3].metadata.name.clone().unwrap();
    let mut cordoned = nodes.clone();
    cordoned[3].spec.as_mut().unwrap().unschedulable = Some(true);
    create_nodes_and_wait(&client, &cordoned, Duration::from_secs(60)).await.unwrap();

    install_zone(&w, &moto_endpoint());
    let port = free_port();
    let _manage = start_manage(&ns, &w, &proxy.endpoint, port);
    let zones = format!("--zones={}", ZONES.join(","));
    ok(cli(&["service", "create", "redis", "rd", "--replicas=3", &zones, "--kube", "-n", &ns, "--wait", "--timeout=180"]));
    let api: Api<FireCampService> = Api::namespaced(client.clone(), &ns);
    let svc = wait_for(&api, "rd", "IPs on instances, records and streams", |s| {
        s.status.as_ref().is_some_and(|st| {
            st.phase == Phase::Active
                && st.static_ips.len() == 3
                && st.static_ips.iter().all(|i| i.instance.is_some())
                && st.dns_records.len() == 6
                && st.log_streams.len() == 3
        })
    })
    .await;
    let create_calls = proxy.take_counts();

    // Each member: an IP from its zone's subnet, held by the ENI of the instance its pod runs on,
    // its A record pointing at it, and the member's config binding it.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let records = service_records(&w, "rd").await;
    for (i, zone) in ZONES.iter().enumerate() {
        let member = format!("rd-{i}");
        let (ip, instance) = ip_of(&svc, &member);
        let node = pods.get(&member).await.unwrap().spec.unwrap().node_name.unwrap();
        let provider = nodes_api.get(&node).await.unwrap().spec.unwrap().provider_id.unwrap();
        assert!(provider.ends_with(&format!("/{}", instance.clone().unwrap())), "{member}: recorded on {instance:?}, runs on {provider}");
        let eni = w.eni_of(&InstanceId(instance.unwrap())).await;
        assert_eq!(w.holders_of(ip).await, vec![eni], "{member}'s IP {ip} must be on its instance's ENI only");
        assert_eq!(svc.status.as_ref().unwrap().static_ips[i].record.zone, *zone);
        assert_eq!(records.get(&format!("{member}.{ns}.{}-firecamp.com", w.cluster.to_lowercase())), Some(&ip.to_string()), "{records:?}");
        let cm: k8s_openapi::api::core::v1::ConfigMap = Api::namespaced(client.clone(), &ns).get(&format!("{member}-config")).await.unwrap();
        assert_eq!(cm.data.as_ref().unwrap().get("static-ip"), Some(&ip.to_string()));
    }
    assert_eq!(create_calls.get("route53:ChangeResourceRecordSets"), Some(&1), "one change batch for the create: {create_calls:?}");
    // The primary endpoint, in the same batch: rd-0's address (issue #14).
    let endpoint = format!("primary.rd.{ns}.{}-firecamp.com", w.cluster.to_lowercase());
    assert_eq!(service_records(&w, "primary.rd.").await.get(&endpoint), Some(&ip_of(&svc, "rd-0").0.to_string()), "{endpoint}");
    // The replicas endpoint too: one record set with rd-1's and rd-2's addresses.
    let replicas = format!("replicas.rd.{ns}.{}-firecamp.com", w.cluster.to_lowercase());
    let mut want: Vec<String> = ["rd-1", "rd-2"].iter().map(|m| ip_of(&svc, m).0.to_string()).collect();
    want.sort();
    assert_eq!(record_set(&w, &replicas).await, want, "{replicas}");
    let shown = &svc.status.as_ref().unwrap().endpoints;
    assert_eq!(shown[0].dns_name.as_deref(), Some(endpoint.as_str()), "{shown:?}");
    assert_eq!(shown[1].dns_name.as_deref(), Some(replicas.as_str()), "{shown:?}");
    assert_eq!(shown[1].kube_service.as_deref(), Some(format!("rd-replicas.{ns}.svc").as_str()), "{shown:?}");

    // A member moves: its node goes away, its pod comes back on the spare instance of its zone;
    // its IP follows (same address, new ENI), its record stays as it is.
    let (ip1, before) = ip_of(&svc, "rd-1");
    let old_node = pods.get("rd-1").await.unwrap().spec.unwrap().node_name.unwrap();
    nodes_api.patch(&old_node, &PatchParams::default(), &Patch::Merge(serde_json::json!({"spec": {"unschedulable": true}}))).await.unwrap();
    nodes_api.patch(&spare, &PatchParams::default(), &Patch::Merge(serde_json::json!({"spec": {"unschedulable": false}}))).await.unwrap();
    pods.delete("rd-1", &DeleteParams::default()).await.unwrap();
    let moved = wait_for(&api, "rd", "rd-1's IP on the spare instance", |s| {
        s.status.as_ref().is_some_and(|st| st.static_ips.iter().any(|i| i.record.member.as_str() == "rd-1" && i.instance.as_deref() == Some(b[1].0.as_str())))
    })
    .await;
    let move_calls = proxy.take_counts();
    let (ip1_after, after) = ip_of(&moved, "rd-1");
    assert_eq!(ip1_after, ip1, "the member keeps its IP");
    assert_ne!(after, before);
    assert_eq!(w.holders_of(ip1).await, vec![w.eni_of(&b[1]).await], "the IP left the old instance");
    assert_eq!(service_records(&w, "rd").await, records, "records unchanged: the IP is static");
    assert_eq!(move_calls.get("route53:ChangeResourceRecordSets"), None, "{move_calls:?}");

    // Logs: a line in rd-2's stream reads back through `firecamp logs` (REST, CloudWatch).
    let logs = CloudWatchLogs::new(&common::clients(&moto_endpoint()).await, &w.cluster);
    let now = SystemTime::now();
    logs.put(&log_key(Some(&ns), "rd"), &MemberName::new("rd", 2), &[LogEvent { time: now, message: "Ready to accept connections tcp".into() }]).await.unwrap();
    let token = admin_token(&client, &ns).await;
    let out = ok(cli(&["logs", "rd", "rd-2", "--since=10m", &format!("--server=http://127.0.0.1:{port}"), &format!("--token={token}"), "-n", &ns]));
    assert!(out.contains("Ready to accept connections tcp"), "{out}");

    // Scale in (issue #16): the removed member's IP goes back to its subnet, its record goes,
    // the others' stay.
    let (ip2, _) = ip_of(&moved, "rd-2");
    proxy.take_counts();
    ok(cli(&["service", "scale", "rd", "--replicas=2", "--kube", "-n", &ns, "--wait", "--timeout=120"]));
    let scaled =
        wait_for(&api, "rd", "rd-2's IP released", |s| s.status.as_ref().is_some_and(|st| st.static_ips.len() == 2 && st.dns_records.len() == 4)).await;
    assert!(w.holders_of(ip2).await.is_empty(), "rd-2's IP {ip2} is released");
    assert_eq!(ip_of(&scaled, "rd-1").0, ip1, "the members that stay keep theirs");
    let mut left = records.clone();
    left.remove(&format!("rd-2.{ns}.{}-firecamp.com", w.cluster.to_lowercase()));
    assert_eq!(service_records(&w, "rd").await, left, "rd-2's record deleted");
    assert_eq!(record_set(&w, &replicas).await, [ip1.to_string()], "{replicas}: rd-1 alone");
    let scale_calls = proxy.take_counts();
    assert_eq!(scale_calls.get("route53:ChangeResourceRecordSets"), Some(&1), "one batch for the scale-in: {scale_calls:?}");
    assert!(scale_calls.keys().all(|k| !k.starts_with("logs:")), "the streams that stay exist: {scale_calls:?}");

    // Delete: every record in one batch, every IP back to its subnet.
    proxy.take_counts();
    ok(cli(&["service", "delete", "rd", "--kube", "-n", &ns, "--wait", "--timeout=120"]));
    let delete_calls = proxy.take_counts();
    assert!(service_records(&w, "rd").await.is_empty());
    for i in 0..3 {
        let (ip, _) = ip_of(&moved, &format!("rd-{i}"));
        assert!(w.holders_of(ip).await.is_empty(), "rd-{i}'s IP {ip} is released");
    }
    // Printed for scripts/bench.sh too (its `BENCH` lines: what, FireCamp, baseline, ratio, budget).
    for (what, calls) in [("create of 3 members", &create_calls), ("member move", &move_calls), ("scale-in by one", &scale_calls), ("delete", &delete_calls)] {
        println!("AWS calls: {what} {} {calls:?}", total(calls));
        println!("BENCH\taws: Route53/EC2/CloudWatch Logs calls per {what} (Redis, static IPs)\t{}\t-\t-\t-", total(calls));
    }
    // The namespace first (its pods end on nodes kwok still runs), then the nodes.
    firecamp_testbed::drop_namespace(&client, &ns).await;
    for n in &nodes {
        let _ = nodes_api.delete(n.metadata.name.as_deref().unwrap(), &DeleteParams::default()).await;
    }
}

/// A token allowed everything on FireCampServices in `ns`.
async fn admin_token(client: &Client, ns: &str) -> String {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
    use kube::api::{ObjectMeta, PostParams};
    let meta = |name: &str| ObjectMeta { name: Some(name.into()), namespace: Some(ns.into()), ..Default::default() };
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    sas.create(&PostParams::default(), &ServiceAccount { metadata: meta("reader"), ..Default::default() }).await.unwrap();
    let rule = PolicyRule {
        api_groups: Some(vec!["firecamp.dev".into()]),
        resources: Some(vec!["firecampservices".into()]),
        verbs: vec!["get".into(), "list".into()],
        ..Default::default()
    };
    Api::<Role>::namespaced(client.clone(), ns).create(&PostParams::default(), &Role { metadata: meta("reader"), rules: Some(vec![rule]) }).await.unwrap();
    let binding = RoleBinding {
        metadata: meta("reader"),
        role_ref: RoleRef { api_group: Some("rbac.authorization.k8s.io".into()), kind: "Role".into(), name: "reader".into() },
        subjects: Some(vec![Subject { kind: "ServiceAccount".into(), name: "reader".into(), namespace: Some(ns.into()), ..Default::default() }]),
    };
    Api::<RoleBinding>::namespaced(client.clone(), ns).create(&PostParams::default(), &binding).await.unwrap();
    let tr = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            audiences: Some(vec![firecamp_manage::rest::auth::AUDIENCE.into()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    sas.create_token_request("reader", &PostParams::default(), &tr).await.unwrap().status.and_then(|s| s.token).unwrap()
}

/// Tenants of one cluster reuse a service name: `rd` in two namespaces makes two members
/// `rd-0`, each with its own static IP, DNS record (`rd-0.<namespace>.<cluster>-firecamp.com`)
/// and log stream (`<namespace>/rd/rd-0`). One namespace's `/logs` never serves the other's
/// stream, deleting one service leaves the other's record, and records of the naming without
/// namespaces recorded in a status are deleted only while they still hold what it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_service_name_in_two_namespaces_keeps_two_members_records_and_streams() {
    let w = World::new("ten").await;
    let endpoint = moto_endpoint();
    let client = client().await;
    setup_crd(&client).await;
    let a_ns = fresh_namespace(&client, "ten-a").await;
    let b_ns = fresh_namespace(&client, "ten-b").await;
    // Two nodes of one zone: each namespace's rd-0 runs on the host network, on a node of its own.
    let inst = &w.instances[ZONES[0]];
    let nodes = nodes_for(&w, &[(ZONES[0], &inst[0]), (ZONES[0], &inst[1])]);
    create_nodes_and_wait(&client, &nodes, Duration::from_secs(60)).await.unwrap();
    install_zone(&w, &endpoint);
    let (port_a, port_b) = (free_port(), free_port());
    let manage_a = start_manage(&a_ns, &w, &endpoint, port_a);
    let _manage_b = start_manage(&b_ns, &w, &endpoint, port_b);
    let zone_arg = format!("--zones={}", ZONES[0]);
    for ns in [&a_ns, &b_ns] {
        ok(cli(&["service", "create", "redis", "rd", "--replicas=1", &zone_arg, "--kube", "-n", ns, "--wait", "--timeout=180"]));
    }
    let placed = |s: &FireCampService| {
        s.status
            .as_ref()
            .is_some_and(|st| st.dns_records.len() == 2 && st.log_streams.len() == 1 && st.static_ips.len() == 1 && st.static_ips[0].instance.is_some())
    };
    let api_a: Api<FireCampService> = Api::namespaced(client.clone(), &a_ns);
    let svc_a = wait_for(&api_a, "rd", "A's IP, record and stream", placed).await;
    let svc_b = wait_for(&Api::namespaced(client.clone(), &b_ns), "rd", "B's IP, record and stream", placed).await;
    let (ip_a, ip_b) = (ip_of(&svc_a, "rd-0").0, ip_of(&svc_b, "rd-0").0);
    assert_ne!(ip_a, ip_b, "rd-0 of A and rd-0 of B are two members with an IP each");
    let zone = format!("{}-firecamp.com", w.cluster.to_lowercase());
    let (name_a, name_b) = (format!("rd-0.{a_ns}.{zone}"), format!("rd-0.{b_ns}.{zone}"));
    let both = BTreeMap::from([(name_a.clone(), ip_a.to_string()), (name_b.clone(), ip_b.to_string())]);
    assert_eq!(service_records(&w, "rd").await, both);
    // Each namespace's primary endpoint is its own name, leading to its own rd-0.
    let endpoints = BTreeMap::from([(format!("primary.rd.{a_ns}.{zone}"), ip_a.to_string()), (format!("primary.rd.{b_ns}.{zone}"), ip_b.to_string())]);
    assert_eq!(service_records(&w, "primary.rd.").await, endpoints);

    // Log streams per namespace; B's /logs of its own rd-0 never shows A's lines.
    let clients = common::clients(&endpoint).await;
    let logs = CloudWatchLogs::new(&clients, &w.cluster);
    for ns in [&a_ns, &b_ns] {
        assert_eq!(logs.streams(&format!("{ns}/")).await.unwrap().into_iter().collect::<Vec<_>>(), [format!("{ns}/rd/rd-0")]);
    }
    let secret = format!("a line only {a_ns} may read");
    logs.put(&log_key(Some(&a_ns), "rd"), &MemberName::new("rd", 0), &[LogEvent { time: SystemTime::now(), message: secret.clone() }]).await.unwrap();
    let read = |ns: &str, port: u16, token: &str| {
        ok(cli(&["logs", "rd", "rd-0", "--since=10m", &format!("--server=http://127.0.0.1:{port}"), &format!("--token={token}"), "-n", ns]))
    };
    let (token_a, token_b) = (admin_token(&client, &a_ns).await, admin_token(&client, &b_ns).await);
    assert!(read(&a_ns, port_a, &token_a).contains(&secret), "A reads its own stream");
    let theirs = read(&b_ns, port_b, &token_b);
    assert!(!theirs.contains(&secret), "B's /logs served A's stream: {theirs}");

    // A status written under the naming without namespaces: rd-5's record still holds what A
    // wrote (deleted), rd-0's now holds another namespace's address (left, with a Warning).
    let dns = firecamp_aws::Route53Dns::new(&clients, &w.cluster, &w.vpc).with_ttl(30);
    let legacy = |m: &str, ip: [u8; 4]| DnsRecord { name: format!("{m}.{zone}"), ip: ip.into(), ttl: 30 };
    let foreign = legacy("rd-0", [10, 9, 9, 9]);
    dns.apply_changes(&[RecordChange::Upsert(foreign.clone()), RecordChange::Upsert(legacy("rd-5", [10, 9, 9, 5]))]).await.unwrap();
    let mut recorded = svc_a.status.as_ref().unwrap().dns_records.clone();
    recorded.extend([legacy("rd-0", [10, 1, 1, 1]), legacy("rd-5", [10, 9, 9, 5])]);
    api_a.patch_status("rd", &PatchParams::default(), &Patch::Merge(serde_json::json!({"status": {"dnsRecords": recorded}}))).await.unwrap();
    drop(manage_a); // a restarted manage service reconciles every service at once
    let _manage_a = start_manage(&a_ns, &w, &endpoint, free_port());
    wait_for(&api_a, "rd", "the legacy records dropped from A's status", |s| s.status.as_ref().is_some_and(|st| st.dns_records.len() == 2)).await;
    let mut expected = both.clone();
    expected.insert(foreign.name.clone(), foreign.ip.to_string());
    assert_eq!(service_records(&w, "rd").await, expected, "rd-5's legacy record deleted, the foreign rd-0 left");
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), &a_ns);
    let warned = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .any(|e| e.reason.as_deref() == Some("LegacyDnsRecordsLeft") && e.message.as_deref().is_some_and(|m| m.contains(&foreign.name)));
    assert!(warned, "a Warning event names the legacy record left");

    // Deleting B's service removes B's record and IP only.
    ok(cli(&["service", "delete", "rd", "--kube", "-n", &b_ns, "--wait", "--timeout=120"]));
    expected.remove(&name_b);
    assert_eq!(service_records(&w, "rd").await, expected, "A's record outlives B's service");
    let only_a: BTreeMap<_, _> = endpoints.into_iter().filter(|(n, _)| n.contains(&format!(".{a_ns}."))).collect();
    assert_eq!(service_records(&w, "primary.rd.").await, only_a, "B's endpoint goes with it");
    assert!(w.holders_of(ip_b).await.is_empty(), "B's IP is released");
    assert_eq!(w.holders_of(ip_a).await.len(), 1, "A's IP stays on its instance");

    ok(cli(&["service", "delete", "rd", "--kube", "-n", &a_ns, "--wait", "--timeout=120"]));
    assert_eq!(service_records(&w, "rd").await, BTreeMap::from([(foreign.name.clone(), foreign.ip.to_string())]));
    for ns in [&a_ns, &b_ns] {
        firecamp_testbed::drop_namespace(&client, ns).await;
    }
    let nodes_api: Api<Node> = Api::all(client.clone());
    for n in &nodes {
        let _ = nodes_api.delete(n.metadata.name.as_deref().unwrap(), &DeleteParams::default()).await;
    }
}

/// The cluster's hosted zone is an install step: a manage service started before it exits
/// naming `firecamp install aws-zone` and creates nothing; the install command, run twice, makes
/// one zone and prints its id both times, the id `install render --iam-policy` scopes the
/// Route53 statement to; then the manage service starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zone_is_made_by_the_install_command_never_by_the_manage_service() {
    let w = World::new("zone").await;
    let proxy = Proxy::start(&moto_endpoint()).await;
    let ns = fresh_namespace(&client().await, "zone").await;
    let domain = format!("{}-firecamp.com", w.cluster);

    let mut early = start_manage(&ns, &w, &proxy.endpoint, free_port());
    let status = wait_exit(&mut early.0, Duration::from_secs(60)).expect("a manage service without the zone must stop");
    assert_eq!(status.code(), Some(1));
    let stderr = std::fs::read_to_string(manage_log(&ns)).unwrap();
    assert!(stderr.contains(&format!("firecamp install aws-zone --cluster {} --vpc-id {}", w.cluster, w.vpc)), "{stderr}");
    assert!(stderr.contains(&domain), "{stderr}");
    let counts = proxy.take_counts();
    assert_eq!(counts.get("route53:CreateHostedZone"), None, "{counts:?}");
    assert_eq!(w.zones_named(&domain).await, 0, "the manage service created nothing");

    let id = install_zone(&w, &proxy.endpoint);
    assert!(!id.is_empty() && !id.contains('/'), "{id:?}");
    assert_eq!(install_zone(&w, &proxy.endpoint), id, "the second run finds the same zone");
    assert_eq!(proxy.take_counts().get("route53:CreateHostedZone"), Some(&1));
    assert_eq!(w.zones_named(&domain).await, 1, "one zone after two runs");

    let policy = ok(cli(&[
        "install",
        "render",
        "--iam-policy",
        &format!("--cluster={}", w.cluster),
        "--account-id=123456789012",
        &format!("--vpc-id={}", w.vpc),
        &format!("--hosted-zone-id={id}"),
    ]));
    let policy: serde_json::Value = serde_json::from_str(&policy).unwrap();
    let statements = policy["manageService"]["Statement"].as_array().unwrap();
    assert!(statements.iter().any(|st| st["Resource"] == format!("arn:aws:route53:::hostedzone/{id}")), "{policy:#}");
    assert!(!policy.to_string().contains("CreateHostedZone"), "{policy:#}");

    // With the zone in place the manage service starts and serves.
    let port = free_port();
    let mut manage = start_manage(&ns, &w, &proxy.endpoint, port);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(manage.0.try_wait().unwrap().is_none(), "the manage service stopped: {}", std::fs::read_to_string(manage_log(&ns)).unwrap());
        assert!(std::time::Instant::now() < deadline, "the manage service does not listen");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(w.zones_named(&domain).await, 1);
    drop(manage);
    firecamp_testbed::drop_namespace(&client().await, &ns).await;
}

/// The attack: a node whose interface does not carry the cluster tag (its launch template does
/// not tag it). The member's pod lands there; the manage service refuses to move the member's
/// IP onto it, the service's status names the interface, the instance, the node and the tag,
/// and in moto the IP stays on FireCamp's reserve interface only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_on_a_node_whose_interface_lacks_the_cluster_tag_gets_no_ip_there() {
    let w = World::new("untag").await;
    let endpoint = moto_endpoint();
    let client = client().await;
    setup_crd(&client).await;
    let ns = fresh_namespace(&client, "untag").await;
    let rogue = w.untagged_node(ZONES[0]).await;
    let rogue_eni = w.eni_of(&rogue).await;
    let nodes = nodes_for(&w, &[(ZONES[0], &rogue)]);
    let node = nodes[0].metadata.name.clone().unwrap();
    create_nodes_and_wait(&client, &nodes, Duration::from_secs(60)).await.unwrap();
    install_zone(&w, &endpoint);
    let _manage = start_manage(&ns, &w, &endpoint, free_port());
    ok(cli(&["service", "create", "redis", "rd", "--replicas=1", &format!("--zones={}", ZONES[0]), "--kube", "-n", &ns]));
    let api: Api<FireCampService> = Api::namespaced(client.clone(), &ns);
    let tag = format!("firecamp-cluster={}", w.cluster);
    let svc = wait_for(&api, "rd", "the refusal in the status", |s| {
        s.status.as_ref().and_then(|st| st.message.as_deref()).is_some_and(|m| m.contains(&rogue_eni) && m.contains(&tag))
    })
    .await;
    let st = svc.status.as_ref().unwrap();
    let message = st.message.as_deref().unwrap();
    assert!(message.contains(&rogue.0) && message.contains(&node) && message.contains("does not carry the tag"), "{message}");
    assert_eq!(st.static_ips.len(), 1, "the IP was allocated");
    assert_eq!(st.static_ips[0].instance, None, "and placed on no instance");
    let record = &st.static_ips[0].record;
    assert_eq!(w.holders_of(record.ip).await, vec![record.holder.clone()], "the IP is on FireCamp's reserve interface only");
    assert_ne!(record.holder, rogue_eni);
    assert_eq!(w.tags_of(&record.holder).await.get("firecamp-cluster"), Some(&w.cluster));

    // Deleting the service gives the IP back from the reserve interface.
    ok(cli(&["service", "delete", "rd", "--kube", "-n", &ns, "--wait", "--timeout=120"]));
    assert!(w.holders_of(record.ip).await.is_empty(), "released");
    firecamp_testbed::drop_namespace(&client, &ns).await;
    let _ = Api::<Node>::all(client.clone()).delete(&node, &DeleteParams::default()).await;
}

fn manage_log(ns: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("firecamp-manage-{ns}.log"))
}

/// The child's exit status, or `None` when it still runs after `timeout`.
fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
