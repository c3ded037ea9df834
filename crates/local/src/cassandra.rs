//! Cassandra on the local runtime: whom probes log in as, the members beyond the seeds started
//! one at a time as a ring forms, the init step that replaces Cassandra's default superuser with
//! FireCamp's, the ring as the members' gossip has it, and nodetool over a member's JMX: drain
//! before a restart stops it, decommission when a scale takes it away.

use std::time::Instant;

use firecamp_api::Role;
use firecamp_catalog::cassandra::{ADMIN_PASSWORD, ADMIN_USER, DEFAULT_PASSWORD, DEFAULT_SUPERUSER, JMX_PORT};
use firecamp_probe::ProbeError;
use firecamp_probe::cassandra::{self, Consistency, CqlSession};

use crate::error::{LocalError, Result};
use crate::runtime::Runtime;
use crate::status::target;
use crate::store::ServiceRecord;

/// The init step after which FireCamp's superuser exists and Cassandra's default one is locked.
pub const SUPERUSER_STEP: &str = "superuser";

/// A session with `member` as FireCamp's superuser; until the init step has made it (a ring
/// that just formed), as Cassandra's default superuser.
pub async fn session(rec: &ServiceRecord, member: &str) -> Result<CqlSession, ProbeError> {
    let t = target(rec, member).ok_or_else(|| ProbeError::Failed { addr: member.into(), message: "no address".into() })?;
    match cassandra::session(&t, ADMIN_USER).await {
        Ok(s) => Ok(s),
        Err(e) if rec.init.steps.iter().any(|s| s == SUPERUSER_STEP) => Err(e),
        Err(_) => cassandra::session(&t.with_password(DEFAULT_PASSWORD), DEFAULT_SUPERUSER).await,
    }
}

/// Every member is a peer: it answers once a login succeeds and `system.local` reads.
pub async fn role(rec: &ServiceRecord, member: &str) -> Result<Role, ProbeError> {
    let s = session(rec, member).await?;
    s.texts("SELECT release_version FROM system.local", Consistency::One).await?;
    Ok(Role::Peer)
}

/// What is wrong with the ring as `member`'s gossip has it: every member of the service must be
/// in it with status NORMAL (joined, serving its ranges); `None` when all are.
pub async fn ring_problem(rec: &ServiceRecord, member: &str) -> Option<String> {
    let ring = match session(rec, member).await {
        Ok(s) => s.ring().await,
        Err(e) => Err(e),
    };
    let ring = match ring {
        Ok(r) => r,
        Err(e) => return Some(e.to_string()),
    };
    let mut missing = Vec::new();
    for (m, ip) in &rec.ips {
        match ring.iter().find(|(a, _)| *a == std::net::IpAddr::V4(*ip)) {
            Some((_, status)) if status == "NORMAL" => {}
            Some((_, status)) => missing.push(format!("{m} ({status})")),
            None => missing.push(format!("{m} (unknown)")),
        }
    }
    (!missing.is_empty()).then(|| format!("{member} sees {} not in the ring: {}", missing.len(), missing.join(", ")))
}

/// Whether member `index` of a ring still being formed is started by the init task rather than
/// with the others: it is not a seed, so it bootstraps, and Cassandra's bootstraps must come one
/// at a time (two at once pick the same tokens: "Bootstrap Token collision").
pub fn joins_later(rec: &ServiceRecord, index: u32) -> bool {
    rec.spec.engine == firecamp_core::EngineKind::Cassandra && !rec.init.done && !firecamp_catalog::cassandra::is_seed(&rec.spec, index)
}

