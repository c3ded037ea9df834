//! Scheduled backups (`spec.backup.schedule`, a cron expression in UTC): a `backup` operation is
//! asked for at each scheduled moment, as `firecamp service backup` would. A moment that comes
//! while another operation of the service runs waits for it to end; moments that passed while
//! the daemon was down are not made up (as cron does), the next one is kept.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use firecamp_core::operation::{OperationKind, OperationRequest};

use crate::runtime::Runtime;
use crate::store::Desired;

/// How often the schedules are looked at: the precision of a scheduled moment.
const TICK: Duration = Duration::from_secs(1);

pub(crate) async fn run(rt: Arc<Runtime>) {
    // Per service: the moment the schedule is counted from (the daemon's start, then each
    // backup asked for).
    let started = SystemTime::now();
    let mut since: HashMap<String, SystemTime> = HashMap::new();
    loop {
        tokio::time::sleep(TICK).await;
        let Ok(records) = rt.store.list() else { continue };
        let now = SystemTime::now();
        since.retain(|name, _| records.iter().any(|r| &r.name == name));
        for rec in records {
            let Some(backup) = rec.spec.backup.as_ref().filter(|b| b.schedule.is_some()) else { continue };
            let from = *since.entry(rec.name.clone()).or_insert(started);
            let Some(due) = backup.next_after(from) else { continue };
            if due > now || rec.desired != Desired::Running || !rec.init.done {
                continue;
            }
            let req = OperationRequest { kind: Some(OperationKind::Backup), ..Default::default() };
            match rt.submit_operation(&rec.name, req).await {
                Ok(op) => {
                    tracing::info!(service = %rec.name, operation = %op.id, "scheduled backup asked for");
                    since.insert(rec.name.clone(), now);
                }
                // Another operation runs: the backup waits for it (asked again next tick).
                Err(crate::error::LocalError::Busy(_)) => {}
                Err(e) => {
                    tracing::warn!(service = %rec.name, error = %e, "scheduled backup refused; the next scheduled moment is kept");
                    since.insert(rec.name.clone(), now);
                }
            }
        }
    }
}
