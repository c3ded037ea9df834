//! Applying the built objects: server-side apply under FireCamp's field manager, owner
//! references on what the service owns, and deletion of what it no longer needs.

use std::collections::{BTreeMap, BTreeSet};

use firecamp_kube::{Object, labels};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

use super::applied::{self, Applied};
use crate::error::{Error, Result};

/// Objects the service owns are garbage-collected with it. PVCs are not (data outlives the
/// service unless deleted on purpose) and cluster-scoped StorageClasses cannot be.
pub fn owned(o: &Object) -> bool {
    !matches!(o, Object::PersistentVolumeClaim(_) | Object::StorageClass(_))
}

/// How many requests of one reconcile pass are in flight at once (reads of the objects, applies
/// of those that do not depend on each other): a pass costs a few round trips, not one per object.
pub const IN_FLIGHT: usize = 8;

pub async fn apply(client: &Client, field_manager: &str, o: &Object, owner: Option<&OwnerReference>) -> Result<()> {
    apply_unless_unchanged(client, field_manager, o, owner, None).await
}

/// What a reconcile pass knows to skip an apply that would change nothing: the service's uid,
/// what it applied before, and where each object stands on the server now (by `applied::key`).
pub struct Memo<'a> {
    pub uid: &'a str,
    pub applied: &'a Applied,
    pub live: &'a BTreeMap<String, String>,
}

/// [`apply`], skipped when `memo` says the same object was applied last and the server's copy
/// has not changed since.
pub async fn apply_unless_unchanged(client: &Client, field_manager: &str, o: &Object, owner: Option<&OwnerReference>, memo: Option<&Memo<'_>>) -> Result<()> {
    let (group, version) = o.api_version().rsplit_once('/').unwrap_or(("", o.api_version()));
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, o.kind()));
    let api: Api<DynamicObject> = match &o.metadata().namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let mut value = serde_json::to_value(o).map_err(|_| Error::MissingField("serializable object"))?;
    if let (Some(owner), true) = (owner, owned(o)) {
        value["metadata"]["ownerReferences"] = serde_json::json!([owner]);
    }
    let (hash, key) = (applied::hash(&value), applied::key(o.kind(), o.metadata().namespace.as_deref(), o.name()));
    if let Some(m) = memo
        && m.applied.unchanged(m.uid, &key, hash, m.live.get(&key).map(String::as_str))
    {
        return Ok(());
    }
    let obj: DynamicObject = serde_json::from_value(value).map_err(|_| Error::MissingField("object metadata"))?;
    let written =
        api.patch(o.name(), &PatchParams::apply(field_manager).force(), &Patch::Apply(&obj)).await.map_err(Error::kube("apply", o.kind(), o.name()))?;
    if let Some(m) = memo {
        m.applied.record(m.uid, &key, hash, applied::version(o.kind(), &written.metadata));
    }
    Ok(())
}

/// The claim templates' sizes of each service's live StatefulSet (by the service's uid), learnt
/// when the API refused a template that grew: later passes apply those sizes at once.
pub type ClaimSizes = std::sync::Mutex<BTreeMap<String, BTreeMap<String, Quantity>>>;

/// `o` (a StatefulSet) with the claim templates' sizes of `sizes`.
fn with_claim_sizes(o: &Object, sizes: &BTreeMap<String, Quantity>) -> Object {
    let mut o = o.clone();
    if let Object::StatefulSet(s) = &mut o {
        for t in s.spec.iter_mut().flat_map(|s| s.volume_claim_templates.iter_mut().flatten()) {
            if let (Some(size), Some(requests)) =
                (t.metadata.name.as_ref().and_then(|n| sizes.get(n)), t.spec.as_mut().and_then(|s| s.resources.as_mut()).and_then(|r| r.requests.as_mut()))
            {
                requests.insert("storage".into(), size.clone());
            }
        }
    }
    o
}

/// Applies the StatefulSet of the service `uid`. Its `volumeClaimTemplates` cannot change once
/// created, and they only size PVCs FireCamp did not make first (it makes every member's claim
/// itself, at the spec's size): when the API refuses a template that grew (a volume resize),
/// the apply is made again with the live templates' sizes, remembered in `known`.
pub async fn apply_statefulset(
    client: &Client,
    field_manager: &str,
    o: &Object,
    owner: Option<&OwnerReference>,
    uid: &str,
    known: &ClaimSizes,
    memo: Option<&Memo<'_>>,
) -> Result<()> {
    let remembered = known.lock().unwrap_or_else(|p| p.into_inner()).get(uid).cloned();
    let o = match &remembered {
        Some(sizes) => with_claim_sizes(o, sizes),
        None => o.clone(),
    };
    match apply_unless_unchanged(client, field_manager, &o, owner, memo).await {
        Err(Error::Kube { source: kube::Error::Api(e), .. }) if e.code == 422 && e.message.contains("updates to statefulset spec") => {
            let ns = o.metadata().namespace.clone().unwrap_or_default();
            let api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
            let live = api.get(o.name()).await.map_err(Error::kube("get", "StatefulSet", o.name()))?;
            let sizes: BTreeMap<String, Quantity> = live
                .spec
                .and_then(|s| s.volume_claim_templates)
                .into_iter()
                .flatten()
                .filter_map(|t| Some((t.metadata.name?, t.spec?.resources?.requests?.get("storage")?.clone())))
                .collect();
            let kept = with_claim_sizes(&o, &sizes);
            known.lock().unwrap_or_else(|p| p.into_inner()).insert(uid.to_string(), sizes);
            apply_unless_unchanged(client, field_manager, &kept, owner, memo).await
        }
        r => r,
    }
}

