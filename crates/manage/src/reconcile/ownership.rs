//! Whether an object of the name FireCamp would use is this service's to change. Server-side
//! apply with `force` would otherwise adopt (and garbage-collect with the service) any Service,
//! ConfigMap or Secret of the namespace that happens to have the name.

use std::collections::BTreeMap;

use firecamp_kube::{Object, labels};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client};

use super::apply::owned;
use crate::error::{Error, Result};

/// Who may claim an object: by the controller owner reference (namespaced objects the service
/// owns), or by FireCamp's labels where no owner reference can be (PVCs outlive the service;
/// cluster-scoped StorageClasses cannot name a namespaced owner, so they name the namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    OwnerReference,
    Labels {
        cluster_scoped: bool,
    },
    /// A Secret cert-manager issues for the service's Certificate of the same name: this
    /// service's owner reference, or (issued, not yet claimed) the service's labels, which the
    /// Certificate's secret template gives it, and cert-manager's annotation naming the
    /// Certificate. cert-manager would overwrite any Secret of the name: a stranger's is refused
    /// before the Certificate is applied.
    Issued,
}

pub fn proof(o: &Object) -> Proof {
    if owned(o) { Proof::OwnerReference } else { Proof::Labels { cluster_scoped: o.metadata().namespace.is_none() } }
}

/// This service: its FireCampService's uid, name and namespace.
pub struct Claimant<'a> {
    pub uid: &'a str,
    pub service: &'a str,
    pub namespace: &'a str,
}

/// `None` when the object is absent or this service's; otherwise why it is not.
pub fn refusal(existing: Option<&ObjectMeta>, proof: Proof, me: &Claimant) -> Option<String> {
    let meta = existing?;
    match proof {
        Proof::OwnerReference => {
            let controller = meta.owner_references.iter().flatten().find(|r| r.controller == Some(true));
            match controller {
                Some(r) if r.uid == me.uid => None,
                Some(r) => Some(format!("it is controlled by {} {} (uid {}), not by this FireCampService", r.kind, r.name, r.uid)),
                None => Some("it exists without an owner reference to this FireCampService".into()),
            }
        }
        Proof::Issued => {
            if meta.owner_references.iter().flatten().any(|r| r.controller == Some(true) && r.uid == me.uid) {
                return None;
            }
            let l = meta.labels.clone().unwrap_or_default();
            let has = |k: &str, v: &str| l.get(k).map(String::as_str) == Some(v);
            let annotations = meta.annotations.clone().unwrap_or_default();
            let issued = annotations.get(firecamp_kube::certificate::CERTIFICATE_NAME_ANNOTATION).is_some_and(|c| Some(c) == meta.name.as_ref());
            let ours = has(labels::MANAGED_BY, "firecamp") && has(labels::SERVICE, me.service) && issued;
            (!ours).then(|| format!("it was not issued by cert-manager for this service's Certificate {}", meta.name.clone().unwrap_or_default()))
        }
        Proof::Labels { cluster_scoped } => {
            let l = meta.labels.clone().unwrap_or_default();
            let has = |k: &str, v: &str| l.get(k).map(String::as_str) == Some(v);
            let ours = has(labels::MANAGED_BY, "firecamp") && has(labels::SERVICE, me.service) && (!cluster_scoped || has(labels::NAMESPACE, me.namespace));
            let whose = if cluster_scoped { format!("{} of namespace {}", me.service, me.namespace) } else { me.service.to_string() };
            (!ours).then(|| format!("it exists without FireCamp's labels for service {whose}"))
        }
    }
}

/// One object the service would write: where it lives and how it is claimed.
pub struct Target<'a> {
    pub api_version: &'a str,
    pub kind: &'static str,
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    pub proof: Proof,
}

impl<'a> From<&'a Object> for Target<'a> {
    fn from(o: &'a Object) -> Self {
        Target { api_version: o.api_version(), kind: o.kind(), name: o.name(), namespace: o.metadata().namespace.as_deref(), proof: proof(o) }
    }
}

