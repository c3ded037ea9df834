//! The `/v1/services` handlers: each authorises the caller, then reads or writes
//! FireCampService resources. The controller does the work.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use firecamp_api::{CreateService, ErrorCode, MemberStatus, Phase, Service, ServiceList};
use firecamp_catalog::layout::KubernetesLayout;
use firecamp_catalog::plan;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use serde::Deserialize;

use super::AppState;
use super::auth::Access;
use super::error::{Fail, fail, invalid_field, kube_call};
use crate::crd::{FireCampService, FireCampServiceSpec};
use crate::view::to_service;

type St = State<Arc<AppState>>;
type Res<T> = Result<T, Fail>;

/// The query parameters any endpoint takes.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    /// The services' namespace (`default` when absent).
    pub namespace: Option<String>,
    #[serde(default)]
    pub delete_volumes: bool,
}

pub(crate) fn params(q: Result<Query<Params>, QueryRejection>) -> Res<Params> {
    q.map(|Query(p)| p).map_err(bad_query)
}

/// A query that does not parse, refused naming the parameter.
pub(crate) fn bad_query(e: QueryRejection) -> Fail {
    Fail(firecamp_api::rejection(&e.body_text()), Some(e.status()))
}

impl AppState {
    /// The request's namespace, checked to be one this service manages.
    pub(crate) fn namespace(&self, p: &Params) -> Res<String> {
        let ns = p.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into());
        if let Some(problem) = firecamp_core::names::dns1123_label_problem(&ns) {
            return Err(invalid_field("namespace", problem));
        }
        if let Some(only) = &self.watch_namespace
            && *only != ns
        {
            return Err(invalid_field("namespace", format!("this manage service manages namespace {only:?} only")));
        }
        Ok(ns)
    }

    pub(crate) fn api(&self, ns: &str) -> Api<FireCampService> {
        Api::namespaced(self.client.clone(), ns)
    }
}

/// A service name from a request's path, checked before it goes into a Kubernetes API path:
/// every service's name is a DNS label, and `..` or `/` in one would walk out of the
/// FireCampService collection (kube-rs puts the name into the path as it is).
pub(crate) fn service_name(name: &str) -> Res<()> {
    match firecamp_core::names::dns1123_label_problem(name) {
        Some(problem) => Err(invalid_field("name", problem)),
        None => Ok(()),
    }
}

/// A body that could not be read (413 when over the limit) is refused naming it.
pub(crate) fn unreadable(e: BytesRejection) -> Fail {
    let status = e.status();
    Fail(invalid_field("body", format!("reading the request body: {}", e.body_text())).0, Some(status))
}

pub(crate) fn missing(name: &str, ns: &str) -> Fail {
    fail(ErrorCode::NotFound, format!("service {name:?} does not exist in namespace {ns:?}"))
}

/// The body as a [`CreateService`]; a refusal names the field by its JSON path.
pub fn parse_create(body: &[u8]) -> Res<CreateService> {
    firecamp_api::parse_body(body, "the request body is not a service").map_err(Fail::from)
}

