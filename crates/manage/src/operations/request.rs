//! Asking for an operation on Kubernetes (the REST API and the CLI's `--kube` share this): the
//! request is checked whole, then the service's new spec and the operation (annotation
//! `firecamp.dev/operation`) are written in one update with optimistic concurrency, so there is
//! never a spec change without its operation or the reverse. The controller records the
//! operation in the service's status, plans its steps from the members' roles, and drives it.

use std::collections::BTreeMap;

use firecamp_catalog::layout::KubernetesLayout;
use firecamp_catalog::operation::{Change, change};
use firecamp_catalog::plan;
use firecamp_core::operation::{DEFAULT_STEP_TIMEOUT_SECONDS, Operation, OperationKind, OperationPhase, OperationRequest};
use firecamp_core::{ClusterConfig, ValidationErrors};
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, ResourceExt};

use crate::crd::FireCampService;

/// The operation asked for and not yet taken up by the controller.
pub const OPERATION_ANNOTATION: &str = "firecamp.dev/operation";
/// The id of an operation someone asked to cancel.
pub const CANCEL_ANNOTATION: &str = "firecamp.dev/cancel-operation";
/// Finished operations kept in the status (the running one is always kept).
pub const KEEP_FINISHED: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("service {0:?} does not exist")]
    NotFound(String),
    /// Another operation is not finished (one at a time per service; requests are refused, not queued).
    #[error("{0}")]
    Busy(String),
    #[error("the operation is invalid: {0}")]
    Invalid(#[from] ValidationErrors),
    #[error("{0}")]
    Kube(#[from] kube::Error),
}

/// The operation the annotation asks for, when the status does not have it yet.
pub fn pending(svc: &FireCampService) -> Option<Operation> {
    let op: Operation = serde_json::from_str(svc.annotations().get(OPERATION_ANNOTATION)?).ok()?;
    let recorded = svc.status.as_ref().is_some_and(|s| s.operations.iter().any(|o| o.id == op.id));
    (!recorded).then_some(op)
}

/// Every operation of the service, newest first.
pub fn list(svc: &FireCampService) -> Vec<Operation> {
    let mut all: Vec<Operation> = svc.status.as_ref().map(|s| s.operations.clone()).unwrap_or_default();
    all.extend(pending(svc));
    let cancel = svc.annotations().get(CANCEL_ANNOTATION);
    for o in all.iter_mut().filter(|o| Some(&o.id) == cancel && !o.phase.is_terminal()) {
        o.cancel_requested = true;
    }
    all.sort_by(|a, b| b.id.cmp(&a.id));
    all
}

/// The unfinished operation, if any.
pub fn unfinished(svc: &FireCampService) -> Option<Operation> {
    list(svc).into_iter().find(|o| !o.phase.is_terminal())
}

pub fn busy_message(name: &str, op: &Operation) -> String {
    let at = match op.current_step() {
        Some(i) => format!(" at step {}/{} ({})", i + 1, op.steps.len(), op.steps[i].describe()),
        None => String::new(),
    };
    format!(
        "operation {} ({}) of service {name:?} is {}{at}; one operation runs at a time: wait for it (firecamp service operations {name})",
        op.id,
        op.kind,
        op.phase.as_str()
    )
}

/// Ids sort by creation: `op-<unix millis>`.
fn new_id() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format!("op-{ms}")
}

/// The record of a change asked for, before the controller plans its steps.
pub(crate) fn new_operation(c: &Change, step_timeout_seconds: Option<u32>) -> Operation {
    Operation {
        id: new_id(),
        kind: c.kind,
        policy: c.policy,
        target: c.target.clone(),
        ca: c.ca,
        phase: OperationPhase::Pending,
        steps: Vec::new(),
        step_timeout_seconds: step_timeout_seconds.unwrap_or(DEFAULT_STEP_TIMEOUT_SECONDS),
        message: Some("waiting for the controller".into()),
        created: k8s_openapi::jiff::Timestamp::now().to_string(),
        finished: None,
        cancel_requested: false,
    }
}

/// Checks the request against the service and the catalog, then writes the new spec and the
/// operation in one update (409 from Kubernetes if the service changed meanwhile).
pub async fn request(
    api: &Api<FireCampService>,
    cluster: &ClusterConfig,
    name: &str,
    req: &OperationRequest,
    field_manager: &str,
) -> Result<Operation, RequestError> {
    // The controller writes the status meanwhile (a new resourceVersion): read again and retry.
    for _ in 0..4 {
        match request_once(api, cluster, name, req, field_manager).await {
            Err(RequestError::Kube(kube::Error::Api(s))) if s.code == 409 => continue,
            other => return other,
        }
    }
    request_once(api, cluster, name, req, field_manager).await
}