/// Creates the Secret only when absent: generated passwords are never regenerated.
/// `generate` makes the Secret with fresh passwords; it runs only when `existing` is absent.
/// A Secret of that name that is not the service's own was refused before (`ownership::check`).
pub async fn ensure_secret(client: &Client, existing: &Secret, generate: impl FnOnce() -> Secret, owner: &OwnerReference) -> Result<bool> {
    let ns = existing.metadata.namespace.clone().unwrap_or_default();
    let name = existing.metadata.name.clone().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    if api.get_opt(&name).await.map_err(Error::kube("get", "Secret", &name))?.is_some() {
        return Ok(false);
    }
    let mut secret = generate();
    secret.metadata.owner_references = Some(vec![owner.clone()]);
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(Error::kube("create", "Secret", &name)(e)),
    }
}

fn selector(service: &str) -> String {
    format!("{}={service},{}=firecamp", labels::SERVICE, labels::MANAGED_BY)
}

/// Deletes the service's ConfigMaps and StorageClasses that are no longer built (a member or a
/// zone removed). PVCs are kept: they hold data. Labels only select: a ConfigMap is deleted only
/// when this service (`uid`) controls it, since anyone can write FireCamp's labels.
pub async fn delete_orphans(client: &Client, ns: &str, service: &str, uid: &str, desired: &[Object]) -> Result<Vec<String>> {
    let want: BTreeSet<(&str, &str)> = desired.iter().map(|o| (o.kind(), o.name())).collect();
    let lp = ListParams::default().labels(&selector(service));
    let mut deleted = Vec::new();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    for cm in cms.list(&lp).await.map_err(Error::kube("list", "ConfigMap", service))? {
        let controlled = cm.metadata.owner_references.iter().flatten().any(|r| r.controller == Some(true) && r.uid == uid);
        let name = cm.metadata.name.unwrap_or_default();
        if controlled && !want.contains(&("ConfigMap", name.as_str())) {
            cms.delete(&name, &DeleteParams::default()).await.map_err(Error::kube("delete", "ConfigMap", &name))?;
            deleted.push(format!("ConfigMap/{name}"));
        }
    }
    // A NetworkPolicy the service no longer asks for (spec.clients.networkPolicy turned off).
    if !desired.iter().any(|o| matches!(o, Object::NetworkPolicy(_))) {
        let nps: Api<NetworkPolicy> = Api::namespaced(client.clone(), ns);
        let name = firecamp_kube::names::network_policy(service);
        if let Some(np) = nps.get_opt(&name).await.map_err(Error::kube("get", "NetworkPolicy", &name))?
            && np.metadata.owner_references.iter().flatten().any(|r| r.controller == Some(true) && r.uid == uid)
        {
            nps.delete(&name, &DeleteParams::default()).await.map_err(Error::kube("delete", "NetworkPolicy", &name))?;
            deleted.push(format!("NetworkPolicy/{name}"));
        }
    }
    // A removed member's Certificate (with a cert-manager issuer), and with it the Secret it
    // issued into, which it owns.
    if desired.iter().any(|o| matches!(o, Object::Certificate(_))) {
        let certs: Api<firecamp_kube::certificate::Certificate> = Api::namespaced(client.clone(), ns);
        for c in certs.list(&lp).await.map_err(Error::kube("list", "Certificate", service))? {
            let controlled = c.metadata.owner_references.iter().flatten().any(|r| r.controller == Some(true) && r.uid == uid);
            let name = c.metadata.name.unwrap_or_default();
            if controlled && !want.contains(&("Certificate", name.as_str())) {
                certs.delete(&name, &DeleteParams::default()).await.map_err(Error::kube("delete", "Certificate", &name))?;
                deleted.push(format!("Certificate/{name}"));
            }
        }
    }
    let scs: Api<StorageClass> = Api::all(client.clone());
    // `labels()` replaces the selector: name the service and the namespace together, or one
    // service's reconcile would prune another's classes.
    let lp = ListParams::default().labels(&format!("{},{}={ns}", selector(service), labels::NAMESPACE));
    for sc in scs.list(&lp).await.map_err(Error::kube("list", "StorageClass", service))? {
        let name = sc.metadata.name.unwrap_or_default();
        if !want.contains(&("StorageClass", name.as_str())) {
            scs.delete(&name, &DeleteParams::default()).await.map_err(Error::kube("delete", "StorageClass", &name))?;
            deleted.push(format!("StorageClass/{name}"));
        }
    }
    Ok(deleted)
}

/// Everything cluster-scoped (and, when asked, the volumes) of a deleted service.
pub async fn cleanup(client: &Client, ns: &str, service: &str, delete_volumes: bool) -> Result<()> {
    let lp = ListParams::default().labels(&format!("{},{}={ns}", selector(service), labels::NAMESPACE));
    let scs: Api<StorageClass> = Api::all(client.clone());
    scs.delete_collection(&DeleteParams::default(), &lp).await.map_err(Error::kube("delete", "StorageClass", service))?;
    if delete_volumes {
        let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        let lp = ListParams::default().labels(&selector(service));
        pvcs.delete_collection(&DeleteParams::default(), &lp).await.map_err(Error::kube("delete", "PersistentVolumeClaim", service))?;
    }
    Ok(())
}
