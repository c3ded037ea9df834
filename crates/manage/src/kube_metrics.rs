//! Counts every request the manage service sends to the Kubernetes API, by verb, resource and
//! response code, for `/metrics` (the API budget, docs/manage.md): a tower layer on the kube
//! client. Label values come from the requests FireCamp's own code makes (its resources, the
//! eight verbs, HTTP status codes), never from names of objects.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::{Method, Request, Response};

use crate::rest::metrics::METRICS;

/// The verb and the resource (with its subresource: `pods/eviction`, `firecampservices/status`)
/// of a request to the Kubernetes API, as RBAC names them.
pub fn verb_and_resource(method: &Method, path: &str, query: Option<&str>) -> (&'static str, String) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // `/api/v1/…` or `/apis/<group>/<version>/…`; anything else (`/version`, `/openapi/v2`) is
    // named by its first segment.
    let rest: &[&str] = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        [first, ..] => return (verb(method, true, false), (*first).to_string()),
        [] => return (verb(method, true, false), String::new()),
    };
    let (resource, name, sub) = match rest {
        ["namespaces", _ns, resource, tail @ ..] => (*resource, tail.first().copied(), tail.get(1).copied()),
        [resource, tail @ ..] => (*resource, tail.first().copied(), tail.get(1).copied()),
        [] => ("", None, None),
    };
    let watch = query.is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    let resource = match sub {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_string(),
    };
    let verb = if watch { "watch" } else { verb(method, name.is_some(), true) };
    (verb, resource)
}

fn verb(method: &Method, named: bool, collection_aware: bool) -> &'static str {
    match *method {
        Method::GET | Method::HEAD if named || !collection_aware => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named || !collection_aware => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    }
}

/// The layer: `kube::client::ClientBuilder::with_layer(&CountLayer)`.
#[derive(Clone, Copy, Default)]
pub struct CountLayer;

impl<S> tower::Layer<S> for CountLayer {
    type Service = Count<S>;
    fn layer(&self, inner: S) -> Count<S> {
        Count(inner)
    }
}

#[derive(Clone)]
pub struct Count<S>(S);

impl<S, B, R> tower::Service<Request<B>> for Count<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (verb, resource) = verb_and_resource(req.method(), req.uri().path(), req.uri().query());
        METRICS.kube_request(req.method(), req.uri().path());
        let sent = self.0.call(req);
        Box::pin(async move {
            let r = sent.await;
            // No answer (connection refused, timeout): code 0.
            let code = r.as_ref().map(|resp| resp.status().as_u16()).unwrap_or(0);
            METRICS.kube_answered(verb, resource, code);
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_named_as_rbac_names_them() {
        let cases = [
            (Method::GET, "/apis/apps/v1/namespaces/a/statefulsets/pg", None, ("get", "statefulsets")),
            (Method::GET, "/apis/apps/v1/namespaces/a/statefulsets", None, ("list", "statefulsets")),
            (Method::GET, "/apis/apps/v1/statefulsets", Some("labelSelector=x&watch=true&resourceVersion=5"), ("watch", "statefulsets")),
            (Method::PATCH, "/apis/firecamp.dev/v1/namespaces/a/firecampservices/pg/status", None, ("patch", "firecampservices/status")),
            (Method::POST, "/api/v1/namespaces/a/pods/pg-0/eviction", None, ("create", "pods/eviction")),
            (Method::DELETE, "/api/v1/namespaces/a/pods/pg-1", None, ("delete", "pods")),
            (Method::DELETE, "/api/v1/namespaces/a/persistentvolumeclaims", None, ("deletecollection", "persistentvolumeclaims")),
            (Method::GET, "/api/v1/nodes", None, ("list", "nodes")),
            (Method::GET, "/api/v1/namespaces/a", None, ("get", "namespaces")),
            (Method::POST, "/apis/authentication.k8s.io/v1/tokenreviews", None, ("create", "tokenreviews")),
            (Method::PUT, "/apis/coordination.k8s.io/v1/namespaces/s/leases/firecamp-manage", None, ("update", "leases")),
            (Method::GET, "/version", None, ("get", "version")),
        ];
        for (method, path, query, (verb, resource)) in cases {
            assert_eq!(verb_and_resource(&method, path, query), (verb, resource.to_string()), "{method} {path}");
        }
    }
}
