//! The provisioner and zones: allowedTopologies is honoured, and a pod whose zone has no node
//! stays Pending while the others run.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, Node, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, Pod, PodSpec,
    TopologySelectorLabelRequirement, TopologySelectorTerm, Volume, VolumeResourceRequirements,
};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Client, ResourceExt};

use firecamp_testbed::provisioner::{REASON_NOT_ALLOWED, SELECTED_NODE};
use firecamp_testbed::{PROVISIONER, ZONE_LABEL};

use crate::statefulset::pv_zones;
use crate::util::{cleanup, condition, pod_ready, pod_zone, wait, wait_any, wait_deleted};

/// A per-zone class, as FireCamp renders them (`--volume-provisioner testbed.firecamp.dev/local`).
async fn zonal_class(client: &Client, name: &str, zone: &str, mode: &str) -> StorageClass {
    let class = StorageClass {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        provisioner: PROVISIONER.into(),
        volume_binding_mode: Some(mode.into()),
        reclaim_policy: Some("Delete".into()),
        allowed_topologies: Some(vec![TopologySelectorTerm {
            match_label_expressions: Some(vec![TopologySelectorLabelRequirement { key: ZONE_LABEL.into(), values: vec![zone.into()] }]),
        }]),
        ..Default::default()
    };
    Api::<StorageClass>::all(client.clone()).create(&PostParams::default(), &class).await.expect("create class")
}

fn claim(name: &str, class: &str, annotations: BTreeMap<String, String>) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta { name: Some(name.into()), annotations: Some(annotations), ..Default::default() },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: Some(class.into()),
            resources: Some(VolumeResourceRequirements { requests: Some(BTreeMap::from([("storage".into(), Quantity("2Gi".into()))])), ..Default::default() }),
            ..Default::default()
        }),
        status: None,
    }
}

