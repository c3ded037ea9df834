//! What the manage service last applied, so that a reconcile pass writes only what changed: an
//! object is applied again when what FireCamp builds for it differs from the last apply, or
//! when the object changed on the server since (another writer, a deletion, a restart of the
//! manage service, which starts with nothing remembered).
//!
//! "Changed on the server" is read from the metadata every pass reads anyway (the ownership
//! check): an object with a `generation` (StatefulSets, PDBs) changed when its generation or its
//! labels, annotations or owner references did — its status churns as pods come and go and is
//! none of FireCamp's business; a PVC when its labels or owner references did (the volume
//! binder writes its spec's volume name, annotations and status, none of them FireCamp's); any
//! other object when its `resourceVersion` did.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Per object (`kind/namespace/name`): the hash of the object applied and its version on the
/// server right after.
type Objects = HashMap<String, (u64, String)>;

/// [`Objects`] per service uid.
#[derive(Default)]
pub struct Applied(Mutex<HashMap<String, Objects>>);

/// Where an object of `kind` stands on the server, for [`Applied`]: see the module's comment.
pub fn version(kind: &str, meta: &ObjectMeta) -> String {
    let mut h = DefaultHasher::new();
    meta.labels.hash(&mut h);
    for r in meta.owner_references.iter().flatten() {
        (&r.uid, &r.controller, &r.kind, &r.name).hash(&mut h);
    }
    if kind == "PersistentVolumeClaim" {
        return format!("l{:x}", h.finish());
    }
    match meta.generation.filter(|g| *g > 0) {
        Some(g) => {
            meta.annotations.hash(&mut h);
            format!("g{g}/{:x}", h.finish())
        }
        None => format!("r{}", meta.resource_version.as_deref().unwrap_or_default()),
    }
}

/// The hash of an object as it is sent.
pub fn hash(value: &serde_json::Value) -> u64 {
    let mut h = DefaultHasher::new();
    value.to_string().hash(&mut h);
    h.finish()
}

impl Applied {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Objects>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether applying `hash` to the object `key` of service `uid`, which stands at `live` on
    /// the server, would change nothing.
    pub fn unchanged(&self, uid: &str, key: &str, hash: u64, live: Option<&str>) -> bool {
        let Some(live) = live else { return false };
        self.lock().get(uid).and_then(|objects| objects.get(key)).is_some_and(|(h, v)| *h == hash && v == live)
    }

    pub fn record(&self, uid: &str, key: &str, hash: u64, version: String) {
        self.lock().entry(uid.to_string()).or_default().insert(key.to_string(), (hash, version));
    }

    /// A deleted service's entries.
    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }
}

/// The key of an object in [`Applied`].
pub fn key(kind: &str, namespace: Option<&str>, name: &str) -> String {
    format!("{kind}/{}/{name}", namespace.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(generation: Option<i64>, rv: &str, label: &str) -> ObjectMeta {
        ObjectMeta { generation, resource_version: Some(rv.into()), labels: Some([("app".to_string(), label.to_string())].into()), ..Default::default() }
    }

    #[test]
    fn an_object_is_applied_again_when_built_differently_or_changed_on_the_server() {
        let a = Applied::default();
        let live = version("ConfigMap", &meta(None, "7", "x"));
        assert!(!a.unchanged("u", "ConfigMap/ns/c", 1, Some(&live)), "nothing remembered");
        a.record("u", "ConfigMap/ns/c", 1, live.clone());
        assert!(a.unchanged("u", "ConfigMap/ns/c", 1, Some(&live)));
        assert!(!a.unchanged("u", "ConfigMap/ns/c", 2, Some(&live)), "built differently");
        assert!(!a.unchanged("u", "ConfigMap/ns/c", 1, Some(&version("ConfigMap", &meta(None, "8", "x")))), "written by someone");
        assert!(!a.unchanged("u", "ConfigMap/ns/c", 1, None), "deleted");
        a.forget("u");
        assert!(!a.unchanged("u", "ConfigMap/ns/c", 1, Some(&live)), "the service was deleted");
    }

    #[test]
    fn with_a_generation_the_status_does_not_count_but_metadata_does_and_a_pvc_counts_its_labels() {
        let sts = |g, rv, label| version("StatefulSet", &meta(Some(g), rv, label));
        let applied = sts(3, "100", "x");
        assert_eq!(sts(3, "180", "x"), applied, "a status update");
        assert_ne!(sts(4, "181", "x"), applied, "a spec edited");
        assert_ne!(sts(3, "182", "y"), applied, "a label edited");
        // A PVC bound by the volume binder (its resourceVersion moved) is as FireCamp left it.
        let pvc = |rv, label| version("PersistentVolumeClaim", &meta(None, rv, label));
        assert_eq!(pvc("5", "x"), pvc("9", "x"));
        assert_ne!(pvc("5", "x"), pvc("9", "y"));
    }
}
