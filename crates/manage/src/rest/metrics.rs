//! `GET /metrics`: the manage service's counters in Prometheus' text format, and on the leader
//! every service's gauges (`firecamp_api::metrics::services`, from the controller's cache: no
//! request to Kubernetes per scrape). One process-wide set, so the controller counts its
//! reconciles in the same place the API counts requests. The caller needs a token and RBAC's
//! `get` on the non-resource URL `/metrics` (service names are tenants' data).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use firecamp_api::metrics::Text;
use kube::ResourceExt;
use kube::runtime::reflector::Store;

use super::AppState;
use super::error::Fail;
use crate::crd::FireCampService;

pub static METRICS: Metrics = Metrics::new();

/// (route, method, status) → (count, seconds).
type Requests = BTreeMap<(String, &'static str, u16), (u64, f64)>;
/// (verb, resource, code) → requests to the Kubernetes API.
type KubeRequests = BTreeMap<(&'static str, String, u16), u64>;
/// The AWS requests of this process, from `firecamp_aws::metrics` when it was built with AWS.
pub type AwsRequests = fn() -> Vec<((&'static str, &'static str, &'static str), u64)>;

pub struct Metrics {
    requests: Mutex<Requests>,
    reconciles: AtomicU64,
    reconcile_errors: AtomicU64,
    kube_requests: AtomicU64,
    kube_writes: AtomicU64,
    kube_lease_requests: AtomicU64,
    token_reviews: AtomicU64,
    access_reviews: AtomicU64,
    auth_cache_hits: AtomicU64,
    /// The controller's cache of services, once this replica leads (it exits when it stops).
    services: OnceLock<Store<FireCampService>>,
    kube_answers: Mutex<KubeRequests>,
    /// Reconciles' (count, seconds).
    reconcile_time: Mutex<(u64, f64)>,
    operations: firecamp_api::metrics::Operations,
    aws: OnceLock<AwsRequests>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub const fn new() -> Self {
        Metrics {
            requests: Mutex::new(BTreeMap::new()),
            reconciles: AtomicU64::new(0),
            reconcile_errors: AtomicU64::new(0),
            kube_requests: AtomicU64::new(0),
            kube_writes: AtomicU64::new(0),
            kube_lease_requests: AtomicU64::new(0),
            token_reviews: AtomicU64::new(0),
            access_reviews: AtomicU64::new(0),
            auth_cache_hits: AtomicU64::new(0),
            services: OnceLock::new(),
            kube_answers: Mutex::new(BTreeMap::new()),
            reconcile_time: Mutex::new((0, 0.0)),
            operations: firecamp_api::metrics::Operations::new(),
            aws: OnceLock::new(),
        }
    }

    /// Where this process's AWS request counts come from (set once, by the binary that has AWS).
    pub fn count_aws(&self, source: AwsRequests) {
        let _ = self.aws.set(source);
    }

    /// One answer (or none: code 0) of the Kubernetes API.
    pub fn kube_answered(&self, verb: &'static str, resource: String, code: u16) {
        *lock(&self.kube_answers).entry((verb, resource, code)).or_default() += 1;
    }

    /// How long one reconcile took.
    pub fn reconcile_took(&self, seconds: f64) {
        let mut t = lock(&self.reconcile_time);
        t.0 += 1;
        t.1 += seconds;
    }

    /// An operation the controller drove to its end, with its steps' durations from the times
    /// its status records (steps that never started, as in a cancelled operation, count none).
    pub fn operation_ended(&self, op: &firecamp_api::Operation) {
        use k8s_openapi::jiff::Timestamp;
        self.operations.operation_finished(op);
        for step in &op.steps {
            let at = |t: &Option<String>| t.as_deref().and_then(|t| t.parse::<Timestamp>().ok());
            if let (Some(start), Some(end)) = (at(&step.started), at(&step.finished)) {
                let seconds = end.duration_since(start).as_secs_f64().max(0.0);
                self.operations.step_finished(op.kind, step.action, step.phase == firecamp_api::OperationPhase::Succeeded, seconds);
            }
        }
    }

    /// This replica leads: its `/metrics` reports the services of `store` from now on.
    pub fn leading(&self, store: Store<FireCampService>) {
        let _ = self.services.set(store);
    }

    /// Every service's gauges, when this replica leads (the others have none: a scrape of all
    /// replicas gets each series once).
    fn render_services(&self) -> String {
        let Some(store) = self.services.get() else {
            return String::new();
        };
        let mut all: Vec<Arc<FireCampService>> = store.state();
        all.sort_by_key(|r| (r.namespace(), r.name_any()));
        let views: Vec<(String, firecamp_api::Service)> = all.iter().map(|r| (r.namespace().unwrap_or_default(), crate::view::to_service(r))).collect();
        let mut out = Text::default();
        firecamp_api::metrics::services(&mut out, &views.iter().map(|(ns, s)| (Some(ns.as_str()), s)).collect::<Vec<_>>());
        out.family("firecamp_leader", "gauge", "1 on the replica that leads (runs the controller).");
        out.sample("firecamp_leader", &[], 1.0);
        out.finish()
    }

    /// One finished reconcile of the controller.
    pub fn reconciled(&self, ok: bool) {
        self.reconciles.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.reconcile_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One request to the Kubernetes API (a watch counts once, when it starts): counted in the
    /// total, and as a write (any method but GET and HEAD, reviews aside: their POST changes
    /// nothing) or as leader election's (the Lease), so the budget of an idle service — no
    /// writes but the Lease's — can be read off.
    pub fn kube_request(&self, method: &Method, path: &str) {
        self.kube_requests.fetch_add(1, Ordering::Relaxed);
        let review = path.starts_with("/apis/authentication.k8s.io/") || path.starts_with("/apis/authorization.k8s.io/");
        if path.starts_with("/apis/coordination.k8s.io/") {
            self.kube_lease_requests.fetch_add(1, Ordering::Relaxed);
        } else if *method != Method::GET && *method != Method::HEAD && !review {
            self.kube_writes.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(target: "firecamp::kube_writes", %method, path, "Kubernetes API write");
        }
    }

    pub fn token_review(&self) {
        self.token_reviews.fetch_add(1, Ordering::Relaxed);
    }

    pub fn access_review(&self) {
        self.access_reviews.fetch_add(1, Ordering::Relaxed);
    }

    pub fn auth_cache_hit(&self) {
        self.auth_cache_hits.fetch_add(1, Ordering::Relaxed);
    }

    pub fn request(&self, route: &str, method: &Method, status: u16, seconds: f64) {
        let mut m = lock(&self.requests);
        let e = m.entry((route.to_string(), firecamp_api::metrics::method_label(method.as_str()), status)).or_default();
        e.0 += 1;
        e.1 += seconds;
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let requests = lock(&self.requests).clone();
        out.push_str("# HELP firecamp_http_requests_total REST API requests by route, method and status code.\n");
        out.push_str("# TYPE firecamp_http_requests_total counter\n");
        for ((route, method, code), (n, _)) in &requests {
            let _ = writeln!(out, "firecamp_http_requests_total{{route=\"{}\",method=\"{method}\",code=\"{code}\"}} {n}", escape(route));
        }
        out.push_str("# HELP firecamp_http_request_duration_seconds_sum Time spent answering REST API requests.\n");
        out.push_str("# TYPE firecamp_http_request_duration_seconds_sum counter\n");
        for ((route, method, code), (_, s)) in &requests {
            let _ = writeln!(out, "firecamp_http_request_duration_seconds_sum{{route=\"{}\",method=\"{method}\",code=\"{code}\"}} {s:.6}", escape(route));
        }
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Ordering::Relaxed));
        };
        counter(&mut out, "firecamp_reconciles_total", "Reconciles the controller finished (on the leader).", &self.reconciles);
        counter(&mut out, "firecamp_reconcile_errors_total", "Reconciles that failed and were retried.", &self.reconcile_errors);
        counter(&mut out, "firecamp_kube_requests_total", "Requests this process sent to the Kubernetes API.", &self.kube_requests);
        counter(&mut out, "firecamp_kube_writes_total", "Of those, writes (not GET or HEAD) other than the Lease's and reviews.", &self.kube_writes);
        counter(&mut out, "firecamp_kube_lease_requests_total", "Of those, leader election's (the Lease, reads and writes).", &self.kube_lease_requests);
        counter(&mut out, "firecamp_token_reviews_total", "TokenReviews sent to Kubernetes.", &self.token_reviews);
        counter(&mut out, "firecamp_access_reviews_total", "SubjectAccessReviews sent to Kubernetes.", &self.access_reviews);
        counter(&mut out, "firecamp_auth_cache_hits_total", "Reviews answered from the cache.", &self.auth_cache_hits);
        let (n, secs) = *lock(&self.reconcile_time);
        let _ = writeln!(
            out,
            "# HELP firecamp_reconcile_duration_seconds Time the controller's reconciles took.\n# TYPE firecamp_reconcile_duration_seconds summary\nfirecamp_reconcile_duration_seconds_sum {secs:.6}\nfirecamp_reconcile_duration_seconds_count {n}"
        );
        let mut text = Text::default();
        text.family("firecamp_kube_api_requests_total", "counter", "Requests to the Kubernetes API by verb, resource and response code (0: no answer).");
        for ((verb, resource, code), n) in lock(&self.kube_answers).iter() {
            text.sample("firecamp_kube_api_requests_total", &[("verb", verb), ("resource", resource), ("code", &code.to_string())], *n as f64);
        }
        self.operations.render(&mut text);
        if let Some(aws) = self.aws.get() {
            firecamp_api::metrics::aws_requests(&mut text, &aws());
        }
        out.push_str(&text.finish());
        out.push_str(&self.render_services());
        out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `GET /metrics`, for callers RBAC lets `get` it.
pub async fn serve(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, Fail> {
    st.auth.authorize_url(&headers, super::METRICS_PATH).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], METRICS.render()).into_response())
}

/// Middleware: counts every request under its route pattern (never the raw path, so service
/// names do not become labels).
pub async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let start = Instant::now();
    let resp = next.run(req).await;
    METRICS.request(&route, &method, resp.status().as_u16(), start.elapsed().as_secs_f64());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_has_requests_reconciles_and_kube_requests_by_kind() {
        let m = Metrics::new();
        m.request("/v1/services/{name}", &Method::GET, 200, 0.01);
        m.request("/v1/services/{name}", &Method::GET, 200, 0.02);
        m.request("/v1/services", &Method::POST, 400, 0.001);
        m.request("unmatched", &Method::from_bytes(b"BREW").unwrap(), 404, 0.0);
        m.reconciled(true);
        m.reconciled(false);
        m.kube_request(&Method::GET, "/apis/apps/v1/namespaces/a/statefulsets");
        m.kube_request(&Method::PATCH, "/apis/apps/v1/namespaces/a/statefulsets/pg");
        m.kube_request(&Method::PUT, "/apis/coordination.k8s.io/v1/namespaces/a/leases/firecamp");
        m.kube_request(&Method::GET, "/apis/coordination.k8s.io/v1/namespaces/a/leases/firecamp");
        m.kube_request(&Method::POST, "/apis/authentication.k8s.io/v1/tokenreviews");
        let text = m.render();
        assert!(text.contains("firecamp_kube_requests_total 5\n"), "{text}");
        assert!(text.contains("firecamp_kube_writes_total 1\n"), "{text}");
        assert!(text.contains("firecamp_kube_lease_requests_total 2\n"), "{text}");
        assert!(text.contains("firecamp_http_requests_total{route=\"/v1/services/{name}\",method=\"GET\",code=\"200\"} 2\n"), "{text}");
        assert!(text.contains("firecamp_http_requests_total{route=\"/v1/services\",method=\"POST\",code=\"400\"} 1\n"));
        assert!(text.contains("method=\"OTHER\""));
        assert!(text.contains("firecamp_reconciles_total 2\n"));
        assert!(text.contains("firecamp_reconcile_errors_total 1\n"));
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            value.parse::<f64>().unwrap();
        }
    }
}
