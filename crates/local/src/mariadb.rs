//! MariaDB's switchover and the promotion of a failover on the local runtime.

use std::time::Instant;

use firecamp_api::Role;
use firecamp_catalog::mariadb::ADMIN_USER;
use firecamp_probe::mariadb;

use crate::operations::{poll, poll_fast};
use crate::runtime::Runtime;
use crate::status;
use crate::store::ServiceRecord;

/// How long `new` may take to apply what `old` wrote while writes wait (s).
const CATCH_UP_SECS: u32 = 30;

impl Runtime {
    /// MariaDB switchover from `old` (the primary) to `new` (a linked replica):
    /// 1. `old` stops taking writes: `read_only`, then `FLUSH TABLES WITH READ LOCK` in a session
    ///    kept open (it holds even for users who may write to a read-only server); its binary
    ///    log position then says everything it acknowledged;
    /// 2. `new` applies up to that position (`MASTER_GTID_WAIT`), else `old` takes writes again
    ///    and nothing changed;
    /// 3. `old` is stopped (its clients' sessions end; the operation's next step, its restart,
    ///    starts it as a replica of `new`);
    /// 4. `new` drops its link and takes writes (`RESET SLAVE ALL`, `read_only` off);
    /// 5. `new` is recorded as the primary and every member's files follow it;
    /// 6. the other replicas restart, so start.sh points them at `new` by GTID.
    ///
    /// A resumed step whose `new` is already the primary does only 5 and 6.
    pub(crate) async fn mariadb_switchover(&self, rec: &ServiceRecord, old: &str, new: &str, deadline: Instant) -> Result<(), String> {
        let service = rec.name.as_str();
        let target = |m: &str| status::target(rec, m).ok_or_else(|| format!("{m} has no address"));
        let new_role = status::probe_role(rec, new).await.map_err(|e| e.to_string())?;
        if new_role != Role::Primary {
            if new_role != Role::Replica {
                return Err(format!("{new} answers as {new_role:?}; a switchover needs a replica"));
            }
            status::mariadb_linked(rec, new).await.map_err(|e| format!("{new} is not a linked replica: {e}"))?;
            let mut lock = mariadb::session(&target(old)?, ADMIN_USER).await.map_err(|e| format!("{old}: {e}"))?;
            let locked = async {
                lock.exec("SET GLOBAL read_only = ON").await?;
                lock.exec("FLUSH TABLES WITH READ LOCK").await?;
                lock.text("SELECT @@gtid_binlog_pos").await
            }
            .await;
            let pos = match locked {
                Ok(pos) => pos.unwrap_or_default(),
                Err(e) => {
                    // The primary takes writes again: nothing changed.
                    let _ = lock.exec("UNLOCK TABLES").await;
                    let _ = lock.exec("SET GLOBAL read_only = OFF").await;
                    lock.close().await;
                    return Err(format!("stopping writes on {old}: {e}; it takes writes again, nothing changed"));
                }
            };
            let mut n = mariadb::session(&target(new)?, ADMIN_USER).await.map_err(|e| format!("{new}: {e}"))?;
            let waited = n.text(&format!("SELECT MASTER_GTID_WAIT('{}', {CATCH_UP_SECS})", sql_gtid(&pos)?)).await;
            if waited.as_ref().ok().and_then(|w| w.as_deref()) != Some("0") {
                let _ = lock.exec("UNLOCK TABLES").await;
                let _ = lock.exec("SET GLOBAL read_only = OFF").await;
                lock.close().await;
                n.close().await;
                return Err(format!(
                    "{new} did not apply {old}'s transactions up to {pos} within {CATCH_UP_SECS} s ({waited:?}); {old} takes writes again, nothing changed"
                ));
            }
            self.stop_member(service, old).await;
            lock.close().await;
            n.exec("STOP SLAVE").await.map_err(|e| e.to_string())?;
            n.exec("RESET SLAVE ALL").await.map_err(|e| e.to_string())?;
            n.exec("SET GLOBAL read_only = OFF").await.map_err(|e| e.to_string())?;
            n.close().await;
            self.log_sink(service, old).line(&format!("firecamp: {old} stopped at {pos}; {new} is the primary from now on"));
        }
        let updated = self.set_primary(service, new).await.map_err(|e| e.to_string())?;
        let installed = self.installed(&updated).map_err(|e| e.to_string())?;
        let plan = self.plan_of(&updated, &installed).map_err(|e| e.to_string())?;
        for m in &plan.members {
            self.write_member(&updated, &plan, m.member.name.as_str()).map_err(|e| e.to_string())?;
        }
        poll_fast(deadline, &format!("{new} does not answer as the primary"), || async {
            match status::probe_role(&updated, new).await {
                Ok(Role::Primary) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await?;
        for m in updated.ips.keys().filter(|m| m.as_str() != new && m.as_str() != old) {
            self.log_sink(service, m).line(&format!("firecamp: {m} restarts to replicate from {new}"));
            self.stop_member(service, m).await;
            self.start_member(&updated, m).await.map_err(|e| e.to_string())?;
            self.wait_member(&updated, m, deadline).await?;
        }
        Ok(())
    }
}

impl Runtime {
    /// A failover's promotion (the fence step already recorded `heir` as the primary and
    /// killed `lost`): `heir` applies everything it received, drops its link and takes writes;
    /// the other replicas restart to follow it; `lost` starts again as its replica (a member that
    /// had transactions `heir` never received is refused by `heir` and stays out, DEGRADED).
    pub(crate) async fn promote_mariadb(&self, rec: &ServiceRecord, heir: &str, lost: &str, deadline: Instant) -> Result<(), String> {
        let service = rec.name.as_str();
        let t = status::target(rec, heir).ok_or_else(|| format!("{heir} has no address"))?;
        // The heir may be starting (a resumed step after a daemon restart).
        poll(deadline, &format!("{heir} does not answer"), || async { status::probe_role(rec, heir).await.map(|_| ()).map_err(|e| e.to_string()) }).await?;
        if status::probe_role(rec, heir).await.map_err(|e| e.to_string())? != Role::Primary {
            let mut s = mariadb::session(&t, ADMIN_USER).await.map_err(|e| e.to_string())?;
            if let Some(st) = mariadb::replica_status(&t, ADMIN_USER).await.map_err(|e| e.to_string())? {
                let pos = sql_gtid(&st.gtid_io_pos)?.to_string();
                let waited = s.text(&format!("SELECT MASTER_GTID_WAIT('{pos}', {CATCH_UP_SECS})")).await.map_err(|e| e.to_string())?;
                if waited.as_deref() != Some("0") {
                    tracing::warn!(%service, %heir, "did not apply all it received ({pos}) within {CATCH_UP_SECS} s; promoted anyway");
                }
            }
            s.exec("STOP SLAVE").await.map_err(|e| e.to_string())?;
            s.exec("RESET SLAVE ALL").await.map_err(|e| e.to_string())?;
            s.exec("SET GLOBAL read_only = OFF").await.map_err(|e| e.to_string())?;
            s.close().await;
        }
        for m in rec.ips.keys().filter(|m| m.as_str() != heir && m.as_str() != lost) {
            self.log_sink(service, m).line(&format!("firecamp: {m} restarts to replicate from {heir}"));
            self.stop_member(service, m).await;
            self.start_member(rec, m).await.map_err(|e| e.to_string())?;
            self.wait_member(rec, m, deadline).await?;
        }
        if !self.is_running(service, lost).await {
            self.start_member(rec, lost).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// The sequence number of domain 0 in a GTID position (`0-1-42` → 42): FireCamp's services
/// write in one domain, so it orders positions.
pub(crate) fn gtid_seq(pos: &str) -> Option<u64> {
    pos.split(',').filter_map(|g| g.trim().strip_prefix("0-")).filter_map(|r| r.split_once('-')?.1.parse().ok()).max()
}

/// A GTID position as MariaDB prints it (`0-1-42,1-3-7`), checked before it goes into a statement.
fn sql_gtid(pos: &str) -> Result<&str, String> {
    if pos.chars().all(|c| c.is_ascii_digit() || c == '-' || c == ',') { Ok(pos) } else { Err(format!("unexpected GTID position {pos:?}")) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_gtid_positions_reach_a_statement() {
        assert_eq!(super::sql_gtid("0-1-42,1-3-7"), Ok("0-1-42,1-3-7"));
        assert_eq!(super::sql_gtid(""), Ok(""));
        assert!(super::sql_gtid("0-1-1', 0); DROP").is_err());
    }

    #[test]
    fn positions_order_by_domain_0() {
        assert_eq!(super::gtid_seq("0-1-42"), Some(42));
        assert_eq!(super::gtid_seq("0-2-7,1-3-900"), Some(7));
        assert_eq!(super::gtid_seq(""), None);
    }
}