fn pod_with_claim(name: &str, claim: &str) -> Pod {
    Pod {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        spec: Some(PodSpec {
            // kwok's nodes: a real node of the bed would try to pull the image.
            node_selector: Some([("type".to_string(), "kwok".to_string())].into()),
            containers: vec![Container { name: "db".into(), image: Some("example.invalid/db:v1".into()), ..Default::default() }],
            volumes: Some(vec![Volume {
                name: "data".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: claim.into(), read_only: None }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

fn bound(p: Option<&PersistentVolumeClaim>) -> bool {
    p.and_then(|p| p.status.as_ref()).is_some_and(|s| s.phase.as_deref() == Some("Bound"))
}

async fn delete_classes(client: &Client, names: &[&str]) {
    let api = Api::<StorageClass>::all(client.clone());
    for n in names {
        let _ = api.delete(n, &DeleteParams::default()).await;
    }
}

#[tokio::test]
async fn pod_in_a_zone_without_nodes_stays_pending_while_others_run() {
    let client = firecamp_testbed::client().await;
    let ns = firecamp_testbed::fresh_namespace(&client, "tb-nozone").await;
    let (class_a, class_d) = (format!("{ns}-us-east-1a"), format!("{ns}-us-east-1d"));
    zonal_class(&client, &class_a, "us-east-1a", "WaitForFirstConsumer").await;
    zonal_class(&client, &class_d, "us-east-1d", "WaitForFirstConsumer").await; // no node there
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    for (zone, class) in [("a", &class_a), ("d", &class_d)] {
        pvcs.create(&PostParams::default(), &claim(&format!("data-{zone}"), class, BTreeMap::new())).await.expect("pvc");
        pods.create(&PostParams::default(), &pod_with_claim(&format!("db-{zone}"), &format!("data-{zone}"))).await.expect("pod");
    }

    let pod_a = wait(&pods, "db-a", "db-a Ready", |p: Option<&Pod>| p.is_some_and(pod_ready)).await;
    assert_eq!(pod_zone(&client, &pod_a).await, "us-east-1a");
    let pvc_a = wait(&pvcs, "data-a", "data-a Bound", bound).await;
    let pv = Api::<PersistentVolume>::all(client.clone()).get(&pvc_a.spec.and_then(|s| s.volume_name).expect("volumeName")).await.expect("get PV");
    assert_eq!(pv_zones(&pv), vec!["us-east-1a".to_string()]);

    // The scheduler finds no node in us-east-1d, so it never selects one and nothing is provisioned.
    let unschedulable = |p: Option<&Pod>| p.is_some_and(|p| condition(p, "PodScheduled", "False"));
    let pod_d = wait(&pods, "db-d", "db-d Unschedulable", unschedulable).await;
    assert_eq!(pod_d.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
    assert!(pod_d.spec.and_then(|s| s.node_name).is_none(), "db-d got a node");
    let pvc_d = pvcs.get("data-d").await.expect("get data-d");
    assert_eq!(pvc_d.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
    assert!(pvc_d.spec.and_then(|s| s.volume_name).is_none(), "data-d got a volume");

    cleanup(&client, &ns).await;
    delete_classes(&client, &[&class_a, &class_d]).await;
}

#[tokio::test]
async fn provisioner_honours_allowed_topologies_and_deletes_released_volumes() {
    let client = firecamp_testbed::client().await;
    let ns = firecamp_testbed::fresh_namespace(&client, "tb-topo").await;
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
    let pvs = Api::<PersistentVolume>::all(client.clone());

    // Immediate class limited to us-east-1b: the PV is made there at once, without a pod.
    let immediate = format!("{ns}-imm-b");
    zonal_class(&client, &immediate, "us-east-1b", "Immediate").await;
    pvcs.create(&PostParams::default(), &claim("now", &immediate, BTreeMap::new())).await.expect("pvc");
    let pvc = wait(&pvcs, "now", "Immediate PVC Bound", bound).await;
    let pv = pvs.get(&format!("pvc-{}", pvc.uid().unwrap_or_default())).await.expect("get PV");
    assert_eq!(pv_zones(&pv), vec!["us-east-1b".to_string()]);
    assert_eq!(pv.spec.as_ref().and_then(|s| s.capacity.clone()).and_then(|c| c.get("storage").cloned()), Some(Quantity("2Gi".into())));

    // Reclaim Delete: once the claim goes, the provisioner deletes the Released PV.
    pvcs.delete("now", &DeleteParams::default()).await.expect("delete pvc");
    let pv_uid = pv.uid().unwrap_or_default();
    wait_deleted(&pvs, &pv.name_any(), &pv_uid, "released PV deleted").await;

    // WaitForFirstConsumer class limited to us-east-1b, but a node in us-east-1a "selected"
    // (as a scheduler that ignored allowedTopologies would): no PV, a Warning event instead.
    let wffc = format!("{ns}-wffc-b");
    zonal_class(&client, &wffc, "us-east-1b", "WaitForFirstConsumer").await;
    let node_a = Api::<Node>::all(client.clone())
        .list(&kube::api::ListParams::default().labels(&format!("{ZONE_LABEL}=us-east-1a")))
        .await
        .expect("list nodes")
        .items
        .into_iter()
        .next()
        .expect("a node in us-east-1a")
        .name_any();
    let ann = BTreeMap::from([(SELECTED_NODE.to_string(), node_a)]);
    let pvc = pvcs.create(&PostParams::default(), &claim("wrong-zone", &wffc, ann)).await.expect("pvc");
    let events = Api::<Event>::namespaced(client.clone(), &ns);
    wait_any(&events, "ZoneNotAllowed event", |e: &Event| {
        e.reason.as_deref() == Some(REASON_NOT_ALLOWED) && e.regarding.as_ref().and_then(|r| r.uid.as_ref()) == pvc.uid().as_ref()
    })
    .await;
    let pvc = pvcs.get("wrong-zone").await.expect("get pvc");
    assert!(pvc.spec.and_then(|s| s.volume_name).is_none(), "a volume was bound outside allowedTopologies");
    let pv = pvs.get_opt(&format!("pvc-{}", pvc.metadata.uid.unwrap_or_default())).await.expect("get PV");
    assert!(pv.is_none(), "a PV was provisioned outside allowedTopologies");

    cleanup(&client, &ns).await;
    delete_classes(&client, &[&immediate, &wffc]).await;
}
