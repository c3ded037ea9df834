//! A service's init tasks: they run after its members start and until the engine reports the
//! whole service formed. Their progress is kept in the store, so a restarted daemon resumes
//! where it stopped. Redis Cluster (`redis-cli --cluster`) and Cassandra (the members beyond the
//! seeds started one at a time, then the default superuser replaced) have work to do; the others
//! form by themselves from their configs and are only waited for.

use std::sync::Arc;
use std::time::Duration;

use firecamp_api::Role;
use firecamp_catalog::ServicePlan;
use tokio::process::Command;

use crate::error::{LocalError, Result};
use crate::runtime::Runtime;
use crate::status::{is_redis_cluster, membership_problem, probe_all, target};

/// How often the init task asks the engine again: the service is ACTIVE only once it has seen
/// it formed, so this is the create's last wait (a pass costs a probe of each member).
const POLL: Duration = Duration::from_millis(100);

pub async fn run(rt: Arc<Runtime>, name: String, plan: ServicePlan, bin_dir: String) {
    loop {
        match step(&rt, &name, &plan, &bin_dir).await {
            Ok(true) => {
                tracing::info!(service = %name, "service formed");
                return;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(service = %name, error = %e, "init step failed; retrying");
                let _ = rt.update_init(&name, |i| i.message = Some(format!("init: {e}")));
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One pass: true once the service is formed.
async fn step(rt: &Runtime, name: &str, plan: &ServicePlan, bin_dir: &str) -> Result<bool> {
    let Some(rec) = rt.record(name)? else {
        return Ok(true);
    };
    if rec.init.done {
        return Ok(true);
    }
    if let Some(waiting) = crate::cassandra::start_joining(rt, &rec).await? {
        rt.update_init(name, |i| i.message = Some(waiting))?;
        return Ok(false);
    }
    let roles = probe_all(&rec).await;
    let waiting: Vec<&str> = roles.iter().filter(|(_, r)| r.is_err()).map(|(m, _)| m.as_str()).collect();
    if !waiting.is_empty() {
        rt.update_init(name, |i| i.message = Some(format!("waiting for {} to answer", waiting.join(", "))))?;
        return Ok(false);
    }
    // Redis Cluster's steps change who the members are; the other engines' roles are the ones
    // just probed (asking again would only lengthen each pass).
    let (rec, roles) = if is_redis_cluster(&rec) {
        redis_cluster(rt, &rec, plan, bin_dir).await?;
        let rec = rt.record(name)?.ok_or_else(|| LocalError::NotFound(name.into()))?;
        let roles = probe_all(&rec).await;
        (rec, roles)
    } else {
        (rec, roles)
    };
    // Cassandra's default superuser is replaced once every member answers (the roles keyspace
    // then has all its replicas); the roles probed with it stay valid.
    let rec = if rec.spec.engine == firecamp_core::EngineKind::Cassandra {
        let first = rec.ips.keys().next().cloned().ok_or_else(|| LocalError::Internal("a service without members".into()))?;
        crate::cassandra::superuser_step(rt, &rec, &first).await?;
        rt.record(name)?.ok_or_else(|| LocalError::NotFound(name.into()))?
    } else {
        rec
    };
    match membership_problem(&rec, &roles).await {
        None => {
            // Kafka's `client` may use what its ACLs allow, created once the cluster formed.
            if rec.spec.engine == firecamp_core::EngineKind::Kafka {
                kafka_client_acls(rt, &rec).await?;
            }
            // A restored cluster gets its data once formed, before it counts as ACTIVE.
            if is_redis_cluster(&rec) && rec.restore.is_some() {
                rt.load_redis_cluster(&rec, bin_dir).await?;
            }
            rt.update_init(name, |i| {
                i.done = true;
                i.message = None;
            })?;
            Ok(true)
        }
        Some(p) => {
            rt.update_init(name, |i| i.message = Some(format!("forming: {p}")))?;
            Ok(false)
        }
    }
}

/// Creates the cluster from the catalog's shard layout: the first member of each shard is its
/// primary (`--cluster create` with those only), then each other member joins as a replica of
/// its shard's primary. Each step is recorded, and checked against the cluster before it runs.
async fn redis_cluster(rt: &Runtime, rec: &crate::store::ServiceRecord, plan: &ServicePlan, bin_dir: &str) -> Result<()> {
    let addr = |m: &str| format!("{}:{}", rec.ips[m], firecamp_catalog::redis::PORT);
    let primaries: Vec<&firecamp_catalog::MemberPlan> = plan.members.iter().filter(|m| m.role == firecamp_catalog::Role::Primary).collect();
    let first = primaries.first().ok_or_else(|| LocalError::Internal("a Redis Cluster plan without primaries".into()))?;
    // redis-cli verifies every member against the service's CA (the members serve TLS only);
    // the daemon reads the copy in the first primary's TLS directory.
    let cacert = format!("{}/{}", first.paths.tls_dir, firecamp_catalog::tls::CA_FILE);
    const CREATE: &str = "cluster-create";
    if !rec.init.steps.iter().any(|s| s == CREATE) {
        let t = target(rec, first.member.name.as_str()).ok_or_else(|| LocalError::Internal("no address".into()))?;
        let assigned = firecamp_probe::redis::cluster_info(&t).await.map(|ci| ci.slots_assigned).unwrap_or(0);
        if assigned == 0 {
            rt.update_init(&rec.name, |i| i.message = Some(format!("creating the cluster with {} primaries", primaries.len())))?;
            let mut args = vec!["--cluster".to_string(), "create".into()];
            args.extend(primaries.iter().map(|m| addr(m.member.name.as_str())));
            args.extend(["--cluster-replicas".into(), "0".into(), "--cluster-yes".into()]);
            redis_cli(rec, bin_dir, &cacert, &args).await?;
        }
        rt.update_init(&rec.name, |i| i.steps.push(CREATE.into()))?;
    }
    for m in plan.members.iter().filter(|m| m.role == firecamp_catalog::Role::Replica) {
        let step = format!("replica {}", m.member.name);
        let rec = rt.record(&rec.name)?.ok_or_else(|| LocalError::NotFound(rec.name.clone()))?;
        if rec.init.steps.contains(&step) {
            continue;
        }
        let shard_primary = plan
            .members
            .iter()
            .find(|p| p.role == firecamp_catalog::Role::Primary && p.shard == m.shard)
            .ok_or_else(|| LocalError::Internal(format!("no primary for the shard of {}", m.member.name)))?;
        let me = target(&rec, m.member.name.as_str()).ok_or_else(|| LocalError::Internal("no address".into()))?;
        let already = firecamp_probe::redis::role(&me).await.ok() == Some(Role::Replica);
        if !already {
            let pt = target(&rec, shard_primary.member.name.as_str()).ok_or_else(|| LocalError::Internal("no address".into()))?;
            let id = firecamp_probe::redis::cluster_myid(&pt).await.map_err(|e| LocalError::Internal(e.to_string()))?;
            rt.update_init(&rec.name, |i| i.message = Some(format!("adding {} as a replica of {}", m.member.name, shard_primary.member.name)))?;
            let args = [
                "--cluster".to_string(),
                "add-node".into(),
                addr(m.member.name.as_str()),
                addr(shard_primary.member.name.as_str()),
                "--cluster-slave".into(),
                "--cluster-master-id".into(),
                id,
            ];
            redis_cli(&rec, bin_dir, &cacert, &args).await?;
        }
        rt.update_init(&rec.name, |i| i.steps.push(step.clone()))?;
    }
    Ok(())
}

/// Runs redis-cli over TLS verified against `cacert`, with the password in REDISCLI_AUTH (never
/// on its command line).
pub(crate) async fn redis_cli(rec: &crate::store::ServiceRecord, bin_dir: &str, cacert: &str, args: &[String]) -> Result<()> {
    let exe = if bin_dir.is_empty() { "redis-cli".to_string() } else { format!("{bin_dir}/redis-cli") };
    let password = rec.secrets.get(firecamp_catalog::redis::PASSWORD).cloned().unwrap_or_default();
    let out = Command::new(&exe)
        .args(["--tls", "--cacert", cacert])
        .args(args)
        .env("REDISCLI_AUTH", password)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(LocalError::io(format!("running {exe}")))?;
    if out.status.success() {
        tracing::info!(service = %rec.name, args = %args.join(" "), "redis-cli done");
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        let last: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).rev().take(3).collect();
        Err(LocalError::Internal(format!("redis-cli {} failed ({}): {}", args[..2].join(" "), out.status, last.join(" / "))))
    }
}

/// The ACLs of Kafka's `client`: every operation on every topic, group and transactional id
/// (nothing on the cluster: configs, ACLs and quotas are `admin`'s). Created through the first
/// member as `admin`; creating them again changes nothing.
async fn kafka_client_acls(rt: &Runtime, rec: &crate::store::ServiceRecord) -> Result<()> {
    use firecamp_probe::kafka::{AllowAll, GROUP, TOPIC, TRANSACTIONAL_ID, allow_all};
    const STEP: &str = "client-acls";
    if rec.init.steps.iter().any(|s| s == STEP) {
        return Ok(());
    }
    let first = rec.ips.keys().next().ok_or_else(|| LocalError::Internal("a service without members".into()))?;
    let t = target(rec, first).ok_or_else(|| LocalError::Internal(format!("{first} has no address")))?;
    let principal = format!("User:{}", firecamp_catalog::kafka::CLIENT_USER);
    let acls = [TOPIC, GROUP, TRANSACTIONAL_ID].map(|resource_type| AllowAll { principal: &principal, resource_type });
    allow_all(&t, firecamp_catalog::kafka::ADMIN_USER, &acls).await.map_err(|e| LocalError::Internal(format!("creating the ACLs of {principal}: {e}")))?;
    rt.update_init(&rec.name, |i| i.steps.push(STEP.into()))?;
    Ok(())
}
