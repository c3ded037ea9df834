//! Where a volume goes (zone choice, allowedTopologies) and what PV it gets.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LocalVolumeSource, Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeSpec, VolumeNodeAffinity,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{ListParams, ObjectMeta};
use kube::{Api, Client, ResourceExt};

use super::{Error, PROVISIONED_BY, kube_err};
use crate::{PROVISIONER, ZONE_LABEL};

/// Whether a node with these labels satisfies the class's allowedTopologies (none: anywhere).
pub fn allowed(class: &StorageClass, labels: &BTreeMap<String, String>) -> bool {
    let Some(terms) = class.allowed_topologies.as_ref().filter(|t| !t.is_empty()) else {
        return true;
    };
    terms.iter().any(|term| term.match_label_expressions.iter().flatten().all(|e| labels.get(&e.key).is_some_and(|v| e.values.contains(v))))
}

/// Zone for an Immediate class: the first zone its allowedTopologies names, else the zone of
/// the first node (by name) that the class allows.
pub(super) async fn immediate_zone(client: &Client, class: &StorageClass) -> Result<String, Error> {
    let named = class
        .allowed_topologies
        .iter()
        .flatten()
        .flat_map(|t| t.match_label_expressions.iter().flatten())
        .find(|e| e.key == ZONE_LABEL)
        .and_then(|e| e.values.first().cloned());
    if let Some(zone) = named {
        return Ok(zone);
    }
    let mut nodes = Api::<Node>::all(client.clone()).list(&ListParams::default()).await.map_err(kube_err("listing nodes"))?.items;
    nodes.sort_by_key(|n| n.name_any());
    nodes
        .iter()
        .filter(|n| allowed(class, n.labels()))
        .find_map(|n| n.labels().get(ZONE_LABEL).cloned())
        .ok_or_else(|| Error::Invalid(format!("no node with a zone fits storage class {}", class.name_any())))
}

/// The PV for a claim, pinned to a zone.
pub fn volume_for(pvc: &PersistentVolumeClaim, class: &StorageClass, zone: &str) -> Result<PersistentVolume, Error> {
    let uid = pvc.uid().ok_or_else(|| Error::Invalid("PVC without uid".into()))?;
    let spec = pvc.spec.clone().unwrap_or_default();
    let size = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage").cloned())
        .ok_or_else(|| Error::Invalid(format!("PVC {} requests no storage", pvc.name_any())))?;
    let name = format!("pvc-{uid}");
    let zone_term = NodeSelectorTerm {
        match_expressions: Some(vec![NodeSelectorRequirement { key: ZONE_LABEL.into(), operator: "In".into(), values: Some(vec![zone.to_string()]) }]),
        ..Default::default()
    };
    Ok(PersistentVolume {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            annotations: Some(BTreeMap::from([(PROVISIONED_BY.into(), PROVISIONER.into())])),
            labels: Some(BTreeMap::from([(ZONE_LABEL.into(), zone.to_string())])),
            ..Default::default()
        },
        spec: Some(PersistentVolumeSpec {
            capacity: Some(BTreeMap::from([("storage".into(), size)])),
            access_modes: spec.access_modes.clone(),
            volume_mode: spec.volume_mode.clone(),
            claim_ref: Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("PersistentVolumeClaim".into()),
                namespace: pvc.namespace(),
                name: Some(pvc.name_any()),
                uid: Some(uid),
                ..Default::default()
            }),
            storage_class_name: Some(class.name_any()),
            persistent_volume_reclaim_policy: Some(class.reclaim_policy.clone().unwrap_or_else(|| "Delete".into())),
            mount_options: class.mount_options.clone(),
            // A local volume, as an EBS volume would be: real kubelets mount it and give it the
            // pod's fsGroup. The bed's nodes share one filesystem, so any node of the zone can
            // mount it, as any instance of the zone can attach an EBS volume. kwok mounts nothing.
            local: Some(LocalVolumeSource { path: volume_path(&name).display().to_string(), fs_type: None }),
            node_affinity: Some(VolumeNodeAffinity { required: Some(NodeSelector { node_selector_terms: vec![zone_term] }) }),
            ..Default::default()
        }),
        status: None,
    })
}

/// Where a volume's directory lives: under `FIRECAMP_TESTBED_VOLUMES` (the bed sets its own
/// folder), else `/var/lib/firecamp-testbed`.
pub fn volume_path(pv: &str) -> std::path::PathBuf {
    let root = std::env::var_os("FIRECAMP_TESTBED_VOLUMES").unwrap_or_else(|| "/var/lib/firecamp-testbed".into());
    std::path::Path::new(&root).join(pv)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{TopologySelectorLabelRequirement, TopologySelectorTerm};

    use super::*;

    fn class(zones: &[&str]) -> StorageClass {
        let term = TopologySelectorTerm {
            match_label_expressions: Some(vec![TopologySelectorLabelRequirement {
                key: ZONE_LABEL.into(),
                values: zones.iter().map(|z| z.to_string()).collect(),
            }]),
        };
        StorageClass { allowed_topologies: (!zones.is_empty()).then(|| vec![term]), ..Default::default() }
    }

    #[test]
    fn allowed_topologies_match_the_node_zone() {
        let in_a = BTreeMap::from([(ZONE_LABEL.to_string(), "us-east-1a".to_string())]);
        assert!(allowed(&class(&[]), &in_a), "no allowedTopologies: anywhere");
        assert!(allowed(&class(&["us-east-1a", "us-east-1b"]), &in_a));
        assert!(!allowed(&class(&["us-east-1d"]), &in_a));
        assert!(!allowed(&class(&["us-east-1a"]), &BTreeMap::new()), "a node without zone");
    }
}