pub async fn create(
    State(st): St,
    headers: HeaderMap,
    q: Result<Query<Params>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Res<(StatusCode, Json<Service>)> {
    let ns = st.namespace(&params(q)?)?;
    st.auth.authorize(&headers, &Access { verb: "create", namespace: &ns, name: None }).await?;
    let body = body.map_err(unreadable)?;
    let req = parse_create(&body)?;
    // The same validation the controller runs, so an invalid spec is refused whole, here.
    let mut cluster = st.cluster.clone();
    cluster.namespace = ns.clone();
    plan(&req.name, &req.spec, &cluster, &KubernetesLayout::default(), &BTreeMap::new()).map_err(|e| Fail::from(firecamp_api::ApiError::from(e)))?;
    crate::reconcile::not_on_kubernetes(&req.spec).map_err(|e| Fail::from(firecamp_api::ApiError::from(e)))?;
    let resource = FireCampService::new(&req.name, FireCampServiceSpec(req.spec));
    let created = match st.api(&ns).create(&PostParams { field_manager: Some(crate::config::FIELD_MANAGER.into()), ..Default::default() }, &resource).await {
        Ok(c) => c,
        Err(kube::Error::Api(s)) if s.code == 409 => {
            return Err(fail(ErrorCode::AlreadyExists, format!("service {:?} already exists in namespace {ns:?}", req.name)));
        }
        Err(e) => {
            return Err(super::error::from_kube(&e, &format!("creating service {:?}", req.name)).into());
        }
    };
    tracing::info!(service = %req.name, namespace = %ns, "created");
    Ok((StatusCode::CREATED, Json(to_service(&created))))
}

pub async fn list(State(st): St, headers: HeaderMap, q: Result<Query<Params>, QueryRejection>) -> Res<Json<ServiceList>> {
    let ns = st.namespace(&params(q)?)?;
    st.auth.authorize(&headers, &Access { verb: "list", namespace: &ns, name: None }).await?;
    let list = kube_call("listing services", st.api(&ns).list(&ListParams::default())).await?;
    Ok(Json(ServiceList { items: list.items.iter().map(to_service).collect() }))
}

async fn read(st: &AppState, headers: &HeaderMap, ns: &str, name: &str) -> Res<Service> {
    service_name(name)?;
    st.auth.authorize(headers, &Access { verb: "get", namespace: ns, name: Some(name) }).await?;
    let found = kube_call(&format!("reading service {name:?}"), st.api(ns).get_opt(name)).await?;
    found.map(|r| to_service(&r)).ok_or_else(|| missing(name, ns))
}

pub async fn get(State(st): St, headers: HeaderMap, Path(name): Path<String>, q: Result<Query<Params>, QueryRejection>) -> Res<Json<Service>> {
    let ns = st.namespace(&params(q)?)?;
    Ok(Json(read(&st, &headers, &ns, &name).await?))
}

/// The CA's certificate from the members' Secret `<service>-tls` (the manage service reads it;
/// the caller needs only `get` on the service).
pub async fn ca(State(st): St, headers: HeaderMap, Path(name): Path<String>, q: Result<Query<Params>, QueryRejection>) -> Res<Json<firecamp_api::ServiceCa>> {
    let ns = st.namespace(&params(q)?)?;
    read(&st, &headers, &ns, &name).await?;
    let secret_name = firecamp_kube::names::tls_secret(&name);
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> = kube::Api::namespaced(st.client.clone(), &ns);
    let secret = kube_call(&format!("reading Secret {secret_name}"), secrets.get_opt(&secret_name)).await?;
    let ca = secret.and_then(|s| s.data?.get(firecamp_catalog::tls::CA_FILE).map(|b| String::from_utf8_lossy(&b.0).into_owned()));
    match ca {
        Some(ca) => Ok(Json(firecamp_api::ServiceCa { ca })),
        None => Err(fail(
            ErrorCode::NotFound,
            format!("service {name:?} has no CA yet: its engine serves no TLS, or the manage service has not issued its certificates"),
        )),
    }
}

pub async fn members(State(st): St, headers: HeaderMap, Path(name): Path<String>, q: Result<Query<Params>, QueryRejection>) -> Res<Json<Vec<MemberStatus>>> {
    let ns = st.namespace(&params(q)?)?;
    Ok(Json(read(&st, &headers, &ns, &name).await?.status.members))
}

/// Marks whether the volumes go too (the controller's finalizer reads the annotation), then
/// deletes the very resource it marked (uid precondition), so a service re-created in between
/// is never deleted by mistake.
pub async fn delete(State(st): St, headers: HeaderMap, Path(name): Path<String>, q: Result<Query<Params>, QueryRejection>) -> Res<Json<Service>> {
    let p = params(q)?;
    let ns = st.namespace(&p)?;
    service_name(&name)?;
    st.auth.authorize(&headers, &Access { verb: "delete", namespace: &ns, name: Some(&name) }).await?;
    let api = st.api(&ns);
    let patch = crate::crd::delete_volumes_mark(p.delete_volumes);
    let marked = match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(r) => r,
        Err(kube::Error::Api(s)) if s.code == 404 => return Err(missing(&name, &ns)),
        Err(e) => {
            return Err(super::error::from_kube(&e, &format!("marking service {name:?} for deletion")).into());
        }
    };
    let dp = DeleteParams { preconditions: Some(Preconditions { uid: marked.metadata.uid.clone(), resource_version: None }), ..Default::default() };
    match api.delete(&name, &dp).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Err(missing(&name, &ns)),
        Err(e) => {
            let _ = api.patch(&name, &PatchParams::default(), &Patch::Merge(&crate::crd::delete_volumes_unmark())).await;
            return Err(super::error::from_kube(&e, &format!("deleting service {name:?}")).into());
        }
    }
    tracing::info!(service = %name, namespace = %ns, delete_volumes = p.delete_volumes, "deleting");
    let mut svc = to_service(&marked);
    svc.status.phase = Phase::Deleting;
    Ok(Json(svc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_body_fields_are_named() {
        let e = parse_create(br#"{"colour":"red","name":"zk"}"#).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(e.0.message.contains("unknown field `colour`"), "{}", e.0.message);
        let e = parse_create(br#"{"name":"zk"}"#).unwrap_err();
        assert!(e.0.message.contains("missing field `spec`"), "{}", e.0.message);
        let e = parse_create(b"not json").unwrap_err();
        assert_eq!(e.0.code, ErrorCode::Invalid);
    }
}