/// Starts the members of a forming ring that join by bootstrap, in order: each once every member
/// before it serves CQL (a member opens its CQL port once it has joined, so no login is needed
/// to see it). `Some(what it waits for)` until all of them are started.
pub async fn start_joining(rt: &Runtime, rec: &ServiceRecord) -> Result<Option<String>> {
    let index = |m: &str| firecamp_core::MemberName::from_string(m).parts().map(|(_, i)| i);
    let mut joining: Vec<(u32, String)> = rec.ips.keys().filter_map(|m| index(m).map(|i| (i, m.clone()))).filter(|(i, _)| joins_later(rec, *i)).collect();
    joining.sort();
    for (i, member) in joining {
        if rt.is_running(&rec.name, &member).await {
            continue;
        }
        for (m, ip) in rec.ips.iter().filter(|(m, _)| index(m).is_some_and(|j| j < i)) {
            if tokio::net::TcpStream::connect((*ip, firecamp_catalog::cassandra::CQL_PORT)).await.is_err() {
                return Ok(Some(format!("waiting for {m} to join the ring before {member} bootstraps")));
            }
        }
        rt.log_sink(&rec.name, &member).line(&format!("firecamp: {member} bootstraps now that the members before it have joined"));
        rt.start_member(rec, &member).await?;
        return Ok(Some(format!("{member} bootstrapping")));
    }
    Ok(None)
}

/// Whether `member` is out of the ring as `via`'s gossip has it: gone, or `LEFT` (decommissioned).
pub async fn has_left(rec: &ServiceRecord, member: &str, via: &str) -> Result<bool, String> {
    let ip = rec.ips.get(member).ok_or_else(|| format!("{member} has no address"))?;
    let ring = session(rec, via).await.map_err(|e| e.to_string())?.ring().await.map_err(|e| e.to_string())?;
    Ok(ring.iter().find(|(a, _)| *a == std::net::IpAddr::V4(*ip)).is_none_or(|(_, status)| status == "LEFT"))
}

/// `member` leaves the ring by `nodetool decommission`: it streams its ranges to the members that
/// take them over, then stops serving (its process stays up until it is stopped). Nothing to do
/// when another member's gossip has it gone already (a resumed step). nodetool logs in to the
/// member's JMX as [`ADMIN_USER`] with the password file its start script wrote (`-pwf`: no
/// password in argv).
pub async fn decommission(rt: &Runtime, rec: &ServiceRecord, member: &str, deadline: Instant) -> Result<(), String> {
    let via = rec.ips.keys().find(|m| m.as_str() != member).ok_or_else(|| format!("{} has no member but {member}", rec.name))?.clone();
    if has_left(rec, member, &via).await? {
        return Ok(());
    }
    rt.log_sink(&rec.name, member).line(&format!("firecamp: {member} leaves the ring (nodetool decommission): its ranges stream to the others"));
    nodetool(rt, rec, member, "decommission", deadline).await?;
    // The member announces it has left, then nodetool returns: the others' gossip has it soon.
    crate::operations::poll(deadline, &format!("{member} was decommissioned but {via} still has it in the ring"), || async {
        if has_left(rec, member, &via).await? { Ok(()) } else { Err("not LEFT yet".to_string()) }
    })
    .await
}

/// `nodetool drain` of `member` before a restart stops it: it stops taking writes and flushes
/// its memtables, so its commit log has nothing to replay at the next start.
pub async fn drain(rt: &Runtime, rec: &ServiceRecord, member: &str, deadline: Instant) -> Result<(), String> {
    nodetool(rt, rec, member, "drain", deadline).await?;
    rt.log_sink(&rec.name, member).line(&format!("firecamp: {member} drained (nodetool drain): no more writes, memtables flushed"));
    Ok(())
}

