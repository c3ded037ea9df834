//! `firecamp manage`: leader election, then the controller.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Service};
use kube::core::PartialObjectMeta;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::utils::Predicate;
use kube::runtime::{Controller, WatchStreamExt, predicates, watcher};
use kube::{Api, Client, ResourceExt};

use crate::config::{CONTROLLER_NAME, ManageConfig};
use crate::crd::FireCampService;
use crate::leader::Elector;
use crate::reconcile::{Context, error_policy, reconcile};

fn api<K>(client: &Client, ns: &Option<String>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Reconciles that run at once (of different services). Without a bound, a thousand services
/// created together reconcile together, and the memory of that peak stays with the process.
const RECONCILES_AT_ONCE: u16 = 16;

/// kubectl's copy of the last spec it applied: as large as the spec, never read by FireCamp.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What the cache keeps of a FireCampService: all of it but what only the API server and kubectl
/// read (the managed fields were about half of each object).
fn prune_service(s: &mut FireCampService) {
    s.managed_fields_mut().clear();
    s.annotations_mut().remove(LAST_APPLIED);
}

/// What the cache keeps of a node: its name, labels, provider ID and conditions are what FireCamp
/// reads; its images list (every image the node holds) and managed fields are the bulk.
fn prune_node(n: &mut Node) {
    n.managed_fields_mut().clear();
    n.annotations_mut().remove(LAST_APPLIED);
    if let Some(status) = n.status.as_mut() {
        status.images = None;
    }
}

/// A reconcile, its duration counted for `/metrics`.
async fn timed_reconcile(svc: Arc<FireCampService>, ctx: Arc<Context>) -> Result<kube::runtime::controller::Action, crate::error::Error> {
    let started = std::time::Instant::now();
    let r = reconcile(svc, ctx).await;
    crate::rest::metrics::METRICS.reconcile_took(started.elapsed().as_secs_f64());
    r
}

/// Runs the controller until the process is stopped or leadership is lost.
pub async fn run(client: Client, config: ManageConfig, lease_namespace: &str) -> anyhow::Result<()> {
    let elector = Elector::new(client.clone(), lease_namespace, &config.identity);
    tracing::info!(identity = %config.identity, "waiting for leadership");
    elector.acquire().await;
    tracing::info!("leading; starting the controller");

    let ns = config.watch_namespace.clone();
    let managed = watcher::Config::default().labels("app.kubernetes.io/managed-by=firecamp");
    let (nodes, nodes_writer) = reflector::store::<Node>();
    let node_watch = watcher(Api::<Node>::all(client.clone()), watcher::Config::default().labels(&format!("firecamp-worker={}", config.cluster.name)))
        .default_backoff()
        .modify(prune_node)
        .reflect(nodes_writer)
        .for_each(|_| futures::future::ready(()));
    tokio::spawn(node_watch);

    // Our own status writes change neither the generation, the finalizers nor the deletion
    // timestamp, so they do not trigger a reconcile; a spec change, the finalizer we add and a
    // deletion do.
    let (reader, writer) = reflector::store::<FireCampService>();
    let deleting = |s: &FireCampService| s.metadata.deletion_timestamp.as_ref().map(|_| 1u64);
    // A requested or cancelled operation is an annotation (a restart changes no spec).
    let operation = |s: &FireCampService| {
        let a = s.annotations();
        let (op, cancel) = (a.get(crate::operations::OPERATION_ANNOTATION), a.get(crate::operations::CANCEL_ANNOTATION));
        (op.is_some() || cancel.is_some()).then(|| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (op, cancel).hash(&mut h);
            h.finish()
        })
    };
    let changes = predicates::generation.combine(predicates::finalizers).combine(deleting).combine(operation);
    let services = watcher(api::<FireCampService>(&client, &ns), watcher::Config::default())
        .default_backoff()
        .modify(prune_service)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(changes, Default::default());
    crate::rest::metrics::METRICS.leading(reader.clone());
    let recorder = Recorder::new(client.clone(), Reporter { controller: CONTROLLER_NAME.into(), instance: Some(config.identity.clone()) });
    let ctx = Arc::new(Context {
        client: client.clone(),
        config,
        recorder,
        nodes,
        services: reader.clone(),
        claim_sizes: Default::default(),
        applied: Default::default(),
    });
    let mut controller = Controller::for_stream(services, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(RECONCILES_AT_ONCE))
        .owns(api::<StatefulSet>(&client, &ns), managed.clone())
        .owns(api::<Service>(&client, &ns), managed.clone())
        .owns(api::<ConfigMap>(&client, &ns), managed.clone())
        .owns(api::<Job>(&client, &ns), managed.clone());
    // A Certificate issued or renewed brings the pass that copies it into `<service>-tls`.
    if ctx.config.cluster.cert_manager {
        controller = controller.owns(api::<firecamp_kube::certificate::Certificate>(&client, &ns), managed.clone());
    }
    let controller = controller
        // Pods only trigger passes (a pass reads them itself): their metadata is enough, and
        // whole pods would be decoded at every status change of every member.
        .watches_stream(watcher(api::<PartialObjectMeta<Pod>>(&client, &ns), managed).touched_objects(), |pod| {
            let service = pod.labels().get(firecamp_kube::labels::SERVICE).cloned();
            service.map(|s| ObjectRef::new(s.as_str()).within(&pod.namespace().unwrap_or_default()))
        })
        .shutdown_on_signal()
        .run(timed_reconcile, error_policy, ctx)
        .for_each(|r| {
            crate::rest::metrics::METRICS.reconciled(r.is_ok());
            if let Err(e) = r {
                tracing::debug!(error = %e, "reconcile");
            }
            futures::future::ready(())
        });
    tokio::select! {
        _ = controller => Ok(()),
        _ = elector.hold() => anyhow::bail!("lost leadership; exiting so that only one replica acts"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pruned_node_keeps_what_firecamp_reads() {
        let mut node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "z1"},
                "annotations": {LAST_APPLIED: "{}", "other": "x"},
                "managedFields": [{"manager": "kubelet", "operation": "Update"}]},
            "spec": {"providerID": "aws:///us-east-1a/i-0123456789abcdef0"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "images": [{"names": ["a"], "sizeBytes": 1}]}
        }))
        .unwrap();
        prune_node(&mut node);
        assert!(node.managed_fields().is_empty());
        assert_eq!(node.annotations().keys().collect::<Vec<_>>(), ["other"]);
        assert_eq!(node.labels().get("topology.kubernetes.io/zone").map(String::as_str), Some("z1"));
        assert!(crate::reconcile::cloud::instance_of(&node).is_some());
        assert_eq!(crate::reconcile::status::node_unready(&node), None);
        assert_eq!(node.status.as_ref().and_then(|s| s.images.as_ref()), None);
    }

    #[test]
    fn a_pruned_service_keeps_its_spec_status_and_operation_annotations() {
        let mut svc: FireCampService = serde_json::from_value(serde_json::json!({
            "apiVersion": "firecamp.dev/v1", "kind": "FireCampService",
            "metadata": {"name": "pg", "namespace": "a",
                "annotations": {LAST_APPLIED: "{}", crate::operations::OPERATION_ANNOTATION: "{}"},
                "managedFields": [{"manager": "firecamp", "operation": "Apply"}]},
            "spec": firecamp_catalog::examples::spec(firecamp_core::EngineKind::Postgresql, 3),
        }))
        .unwrap();
        let spec = svc.spec.clone();
        prune_service(&mut svc);
        assert!(svc.managed_fields().is_empty());
        assert_eq!(svc.annotations().keys().collect::<Vec<_>>(), [crate::operations::OPERATION_ANNOTATION]);
        assert_eq!(serde_json::to_value(&svc.spec).unwrap(), serde_json::to_value(&spec).unwrap());
    }
}
