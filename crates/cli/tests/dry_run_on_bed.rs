//! `firecamp service create --dry-run` output applied unchanged to the real Kubernetes test bed
//! (strict field validation), then the real scheduler and StatefulSet controller show that
//! member i runs in zone i mod n, stays there when its pod is rescheduled, and that a member
//! whose zone has no node stays Pending while the others run. Needs `testbed/bed up`.

use std::process::Command;
use std::time::Duration;

use firecamp_kube::objects;
use firecamp_testbed::{PROVISIONER, client, fresh_namespace};
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use kube::runtime::wait::{Condition, await_condition};
use kube::{Api, Client};

const TIMEOUT: Duration = Duration::from_secs(90);

fn dry_run(engine: &str, name: &str, namespace: &str, zones: &str, extra: &[&str]) -> Vec<objects::Object> {
    let out = Command::new(env!("CARGO_BIN_EXE_firecamp"))
        .args(["service", "create", engine, name, "--dry-run", "--show-secrets", "--cluster=bed"])
        .arg(format!("--namespace={namespace}"))
        .arg(format!("--zones={zones}"))
        .arg(format!("--volume-provisioner={PROVISIONER}"))
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "dry-run failed: {}", String::from_utf8_lossy(&out.stderr));
    objects::from_yaml(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

/// Server-side applies each object as printed, refusing unknown or duplicate fields.
async fn apply(client: &Client, objs: &[objects::Object]) {
    for o in objs {
        let (group, version) = o.api_version().rsplit_once('/').unwrap_or(("", o.api_version()));
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, o.kind()));
        let api: Api<DynamicObject> = match &o.metadata().namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        let value: DynamicObject = serde_json::from_value(serde_json::to_value(o).unwrap()).unwrap();
        let pp = PatchParams::apply("firecamp-test").validation_strict();
        if let Err(e) = api.patch(o.name(), &pp, &Patch::Apply(&value)).await {
            panic!("the API server refused {} {}: {e}", o.kind(), o.name());
        }
    }
}

async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, cond: impl Condition<K>) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    match tokio::time::timeout(TIMEOUT, await_condition(api.clone(), name, cond)).await {
        Ok(Ok(Some(o))) => o,
        other => panic!("{what} ({name}): {other:?}"),
    }
}