/// Runs `nodetool <command>` against `member`'s JMX, logged in as [`ADMIN_USER`] with the
/// password file its start script wrote (`-pwf`: no password in argv), until `deadline`.
async fn nodetool(rt: &Runtime, rec: &ServiceRecord, member: &str, command: &str, deadline: Instant) -> Result<(), String> {
    let ip = rec.ips.get(member).ok_or_else(|| format!("{member} has no address"))?.to_string();
    let installed = rt.installed(rec).map_err(|e| e.to_string())?;
    let launcher = std::path::Path::new(&installed.bin_dir).join("cassandra-nodetool");
    let dir = rt.cfg.service_dir(&rec.name).join(member);
    let pwf = dir.join("run").join("jmx.password");
    let mut cmd = tokio::process::Command::new(&launcher);
    cmd.arg(dir.join("config")).args(["-h", &ip, "-p", &JMX_PORT.to_string(), "-u", ADMIN_USER, "-pwf"]).arg(&pwf).arg(command).kill_on_drop(true);
    let out = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), cmd.output())
        .await
        .map_err(|_| format!("nodetool {command} of {member} did not end in time"))?
        .map_err(|e| format!("running {}: {e}", launcher.display()))?;
    if !out.status.success() {
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let why: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("at ")).take(3).collect();
        return Err(format!("nodetool {command} of {member} failed: {}", why.join(" / ")));
    }
    Ok(())
}

/// Creates FireCamp's superuser with the Secret's password, logged in as Cassandra's default
/// one, then locks the default one (no login, no superuser, a random password). Each statement
/// is idempotent and the step is recorded once done, so a daemon stopped midway does it again.
pub async fn superuser_step(rt: &Runtime, rec: &ServiceRecord, member: &str) -> Result<()> {
    if rec.init.steps.iter().any(|s| s == SUPERUSER_STEP) {
        return Ok(());
    }
    let failed = |what: &str, e: ProbeError| LocalError::Internal(format!("{what}: {e}"));
    let password = rec.secrets.get(ADMIN_PASSWORD).ok_or_else(|| LocalError::Internal(format!("the record of {} has no {ADMIN_PASSWORD}", rec.name)))?;
    // CQL takes a role's password only as a literal: only generated, alphanumeric ones get here.
    if password.is_empty() || !password.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(LocalError::Internal(format!("{ADMIN_PASSWORD} of {} is not alphanumeric", rec.name)));
    }
    let t = target(rec, member).ok_or_else(|| LocalError::Internal(format!("{member} has no address")))?;
    if cassandra::session(&t, ADMIN_USER).await.is_err() {
        rt.update_init(&rec.name, |i| i.message = Some(format!("creating the superuser {ADMIN_USER}")))?;
        let default = cassandra::session(&t.clone().with_password(DEFAULT_PASSWORD), DEFAULT_SUPERUSER)
            .await
            .map_err(|e| failed("logging in as Cassandra's default superuser", e))?;
        let create = format!("CREATE ROLE IF NOT EXISTS {ADMIN_USER} WITH PASSWORD = '{password}' AND SUPERUSER = true AND LOGIN = true");
        // The statement holds the password: an error that quotes it is not passed on as it is.
        default
            .exec(&create, Consistency::Quorum)
            .await
            .map_err(|e| LocalError::Internal(format!("creating the superuser: {}", e.to_string().replace(password.as_str(), "****"))))?;
    }
    let admin = cassandra::session(&t, ADMIN_USER).await.map_err(|e| failed(&format!("logging in as {ADMIN_USER}"), e))?;
    let lock = format!("ALTER ROLE {DEFAULT_SUPERUSER} WITH PASSWORD = '{}' AND SUPERUSER = false AND LOGIN = false", crate::runtime::password());
    match admin.exec(&lock, Consistency::Quorum).await {
        Ok(()) => {}
        // Dropped by an operator: nothing left to lock.
        Err(e) if e.to_string().contains("doesn't exist") => {}
        Err(e) => return Err(failed(&format!("locking the role {DEFAULT_SUPERUSER}"), e)),
    }
    rt.update_init(&rec.name, |i| i.steps.push(SUPERUSER_STEP.into()))?;
    tracing::info!(service = %rec.name, "Cassandra's default superuser replaced by {ADMIN_USER}");
    Ok(())
}
