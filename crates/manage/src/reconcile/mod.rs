//! The controller: dereference → validate → build → apply → update status, one code path for
//! creation and every later change.

pub mod applied;
pub mod apply;
pub mod cloud;
pub mod init;
pub mod issued;
pub mod ownership;
pub mod status;
pub mod tls;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use firecamp_catalog::layout::KubernetesLayout;
use firecamp_catalog::{ServicePlan, plan, plan_mid_scale};
use firecamp_core::MemberName;
use firecamp_kube::{Object, Secrets, build, labels, names};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource, ResourceExt};
use rand::Rng;
use rand::distr::{Alphanumeric, SampleString};

use crate::config::ManageConfig;
use crate::crd::{DELETE_VOLUMES_ANNOTATION, FINALIZER, FireCampService, FireCampServiceStatus};
use crate::error::{Error, Result};
use crate::operations::schedule::Scheduled;

pub struct Context {
    pub client: Client,
    pub config: ManageConfig,
    pub recorder: Recorder,
    /// Nodes of the cluster's workers, for the members' actual zones and instances.
    pub nodes: Store<Node>,
    /// Every FireCampService (for the cluster's static-IP records).
    pub services: Store<FireCampService>,
    pub claim_sizes: apply::ClaimSizes,
    /// What was applied, so that unchanged objects are not written again.
    pub applied: applied::Applied,
}