fn running_and_ready(p: Option<&Pod>) -> bool {
    p.and_then(|p| p.status.as_ref())
        .is_some_and(|s| s.phase.as_deref() == Some("Running") && s.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn unschedulable(p: Option<&Pod>) -> bool {
    p.and_then(|p| p.status.as_ref()).is_some_and(|s| {
        s.conditions.iter().flatten().any(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
    })
}

async fn zone_of_node(client: &Client, node: &str) -> String {
    let n = Api::<Node>::all(client.clone()).get(node).await.unwrap();
    n.metadata.labels.unwrap_or_default().get("topology.kubernetes.io/zone").cloned().unwrap_or_default()
}

async fn pod_zone(client: &Client, pods: &Api<Pod>, name: &str) -> (String, String) {
    let p = wait_for(pods, name, "member running and ready", running_and_ready).await;
    let node = p.spec.unwrap().node_name.unwrap();
    (zone_of_node(client, &node).await, p.metadata.uid.unwrap())
}

async fn cleanup_storage_classes(client: &Client, service: &str) {
    let api: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(client.clone());
    let lp = ListParams::default().labels(&format!("firecamp.dev/service={service}"));
    let _ = api.delete_collection(&DeleteParams::default(), &lp).await;
}

#[tokio::test]
async fn postgresql_members_run_in_their_zones_and_a_zone_without_nodes_stays_pending() {
    let client = client().await;
    let ns = fresh_namespace(&client, "fc-pg").await;
    // us-east-1d has no node in the bed: member 3 must wait there, never run elsewhere.
    let zones = "us-east-1a,us-east-1b,us-east-1c,us-east-1d";
    let service = format!("pg{}", &ns[ns.len() - 5..]);
    apply(&client, &dry_run("postgresql", &service, &ns, zones, &["--replicas=4", "--journal-size=2Gi"])).await;

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let expected = ["us-east-1a", "us-east-1b", "us-east-1c"];
    let mut uid0 = String::new();
    for (i, zone) in expected.iter().enumerate() {
        let (got, uid) = pod_zone(&client, &pods, &format!("{service}-{i}")).await;
        assert_eq!(&got, zone, "{service}-{i} must live in {zone}");
        if i == 0 {
            uid0 = uid;
        }
    }
    wait_for(&pods, &format!("{service}-3"), "member without a zone's node stays unschedulable", unschedulable).await;
    let p3 = pods.get(&format!("{service}-3")).await.unwrap();
    assert_eq!(p3.status.unwrap().phase.as_deref(), Some("Pending"));

    // Every volume of member i is bound in member i's zone.
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    for (i, zone) in expected.iter().enumerate() {
        for vol in ["data", "journal"] {
            let pvc = pvcs.get(&format!("{vol}-{service}-{i}")).await.unwrap();
            let pv = pvs.get(pvc.spec.unwrap().volume_name.as_deref().expect("bound")).await.unwrap();
            let terms = pv.spec.unwrap().node_affinity.unwrap().required.unwrap().node_selector_terms;
            let values = terms[0].match_expressions.clone().unwrap()[0].values.clone().unwrap();
            assert_eq!(values, vec![zone.to_string()], "{vol} volume of {service}-{i}");
        }
    }

    // A rescheduled member comes back in its own zone.
    pods.delete(&format!("{service}-0"), &DeleteParams::default()).await.unwrap();
    let name0 = format!("{service}-0");
    let replaced = move |p: Option<&Pod>| running_and_ready(p) && p.and_then(|p| p.metadata.uid.clone()) != Some(uid0.clone());
    let p = wait_for(&pods, &name0, "member 0 replaced", replaced).await;
    assert_eq!(zone_of_node(&client, &p.spec.unwrap().node_name.unwrap()).await, "us-east-1a");
    cleanup_storage_classes(&client, &service).await;
    firecamp_testbed::drop_namespace(&client, &ns).await;
}

#[tokio::test]
async fn redis_cluster_and_zookeeper_objects_are_accepted_and_scheduled_across_zones() {
    let client = client().await;
    let ns = fresh_namespace(&client, "fc-rz").await;
    let zones = "us-east-1a,us-east-1b,us-east-1c";
    let suffix = &ns[ns.len() - 5..];
    let (redis, zk) = (format!("rc{suffix}"), format!("zk{suffix}"));
    apply(&client, &dry_run("redis", &redis, &ns, zones, &["--option=mode=cluster", "--option=shards=3"])).await;
    apply(&client, &dry_run("zookeeper", &zk, &ns, zones, &[])).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let z = ["us-east-1a", "us-east-1b", "us-east-1c"];
    let mut redis_nodes = Vec::new();
    for i in 0..6 {
        let p = wait_for(&pods, &format!("{redis}-{i}"), "redis member ready", running_and_ready).await;
        let node = p.spec.unwrap().node_name.unwrap();
        assert_eq!(zone_of_node(&client, &node).await, z[i % 3], "{redis}-{i}");
        redis_nodes.push(node);
    }
    // Host-network members never share a node.
    let mut distinct = redis_nodes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 6, "redis members share nodes: {redis_nodes:?}");
    for (i, want) in z.iter().enumerate().take(3) {
        let (got, _) = pod_zone(&client, &pods, &format!("{zk}-{i}")).await;
        assert_eq!(&got, want, "{zk}-{i}");
    }
    cleanup_storage_classes(&client, &redis).await;
    cleanup_storage_classes(&client, &zk).await;
    // Frees the host ports of the Redis members for the next tests.
    firecamp_testbed::drop_namespace(&client, &ns).await;
}
