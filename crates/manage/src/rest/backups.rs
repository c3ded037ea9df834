//! `…/backups`, `…/backups/{id}` and `…/restore` on Kubernetes: the same API as the local
//! runtime's, which keeps backups (docs/backup.md); on Kubernetes members archive WAL and
//! `backup` operations take base backups into the bucket (`manage --backup-target`), but none is
//! listed, deleted or restored here yet, so each answers 501 — after authenticating and authorizing the caller like any other request, so
//! the answer says nothing to whom may not ask.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use firecamp_api::{ApiError, ErrorCode};

use super::AppState;
use super::auth::Access;
use super::error::Fail;
use super::services::{Params, params, service_name};

const NOT_YET: &str = "listing, deleting and restoring backups run on the local runtime for now; on Kubernetes the WAL archive and the base backups are in the cluster's bucket (docs/backup.md)";

/// `verb` on the service (`create`: a new service in its namespace).
async fn refuse(st: &AppState, headers: &HeaderMap, name: &str, q: Result<Query<Params>, QueryRejection>, verb: &str) -> Fail {
    let checked = async {
        let ns = st.namespace(&params(q)?)?;
        service_name(name)?;
        let one = (verb != "create").then_some(name);
        st.auth.authorize(headers, &Access { verb, namespace: &ns, name: one }).await?;
        Ok::<(), Fail>(())
    };
    match checked.await {
        Err(f) => f,
        Ok(()) => Fail(ApiError::new(ErrorCode::Unavailable, NOT_YET), Some(StatusCode::NOT_IMPLEMENTED)),
    }
}

pub async fn list(State(st): State<Arc<AppState>>, headers: HeaderMap, Path(name): Path<String>, q: Result<Query<Params>, QueryRejection>) -> Fail {
    refuse(&st, &headers, &name, q, "get").await
}

pub async fn delete(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((name, _id)): Path<(String, String)>,
    q: Result<Query<Params>, QueryRejection>,
) -> Fail {
    refuse(&st, &headers, &name, q, "update").await
}

pub async fn restore(State(st): State<Arc<AppState>>, headers: HeaderMap, Path(name): Path<String>, q: Result<Query<Params>, QueryRejection>) -> Fail {
    refuse(&st, &headers, &name, q, "create").await
}
