//! A dynamic PV provisioner for the bed (kwok nodes provision nothing).
//!
//! For each PVC of a StorageClass whose provisioner is [`PROVISIONER`] it creates a zonal PV,
//! like an EBS volume: node affinity on `topology.kubernetes.io/zone`, so a pod can move to
//! another node of the same zone but never to another zone. Under WaitForFirstConsumer the zone
//! is the one of the node the scheduler selected; under Immediate it comes from the class's
//! `allowedTopologies` or the first node. The kcm's PV controller then binds PV and PVC.
//! Released PVs of ours with reclaim policy Delete are deleted. A bound claim of ours that asks
//! for more than its PV holds is resized, as the CSI external-resizer does for EBS.
//!
//! Errors are logged and retried; the provisioner never panics.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller, Error as ControllerError};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use crate::{PROVISIONER, ZONE_LABEL};

mod volume;
use volume::immediate_zone;
pub use volume::{allowed, volume_for};

/// Annotation the scheduler sets on a WaitForFirstConsumer PVC.
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// Annotation that marks the PVs this provisioner made.
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// Event reason when the selected node's zone is not in the class's allowedTopologies.
pub const REASON_NOT_ALLOWED: &str = "ZoneNotAllowed";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Kube { context: String, source: kube::Error },
    #[error("{0}")]
    Invalid(String),
}

fn kube_err(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let context = context.into();
    move |source| Error::Kube { context, source }
}

struct Ctx {
    client: Client,
    recorder: Recorder,
}

/// Runs the provisioner until SIGTERM/SIGINT.
pub async fn run(client: Client) {
    let reporter = Reporter { controller: "firecamp-testbed-provisioner".into(), instance: None };
    let ctx = Arc::new(Ctx { recorder: Recorder::new(client.clone(), reporter), client: client.clone() });
    let pvcs = Controller::new(Api::<PersistentVolumeClaim>::all(client.clone()), watcher::Config::default())
        .shutdown_on_signal()
        .run(reconcile_pvc, retry, ctx.clone())
        .for_each(|r| async move {
            log_result("pvc", r);
        });
    let pvs = Controller::new(Api::<PersistentVolume>::all(client), watcher::Config::default()).shutdown_on_signal().run(reconcile_pv, retry, ctx).for_each(
        |r| async move {
            log_result("pv", r);
        },
    );
    futures::join!(pvcs, pvs);
}

/// Logs a reconcile failure; objects deleted before their turn are expected, not failures.
fn log_result<T, E1: std::fmt::Display, E2: std::fmt::Display>(kind: &str, r: Result<T, ControllerError<E1, E2>>) {
    match r {
        Ok(_) => {}
        Err(ControllerError::ObjectNotFound(o)) => tracing::debug!("{kind}: {o} is gone"),
        Err(e) => tracing::warn!("{kind}: {e}"),
    }
}

fn retry<K>(_: Arc<K>, err: &Error, _: Arc<Ctx>) -> Action {
    tracing::warn!("will retry: {err}");
    Action::requeue(Duration::from_secs(2))
}

