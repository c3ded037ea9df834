//! A Parallel + OnDelete StatefulSet with a volumeClaimTemplate: spread over zones, zonal PVs,
//! and OnDelete semantics (old pods stay; a deleted pod returns at `status.updateRevision`).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Container, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec, Pod, PodSpec, PodTemplateSpec, TopologySpreadConstraint,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

use firecamp_testbed::{PROVISIONER, STORAGE_CLASS, ZONE_LABEL};

use crate::util::{cleanup, pod_ready, pod_zone, wait};

const REVISION: &str = "controller-revision-hash";

fn statefulset(name: &str, replicas: i32, image: &str) -> StatefulSet {
    let labels = BTreeMap::from([("app".to_string(), name.to_string())]);
    let selector = LabelSelector { match_labels: Some(labels.clone()), ..Default::default() };
    StatefulSet {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(name.into()),
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy { type_: Some("OnDelete".into()), ..Default::default() }),
            selector: selector.clone(),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
                spec: Some(PodSpec {
                    // kwok's nodes: a real node of the bed would try to pull the image.
                    node_selector: Some([("type".to_string(), "kwok".to_string())].into()),
                    containers: vec![Container { name: "db".into(), image: Some(image.into()), ..Default::default() }],
                    topology_spread_constraints: Some(vec![TopologySpreadConstraint {
                        max_skew: 1,
                        topology_key: ZONE_LABEL.into(),
                        when_unsatisfiable: "DoNotSchedule".into(),
                        label_selector: Some(selector),
                        ..Default::default()
                    }]),
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
        status: None,
    }
}

fn revision(pod: &Pod) -> String {
    pod.labels().get(REVISION).cloned().unwrap_or_default()
}

#[tokio::test]
async fn parallel_ondelete_statefulset_spreads_binds_zonal_volumes_and_updates_on_delete() {
    let client = firecamp_testbed::client().await;
    let ns = firecamp_testbed::fresh_namespace(&client, "tb-sts").await;
    let sts_api = Api::<StatefulSet>::namespaced(client.clone(), &ns);
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
    let pvs = Api::<PersistentVolume>::all(client.clone());

    sts_api.create(&PostParams::default(), &statefulset("db", 3, "example.invalid/db:v1")).await.expect("create sts");
    let all_ready = |s: Option<&StatefulSet>| s.and_then(|s| s.status.as_ref()).is_some_and(|st| st.ready_replicas == Some(3) && st.update_revision.is_some());
    let sts = wait(&sts_api, "db", "3 replicas Ready", all_ready).await;
    let rev1 = sts.status.and_then(|s| s.update_revision).expect("updateRevision");

    // Spread: one pod per zone; each PVC bound to our PV in the pod's zone.
    let mut zones = BTreeSet::new();
    let mut before = BTreeMap::new();
    for i in 0..3 {
        let pod = pods.get(&format!("db-{i}")).await.expect("get pod");
        assert!(pod_ready(&pod), "db-{i} not Ready");
        assert_eq!(revision(&pod), rev1);
        let zone = pod_zone(&client, &pod).await;
        let bound = |p: Option<&PersistentVolumeClaim>| p.and_then(|p| p.status.as_ref()).is_some_and(|s| s.phase.as_deref() == Some("Bound"));
        let pvc = wait(&pvcs, &format!("data-db-{i}"), "PVC Bound", bound).await;
        let pv_name = pvc.spec.as_ref().and_then(|s| s.volume_name.clone()).expect("volumeName");
        assert_eq!(pv_name, format!("pvc-{}", pvc.uid().unwrap_or_default()));
        let pv = pvs.get(&pv_name).await.expect("get PV");
        assert_eq!(pv.annotations().get("pv.kubernetes.io/provisioned-by").map(String::as_str), Some(PROVISIONER));
        assert_eq!(pv_zones(&pv), vec![zone.clone()], "PV {pv_name} zone vs pod db-{i}'s node");
        let spec = pv.spec.clone().unwrap_or_default();
        assert_eq!(spec.storage_class_name.as_deref(), Some(STORAGE_CLASS));
        assert_eq!(spec.persistent_volume_reclaim_policy.as_deref(), Some("Delete"));
        assert_eq!(spec.capacity.and_then(|c| c.get("storage").cloned()), Some(Quantity("1Gi".into())));
        assert_eq!(spec.claim_ref.and_then(|c| c.uid), pvc.uid());
        zones.insert(zone.clone());
        before.insert(i, (pod.uid().unwrap_or_default(), zone));
    }
    assert_eq!(zones.len(), 3, "pods not spread over three zones: {zones:?}");

    // Template change: OnDelete creates a new revision but touches no pod.
    let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "db", "image": "example.invalid/db:v2"}]}}}});
    sts_api.patch("db", &PatchParams::default(), &Patch::Strategic(&patch)).await.expect("patch sts");
    let new_rev = |s: Option<&StatefulSet>| s.and_then(|s| s.status.as_ref()).and_then(|st| st.update_revision.as_deref()).is_some_and(|r| r != rev1);
    let sts = wait(&sts_api, "db", "new updateRevision", new_rev).await;
    let rev2 = sts.status.as_ref().and_then(|s| s.update_revision.clone()).expect("updateRevision");
    for pod in pods.list(&ListParams::default().labels("app=db")).await.expect("list pods") {
        assert_eq!(revision(&pod), rev1, "{} was replaced under OnDelete", pod.name_any());
        let (uid, _) = &before[&pod.name_any().trim_start_matches("db-").parse::<i32>().expect("ordinal")];
        assert_eq!(pod.uid().as_ref(), Some(uid), "{} was recreated under OnDelete", pod.name_any());
    }

    // Deleting a pod brings it back at the update revision, in the same zone (its PV is zonal).
    let (old_uid, old_zone) = before[&0].clone();
    pods.delete("db-0", &DeleteParams::default()).await.expect("delete db-0");
    let replaced = |p: Option<&Pod>| p.is_some_and(|p| p.uid().as_ref() != Some(&old_uid) && pod_ready(p) && revision(p) == rev2);
    let pod = wait(&pods, "db-0", "db-0 back at the new revision", replaced).await;
    let image = pod.spec.as_ref().and_then(|s| s.containers[0].image.clone());
    assert_eq!(image.as_deref(), Some("example.invalid/db:v2"));
    assert_eq!(pod_zone(&client, &pod).await, old_zone, "db-0 changed zone");
    for i in 1..3 {
        let p = pods.get(&format!("db-{i}")).await.expect("get pod");
        assert_eq!(revision(&p), rev1, "db-{i} must keep the old revision");
    }
    // OnDelete never advances currentRevision: operators must compare pod hashes with updateRevision.
    let sts = sts_api.get("db").await.expect("get sts");
    let status = sts.status.expect("status");
    assert_eq!(status.update_revision.as_deref(), Some(rev2.as_str()));
    assert_eq!(status.current_revision.as_deref(), Some(rev1.as_str()));

    cleanup(&client, &ns).await;
}

/// The zones a PV's node affinity allows.
pub fn pv_zones(pv: &PersistentVolume) -> Vec<String> {
    pv.spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
        .map(|r| {
            r.node_selector_terms
                .iter()
                .flat_map(|t| t.match_expressions.iter().flatten())
                .filter(|e| e.key == ZONE_LABEL && e.operator == "In")
                .flat_map(|e| e.values.clone().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}
