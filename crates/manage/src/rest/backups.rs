//! `…/backups`, `…/backups/{id}` and `…/restore` on Kubernetes: the same API as the local
//! runtime's (docs/backup.md). With the cluster's bucket (`manage --backup-target`) backups are
//! listed and deleted from it; restores are the local runtime's for now (501, saying so). Each
//! path authenticates and authorizes the caller like any other request first, so an answer
//! says nothing to whom may not ask; a namespace sees only its own tree of the bucket.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use firecamp_api::{ApiError, Backup, BackupList, ErrorCode};
use kube::ResourceExt;

use super::AppState;
use super::auth::Access;
use super::error::{Fail, fail, invalid_field, kube_call};
use super::services::{Params, missing, params, service_name};
use crate::backups::{BackupError, BackupStore};

const NO_BUCKET: &str = "this cluster has no backup bucket: start the manage service with --backup-target (docs/backup.md)";
const NO_RESTORE: &str =
    "restores run on the local runtime for now; on Kubernetes the WAL archive and the base backups are in the cluster's bucket (docs/backup.md)";

fn not_implemented(why: &str) -> Fail {
    Fail(ApiError::new(ErrorCode::Unavailable, why), Some(StatusCode::NOT_IMPLEMENTED))
}

impl From<BackupError> for Fail {
    fn from(e: BackupError) -> Fail {
        match e {
            BackupError::Invalid { field, message } => invalid_field(&field, message),
            BackupError::NotFound(m) => fail(ErrorCode::NotFound, m),
            BackupError::Unavailable(m) => fail(ErrorCode::Unavailable, m),
        }
    }
}

/// The namespace, once the caller may `verb` the service (`create`: a new one in it).
async fn authorized(st: &AppState, headers: &HeaderMap, name: &str, q: Result<Query<Params>, QueryRejection>, verb: &str) -> Result<String, Fail> {
    let ns = st.namespace(&params(q)?)?;
    service_name(name)?;
    let one = (verb != "create").then_some(name);
    st.auth.authorize(headers, &Access { verb, namespace: &ns, name: one }).await?;
    Ok(ns)
}

fn store(st: &AppState) -> Result<&Arc<dyn BackupStore>, Fail> {
    st.cloud.backups.as_ref().ok_or_else(|| not_implemented(NO_BUCKET))
}

/// `GET …/backups`: newest first; also a deleted service's, whose backups are kept.
pub async fn list(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Json<BackupList>, Fail> {
    let ns = authorized(&st, &headers, &name, q, "get").await?;
    let found = store(&st)?.list(&ns, &name).await?;
    if found.is_empty() && kube_call(&format!("reading service {name:?}"), st.api(&ns).get_opt(&name)).await?.is_none() {
        return Err(missing(&name, &ns));
    }
    Ok(Json(BackupList { items: found }))
}

/// `DELETE …/backups/{id}`: the backup and the archived WAL only it needed; refused while an
/// operation of the service runs (it may be taking a backup).
pub async fn delete(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Backup>, Fail> {
    let ns = authorized(&st, &headers, &name, q, "update").await?;
    let backups = store(&st)?;
    let svc = kube_call(&format!("reading service {name:?}"), st.api(&ns).get_opt(&name)).await?;
    if let Some(op) = svc.as_ref().and_then(crate::operations::unfinished) {
        return Err(fail(ErrorCode::Busy, format!("operation {} of {name} is under way; delete the backup once it has ended", op.id)));
    }
    let current = svc.as_ref().and_then(|s| s.uid());
    let gone = backups.delete(&ns, &name, &id, current.as_deref()).await?;
    tracing::info!(service = %name, namespace = %ns, backup = %gone.id, "backup deleted");
    Ok(Json(gone))
}

pub async fn restore(State(st): State<Arc<AppState>>, headers: HeaderMap, Path(name): Path<String>, q: Result<Query<Params>, QueryRejection>) -> Fail {
    match authorized(&st, &headers, &name, q, "create").await {
        Err(f) => f,
        Ok(_) => not_implemented(NO_RESTORE),
    }
}
