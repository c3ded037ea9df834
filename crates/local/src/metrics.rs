//! The daemon's own `/metrics` (docs/monitoring.md), behind the API's bearer token like every
//! other path: its services' gauges (`firecamp_api::metrics`, from the same views `service list`
//! shows) and counters of what it did since it started: operations by kind and result, their
//! steps' durations, and API requests by route, method and status. Label values come from
//! fixed sets (kinds, actions, results, route templates, methods) or the services' own names.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use firecamp_api::metrics::Text;
use firecamp_api::{Operation, OperationKind, OperationPhase, StepAction};

use crate::runtime::Runtime;

#[derive(Default)]
struct Inner {
    /// (kind, result) → finished operations.
    operations: BTreeMap<(&'static str, &'static str), u64>,
    /// (kind, action, result) → (steps, seconds).
    steps: BTreeMap<(&'static str, &'static str, &'static str), (u64, f64)>,
    /// (route, method, status) → requests.
    requests: BTreeMap<(String, &'static str, u16), u64>,
}

/// Counters since the daemon started.
#[derive(Default)]
pub struct Counters(Mutex<Inner>);

fn result(ok: bool) -> &'static str {
    if ok { "succeeded" } else { "failed" }
}

impl Counters {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// An operation that reached its end (succeeded, failed or cancelled).
    pub fn operation_finished(&self, op: &Operation) {
        let phase = match op.phase {
            OperationPhase::Succeeded => "succeeded",
            OperationPhase::Failed => "failed",
            OperationPhase::Cancelled => "cancelled",
            OperationPhase::Pending | OperationPhase::Running => return,
        };
        self.with(|i| *i.operations.entry((op.kind.as_str(), phase)).or_default() += 1);
    }

    /// A step that ended after `seconds` of this daemon's work on it.
    pub fn step_finished(&self, kind: OperationKind, action: StepAction, ok: bool, seconds: f64) {
        self.with(|i| {
            let e = i.steps.entry((kind.as_str(), action.as_str(), result(ok))).or_default();
            e.0 += 1;
            e.1 += seconds;
        });
    }

    fn request(&self, route: String, method: &'static str, status: u16) {
        self.with(|i| *i.requests.entry((route, method, status)).or_default() += 1);
    }

    fn render(&self, out: &mut Text) {
        self.with(|i| {
            out.family(
                "firecamp_operations_total",
                "counter",
                "Operations that ended since the daemon started, by kind and result (failovers are kind failover).",
            );
            for ((kind, res), n) in &i.operations {
                out.sample("firecamp_operations_total", &[("kind", kind), ("result", res)], *n as f64);
            }
            out.family("firecamp_operation_step_duration_seconds", "summary", "Time the daemon spent on operation steps, by kind, action and result.");
            for ((kind, action, res), (n, secs)) in &i.steps {
                let labels = [("kind", *kind), ("action", *action), ("result", *res)];
                out.sample("firecamp_operation_step_duration_seconds_sum", &labels, *secs);
                out.sample("firecamp_operation_step_duration_seconds_count", &labels, *n as f64);
            }
            out.family("firecamp_api_requests_total", "counter", "API requests since the daemon started, by route, method and status.");
            for ((route, method, status), n) in &i.requests {
                let status = status.to_string();
                out.sample("firecamp_api_requests_total", &[("route", route), ("method", method), ("status", &status)], *n as f64);
            }
        });
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
    out.family("firecamp_metrics_scrape_duration_seconds", "gauge", "How long this answer took (it probes every member).");
    out.sample("firecamp_metrics_scrape_duration_seconds", &[], started.elapsed().as_secs_f64());
    Ok(out.finish())
}