/// Reads each object the service would write (their metadata, a few at a time: a pass waits
/// for them all) and refuses, naming every one in order, when any exists that is not this
/// service's. Called before anything is applied, so nothing is half-created. Returns where each
/// object that exists stands on the server (`applied::key` → `applied::version`).
pub async fn check(client: &Client, targets: &[Target<'_>], me: &Claimant<'_>) -> Result<BTreeMap<String, String>> {
    // The futures made first: a closure inside the stream would not be Send for every lifetime.
    let reads: Vec<_> = targets.iter().map(|t| read_metadata(client, t)).collect();
    let existing: Vec<_> = futures::stream::iter(reads).buffered(super::apply::IN_FLIGHT).try_collect().await?;
    let refused: Vec<String> = targets
        .iter()
        .zip(&existing)
        .filter_map(|(t, e)| refusal(e.as_ref().map(|e| &e.metadata), t.proof, me).map(|why| format!("{} {}: {why}", t.kind, t.name)))
        .collect();
    if !refused.is_empty() {
        return Err(Error::NotOwned(refused));
    }
    Ok(targets
        .iter()
        .zip(&existing)
        .filter_map(|(t, e)| Some((super::applied::key(t.kind, t.namespace, t.name), super::applied::version(t.kind, &e.as_ref()?.metadata))))
        .collect())
}

async fn read_metadata(client: &Client, t: &Target<'_>) -> Result<Option<kube::core::PartialObjectMeta<DynamicObject>>> {
    let (group, version) = t.api_version.rsplit_once('/').unwrap_or(("", t.api_version));
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, t.kind));
    let api: Api<DynamicObject> = match t.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.get_metadata_opt(t.name).await.map_err(Error::kube("get", t.kind, t.name))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;

    const ME: Claimant = Claimant { uid: "u-1", service: "pg", namespace: "a" };
    const BY_REF: Proof = Proof::OwnerReference;

    fn owner(uid: &str, controller: bool) -> OwnerReference {
        OwnerReference {
            api_version: "firecamp.dev/v1alpha1".into(),
            kind: "FireCampService".into(),
            name: "pg".into(),
            uid: uid.into(),
            controller: Some(controller),
            block_owner_deletion: None,
        }
    }

    fn with_owners(refs: Vec<OwnerReference>) -> ObjectMeta {
        ObjectMeta { name: Some("pg-0-config".into()), owner_references: Some(refs), ..Default::default() }
    }

    fn with_labels(l: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta { labels: Some(l.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()), ..Default::default() }
    }

    #[test]
    fn absent_objects_and_our_own_are_ours_to_apply() {
        assert_eq!(refusal(None, BY_REF, &ME), None);
        assert_eq!(refusal(Some(&with_owners(vec![owner("u-1", true)])), BY_REF, &ME), None);
    }

    #[test]
    fn an_object_without_our_controller_reference_is_refused() {
        let plain = ObjectMeta::default();
        assert!(refusal(Some(&plain), BY_REF, &ME).unwrap().contains("without an owner reference"));
        // An earlier service of the same name (another uid) or a non-controller reference: not ours.
        assert!(refusal(Some(&with_owners(vec![owner("u-0", true)])), BY_REF, &ME).unwrap().contains("uid u-0"));
        assert!(refusal(Some(&with_owners(vec![owner("u-1", false)])), BY_REF, &ME).is_some());
        // Labels do not stand in for the owner reference: anyone can write them.
        let labelled = ObjectMeta { labels: with_labels(&[(labels::MANAGED_BY, "firecamp"), (labels::SERVICE, "pg")]).labels, ..Default::default() };
        assert!(refusal(Some(&labelled), BY_REF, &ME).is_some());
    }

    #[test]
    fn an_issued_secret_is_ours_only_when_issued_for_our_certificate() {
        let issued = |labels: &[(&str, &str)], certificate: Option<&str>| ObjectMeta {
            name: Some("pg-0-certificate".into()),
            labels: with_labels(labels).labels,
            annotations: certificate.map(|c| BTreeMap::from([(firecamp_kube::certificate::CERTIFICATE_NAME_ANNOTATION.to_string(), c.to_string())])),
            ..Default::default()
        };
        let ours = [(labels::MANAGED_BY, "firecamp"), (labels::SERVICE, "pg")];
        assert_eq!(refusal(Some(&issued(&ours, Some("pg-0-certificate"))), Proof::Issued, &ME), None);
        assert_eq!(refusal(Some(&with_owners(vec![owner("u-1", true)])), Proof::Issued, &ME), None);
        // A stranger's Secret of the name, one issued for another Certificate, another service's.
        assert!(refusal(Some(&ObjectMeta { name: Some("pg-0-certificate".into()), ..Default::default() }), Proof::Issued, &ME).unwrap().contains("not issued"));
        assert!(refusal(Some(&issued(&ours, Some("other"))), Proof::Issued, &ME).is_some());
        assert!(refusal(Some(&issued(&ours, None)), Proof::Issued, &ME).is_some());
        assert!(refusal(Some(&issued(&[(labels::MANAGED_BY, "firecamp"), (labels::SERVICE, "zk")], Some("pg-0-certificate"))), Proof::Issued, &ME).is_some());
        assert!(refusal(Some(&with_owners(vec![owner("u-0", true)])), Proof::Issued, &ME).is_some());
    }

    #[test]
    fn volumes_and_storage_classes_are_claimed_by_labels() {
        let pvc = Proof::Labels { cluster_scoped: false };
        let sc = Proof::Labels { cluster_scoped: true };
        let ours = with_labels(&[(labels::MANAGED_BY, "firecamp"), (labels::SERVICE, "pg"), (labels::NAMESPACE, "a")]);
        assert_eq!(refusal(Some(&ours), pvc, &ME), None);
        assert_eq!(refusal(Some(&ours), sc, &ME), None);
        // The same service name in another namespace does not make a StorageClass ours.
        let theirs = with_labels(&[(labels::MANAGED_BY, "firecamp"), (labels::SERVICE, "pg"), (labels::NAMESPACE, "b")]);
        assert!(refusal(Some(&theirs), sc, &ME).unwrap().contains("pg of namespace a"));
        // A volume someone else made, or another service's.
        assert!(refusal(Some(&ObjectMeta::default()), pvc, &ME).is_some());
        assert!(refusal(Some(&with_labels(&[(labels::MANAGED_BY, "firecamp"), (labels::SERVICE, "zk")])), pvc, &ME).is_some());
    }
}