pub async fn reconcile(svc: Arc<FireCampService>, ctx: Arc<Context>) -> Result<Action> {
    let ns = svc.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let api: Api<FireCampService> = Api::namespaced(ctx.client.clone(), &ns);
    // The cache may not have our own last status write yet (static IPs taken, an operation's
    // step started): decide on the object as it is now.
    let Some(fresh) = api.get_opt(&svc.name_any()).await.map_err(Error::kube("get", "FireCampService", svc.name_any()))? else {
        return Ok(Action::await_change());
    };
    let svc = Arc::new(fresh);
    let result = finalizer(&api, FINALIZER, svc.clone(), |event| async {
        match event {
            Finalizer::Apply(svc) => apply_service(&svc, &ctx).await,
            Finalizer::Cleanup(svc) => cleanup_service(&svc, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    if let Err(e) = &result {
        report_failure(&svc, &ctx, e).await;
    }
    result
}

/// Puts a failed reconcile's reason into `status.message`, where `service get` and `--wait`
/// show it (the phase stays: the controller retries). Written only when it changed.
async fn report_failure(svc: &FireCampService, ctx: &Context, e: &Error) {
    let message = format!("reconcile failed, retrying: {e}");
    if svc.metadata.deletion_timestamp.is_some() || svc.status.as_ref().and_then(|s| s.message.as_deref()) == Some(message.as_str()) {
        return;
    }
    let fields = serde_json::Map::from_iter([("message".to_string(), serde_json::json!(message))]);
    if let Err(w) = record_status(ctx, svc, fields, "report a failed reconcile of").await {
        tracing::warn!(service = %svc.name_any(), error = %w, "recording the failure in status");
    }
}

/// Requeue with jitter, so many failing services do not retry in step.
pub fn error_policy(svc: Arc<FireCampService>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(service = %svc.name_any(), error = %err, "reconcile failed");
    let secs = 5 + rand::rng().random_range(0..5);
    Action::requeue(Duration::from_secs(secs))
}

/// Engines the manage service does not run yet. Cassandra's default superuser
/// (`cassandra`/`cassandra`) is replaced by the local runtime's init step, which has no
/// Kubernetes counterpart yet: a ring left with it would be open to anyone who knows it.
pub(crate) fn not_on_kubernetes(spec: &firecamp_core::ServiceSpec) -> std::result::Result<(), firecamp_core::ValidationErrors> {
    let mut errs = firecamp_core::ValidationErrors::default();
    match spec.engine {
        firecamp_core::EngineKind::Cassandra => errs.push(
            "spec.engine",
            "Cassandra runs on the local runtime only so far: on Kubernetes nothing would replace its default superuser yet (docs/cassandra.md)",
        ),
        // The image the catalog names has none of the launchers start.sh runs: the pods would
        // only crash-loop.
        firecamp_core::EngineKind::Kafka => errs.push(
            "spec.engine",
            "Kafka runs on the local runtime only so far: no FireCamp image for it exists yet, and the upstream one lacks what its start script runs (docs/kafka.md)",
        ),
        _ => {}
    }
    errs.into_result()
}

/// The addresses of the members a service of `replicas` has (a removed member's address stays
/// recorded until it is released).
fn applied_ips(static_ips: &BTreeMap<String, std::net::Ipv4Addr>, replicas: u32) -> BTreeMap<String, std::net::Ipv4Addr> {
    static_ips.iter().filter(|(m, _)| MemberName::from_string(m.as_str()).parts().is_some_and(|(_, i)| i < replicas)).map(|(m, ip)| (m.clone(), *ip)).collect()
}

fn plan_of(svc: &FireCampService, ctx: &Context, static_ips: &BTreeMap<String, std::net::Ipv4Addr>) -> Result<ServicePlan> {
    let cluster = cluster_of(svc, ctx);
    let name = svc.name_any();
    let spec = crate::operations::scale::applied_spec(svc);
    let ips = applied_ips(static_ips, spec.replicas);
    // The spec as asked is checked whole (the engine's size rules too); the plan applied is the
    // one of the size the members have reached.
    plan(&name, &svc.spec.0, &cluster, &KubernetesLayout::default(), &applied_ips(&ips, svc.spec.0.replicas))?;
    not_on_kubernetes(&svc.spec.0)?;
    let primary = svc.status.as_ref().and_then(|s| s.primary.as_deref());
    let primary = primary.filter(|p| MemberName::from_string(*p).parts().is_some_and(|(_, i)| i < spec.replicas));
    Ok(plan_mid_scale(&name, &spec, &cluster, &layout_of(svc, &cluster, &spec)?, &ips, primary)?)
}

/// The members' paths; where the service archives WAL, its key in the cluster's bucket, under
/// its namespace and incarnation (the FireCampService's uid: a service made again under the
/// same name archives elsewhere).
fn layout_of(svc: &FireCampService, cluster: &firecamp_core::ClusterConfig, spec: &firecamp_core::ServiceSpec) -> Result<KubernetesLayout> {
    let from = restore_source(svc)?;
    Ok(KubernetesLayout::restoring(cluster, spec, &svc.name_any(), svc.metadata.uid.as_deref().unwrap_or_default(), from.as_ref()))
}

/// The backup a restored service starts from, until its first start is done (the REST API's
/// restore sets the annotation; the reconcile that finds the service ACTIVE removes it).
pub(crate) fn restore_source(svc: &FireCampService) -> Result<Option<firecamp_catalog::layout::RestoreSource>> {
    let Some(text) = svc.annotations().get(crate::crd::RESTORE_ANNOTATION) else { return Ok(None) };
    let field = format!("metadata.annotations[{}]", crate::crd::RESTORE_ANNOTATION);
    let mut errs = firecamp_core::ValidationErrors::default();
    match serde_json::from_str::<firecamp_catalog::layout::RestoreSource>(text) {
        Ok(r) => match r.problem() {
            None => return Ok(Some(r)),
            Some(p) => errs.push(field, p),
        },
        Err(e) => errs.push(field, format!("not a restore's source: {e}")),
    }
    Err(errs.into())
}

/// The service's plan with `primary` as its primary (a switchover or failover in progress),
/// static IPs as recorded.
pub(crate) fn plan_naming(svc: &FireCampService, ctx: &Context, primary: &str) -> Result<ServicePlan> {
    let cluster = cluster_of(svc, ctx);
    let mut cloud_state = cloud::CloudState::from_status(svc.status.as_ref());
    cloud_state.own_ips(cluster.names_namespace());
    let spec = crate::operations::scale::applied_spec(svc);
    Ok(plan_mid_scale(&svc.name_any(), &spec, &cluster, &layout_of(svc, &cluster, &spec)?, &applied_ips(&cloud_state.ip_map(), spec.replicas), Some(primary))?)
}

/// Applies the members' files (their ConfigMaps) of `plan` now, ahead of the rest of the
/// service: a member's pod reads them when it starts.
pub(crate) async fn apply_member_files(ctx: &Context, svc: &FireCampService, plan: &ServicePlan) -> Result<()> {
    let owner = svc.controller_owner_ref(&()).ok_or(Error::MissingField("metadata.uid"))?;
    let wanted: std::collections::BTreeSet<String> = plan.members.iter().map(|m| names::config_map(&m.member.name)).collect();
    for o in build(plan, &Secrets::Redacted) {
        if matches!(o, Object::ConfigMap(_)) && wanted.contains(o.name()) {
            apply::apply(&ctx.client, &ctx.config.field_manager, &o, Some(&owner)).await?;
        }
    }
    Ok(())
}

/// The manage service's cluster settings in the service's namespace (which its members'
/// names and cloud records carry).
pub(crate) fn cluster_of(svc: &FireCampService, ctx: &Context) -> firecamp_core::ClusterConfig {
    firecamp_core::ClusterConfig { namespace: svc.namespace().unwrap_or_default(), ..ctx.config.cluster.clone() }
}

fn password() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 32)
}

pub(crate) async fn event(ctx: &Context, svc: &FireCampService, type_: EventType, reason: &str, note: String) {
    let ev = Event { type_, reason: reason.into(), note: Some(note), action: "Reconcile".into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&ev, &svc.object_ref(&())).await {
        tracing::debug!(error = %e, "event not recorded");
    }
}

/// How soon a service refused for objects it does not own looks again: the refusal ends when
/// their owner removes or renames them, which raises no event of this service.
const NOT_OWNED_LOOK_AGAIN: Duration = Duration::from_secs(30);

async fn apply_service(svc: &FireCampService, ctx: &Context) -> Result<Action> {
    match reconcile_service(svc, ctx).await {
        Err(Error::Invalid(e)) => {
            refuse(ctx, svc, "InvalidSpec", e.to_string()).await?;
            Ok(Action::await_change())
        }
        Err(e @ Error::NotOwned(_)) => {
            refuse(ctx, svc, e.reason(), e.to_string()).await?;
            Ok(Action::requeue(NOT_OWNED_LOOK_AGAIN))
        }
        other => other,
    }
}

/// A refusal the user must act on: phase FAILED with the reason, and a Warning event when the
/// reason is new. Nothing else of the service is touched.
async fn refuse(ctx: &Context, svc: &FireCampService, reason: &str, message: String) -> Result<()> {
    let previous = svc.status.clone().unwrap_or_default();
    if previous.phase == firecamp_api::Phase::Failed && previous.message.as_deref() == Some(message.as_str()) {
        return Ok(());
    }
    let status =
        FireCampServiceStatus { phase: firecamp_api::Phase::Failed, message: Some(message.clone()), observed_generation: svc.metadata.generation, ..previous };
    write_status(ctx, svc, &status).await?;
    event(ctx, svc, EventType::Warning, reason, message).await;
    Ok(())
}

/// A `spec.replicas` edited with kubectl becomes the scale operation the CLI would have asked
/// for (`operations/scale.rs::edited_scale`): the StatefulSet never follows the spec alone, as
/// a new PostgreSQL replica needs its slot and a removed primary a switchover first. The
/// operation is written as the request annotation, with the object's resourceVersion, so a
/// concurrent request or edit makes this write fail and the next pass decides again.
async fn take_up_edited_size(ctx: &Context, svc: &FireCampService) -> Result<bool> {
    let Some(asked) = crate::operations::scale::edited_scale(svc) else {
        return Ok(false);
    };
    let op = asked?;
    let api: Api<FireCampService> = Api::namespaced(ctx.client.clone(), &svc.namespace().unwrap_or_default());
    let value = serde_json::to_string(&op).unwrap_or_default();
    let patch = serde_json::json!({"metadata": {
        "resourceVersion": svc.metadata.resource_version,
        "annotations": {crate::operations::OPERATION_ANNOTATION: value},
    }});
    api.patch(&svc.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(Error::kube(
        "ask a scale of",
        "FireCampService",
        svc.name_any(),
    ))?;
    let note = format!("spec.replicas edited: operation {} ({}) runs the engine's steps", op.id, op.target.clone().unwrap_or_default());
    event(ctx, svc, EventType::Normal, "ScaleRequested", note).await;
    Ok(true)
}

async fn reconcile_service(svc: &FireCampService, ctx: &Context) -> Result<Action> {
    let name = svc.name_any();
    let ns = svc.namespace().unwrap_or_default();
    let mut cloud_state = cloud::CloudState::from_status(svc.status.as_ref());
    cloud_state.own_ips(cluster_of(svc, ctx).names_namespace());
    // Validate: an invalid spec is reported in status and waits for the user's next change.
    let plan = plan_of(svc, ctx, &cloud_state.ip_map())?;
    if take_up_edited_size(ctx, svc).await? {
        // The annotation's change brings the next pass, which records and drives the scale.
        return Ok(Action::await_change());
    }
    // Nothing is taken (static IPs) or applied while any object of the names the service needs
    // belongs to someone else.
    let uid = svc.metadata.uid.clone().ok_or(Error::MissingField("metadata.uid"))?;
    let me = ownership::Claimant { uid: &uid, service: &name, namespace: &ns };
    let wanted = build(&plan, &Secrets::Redacted);
    let job = init::job_name(&name);
    let mut targets: Vec<ownership::Target> = wanted.iter().map(ownership::Target::from).collect();
    if !plan.init_tasks.is_empty() {
        targets.push(ownership::Target { api_version: "batch/v1", kind: "Job", name: &job, namespace: Some(&ns), proof: ownership::Proof::OwnerReference });
    }
    // The Secrets cert-manager issues into, named by the Certificates.
    let issued_secrets: Vec<String> =
        wanted.iter().filter_map(|o| if let Object::Certificate(c) = o { Some(c.spec.secret_name.clone()) } else { None }).collect();
    targets.extend(issued_secrets.iter().map(|n| ownership::Target {
        api_version: "v1",
        kind: "Secret",
        name: n,
        namespace: Some(&ns),
        proof: ownership::Proof::Issued,
    }));
    let live = ownership::check(&ctx.client, &targets, &me).await?;
    // Static IPs before anything is built: the members' configs bind them.
    let members: Vec<firecamp_core::Member> = plan.members.iter().map(|m| m.member.clone()).collect();
    let plan = if cloud::allocate_ips(ctx, svc, &members, &mut cloud_state).await? { plan_of(svc, ctx, &cloud_state.ip_map())? } else { plan };
    let owner = svc.controller_owner_ref(&()).ok_or(Error::MissingField("metadata.uid"))?;

    // Build and apply. The Secrets first and in order (the CA's before the members'; the
    // passwords' created once); then the objects that do not depend on each other side by side;
    // the StatefulSet last, as its pods use all of them.
    let objects = build(&plan, &Secrets::Redacted);
    let field_manager = ctx.config.field_manager.as_str();
    let memo = apply::Memo { uid: &uid, applied: &ctx.applied, live: &live };
    // cert-manager's Certificates before the members' Secret is assembled from what they issued.
    for o in objects.iter().filter(|o| matches!(o, Object::Certificate(_))) {
        apply::apply_unless_unchanged(&ctx.client, field_manager, o, Some(&owner), Some(&memo)).await?;
    }
    let mut tls_waiting = None;
    let mut tls_done = false;
    for o in objects.iter().filter(|o| matches!(o, Object::Secret(_))) {
        match o {
            // Both TLS Secrets at the first (the CA's), before the StatefulSet mounts them.
            o if tls::is_tls_secret(&plan, o) && !tls_done => {
                tls_done = true;
                let (changed, by) = if plan.spec.tls.issuer.is_some() {
                    let a = issued::assemble(&ctx.client, field_manager, &plan, &owner).await?;
                    tls_waiting = a.waiting;
                    (a.changed, "cert-manager")
                } else {
                    (tls::ensure(&ctx.client, field_manager, &plan, &owner).await?, "the service's CA")
                };
                if !changed.is_empty() {
                    let what = format!("TLS certificates issued by {by} in {}: {}", names::tls_secret(&name), changed.join(", "));
                    event(ctx, svc, EventType::Normal, "CertificatesIssued", what).await;
                }
            }
            o if tls::is_tls_secret(&plan, o) => {}
            Object::Secret(redacted) => {
                // Passwords are generated only when the Secret does not exist yet.
                let generate = || {
                    let values = plan.secret_keys.iter().map(|k| (k.to_string(), password())).collect();
                    firecamp_kube::config::secret(&plan, &Secrets::Values(values)).unwrap_or_else(|| redacted.clone())
                };
                if apply::ensure_secret(&ctx.client, redacted, generate, &owner).await? {
                    event(ctx, svc, EventType::Normal, "SecretCreated", format!("generated the passwords in {}", names::secret(&name))).await;
                }
            }
            _ => {}
        }
    }
    let (sets, rest): (Vec<&Object>, Vec<&Object>) =
        objects.iter().filter(|o| !matches!(o, Object::Secret(_) | Object::Certificate(_))).partition(|o| matches!(o, Object::StatefulSet(_)));
    // The members' RBAC in order: the API server admits a RoleBinding from the manage service
    // (which may not escalate) only once it can read the Role it grants. Side by side, the
    // binding's refusal ended the pass and cancelled the Role's apply, pass after pass.
    let (rbac, rest): (Vec<&Object>, Vec<&Object>) =
        rest.into_iter().partition(|o| matches!(o, Object::ServiceAccount(_) | Object::Role(_) | Object::RoleBinding(_)));
    for o in rbac {
        apply::apply_unless_unchanged(&ctx.client, field_manager, o, Some(&owner), Some(&memo)).await?;
    }
    let applies: Vec<_> = rest.into_iter().map(|o| apply::apply_unless_unchanged(&ctx.client, field_manager, o, Some(&owner), Some(&memo))).collect();
    // Every apply runs to its end (none is cancelled by another's error); the first error is
    // the pass's.
    let results: Vec<Result<()>> = futures::stream::iter(applies).buffer_unordered(apply::IN_FLIGHT).collect().await;
    results.into_iter().collect::<Result<()>>()?;
    // A member's pod does not start before its certificate is in the members' Secret.
    for o in sets.into_iter().filter(|_| tls_waiting.is_none()) {
        apply::apply_statefulset(&ctx.client, field_manager, o, Some(&owner), &uid, &ctx.claim_sizes, Some(&memo)).await?;
    }
    let deleted = apply::delete_orphans(&ctx.client, &ns, &name, &uid, &objects).await?;
    if !deleted.is_empty() {
        event(ctx, svc, EventType::Normal, "Pruned", format!("deleted {}", deleted.join(", "))).await;
    }

    // Observe members and init tasks, then write status.
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pods = service_pods(&pods_api, &name).await?;
    label_new_pods(&pods_api, &plan, &pods, svc.status.as_ref()).await?;
    let node_zones: BTreeMap<String, String> =
        ctx.nodes.state().iter().filter_map(|n| Some((n.name_any(), n.labels().get(labels::ZONE_TOPOLOGY)?.clone()))).collect();
    let unready_nodes: BTreeMap<String, String> = ctx.nodes.state().iter().filter_map(|n| Some((n.name_any(), status::node_unready(n)?))).collect();
    let previous = svc.status.clone();
    let pod_nodes: BTreeMap<String, String> =
        pods.values().filter_map(|p| Some((p.labels().get(labels::MEMBER)?.clone(), p.spec.as_ref()?.node_name.clone()?))).collect();
    cloud::place_ips(ctx, svc, &plan, &pod_nodes, &mut cloud_state).await?;
    cloud::ensure_log_streams(ctx, &plan, &mut cloud_state).await?;
    let tasks = run_init_tasks(ctx, svc, &plan, &pods).await?;
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let mut status = status::status(
        &plan,
        &status::Observed {
            pods: &pods,
            node_zones: &node_zones,
            unready_nodes: &unready_nodes,
            init_tasks: &tasks,
            previous: previous.as_ref(),
            generation: svc.metadata.generation,
            now: &now,
        },
    );
    cloud::sync_dns(ctx, svc, &plan, &status.members, &mut cloud_state).await?;
    if ctx.config.cloud.dns.is_none() {
        // Without Route53 the endpoints are the Kubernetes Services only.
        status.endpoints.iter_mut().for_each(|e| e.dns_name = None);
    }
    cloud_state.write_into(&mut status);
    let driven = crate::operations::drive::drive(ctx, svc, &plan, &pods).await?;
    let look_again = driven.look_again;
    status.operations = driven.operations;
    status.primary = driven.primary;
    status.primary_lost_since = driven.primary_lost_since;
    if let Some(w) = tls_waiting {
        status.message = Some(match status.message.take() {
            Some(m) => format!("{m}; {w}"),
            None => w,
        });
    }
    if let Some(held) = driven.held {
        status.message = Some(match status.message.take() {
            Some(m) => format!("{m}; {held}"),
            None => held,
        });
    }
    if let Some(op) = status.operations.iter().find(|o| !o.phase.is_terminal()) {
        status.message = Some(format!("operation {} ({}): {}", op.id, op.kind, op.message.clone().unwrap_or_default()));
    }
    // The backup schedule: a moment asked for is recorded with the status, before the operation
    // is asked for, so it is asked for at most once.
    status.last_scheduled_backup = previous.as_ref().and_then(|p| p.last_scheduled_backup.clone());
    let scheduled = crate::operations::schedule::scheduled_backup(svc, &status);
    if matches!(scheduled, Scheduled::Due { .. }) {
        status.last_scheduled_backup = Some(now.clone());
    }
    if previous.as_ref().map(|p| p.phase) != Some(status.phase) {
        let note = format!(
            "{} → {}{}",
            previous.as_ref().map(|p| p.phase.as_str()).unwrap_or("new"),
            status.phase.as_str(),
            status.message.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
        );
        let t =
            if status.phase == firecamp_api::Phase::Degraded || status.phase == firecamp_api::Phase::Failed { EventType::Warning } else { EventType::Normal };
        event(ctx, svc, t, status.phase.as_str(), note).await;
    }
    if previous.as_ref() != Some(&status) {
        write_status(ctx, svc, &status).await?;
    }
    if status.phase == firecamp_api::Phase::Active && svc.annotations().contains_key(crate::crd::RESTORE_ANNOTATION) {
        // Restored and started: from now on a member starts as in any service (a lost first
        // member clones the primary, never the backup again).
        let patch = serde_json::json!({"metadata": {"annotations": {crate::crd::RESTORE_ANNOTATION: null}}});
        let api: Api<FireCampService> = Api::namespaced(ctx.client.clone(), &ns);
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(Error::kube("patch", "FireCampService", &name))?;
        event(ctx, svc, EventType::Normal, "Restored", "started from its backup; the restore is done".to_string()).await;
    }
    let schedule_again = match scheduled {
        Scheduled::Nothing => None,
        Scheduled::Later(d) => Some(d),
        Scheduled::Waiting => Some(crate::operations::schedule::WAIT_LOOK_AGAIN),
        Scheduled::Due { next } => {
            crate::operations::schedule::ask_scheduled_backup(ctx, svc).await;
            next
        }
    };
    // A degraded service is looked at again soon: what heals it (a node coming back) or
    // explains it (a node's Ready condition, in the node reflector) may change no pod of its own.
    let later = if status.phase == firecamp_api::Phase::Degraded { DEGRADED_LOOK_AGAIN } else { Duration::from_secs(300) };
    let soonest = [look_again, schedule_again].into_iter().flatten().fold(later, Duration::min);
    Ok(Action::requeue(soonest))
}

const DEGRADED_LOOK_AGAIN: Duration = Duration::from_secs(15);

/// New pods get their member name and role as labels (the client Service selects the primary
/// by role): a single-primary service's from its plan, which names the primary the last
/// switchover or failover made; a shard's the member's last known role, else its bootstrap role.
/// The engine's own view replaces it.
async fn label_new_pods(api: &Api<Pod>, plan: &ServicePlan, pods: &BTreeMap<String, Pod>, previous: Option<&FireCampServiceStatus>) -> Result<()> {
    let single_primary = plan.members.iter().all(|m| m.shard.is_none());
    for m in &plan.members {
        let pod_name = names::pod_of(&m.member.name);
        let Some(pod) = pods.get(&pod_name) else {
            continue;
        };
        let l = pod.labels();
        if l.contains_key(labels::MEMBER) && l.contains_key(labels::ROLE) {
            continue;
        }
        // A single-primary service's plan names its current primary (switchovers and failovers
        // record it first): a restarted former primary is a replica even if it was last seen as
        // the primary. Shards' roles move by themselves: the last role seen is the best guess.
        let role = match l.get(labels::ROLE) {
            Some(r) => r.clone(),
            None if single_primary => m.role.as_str().to_string(),
            None => last_role(previous, m.member.name.as_str()).unwrap_or_else(|| m.role.as_str().to_string()),
        };
        let patch = serde_json::json!({"metadata": {"labels": {labels::MEMBER: m.member.name.as_str(), labels::ROLE: role}}});
        api.patch(&pod_name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(Error::kube("label", "Pod", &pod_name))?;
    }
    Ok(())
}

fn last_role(previous: Option<&FireCampServiceStatus>, member: &str) -> Option<String> {
    let role = previous?.members.iter().find(|m| m.name == member)?.role;
    (role != firecamp_api::Role::Unknown).then(|| role.as_str().to_string())
}

/// Starts each init task's Job once every member is ready, and reads back its progress.
async fn run_init_tasks(ctx: &Context, svc: &FireCampService, plan: &ServicePlan, pods: &BTreeMap<String, Pod>) -> Result<Vec<crate::crd::InitTaskStatus>> {
    let ns = svc.namespace().unwrap_or_default();
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let previous = svc.status.as_ref().map(|s| s.init_tasks.clone()).unwrap_or_default();
    let all_ready = plan.members.iter().all(|m| {
        pods.get(&names::pod_of(&m.member.name))
            .and_then(|p| p.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready").map(|c| c.status == "True"))
            .unwrap_or(false)
    });
    let mut out = Vec::new();
    for task in &plan.init_tasks {
        let prev = previous.iter().find(|p| p.name == task.name);
        // A task that succeeded stays so: no need to read its Job again on every reconcile.
        if let Some(p) = prev.filter(|p| p.phase == crate::crd::TaskPhase::Succeeded) {
            out.push(p.clone());
            continue;
        }
        let name = init::job_name(&plan.name);
        let mut job = jobs.get_opt(&name).await.map_err(Error::kube("get", "Job", &name))?;
        if job.is_none() && all_ready {
            let mut j = init::job(plan, task);
            j.metadata.owner_references = svc.controller_owner_ref(&()).map(|o| vec![o]);
            match jobs.create(&Default::default(), &j).await {
                Ok(created) => {
                    event(ctx, svc, EventType::Normal, "InitTaskStarted", format!("started {} as Job {name}", task.name)).await;
                    job = Some(created);
                }
                Err(kube::Error::Api(e)) if e.code == 409 => job = jobs.get_opt(&name).await.map_err(Error::kube("get", "Job", &name))?,
                Err(e) => return Err(Error::kube("create", "Job", &name)(e)),
            }
        }
        out.push(init::task_status(task, job.as_ref(), prev));
    }
    Ok(out)
}

/// The pods of service `name` (its members' label), by name.
pub(crate) async fn service_pods(api: &Api<Pod>, name: &str) -> Result<BTreeMap<String, Pod>> {
    let listed = api.list(&ListParams::default().labels(&format!("{}={name}", labels::SERVICE))).await.map_err(Error::kube("list", "Pod", name))?;
    Ok(listed.into_iter().map(|p| (p.name_any(), p)).collect())
}

/// Writes one field of the status at once, before the controller acts on it (a merge patch of
/// that field; the first write of a new service's status carries its required phase too).
pub async fn record_status_field(ctx: &Context, svc: &FireCampService, field: &str, value: serde_json::Value, what: &'static str) -> Result<()> {
    let mut fields = serde_json::Map::new();
    fields.insert(field.into(), value);
    record_status(ctx, svc, fields, what).await
}

/// [`record_status_field`] for several fields in one write.
pub async fn record_status(ctx: &Context, svc: &FireCampService, mut fields: serde_json::Map<String, serde_json::Value>, what: &'static str) -> Result<()> {
    let api: Api<FireCampService> = Api::namespaced(ctx.client.clone(), &svc.namespace().unwrap_or_default());
    let phase = svc.status.as_ref().map(|s| s.phase).unwrap_or_default();
    fields.insert("phase".into(), serde_json::json!(phase));
    let patch = serde_json::json!({ "status": fields });
    api.patch_status(&svc.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(Error::kube(what, "FireCampService", svc.name_any()))?;
    Ok(())
}

async fn write_status(ctx: &Context, svc: &FireCampService, status: &FireCampServiceStatus) -> Result<()> {
    let api: Api<FireCampService> = Api::namespaced(ctx.client.clone(), &svc.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": "firecamp.dev/v1alpha1",
        "kind": "FireCampService",
        "status": status,
    });
    api.patch_status(&svc.name_any(), &PatchParams::apply(&ctx.config.field_manager).force(), &Patch::Apply(&patch)).await.map_err(Error::kube(
        "update status of",
        "FireCampService",
        svc.name_any(),
    ))?;
    // A failure's message (report_failure, a merge patch) is not this apply's to drop: clear it.
    if status.message.is_none() && svc.status.as_ref().is_some_and(|s| s.message.is_some()) {
        let clear = serde_json::json!({ "status": { "message": null } });
        api.patch_status(&svc.name_any(), &PatchParams::default(), &Patch::Merge(&clear)).await.map_err(Error::kube(
            "clear the message of",
            "FireCampService",
            svc.name_any(),
        ))?;
    }
    Ok(())
}

async fn cleanup_service(svc: &FireCampService, ctx: &Context) -> Result<Action> {
    let ns = svc.namespace().unwrap_or_default();
    let delete_volumes = svc.annotations().get(DELETE_VOLUMES_ANNOTATION).is_some_and(|v| v == "true");
    apply::cleanup(&ctx.client, &ns, &svc.name_any(), delete_volumes).await?;
    cloud::cleanup(ctx, svc, &cluster_of(svc, ctx).member_domain()).await?;
    if let Some(uid) = &svc.metadata.uid {
        ctx.claim_sizes.lock().unwrap_or_else(|p| p.into_inner()).remove(uid);
        ctx.applied.forget(uid);
    }
    let kept = if delete_volumes { "and its volumes" } else { "; its volumes are kept" };
    event(ctx, svc, EventType::Normal, "Deleted", format!("deleted the service's objects {kept}")).await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use firecamp_core::EngineKind;

    #[test]
    fn cassandra_and_kafka_services_are_refused_on_kubernetes_naming_the_engine() {
        let spec = firecamp_catalog::examples::spec(EngineKind::Cassandra, 3);
        let errs = super::not_on_kubernetes(&spec).expect_err("refused");
        assert!(errs.to_string().contains("spec.engine") && errs.to_string().contains("default superuser"), "{errs}");
        let errs = super::not_on_kubernetes(&firecamp_catalog::examples::spec(EngineKind::Kafka, 3)).expect_err("refused");
        assert!(errs.to_string().contains("spec.engine") && errs.to_string().contains("no FireCamp image"), "{errs}");
        for e in EngineKind::ALL.into_iter().filter(|e| ![EngineKind::Cassandra, EngineKind::Kafka].contains(e)) {
            assert!(super::not_on_kubernetes(&firecamp_catalog::examples::spec(e, 3)).is_ok(), "{e}");
        }
    }
}