async fn request_once(
    api: &Api<FireCampService>,
    cluster: &ClusterConfig,
    name: &str,
    req: &OperationRequest,
    field_manager: &str,
) -> Result<Operation, RequestError> {
    let mut svc = api.get_opt(name).await?.ok_or_else(|| RequestError::NotFound(name.to_string()))?;
    if let Some(op) = unfinished(&svc) {
        return Err(RequestError::Busy(busy_message(name, &op)));
    }
    // A scale starts from the members there are (a failed scale stopped short of its spec).
    let current = super::scale::applied_spec(&svc);
    if req.kind == Some(OperationKind::Backup) && !KubernetesLayout::backs_up(cluster, &current) {
        let mut errs = ValidationErrors::default();
        let why = if cluster.archive.is_none() {
            "this cluster has no backup bucket: start the manage service with --backup-target (docs/backup.md)".to_string()
        } else {
            format!("on Kubernetes only services with spec.backup are backed up, not this {} service (docs/backup.md)", current.engine)
        };
        errs.push("kind", why);
        return Err(errs.into());
    }
    let c = change(&current, req)?;
    let mut cluster = cluster.clone();
    cluster.namespace = svc.namespace().unwrap_or_default();
    plan(name, &c.spec, &cluster, &KubernetesLayout::default(), &BTreeMap::new())?;
    if let (OperationKind::Certificates, Some(issuer)) = (c.kind, &c.spec.tls.issuer) {
        let mut errs = ValidationErrors::default();
        errs.push("kind", crate::reconcile::issued::rotation_refused(issuer));
        return Err(errs.into());
    }
    if c.kind == OperationKind::Certificates {
        let secrets: Api<Secret> = Api::namespaced(api.clone().into_client(), &cluster.namespace);
        if let Err(why) = crate::reconcile::tls::check(&secrets, name, c.ca).await? {
            let mut errs = ValidationErrors::default();
            errs.push("ca", why);
            return Err(errs.into());
        }
    }
    let op = new_operation(&c, req.step_timeout_seconds);
    svc.spec.0 = c.spec;
    svc.annotations_mut().insert(OPERATION_ANNOTATION.into(), serde_json::to_string(&op).unwrap_or_default());
    svc.status = None;
    api.replace(name, &PostParams { field_manager: Some(field_manager.into()), ..Default::default() }, &svc).await?;
    Ok(op)
}

/// Asks to cancel the operation `id` (the unfinished one when `None`): no further step starts.
pub async fn cancel(api: &Api<FireCampService>, name: &str, id: Option<&str>, field_manager: &str) -> Result<Operation, RequestError> {
    for _ in 0..4 {
        match cancel_once(api, name, id, field_manager).await {
            Err(RequestError::Kube(kube::Error::Api(s))) if s.code == 409 => continue,
            other => return other,
        }
    }
    cancel_once(api, name, id, field_manager).await
}

async fn cancel_once(api: &Api<FireCampService>, name: &str, id: Option<&str>, field_manager: &str) -> Result<Operation, RequestError> {
    let mut svc = api.get_opt(name).await?.ok_or_else(|| RequestError::NotFound(name.to_string()))?;
    let all = list(&svc);
    let mut errs = ValidationErrors::default();
    let op = match id {
        Some(id) => all.into_iter().find(|o| o.id == id),
        None => unfinished(&svc),
    };
    let Some(mut op) = op else {
        errs.push(
            "id",
            match id {
                Some(id) => format!("service {name:?} has no operation {id:?}"),
                None => format!("service {name:?} has no operation under way"),
            },
        );
        return Err(errs.into());
    };
    if op.phase.is_terminal() {
        errs.push("id", format!("operation {} already ended ({})", op.id, op.phase.as_str()));
        return Err(errs.into());
    }
    svc.annotations_mut().insert(CANCEL_ANNOTATION.into(), op.id.clone());
    svc.status = None;
    api.replace(name, &PostParams { field_manager: Some(field_manager.into()), ..Default::default() }, &svc).await?;
    op.cancel_requested = true;
    Ok(op)
}
