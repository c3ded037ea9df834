//! Counters of operations and their steps, shared by the local daemon (which counts each step as
//! it ends) and the manage service (which counts an operation's steps when it ends, from the
//! times its status records).

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::{Operation, OperationKind, OperationPhase, StepAction};

use super::Text;

#[derive(Default)]
struct Inner {
    /// (kind, result) → finished operations.
    operations: BTreeMap<(&'static str, &'static str), u64>,
    /// (kind, action, result) → (steps, seconds).
    steps: BTreeMap<(&'static str, &'static str, &'static str), (u64, f64)>,
}

/// Operations that ended and their steps' durations, since the process started.
#[derive(Default)]
pub struct Operations(Mutex<Inner>);

const RESULTS: [&str; 3] = ["succeeded", "failed", "cancelled"];

fn result(phase: OperationPhase) -> Option<&'static str> {
    match phase {
        OperationPhase::Succeeded => Some("succeeded"),
        OperationPhase::Failed => Some("failed"),
        OperationPhase::Cancelled => Some("cancelled"),
        OperationPhase::Pending | OperationPhase::Running => None,
    }
}

impl Operations {
    pub const fn new() -> Self {
        Operations(Mutex::new(Inner { operations: BTreeMap::new(), steps: BTreeMap::new() }))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// An operation that reached its end (succeeded, failed or cancelled).
    pub fn operation_finished(&self, op: &Operation) {
        if let Some(r) = result(op.phase) {
            self.with(|i| *i.operations.entry((op.kind.as_str(), r)).or_default() += 1);
        }
    }

    /// A step that ended after `seconds` of work on it.
    pub fn step_finished(&self, kind: OperationKind, action: StepAction, ok: bool, seconds: f64) {
        let r = if ok { "succeeded" } else { "failed" };
        self.with(|i| {
            let e = i.steps.entry((kind.as_str(), action.as_str(), r)).or_default();
            e.0 += 1;
            e.1 += seconds;
        });
    }

    pub fn render(&self, out: &mut Text) {
        self.with(|i| {
            out.family(
                "firecamp_operations_total",
                "counter",
                "Operations that ended since the process started, by kind and result (failovers are kind failover).",
            );
            // Every kind and result from the start, at 0 until one ends so: `increase()` then
            // sees the first failure (a series that appears at 1 has no increase).
            for kind in OperationKind::ALL.map(OperationKind::as_str) {
                for res in RESULTS {
                    let n = i.operations.get(&(kind, res)).copied().unwrap_or(0);
                    out.sample("firecamp_operations_total", &[("kind", kind), ("result", res)], n as f64);
                }
            }
            out.family("firecamp_operation_step_duration_seconds", "summary", "Time spent on operation steps, by kind, action and result.");
            for ((kind, action, res), (n, secs)) in &i.steps {
                let labels = [("kind", *kind), ("action", *action), ("result", *res)];
                out.sample("firecamp_operation_step_duration_seconds_sum", &labels, *secs);
                out.sample("firecamp_operation_step_duration_seconds_count", &labels, *n as f64);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_ended_operations_and_their_steps() {
        let o = Operations::default();
        let mut op = Operation {
            id: "op-1".into(),
            kind: OperationKind::Restart,
            policy: crate::UpdatePolicy::PrimaryLast,
            target: None,
            ca: None,
            phase: OperationPhase::Running,
            steps: vec![],
            step_timeout_seconds: 60,
            message: None,
            created: "2026-01-01T00:00:00Z".into(),
            finished: None,
            cancel_requested: false,
        };
        o.operation_finished(&op);
        op.phase = OperationPhase::Failed;
        o.operation_finished(&op);
        o.step_finished(OperationKind::Restart, StepAction::Restart, true, 1.5);
        o.step_finished(OperationKind::Restart, StepAction::Restart, true, 0.5);
        let mut t = Text::default();
        o.render(&mut t);
        let text = t.finish();
        assert!(text.contains("firecamp_operations_total{kind=\"restart\",result=\"failed\"} 1\n"), "{text}");
        assert!(!text.contains("result=\"running\""), "{text}");
        // The others are there from the start, at 0.
        assert!(text.contains("firecamp_operations_total{kind=\"failover\",result=\"failed\"} 0\n"), "{text}");
        assert!(text.contains("firecamp_operations_total{kind=\"restart\",result=\"succeeded\"} 0\n"), "{text}");
        assert!(text.contains("firecamp_operation_step_duration_seconds_sum{kind=\"restart\",action=\"restart\",result=\"succeeded\"} 2\n"), "{text}");
        assert!(text.contains("firecamp_operation_step_duration_seconds_count{kind=\"restart\",action=\"restart\",result=\"succeeded\"} 2\n"), "{text}");
    }
}
