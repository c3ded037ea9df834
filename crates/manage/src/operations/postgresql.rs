//! PostgreSQL's switchover on Kubernetes, run by the manage service over SQL as the superuser
//! (TLS, verified against the service's CA) and through the pods' own stop: no `pods/exec` and
//! no agent in the members' pods. What runs inside a member's pod is its start script, and it
//! honours the files the manage service renders: a member they name a replica never starts
//! writable (a former primary rewinds onto the new one first).
//!
//! 1. **check**: `to` is a replica streaming from the primary, and `from` is the primary;
//!    otherwise the step is refused with nothing changed;
//! 2. **fence**: `to` is recorded as the primary (`status.primary`) and every member's files
//!    name it, before anything stops: `from`'s next pod can only start as `to`'s replica;
//! 3. **stop** `from`: its pod is deleted (uid precondition); its preStop hook is a fast
//!    shutdown, which sends all of its WAL, up to the shutdown checkpoint, to the connected
//!    replicas before it exits;
//! 4. **replay checked**: `to` no longer streams (the primary is gone) and has replayed all it
//!    received, which reaches past the primary's position when the switchover began;
//! 5. **promote** `to` (`pg_promote`), a slot on it for every other member, its pod labelled
//!    primary at once (the client Service selects it), the other replicas re-pointed
//!    (`ALTER SYSTEM SET primary_conninfo`, reload).
//!
//! A step interrupted after the fence (a lost connection, a restart of the manage service) is
//! taken up again on the next pass from where the engines say it is.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use firecamp_catalog::{ServicePlan, postgresql};
use firecamp_kube::{labels, names};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::roles::Engines;
use crate::crd::FireCampService;
use crate::error::{Error, Result};
use crate::reconcile::Context;

/// How often the new primary is asked whether it has everything.
const POLL: Duration = Duration::from_millis(100);

use firecamp_probe::postgresql::lsn;

