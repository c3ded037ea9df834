//! The Job of one operation step (a Redis Cluster's slots move, a PostgreSQL base backup): one
//! name per service, annotated with the step it was made for, so a restarted manage service
//! finds it again; FireCamp's own only (a stranger's Job of that name is refused, never adopted
//! or deleted).

use std::collections::BTreeMap;

use firecamp_kube::labels;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, PropagationPolicy};
use kube::{Api, ResourceExt};

use crate::error::{Error, Result};
use crate::reconcile::init::{JobOutcome, job_outcome};

/// The annotation naming the operation step a Job was made for.
const STEP_ANNOTATION: &str = "firecamp.dev/operation-step";

/// Job `name` when it was made for the step `key`.
pub(super) async fn of_step(api: &Api<Job>, name: &str, key: &str) -> Result<Option<Job>> {
    let job = api.get_opt(name).await.map_err(Error::kube("get", "Job", name))?;
    Ok(job.filter(|j| j.annotations().get(STEP_ANNOTATION).map(String::as_str) == Some(key)))
}

/// What stands before creating the step's Job `name` of `service`: `Some(answer)` when nothing
/// is to be created now — the step's own Job (its failure is the step's), a stranger's Job of
/// that name (refused), an earlier step's Job (deleted; the next pass creates this one);
/// `None`: create it.
pub(super) async fn existing(api: &Api<Job>, name: &str, service: &str, key: &str) -> Result<Option<std::result::Result<(), String>>> {
    let Some(job) = api.get_opt(name).await.map_err(Error::kube("get", "Job", name))? else { return Ok(None) };
    let ours = job.labels().get(labels::MANAGED_BY).is_some_and(|v| v == "firecamp") && job.labels().get(labels::SERVICE).is_some_and(|s| s == service);
    if !ours {
        return Ok(Some(Err(format!("a Job named {name} exists that FireCamp did not make; delete or rename it"))));
    }
    if job.annotations().get(STEP_ANNOTATION).map(String::as_str) == Some(key) {
        return Ok(Some(match job_outcome(&job) {
            JobOutcome::Failed(why) => Err(format!("the Job {name} failed: {why}")),
            _ => Ok(()),
        }));
    }
    if job.metadata.deletion_timestamp.is_none() {
        let dp = DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..Default::default() };
        api.delete(name, &dp).await.map_err(Error::kube("delete", "Job", name))?;
        tracing::info!(job = %name, "the Job of an earlier step deleted");
    }
    Ok(Some(Ok(())))
}

/// Creates the step's Job, annotated with its step and owned by the service (made already by
/// an earlier pass: nothing to do).
pub(super) async fn create(api: &Api<Job>, mut job: Job, key: &str, owner: Option<OwnerReference>) -> Result<()> {
    let name = job.name_any();
    job.metadata.annotations = Some(BTreeMap::from([(STEP_ANNOTATION.to_string(), key.to_string())]));
    job.metadata.owner_references = owner.map(|o| vec![o]);
    match api.create(&Default::default(), &job).await {
        Ok(_) => tracing::info!(job = %name, step = %key, "step Job started"),
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(Error::kube("create", "Job", &name)(e)),
    }
    Ok(())
}