async fn reconcile_pvc(pvc: Arc<PersistentVolumeClaim>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let spec = pvc.spec.clone().unwrap_or_default();
    if pvc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if let Some(pv) = spec.volume_name.as_deref().filter(|v| !v.is_empty()) {
        resize(&pvc, pv, &ctx).await?;
        return Ok(Action::await_change());
    }
    let Some(class_name) = spec.storage_class_name.clone().filter(|c| !c.is_empty()) else {
        return Ok(Action::await_change());
    };
    let class = match Api::<StorageClass>::all(ctx.client.clone()).get_opt(&class_name).await {
        Ok(Some(c)) => c,
        // The class may be created after the claim: look again later.
        Ok(None) => return Ok(Action::requeue(Duration::from_secs(5))),
        Err(e) => return Err(kube_err(format!("getting storage class {class_name}"))(e)),
    };
    if class.provisioner != PROVISIONER {
        return Ok(Action::await_change());
    }
    let wffc = class.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer");
    let zone = if wffc {
        let Some(node_name) = pvc.annotations().get(SELECTED_NODE).cloned() else {
            return Ok(Action::await_change()); // the scheduler has not picked a node yet
        };
        let node = Api::<Node>::all(ctx.client.clone()).get(&node_name).await.map_err(kube_err(format!("getting selected node {node_name}")))?;
        let labels = node.labels();
        if !allowed(&class, labels) {
            let note = format!("node {node_name} (zone {:?}) is outside the allowedTopologies of class {class_name}", labels.get(ZONE_LABEL));
            warn_event(&ctx, &pvc, REASON_NOT_ALLOWED, note).await;
            return Ok(Action::await_change());
        }
        labels.get(ZONE_LABEL).cloned().ok_or_else(|| Error::Invalid(format!("node {node_name} has no {ZONE_LABEL} label")))?
    } else {
        immediate_zone(&ctx.client, &class).await?
    };
    let pv = volume_for(&pvc, &class, &zone)?;
    let name = pv.name_any();
    // A local volume's directory must exist before a kubelet mounts it.
    let dir = volume::volume_path(&name);
    std::fs::create_dir_all(&dir).map_err(|e| Error::Invalid(format!("creating {}: {e}", dir.display())))?;
    match Api::<PersistentVolume>::all(ctx.client.clone()).create(&PostParams::default(), &pv).await {
        Ok(_) => {
            tracing::info!(pv = %name, pvc = %format!("{}/{}", pvc.namespace().unwrap_or_default(), pvc.name_any()), %zone, "provisioned");
            let ev = Event {
                type_: EventType::Normal,
                reason: "ProvisioningSucceeded".into(),
                note: Some(format!("provisioned volume {name} in zone {zone}")),
                action: "Provision".into(),
                secondary: None,
            };
            if let Err(e) = ctx.recorder.publish(&ev, &pvc.object_ref(&())).await {
                tracing::warn!("publishing event: {e}");
            }
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {} // already provisioned: idempotent
        Err(e) => return Err(kube_err(format!("creating PV {name}"))(e)),
    }
    Ok(Action::await_change())
}

/// The resizer's part, as the CSI external-resizer plays it for an EBS volume: a bound claim
/// of ours that asks for more than its volume holds gets a volume of that size and then its
/// `status.capacity` (a local directory has no file system of its own to grow on the node).
async fn resize(pvc: &PersistentVolumeClaim, pv_name: &str, ctx: &Ctx) -> Result<(), Error> {
    let storage = |m: Option<&std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
        m.and_then(|m| m.get("storage")).and_then(|q| Some((q.clone(), firecamp_core::quantity::parse(&q.0).ok()?)))
    };
    let Some((want, want_size)) = storage(pvc.spec.as_ref().and_then(|s| s.resources.as_ref()).and_then(|r| r.requests.as_ref())) else {
        return Ok(());
    };
    let pvs = Api::<PersistentVolume>::all(ctx.client.clone());
    let Some(pv) = pvs.get_opt(pv_name).await.map_err(kube_err(format!("getting PV {pv_name}")))? else {
        return Ok(());
    };
    if pv.annotations().get(PROVISIONED_BY).is_none_or(|p| p != PROVISIONER) {
        return Ok(());
    }
    if storage(pv.spec.as_ref().and_then(|s| s.capacity.as_ref())).is_none_or(|(_, have)| have < want_size) {
        let patch = serde_json::json!({ "spec": { "capacity": { "storage": want } } });
        pvs.patch(pv_name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(kube_err(format!("resizing PV {pv_name}")))?;
        tracing::info!(pv = %pv_name, size = %want.0, "volume resized");
    }
    if storage(pvc.status.as_ref().and_then(|s| s.capacity.as_ref())).is_none_or(|(_, have)| have < want_size) {
        let api = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &pvc.namespace().unwrap_or_default());
        let patch = serde_json::json!({ "status": { "capacity": { "storage": want } } });
        api.patch_status(&pvc.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(kube_err(format!("recording the new capacity of PVC {}", pvc.name_any())))?;
    }
    Ok(())
}

async fn reconcile_pv(pv: Arc<PersistentVolume>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ours = pv.annotations().get(PROVISIONED_BY).is_some_and(|p| p == PROVISIONER);
    let released = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
    let delete = pv.spec.as_ref().and_then(|s| s.persistent_volume_reclaim_policy.as_deref()) == Some("Delete");
    if !(ours && released && delete) || pv.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = pv.name_any();
    match Api::<PersistentVolume>::all(ctx.client.clone()).delete(&name, &DeleteParams::default()).await {
        Ok(_) => tracing::info!(pv = %name, "released volume deleted"),
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(kube_err(format!("deleting PV {name}"))(e)),
    }
    // Its data goes with it, as a deleted EBS volume's does.
    let dir = volume::volume_path(&name);
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(pv = %name, "removing {}: {e}", dir.display());
    }
    Ok(Action::await_change())
}

async fn warn_event(ctx: &Ctx, pvc: &PersistentVolumeClaim, reason: &str, note: String) {
    tracing::warn!(pvc = %format!("{}/{}", pvc.namespace().unwrap_or_default(), pvc.name_any()), "{reason}: {note}");
    let ev = Event { type_: EventType::Warning, reason: reason.into(), note: Some(note), action: "Provision".into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&ev, &pvc.object_ref(&())).await {
        tracing::warn!("publishing event: {e}");
    }
}
