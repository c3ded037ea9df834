//! `…/backups`, `…/backups/{id}` and `…/restore` on Kubernetes: the same API as the local
//! runtime's (docs/backup.md). With the cluster's bucket (`manage --backup-target`) backups are
//! listed, deleted and restored from it; without one each answers 501 saying so. Each
//! path authenticates and authorizes the caller like any other request first, so an answer
//! says nothing to whom may not ask; a namespace sees only its own tree of the bucket.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use firecamp_api::{ApiError, Backup, BackupList, ErrorCode, RestoreRequest};
use kube::ResourceExt;
use kube::api::PostParams;

use super::AppState;
use super::auth::Access;
use super::error::{Fail, fail, invalid_field, kube_call};
use super::services::{Params, missing, params, service_name};
use crate::backups::{BackupError, BackupStore};
use crate::crd::{FireCampService, FireCampServiceSpec};

const NO_BUCKET: &str = "this cluster has no backup bucket: start the manage service with --backup-target (docs/backup.md)";

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

/// `POST …/restore`: a new service of the source's shape (its own passwords, CA and archive)
/// whose first member starts from the backup (PostgreSQL: recovered up to `toTime`). Everything
/// is checked before anything is made: the backup (of this service, every file there with its
/// size), the time, the new service's name and spec;
/// the new name must be free. A running source archives its latest WAL first
/// (`operations/archive.rs`), so any target up to now is reachable.
pub async fn restore(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    q: Result<Query<Params>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<firecamp_api::Service>), Fail> {
    let ns = authorized(&st, &headers, &name, q, "create").await?;
    // The new service holds the source's data: whoever restores it must be allowed to read it.
    st.auth.authorize(&headers, &Access { verb: "get", namespace: &ns, name: Some(&name) }).await?;
    let backups = store(&st)?;
    let body = body.map_err(super::services::unreadable)?;
    let req: RestoreRequest = firecamp_api::parse_body(&body, "the request body is not a restore").map_err(Fail::from)?;
    service_name(&req.name)?;
    let (from, spec) = backups.restore_source(&ns, &name, &req.backup, req.to_time.as_deref()).await?;
    let mut cluster = st.cluster.clone();
    cluster.namespace = ns.clone();
    firecamp_catalog::plan(&req.name, &spec, &cluster, &firecamp_catalog::KubernetesLayout::default(), &BTreeMap::new())
        .map_err(|e| Fail::from(ApiError::from(e)))?;
    if from.target_time.is_some()
        && let Some(source) = kube_call(&format!("reading service {name:?}"), st.api(&ns).get_opt(&name)).await?
    {
        // The source's latest transactions reach its archive before the new service reads it.
        crate::operations::archive::archive_latest(&st.client, &cluster, &source, &from.uid)
            .await
            .map_err(|why| fail(ErrorCode::Unavailable, format!("the restore needs {name}'s latest WAL archived first: {why}; nothing was created")))?;
    }
    let mut resource = FireCampService::new(&req.name, FireCampServiceSpec(spec));
    let source = serde_json::to_string(&from).map_err(|e| fail(ErrorCode::Internal, e.to_string()))?;
    resource.metadata.annotations = Some(BTreeMap::from([(crate::crd::RESTORE_ANNOTATION.to_string(), source)]));
    let pp = PostParams { field_manager: Some(crate::config::FIELD_MANAGER.into()), ..Default::default() };
    let created = match st.api(&ns).create(&pp, &resource).await {
        Ok(c) => c,
        Err(kube::Error::Api(s)) if s.code == 409 => {
            return Err(fail(ErrorCode::AlreadyExists, format!("service {:?} already exists in namespace {ns:?}", req.name)));
        }
        Err(e) => return Err(super::error::from_kube(&e, &format!("creating service {:?}", req.name)).into()),
    };
    tracing::info!(service = %req.name, namespace = %ns, from = %from.backup, to_time = ?from.target_time, "restoring");
    Ok((StatusCode::CREATED, Json(crate::view::to_service(&created))))
}
