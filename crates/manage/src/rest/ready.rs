//! `/readyz`: whether the Kubernetes API answers. The endpoint needs no token (the kubelet
//! probes it), so an answer is kept for [`CACHE`] and one check runs at a time (callers
//! meanwhile wait for its answer): however often anyone probes, a replica asks the API server
//! at most once per [`CACHE`].

use std::time::{Duration, Instant};

use kube::Client;
use tokio::sync::Mutex;

/// How long an answer is kept.
pub const CACHE: Duration = Duration::from_secs(5);
/// How long the API server may take to answer before the replica is not ready.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The last answer and when its check started.
#[derive(Default)]
pub struct Readiness {
    last: Mutex<Option<(Instant, bool)>>,
}

impl Readiness {
    /// Whether the Kubernetes API answers (`GET /version` within [`TIMEOUT`]), as last checked
    /// less than [`CACHE`] ago.
    pub async fn check(&self, client: &Client) -> bool {
        self.check_at(client, Instant::now()).await
    }

    async fn check_at(&self, client: &Client, now: Instant) -> bool {
        // Held across the call: a probe arriving meanwhile waits and takes this answer.
        let mut last = self.last.lock().await;
        if let Some((at, ok)) = *last
            && now.saturating_duration_since(at) < CACHE
        {
            return ok;
        }
        let ok = matches!(tokio::time::timeout(TIMEOUT, client.apiserver_version()).await, Ok(Ok(_)));
        *last = Some((now, ok));
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// An API server that counts its calls and answers `/version` (200, or 500 while `down`).
    fn counting_api(calls: Arc<AtomicUsize>, down: Arc<AtomicBool>) -> Client {
        let service = tower::service_fn(move |req: axum::http::Request<kube::client::Body>| {
            let (calls, down) = (calls.clone(), down.clone());
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                assert_eq!(req.uri().path(), "/version");
                let (status, body) = if down.load(Ordering::SeqCst) {
                    (500, serde_json::json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "down", "code": 500 }))
                } else {
                    let v = serde_json::json!({ "major": "1", "minor": "36", "gitVersion": "v1.36.0", "gitCommit": "x", "gitTreeState": "clean",
                        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25", "compiler": "gc", "platform": "linux/amd64" });
                    (200, v)
                };
                let resp = axum::http::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap();
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        Client::new(service, "default")
    }

    #[tokio::test]
    async fn one_api_call_per_period_however_many_probes() {
        let (calls, down) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let client = counting_api(calls.clone(), down.clone());
        let r = Readiness::default();
        let t0 = Instant::now();
        // 200 probes at once: one call, every probe gets its answer.
        let answers = futures::future::join_all((0..200).map(|_| r.check_at(&client, t0))).await;
        assert!(answers.iter().all(|ok| *ok));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "concurrent probes share one call");
        // More probes within the period: still that one call, even after the API went down.
        down.store(true, Ordering::SeqCst);
        for s in [0, 1, 4] {
            assert!(r.check_at(&client, t0 + Duration::from_secs(s)).await);
        }
        assert!(r.check_at(&client, t0 + CACHE - Duration::from_millis(1)).await);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // The period over: one new call, which finds the API down; that answer is kept too.
        let later = t0 + CACHE;
        let answers = futures::future::join_all((0..50).map(|_| r.check_at(&client, later))).await;
        assert!(answers.iter().all(|ok| !ok));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        down.store(false, Ordering::SeqCst);
        assert!(!r.check_at(&client, later + Duration::from_secs(3)).await);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(r.check_at(&client, later + CACHE).await, "ready again one period later");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    /// Through the router, as the kubelet and anyone else call it: a burst of probes costs one call.
    #[tokio::test]
    async fn readyz_through_the_router_makes_one_call_for_a_burst() {
        use tower::ServiceExt;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let calls = Arc::new(AtomicUsize::new(0));
        let client = counting_api(calls.clone(), Arc::new(AtomicBool::new(false)));
        let app = super::super::router(Arc::new(super::super::AppState::new(client, firecamp_core::ClusterConfig::new("test"), None)));
        let probe = || {
            let app = app.clone();
            async move {
                let req = axum::http::Request::get("/readyz").body(axum::body::Body::empty()).unwrap();
                app.oneshot(req).await.unwrap().status()
            }
        };
        let start = Instant::now();
        let statuses = futures::future::join_all((0..100).map(|_| probe())).await;
        assert!(statuses.iter().all(|s| *s == axum::http::StatusCode::OK), "{statuses:?}");
        // One call, unless this machine took a whole period over the burst.
        let periods = (start.elapsed().as_secs_f64() / CACHE.as_secs_f64()).floor() as usize;
        assert!(calls.load(Ordering::SeqCst) <= 1 + periods, "{} calls", calls.load(Ordering::SeqCst));
    }
}