/// A string as an SQL literal (the values quoted here are FireCamp's own names and paths).
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Runs the switchover from `from` to `to`. `Ok(Err(reason))`: refused, nothing changed;
/// `Err`: interrupted after the fence, taken up again on the next pass; `Ok(Ok(()))`: `to` is
/// the primary (`from` comes back as its replica with its next pod).
pub async fn switchover(
    ctx: &Context,
    svc: &FireCampService,
    engines: &Engines,
    pods: &BTreeMap<String, Pod>,
    from: &str,
    to: &str,
    from_uid: Option<&str>,
) -> Result<std::result::Result<(), String>> {
    let fenced = svc.status.as_ref().and_then(|s| s.primary.as_deref()) == Some(to);
    // The plan that names `to` as the primary: the files of the fence, the grace, the slots.
    let plan = crate::reconcile::plan_naming(svc, ctx, to)?;
    let mut began_at = None;
    if !fenced {
        match check(engines, from, to).await {
            Ok(at) => began_at = Some(at),
            Err(why) => return Ok(Err(why)),
        }
        crate::reconcile::record_status_field(ctx, svc, "primary", serde_json::json!(to), "record the new primary of").await?;
        crate::reconcile::apply_member_files(ctx, svc, &plan).await?;
        let note = format!("{from} stops (fast shutdown); {to} becomes the primary once it has replayed all of {from}'s WAL");
        crate::reconcile::event(ctx, svc, EventType::Normal, "Switchover", note).await;
    }
    let ns = svc.namespace().unwrap_or_default();
    let pod_name = names::pod_of(&firecamp_core::MemberName::from_string(from));
    let old = pods.get(&pod_name).filter(|p| p.uid().as_deref() == from_uid && from_uid.is_some() && p.metadata.deletion_timestamp.is_none());
    if let Some(uid) = old.and_then(|p| p.uid()) {
        // Labelled a replica first: the client Service and the primary endpoint leave it now.
        let patch = serde_json::json!({"metadata": {"labels": {labels::ROLE: firecamp_api::Role::Replica.as_str()}}});
        let api = Api::<Pod>::namespaced(ctx.client.clone(), &ns);
        api.patch(&pod_name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(Error::kube("relabel", "Pod", &pod_name))?;
        let dp = DeleteParams { preconditions: Some(Preconditions { uid: Some(uid), resource_version: None }), ..Default::default() };
        match api.delete(&pod_name, &dp).await {
            Ok(_) => tracing::info!(member = %from, "primary's pod deleted for a switchover"),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => return Err(Error::kube("delete", "Pod", &pod_name)(e)),
        }
    }
    let grace = u64::try_from(plan.container.termination_grace_seconds).unwrap_or(120);
    let promoted = promote_when_caught_up(engines, to, began_at, Instant::now() + Duration::from_secs(grace + 30)).await?;
    follow(ctx, &ns, &plan, engines, to, Some(from)).await?;
    if promoted {
        crate::reconcile::event(ctx, svc, EventType::Normal, "Promoted", format!("{to} is the primary; {from} rejoins it as a replica")).await;
    }
    Ok(Ok(()))
}

/// How long a replica just restarted by the same operation may take to stream again.
const STREAMING_WITHIN: Duration = Duration::from_secs(30);

/// Step 1: `to` streams from `from`, which is the primary; returns `from`'s WAL position now.
async fn check(engines: &Engines, from: &str, to: &str) -> std::result::Result<u64, String> {
    let deadline = Instant::now() + STREAMING_WITHIN;
    loop {
        let c = engines.pg(to).await?;
        let row = c
            .query_one("SELECT pg_is_in_recovery(), coalesce((SELECT status FROM pg_stat_wal_receiver LIMIT 1), '')", &[])
            .await
            .map_err(|e| format!("{to}: {e}"))?;
        let (recovering, receiver): (bool, String) = (row.get(0), row.get(1));
        if recovering && receiver == "streaming" {
            break;
        }
        if !recovering || Instant::now() > deadline {
            return Err(format!("{to} is not a streaming replica (in recovery: {recovering}, WAL receiver: {receiver:?})"));
        }
        tokio::time::sleep(POLL).await;
    }
    let c = engines.pg(from).await?;
    let row = c.query_one("SELECT pg_is_in_recovery(), pg_current_wal_lsn()::text", &[]).await;
    match row {
        Ok(r) if !r.get::<_, bool>(0) => lsn(&r.get::<_, String>(1)).ok_or_else(|| format!("{from}: unreadable WAL position")),
        Ok(_) => Err(format!("{from} is not the primary")),
        Err(e) => Err(format!("{from}: {e}")),
    }
}

/// Steps 4 and 5: once `to` no longer streams and has replayed all it received (past `began_at`
/// when known), `pg_promote`. Returns whether this call promoted it (`false`: it already was).
async fn promote_when_caught_up(engines: &Engines, to: &str, began_at: Option<u64>, deadline: Instant) -> Result<bool> {
    loop {
        let last = match engines.pg(to).await {
            Ok(c) => {
                let row = c
                    .query_one(
                        "SELECT pg_is_in_recovery(), EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'), \
                         coalesce(pg_last_wal_receive_lsn()::text, ''), coalesce(pg_last_wal_replay_lsn()::text, '')",
                        &[],
                    )
                    .await
                    .map_err(|e| Error::engine(to, e))?;
                let (recovering, streaming, received, replayed): (bool, bool, String, String) = (row.get(0), row.get(1), row.get(2), row.get(3));
                if !recovering {
                    return Ok(false);
                }
                let (rx, rp) = (lsn(&received).unwrap_or(0), lsn(&replayed).unwrap_or(0));
                if !streaming && rp >= rx && began_at.is_none_or(|b| rx > b) {
                    promote(&c, to).await?;
                    tracing::info!(member = %to, %replayed, "promoted");
                    return Ok(true);
                }
                format!("streaming: {streaming}, received {received}, replayed {replayed}")
            }
            Err(e) => e,
        };
        if Instant::now() > deadline {
            return Err(Error::engine(to, format!("not caught up with the stopped primary in time ({last})")));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `pg_promote()` on `member`, then a checkpoint: the new timeline reaches the control file
/// with it, and pg_rewind of the former primary reads it there.
pub async fn promote(c: &tokio_postgres::Client, member: &str) -> Result<()> {
    let done: bool = c.query_one("SELECT pg_promote(true, 60)", &[]).await.map_err(|e| Error::engine(member, format!("pg_promote: {e}")))?.get(0);
    if !done {
        return Err(Error::engine(member, "the promotion did not finish within 60 s"));
    }
    c.batch_execute("CHECKPOINT").await.map_err(|e| Error::engine(member, format!("CHECKPOINT: {e}")))
}

/// `member`'s physical slot on `primary` (client `c`), unless it is there already.
pub async fn ensure_slot(c: &tokio_postgres::Client, primary: &str, member: &str) -> Result<()> {
    let slot = postgresql::slot_name(member);
    firecamp_probe::postgresql::ensure_slot(c, &slot).await.map_err(|e| Error::engine(primary, format!("creating slot {slot}: {e}")))
}

/// `member`'s slot dropped on `primary` (client `c`) once no sender uses it: true when gone.
pub async fn drop_slot(c: &tokio_postgres::Client, primary: &str, member: &str) -> Result<bool> {
    let slot = postgresql::slot_name(member);
    let active: Option<bool> = c
        .query_opt("SELECT active FROM pg_replication_slots WHERE slot_name = $1", &[&slot])
        .await
        .map_err(|e| Error::engine(primary, format!("reading slot {slot}: {e}")))?
        .map(|r| r.get(0));
    match active {
        None => Ok(true),
        Some(true) => Ok(false),
        Some(false) => {
            c.execute("SELECT pg_drop_replication_slot($1)", &[&slot]).await.map_err(|e| Error::engine(primary, format!("dropping slot {slot}: {e}")))?;
            Ok(true)
        }
    }
}

/// After `new` became the primary: a slot on it for every other member, its pod labelled
/// primary, and the replicas other than `old` re-pointed to it. A replica that cannot be
/// re-pointed now follows with its next start (its files name `new`).
pub async fn follow(ctx: &Context, ns: &str, plan: &ServicePlan, engines: &Engines, new: &str, old: Option<&str>) -> Result<()> {
    let c = engines.pg(new).await.map_err(|e| Error::engine(new, e))?;
    let others: Vec<&firecamp_catalog::MemberPlan> = plan.members.iter().filter(|m| m.member.name.as_str() != new).collect();
    for m in &others {
        ensure_slot(&c, new, m.member.name.as_str()).await?;
    }
    let pod = names::pod_of(&firecamp_core::MemberName::from_string(new));
    let patch = serde_json::json!({"metadata": {"labels": {labels::ROLE: firecamp_api::Role::Primary.as_str()}}});
    Api::<Pod>::namespaced(ctx.client.clone(), ns)
        .patch(&pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::kube("relabel", "Pod", &pod))?;
    let new_dns = plan.member(new).map(|m| m.member.dns_name.clone()).unwrap_or_default();
    for m in others.iter().filter(|m| Some(m.member.name.as_str()) != old) {
        let name = m.member.name.as_str();
        let conninfo = postgresql::primary_conninfo(&new_dns, name, &m.paths.run_dir, &m.paths.tls_dir);
        let sql = format!("ALTER SYSTEM SET primary_conninfo = {}", literal(&conninfo));
        let repointed = match engines.pg(name).await {
            Ok(rc) => match rc.batch_execute(&sql).await {
                Ok(()) => rc.query_one("SELECT pg_reload_conf()", &[]).await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e),
        };
        match repointed {
            Ok(()) => tracing::info!(member = %name, primary = %new, "replica re-pointed"),
            Err(e) => tracing::warn!(member = %name, primary = %new, error = %e, "replica not re-pointed; it follows with its next start"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_positions_compare_as_numbers() {
        assert_eq!(lsn("0/3000060"), Some(0x3000060));
        assert!(lsn("1/0").unwrap() > lsn("0/FFFFFFFF").unwrap());
        assert_eq!(lsn("junk"), None);
    }

    #[test]
    fn literals_cannot_end_early() {
        assert_eq!(literal("host=a"), "'host=a'");
        assert_eq!(literal("x'; DROP TABLE t; --"), "'x''; DROP TABLE t; --'");
    }
}
