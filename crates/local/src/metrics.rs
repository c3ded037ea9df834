//! The daemon's own `/metrics` (docs/monitoring.md), behind the API's bearer token like every
//! other path: its services' gauges (`firecamp_api::metrics`, from the same views `service list`
//! shows), its members' volumes, and counters of what it did since it started: operations by
//! kind and result, their steps' durations, API requests by route, method and status, and
//! requests to S3. Label values come from fixed sets (kinds, actions, results, route templates,
//! methods, AWS operations) or the services' and members' own names.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use firecamp_api::metrics::{Operations, Text};
use firecamp_api::{Operation, OperationKind, StepAction};

use crate::runtime::Runtime;

/// Counters since the daemon started: its operations (shared with the manage service) and its
/// API requests by route, method and status.
#[derive(Default)]
pub struct Counters {
    operations: Operations,
    requests: Mutex<BTreeMap<(String, &'static str, u16), u64>>,
}

impl Counters {
    /// An operation that reached its end (succeeded, failed or cancelled).
    pub fn operation_finished(&self, op: &Operation) {
        self.operations.operation_finished(op);
    }

    /// A step that ended after `seconds` of this daemon's work on it.
    pub fn step_finished(&self, kind: OperationKind, action: StepAction, ok: bool, seconds: f64) {
        self.operations.step_finished(kind, action, ok, seconds);
    }

    fn request(&self, route: String, method: &'static str, status: u16) {
        *self.requests.lock().unwrap_or_else(|p| p.into_inner()).entry((route, method, status)).or_default() += 1;
    }

    fn render(&self, out: &mut Text) {
        self.operations.render(out);
        out.family("firecamp_api_requests_total", "counter", "API requests since the daemon started, by route, method and status.");
        for ((route, method, status), n) in self.requests.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let status = status.to_string();
            out.sample("firecamp_api_requests_total", &[("route", route), ("method", method), ("status", &status)], *n as f64);
        }
    }
}

/// Counts every request under its route's template (`/v1/services/{name}`), never its path.
pub async fn track(State(rt): State<Arc<Runtime>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = firecamp_api::metrics::method_label(req.method().as_str());
    let resp = next.run(req).await;
    rt.counters.request(route, method, resp.status().as_u16());
    resp
}

/// The file system under each member's data directory: its size and what is left for the
/// server (statvfs's blocks available to unprivileged users), for the disk-filling alert.
fn volumes(rt: &Runtime, services: &[firecamp_api::Service], out: &mut Text) {
    let mut stats = Vec::new();
    for s in services {
        for m in &s.status.members {
            let data = rt.cfg.service_dir(&s.name).join(&m.name).join("data");
            if let Ok(st) = nix::sys::statvfs::statvfs(&data) {
                let block = st.fragment_size() as f64;
                stats.push((s.name.as_str(), m.name.as_str(), st.blocks() as f64 * block, st.blocks_available() as f64 * block));
            }
        }
    }
    out.family("firecamp_member_volume_size_bytes", "gauge", "Size of the file system holding the member's data.");
    for (service, member, size, _) in &stats {
        out.sample("firecamp_member_volume_size_bytes", &[("service", service), ("member", member)], *size);
    }
    out.family("firecamp_member_volume_available_bytes", "gauge", "Bytes of that file system the member's server may still write.");
    for (service, member, _, available) in &stats {
        out.sample("firecamp_member_volume_available_bytes", &[("service", service), ("member", member)], *available);
    }
}

/// When each service's CA and member certificates expire (FireCamp renews members' in their last
/// 30 days; a CA is rotated by its user, docs/tls.md).
fn certificates(rt: &Runtime, out: &mut Text) -> crate::error::Result<()> {
    out.family("firecamp_certificate_expiry_timestamp_seconds", "gauge", "When the certificate expires (Unix time): certificate is ca, ca-next or a member.");
    for rec in rt.store.list()? {
        for (key, pem) in rec.tls.iter().filter(|(k, _)| k.ends_with(".crt")) {
            let Ok(info) = firecamp_pki::inspect(pem, key) else { continue };
            let which = key.trim_end_matches(".crt");
            out.sample(
                "firecamp_certificate_expiry_timestamp_seconds",
                &[("service", &rec.name), ("certificate", which)],
                info.not_after.unix_timestamp() as f64,
            );
        }
    }
    Ok(())
}

/// The text `/metrics` serves: every service's gauges, then the counters.
pub async fn render(rt: &Runtime) -> crate::error::Result<String> {
    let started = Instant::now();
    let services = rt.list().await?;
    let mut out = Text::default();
    firecamp_api::metrics::services(&mut out, &services.iter().map(|s| (None, s)).collect::<Vec<_>>());
    volumes(rt, &services, &mut out);
    certificates(rt, &mut out)?;
    rt.counters.render(&mut out);
    // S3, where backups go (a build without it sends AWS nothing).
    #[cfg(feature = "s3")]
    firecamp_api::metrics::aws_requests(&mut out, &firecamp_aws::metrics::snapshot());
    out.family("firecamp_metrics_scrape_duration_seconds", "gauge", "How long this answer took (it probes every member).");
    out.sample("firecamp_metrics_scrape_duration_seconds", &[], started.elapsed().as_secs_f64());
    Ok(out.finish())
}
