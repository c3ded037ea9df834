//! What a volume operation waits for: every member's PVCs at the spec's size. The reconcile
//! pass has already applied the new size to each PVC (FireCamp creates the claims and applies
//! them like its other objects); the cluster's resizer grows the volume, the kubelet grows its
//! file system where one is mounted, and the PVC's `status.capacity` says when it is done.

use std::collections::BTreeMap;

use firecamp_catalog::{MemberPlan, ServicePlan};
use firecamp_core::quantity;
use firecamp_kube::{labels, names, storage};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use super::decide::MemberView;
use crate::error::{Error, Result};
use crate::reconcile::Context;

/// Whether every volume of `m` has the spec's size as its capacity, or why not yet.
pub fn at_size(plan: &ServicePlan, m: &MemberPlan, pvcs: &BTreeMap<String, PersistentVolumeClaim>) -> std::result::Result<(), String> {
    let mut waiting = Vec::new();
    for (vol, spec) in storage::volumes(plan) {
        let name = names::pvc(vol, &m.member.name);
        let Some(pvc) = pvcs.get(&name) else {
            waiting.push(format!("{vol}: no PVC {name}"));
            continue;
        };
        let want = quantity::parse(&spec.size).map_err(|e| format!("spec.volumes.{vol}.size: {e}"))?;
        let have = pvc.status.as_ref().and_then(|s| s.capacity.as_ref()?.get("storage")).map(|q| q.0.clone());
        if have.as_deref().and_then(|h| quantity::parse(h).ok()).is_some_and(|h| h >= want) {
            continue;
        }
        // The resizer's and kubelet's progress, as the PVC's conditions say it.
        let conditions: Vec<String> =
            pvc.status.as_ref().and_then(|s| s.conditions.as_ref()).into_iter().flatten().filter(|c| c.status == "True").map(|c| c.type_.clone()).collect();
        let how = if conditions.is_empty() { String::new() } else { format!(" ({})", conditions.join(", ")) };
        waiting.push(format!("{vol}: capacity {} of {}{how}", have.as_deref().unwrap_or("unknown"), spec.size));
    }
    if waiting.is_empty() { Ok(()) } else { Err(waiting.join("; ")) }
}

/// Fills each member's `volume` from the service's PVCs (one list).
pub async fn observe(ctx: &Context, plan: &ServicePlan, ns: &str, views: &mut BTreeMap<String, MemberView>) -> Result<()> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
    let lp = ListParams::default().labels(&format!("{}={}", labels::SERVICE, plan.name));
    let pvcs: BTreeMap<String, PersistentVolumeClaim> =
        api.list(&lp).await.map_err(Error::kube("list", "PersistentVolumeClaim", &plan.name))?.into_iter().map(|p| (p.name_any(), p)).collect();
    for m in &plan.members {
        if let Some(v) = views.get_mut(m.member.name.as_str()) {
            v.volume = Some(at_size(plan, m, &pvcs));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use firecamp_catalog::{KubernetesLayout, examples};
    use firecamp_core::{ClusterConfig, EngineKind};
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimCondition, PersistentVolumeClaimStatus};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn pvc(capacity: &str, condition: Option<&str>) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            status: Some(PersistentVolumeClaimStatus {
                capacity: Some(BTreeMap::from([("storage".to_string(), Quantity(capacity.into()))])),
                conditions: condition.map(|c| vec![PersistentVolumeClaimCondition { type_: c.into(), status: "True".into(), ..Default::default() }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_member_is_at_size_once_every_volume_has_the_capacity() {
        let mut spec = examples::spec(EngineKind::Postgresql, 1);
        spec.volumes.data.size = "20Gi".into();
        let plan = firecamp_catalog::plan("pg", &spec, &ClusterConfig::new("test"), &KubernetesLayout::default(), &BTreeMap::new()).unwrap();
        let m = &plan.members[0];
        let mut pvcs = BTreeMap::new();
        assert_eq!(at_size(&plan, m, &pvcs), Err("data: no PVC data-pg-0".into()));
        pvcs.insert("data-pg-0".to_string(), pvc("10Gi", Some("FileSystemResizePending")));
        assert_eq!(at_size(&plan, m, &pvcs), Err("data: capacity 10Gi of 20Gi (FileSystemResizePending)".into()));
        pvcs.insert("data-pg-0".to_string(), pvc("20480Mi", None));
        assert_eq!(at_size(&plan, m, &pvcs), Ok(()), "the same size in another unit");
    }
}
