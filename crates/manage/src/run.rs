//! `firecamp manage`: leader election, then the controller.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Service};
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
    let controller = Controller::for_stream(services, reader)
        .owns(api::<StatefulSet>(&client, &ns), managed.clone())
        .owns(api::<Service>(&client, &ns), managed.clone())
        .owns(api::<ConfigMap>(&client, &ns), managed.clone())
        .owns(api::<Job>(&client, &ns), managed.clone())
        .watches(api::<Pod>(&client, &ns), managed, |pod| {
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
