//! Zone pinning through storage: member i's volumes come from a StorageClass whose
//! `allowedTopologies` is member i's zone, in a PVC FireCamp creates under the name the
//! StatefulSet expects. With WaitForFirstConsumer the scheduler places the first pod on a node
//! of that zone and the volume is made there; a zonal volume (EBS) then holds every later pod
//! of the member in that zone, and a zone with no Ready node leaves only its members Pending.

use std::collections::BTreeMap;

use firecamp_catalog::{MemberPlan, ServicePlan};
use firecamp_core::spec::VolumeSpec;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, TopologySelectorLabelRequirement, TopologySelectorTerm, VolumeResourceRequirements,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::labels::{self, ZONE_TOPOLOGY};
use crate::meta;
use crate::names::{self, DATA_VOLUME, JOURNAL_VOLUME};

/// The service's volumes: (claim template name, spec).
pub fn volumes(plan: &ServicePlan) -> Vec<(&'static str, &VolumeSpec)> {
    let v = &plan.spec.volumes;
    std::iter::once((DATA_VOLUME, &v.data)).chain(v.journal.as_ref().map(|j| (JOURNAL_VOLUME, j))).collect()
}

/// Zones that hold members, in spec order.
fn used_zones(plan: &ServicePlan) -> Vec<&str> {
    let mut zones: Vec<&str> = Vec::new();
    for m in &plan.members {
        if !zones.contains(&m.member.zone.as_str()) {
            zones.push(&m.member.zone);
        }
    }
    zones
}

/// One StorageClass per volume and zone.
pub fn storage_classes(plan: &ServicePlan) -> Vec<StorageClass> {
    let ns = &plan.cluster.namespace;
    volumes(plan)
        .into_iter()
        .flat_map(|(vol, spec)| {
            used_zones(plan).into_iter().map(move |zone| {
                let mut l = labels::own(plan);
                l.insert(labels::ZONE.into(), zone.into());
                // Cluster-scoped: the namespace tells services of the same name apart.
                l.insert(labels::NAMESPACE.into(), ns.clone());
                StorageClass {
                    metadata: meta::cluster_scoped(names::storage_class(ns, &plan.name, vol, zone), l),
                    provisioner: plan.cluster.volume_provisioner.clone(),
                    parameters: Some(ebs_parameters(spec)),
                    reclaim_policy: Some("Delete".into()),
                    volume_binding_mode: Some("WaitForFirstConsumer".into()),
                    allow_volume_expansion: Some(true),
                    allowed_topologies: Some(vec![TopologySelectorTerm {
                        match_label_expressions: Some(vec![TopologySelectorLabelRequirement { key: ZONE_TOPOLOGY.into(), values: vec![zone.into()] }]),
                    }]),
                    ..Default::default()
                }
            })
        })
        .collect()
}

/// Parameters of the EBS CSI driver (other provisioners ignore what they do not know).
fn ebs_parameters(v: &VolumeSpec) -> BTreeMap<String, String> {
    let mut p = BTreeMap::from([
        ("type".to_string(), v.volume_type.as_str().to_string()),
        ("encrypted".to_string(), v.encrypted.to_string()),
        ("csi.storage.k8s.io/fstype".to_string(), "xfs".to_string()),
    ]);
    if let Some(iops) = v.iops {
        p.insert("iops".into(), iops.to_string());
    }
    if let Some(t) = v.throughput {
        p.insert("throughput".into(), t.to_string());
    }
    if let Some(k) = &v.kms_key_id {
        p.insert("kmsKeyId".into(), k.clone());
    }
    p
}

/// The pre-created, zone-pinned PVCs of every member.
pub fn claims(plan: &ServicePlan) -> Vec<PersistentVolumeClaim> {
    plan.members.iter().flat_map(|m| volumes(plan).into_iter().map(move |(vol, spec)| claim(plan, m, vol, spec))).collect()
}

fn claim(plan: &ServicePlan, m: &MemberPlan, vol: &str, spec: &VolumeSpec) -> PersistentVolumeClaim {
    let class = names::storage_class(&plan.cluster.namespace, &plan.name, vol, &m.member.zone);
    PersistentVolumeClaim {
        metadata: meta::namespaced(plan, names::pvc(vol, &m.member.name), labels::member(plan, m)),
        spec: Some(claim_spec(class, spec)),
        ..Default::default()
    }
}

pub(crate) fn claim_spec(class: String, spec: &VolumeSpec) -> PersistentVolumeClaimSpec {
    PersistentVolumeClaimSpec {
        access_modes: Some(vec!["ReadWriteOnce".into()]),
        storage_class_name: Some(class),
        resources: Some(VolumeResourceRequirements {
            requests: Some(BTreeMap::from([("storage".to_string(), Quantity(spec.size.clone()))])),
            ..Default::default()
        }),
        ..Default::default()
    }
}
