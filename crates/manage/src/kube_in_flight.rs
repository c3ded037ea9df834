//! Bounds the manage service's requests to the Kubernetes API that are in flight at once.
//!
//! The kube client speaks HTTP/1.1 and keeps every connection it opened in its pool: a burst of
//! requests (a hundred services created together, each pass reading and applying its objects
//! eight at a time) left about 190 TLS connections open, some 190 KiB each, which was most of
//! the manage service's memory. With this layer a burst waits its turn instead, so the pool
//! never holds more than the bound plus the long-lived requests.
//!
//! Watches are not counted (each holds its connection for minutes; the controller's would
//! otherwise hold every permit), nor are the Lease's requests (leader election must not queue
//! behind a burst of reconciles). A request holds its permit until its response body ends, so a
//! large LIST still reading its body counts.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{Request, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::kube_metrics::verb_and_resource;

/// Requests in flight at once, apart from watches and the Lease's.
pub const REQUESTS_IN_FLIGHT: usize = 24;

/// The manage service's Kubernetes client: every request counted for `/metrics`
/// (`kube_metrics.rs`), those in flight bounded.
pub fn client(config: kube::Config) -> Result<kube::Client, kube::Error> {
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&crate::kube_metrics::CountLayer)
        // InFlight calls the service poll_ready made ready only once it holds a permit, so it
        // needs one it can clone: a buffer's handle.
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&InFlightLayer::new(REQUESTS_IN_FLIGHT))
        .build())
}

/// The layer: `kube::client::ClientBuilder::with_layer(&InFlightLayer::new(n))`.
#[derive(Clone)]
pub struct InFlightLayer(Arc<Semaphore>);

impl InFlightLayer {
    pub fn new(requests: usize) -> Self {
        InFlightLayer(Arc::new(Semaphore::new(requests.max(1))))
    }
}

impl<S> tower::Layer<S> for InFlightLayer {
    type Service = InFlight<S>;
    fn layer(&self, inner: S) -> InFlight<S> {
        InFlight { inner, permits: self.0.clone() }
    }
}

#[derive(Clone)]
pub struct InFlight<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

/// Whether a request is exempt from the bound (see the module's comment).
pub fn exempt(method: &axum::http::Method, path: &str, query: Option<&str>) -> bool {
    let (verb, resource) = verb_and_resource(method, path, query);
    verb == "watch" || resource == "leases"
}

impl<S, B, R> tower::Service<Request<B>> for InFlight<S>
where
    S: tower::Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Held<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let exempt = exempt(req.method(), req.uri().path(), req.uri().query());
        // The service made ready by poll_ready is the one to call; a clone takes its place.
        let fresh = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, fresh);
        let permits = self.permits.clone();
        Box::pin(async move {
            // The semaphore is never closed, so acquiring fails never; without a permit the
            // request would simply go unbounded.
            let permit = if exempt { None } else { permits.acquire_owned().await.ok() };
            let response = ready.call(req).await?;
            Ok(response.map(|body| Held { body, permit }))
        })
    }
}

/// A response body that gives its request's permit back when it ends (or is dropped).
pub struct Held<B> {
    body: B,
    permit: Option<OwnedSemaphorePermit>,
}

impl<B: http_body::Body + Unpin> http_body::Body for Held<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.permit = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;
    use tower::{Layer, Service, ServiceExt};

    #[test]
    fn watches_and_the_lease_are_exempt_and_nothing_else() {
        assert!(exempt(&Method::GET, "/apis/apps/v1/namespaces/a/statefulsets", Some("labelSelector=x&watch=true")));
        assert!(exempt(&Method::PUT, "/apis/coordination.k8s.io/v1/namespaces/s/leases/firecamp-manage", None));
        assert!(!exempt(&Method::GET, "/apis/apps/v1/namespaces/a/statefulsets", Some("labelSelector=x")));
        assert!(!exempt(&Method::PATCH, "/api/v1/namespaces/a/configmaps/pg-0-config", Some("fieldManager=firecamp&force=true")));
        assert!(!exempt(&Method::POST, "/apis/authentication.k8s.io/v1/tokenreviews", None));
    }

    /// A service whose responses' bodies end only when the test says so.
    #[derive(Clone)]
    struct Answers(Arc<tokio::sync::Mutex<Vec<tokio::sync::oneshot::Sender<()>>>>);

    struct Pending(Option<tokio::sync::oneshot::Receiver<()>>);

    impl http_body::Body for Pending {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
            match self.0.as_mut().map(|rx| Pin::new(rx).poll(cx)) {
                Some(Poll::Pending) => Poll::Pending,
                _ => {
                    self.0 = None;
                    Poll::Ready(None)
                }
            }
        }
    }

    impl tower::Service<Request<()>> for Answers {
        type Response = Response<Pending>;
        type Error = std::convert::Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: Request<()>) -> Self::Future {
            let senders = self.0.clone();
            Box::pin(async move {
                let (tx, rx) = tokio::sync::oneshot::channel();
                senders.lock().await.push(tx);
                Ok(Response::new(Pending(Some(rx))))
            })
        }
    }

    fn get(path: &str) -> Request<()> {
        Request::builder().method(Method::GET).uri(path).body(()).unwrap()
    }

    #[tokio::test]
    async fn a_request_waits_while_the_bound_is_reached_until_a_body_ends_but_a_watch_does_not() {
        use http_body_util::BodyExt;
        let answers = Answers(Default::default());
        let layer = InFlightLayer::new(2);
        let mut svc = layer.layer(answers.clone());
        let first = svc.ready().await.unwrap().call(get("/api/v1/namespaces/a/pods/p0")).await.unwrap();
        let _second = svc.ready().await.unwrap().call(get("/api/v1/namespaces/a/pods/p1")).await.unwrap();
        // A watch goes through although both permits are taken.
        let _watch = svc.ready().await.unwrap().call(get("/api/v1/namespaces/a/pods?watch=true")).await.unwrap();
        let mut third = Box::pin(svc.ready().await.unwrap().call(get("/api/v1/namespaces/a/pods/p2")));
        assert!(futures::poll!(third.as_mut()).is_pending(), "a third request waits for a permit");
        // The first response's body ends: its permit goes to the third request.
        answers.0.lock().await.remove(0).send(()).unwrap();
        let _ = first.into_body().collect().await.unwrap();
        third.await.unwrap();
    }
}
