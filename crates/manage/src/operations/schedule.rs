//! Scheduled backups on Kubernetes (`spec.backup.schedule`, a cron expression in UTC): at each
//! scheduled moment the controller asks for a `backup` operation, as `firecamp service backup`
//! would. The moment last asked for is kept in the status (`lastScheduledBackup`), so a restarted
//! manage service neither repeats it nor loses count; a moment missed while it was down is made
//! up once when it is back (as a CronJob does), not once per moment missed. A moment that comes
//! while the service is not ACTIVE or another operation runs waits for that to end; a stopped
//! service's wait for its start.

use std::time::{Duration, SystemTime};

use firecamp_core::ServiceSpec;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use crate::crd::{FireCampService, FireCampServiceStatus};
use crate::reconcile::Context;

/// How soon a due moment that waits (another operation, a service not ACTIVE) is looked at
/// again; the end of what it waits for changes the status and brings a pass sooner.
pub const WAIT_LOOK_AGAIN: Duration = Duration::from_secs(30);

/// What the schedule asks of this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduled {
    /// No schedule (or no backup).
    Nothing,
    /// The next moment is this far off: look again then.
    Later(Duration),
    /// A moment has come but the service cannot take a backup now.
    Waiting,
    /// Ask for a backup now; the following moment is this far off.
    Due { next: Option<Duration> },
}

/// The schedule's word for a pass at `now`, counting from `since` (the last moment asked for,
/// else the service's creation); `free`: ACTIVE, no operation unfinished or asked for, not
/// being restored.
pub fn decide(spec: &ServiceSpec, since: SystemTime, now: SystemTime, free: bool) -> Scheduled {
    let Some(backup) = spec.backup.as_ref().filter(|b| b.schedule.is_some()) else { return Scheduled::Nothing };
    let Some(due) = backup.next_after(since) else { return Scheduled::Nothing };
    if let Ok(wait) = due.duration_since(now)
        && !wait.is_zero()
    {
        return Scheduled::Later(wait);
    }
    if !free {
        return Scheduled::Waiting;
    }
    Scheduled::Due { next: backup.next_after(now).and_then(|n| n.duration_since(now).ok()) }
}

/// The moment the schedule counts from: the last one asked for (RFC 3339 in the status), else
/// the service's creation.
pub fn since(last: Option<&str>, created: Option<SystemTime>, now: SystemTime) -> SystemTime {
    last.and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok()).map(SystemTime::from).or(created).unwrap_or(now)
}

/// What `spec.backup.schedule` asks of this reconcile pass.
pub(crate) fn scheduled_backup(svc: &FireCampService, status: &FireCampServiceStatus) -> Scheduled {
    // A stopped service is not looked at for its schedule: its moments wait for its start (the
    // last one missed is made up then), with no pass meanwhile.
    if svc.spec.0.stopped {
        return Scheduled::Nothing;
    }
    let now = std::time::SystemTime::now();
    let created = svc.metadata.creation_timestamp.as_ref().map(|t| std::time::SystemTime::from(t.0));
    let since = since(status.last_scheduled_backup.as_deref(), created, now);
    let free = status.phase == firecamp_api::Phase::Active
        && !status.operations.iter().any(|o| !o.phase.is_terminal())
        && crate::operations::pending(svc).is_none()
        && !svc.annotations().contains_key(crate::crd::RESTORE_ANNOTATION);
    decide(&svc.spec.0, since, now, free)
}

/// Asks for the scheduled backup as `service backup` would; a refusal is told in an Event (the
/// moment stays asked for: the next one is kept).
pub(crate) async fn ask_scheduled_backup(ctx: &Context, svc: &FireCampService) {
    let name = svc.name_any();
    let api: Api<FireCampService> = Api::namespaced(ctx.client.clone(), &svc.namespace().unwrap_or_default());
    let req = firecamp_core::operation::OperationRequest { kind: Some(firecamp_core::operation::OperationKind::Backup), ..Default::default() };
    match crate::operations::request(&api, &crate::reconcile::cluster_of(svc, ctx), &name, &req, &ctx.config.field_manager).await {
        Ok(op) => {
            crate::reconcile::event(ctx, svc, EventType::Normal, "BackupScheduled", format!("spec.backup.schedule: operation {} takes a backup", op.id)).await
        }
        Err(e) => {
            tracing::warn!(service = %name, error = %e, "scheduled backup refused; the next scheduled moment is kept");
            crate::reconcile::event(ctx, svc, EventType::Warning, "ScheduledBackupRefused", format!("the scheduled backup was refused: {e}")).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firecamp_core::spec::BackupSpec;

    fn spec(schedule: Option<&str>) -> ServiceSpec {
        let mut s = firecamp_catalog::examples::spec(firecamp_core::EngineKind::Postgresql, 2);
        s.backup = Some(BackupSpec { retention: Some(2), schedule: schedule.map(String::from) });
        s
    }

    fn at(t: &str) -> SystemTime {
        SystemTime::from(t.parse::<k8s_openapi::jiff::Timestamp>().unwrap())
    }

    #[test]
    fn a_moment_to_come_is_waited_for_and_a_come_one_asked_for_once() {
        let daily = spec(Some("0 3 * * *"));
        let created = at("2026-12-01T10:00:00Z");
        assert_eq!(decide(&daily, created, at("2026-12-02T02:59:00Z"), true), Scheduled::Later(Duration::from_secs(60)));
        assert_eq!(decide(&daily, created, at("2026-12-02T03:00:05Z"), true), Scheduled::Due { next: Some(Duration::from_secs(86_395)) });
        // Asked for at 03:00:05: counted from then, the next is tomorrow's.
        let asked = at("2026-12-02T03:00:05Z");
        assert_eq!(decide(&daily, asked, at("2026-12-02T03:10:00Z"), true), Scheduled::Later(Duration::from_secs(86_400 - 600)));
    }

    #[test]
    fn moments_missed_while_down_are_made_up_once() {
        let daily = spec(Some("0 3 * * *"));
        let last = at("2026-12-01T03:00:01Z");
        let back = at("2026-12-04T12:00:00Z");
        let Scheduled::Due { next } = decide(&daily, last, back, true) else { panic!("a missed moment is due") };
        // Asked for now, the next is tomorrow's 03:00, not the other two missed ones.
        assert_eq!(decide(&daily, back, back + Duration::from_secs(1), true), Scheduled::Later(next.unwrap() - Duration::from_secs(1)));
    }

    #[test]
    fn a_busy_service_waits_and_no_schedule_asks_nothing() {
        let created = at("2026-12-01T10:00:00Z");
        assert_eq!(decide(&spec(Some("*/10 * * * * *")), created, at("2026-12-01T10:00:30Z"), false), Scheduled::Waiting);
        assert_eq!(decide(&spec(None), created, at("2027-01-01T00:00:00Z"), true), Scheduled::Nothing);
        let mut none = spec(None);
        none.backup = None;
        assert_eq!(decide(&none, created, at("2027-01-01T00:00:00Z"), true), Scheduled::Nothing);
    }

    #[test]
    fn the_count_starts_at_the_last_moment_asked_for_else_the_creation() {
        let created = at("2026-12-01T10:00:00Z");
        let now = at("2026-12-04T00:00:00Z");
        assert_eq!(since(Some("2026-12-03T03:00:00Z"), Some(created), now), at("2026-12-03T03:00:00Z"));
        assert_eq!(since(None, Some(created), now), created);
        assert_eq!(since(Some("not a time"), Some(created), now), created);
        assert_eq!(since(None, None, now), now);
    }
}
