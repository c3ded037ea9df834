//! A service's status as its engine reports it: each member's role through the probe crate, the
//! engine's membership (replicas streaming, cluster slots covered, one ZooKeeper leader), and
//! the phase that follows.

use std::collections::BTreeMap;

use firecamp_api::{MemberStatus, Phase, Role, ServiceStatus};
use firecamp_catalog::{ServicePlan, cassandra, kafka, mariadb, postgresql, redis, zookeeper};
use firecamp_core::EngineKind;
use firecamp_core::spec::RedisMode;
use firecamp_probe::{ProbeError, Target};

use crate::store::{Desired, ServiceRecord};
use crate::supervisor::RunState;

/// The client port probes use.
pub fn client_port(engine: EngineKind) -> u16 {
    match engine {
        EngineKind::Postgresql => postgresql::PORT,
        EngineKind::Redis => redis::PORT,
        EngineKind::Zookeeper => zookeeper::CLIENT_PORT,
        EngineKind::Kafka => kafka::CLIENT_PORT,
        EngineKind::Mariadb => mariadb::PORT,
        EngineKind::Cassandra => cassandra::CQL_PORT,
    }
}

pub fn target(rec: &ServiceRecord, member: &str) -> Option<Target> {
    let ip = rec.ips.get(member)?;
    let t = Target::new(ip.to_string(), client_port(rec.spec.engine));
    let secret = match rec.spec.engine {
        EngineKind::Postgresql => rec.secrets.get(postgresql::SUPERUSER_PASSWORD),
        EngineKind::Redis => rec.secrets.get(redis::PASSWORD),
        EngineKind::Zookeeper => None,
        EngineKind::Kafka => rec.secrets.get(kafka::ADMIN_PASSWORD),
        EngineKind::Mariadb => rec.secrets.get(mariadb::ADMIN_PASSWORD),
        EngineKind::Cassandra => rec.secrets.get(cassandra::ADMIN_PASSWORD),
    };
    let t = match secret {
        Some(p) => t.with_password(p.clone()),
        None => t,
    };
    // Every engine's members serve TLS (ZooKeeper's four-letter words too, on its TLS port).
    Some(match tls_ca(rec) {
        Some(ca) => t.with_tls(ca, ip.to_string()),
        None => t,
    })
}

/// The service's CA certificate (PEM), for clients verifying its members over TLS; `None` for a
/// service without a TLS bundle. A member's certificate names its address (and its DNS name), so
/// a client dialing the address verifies that name.
pub fn tls_ca(rec: &ServiceRecord) -> Option<String> {
    rec.tls.get(firecamp_catalog::tls::CA_FILE).cloned()
}

pub async fn probe_role(rec: &ServiceRecord, member: &str) -> Result<Role, ProbeError> {
    let t = target(rec, member).ok_or_else(|| ProbeError::Failed { addr: member.into(), message: "no address".into() })?;
    match rec.spec.engine {
        EngineKind::Postgresql => firecamp_probe::postgresql::role(&t, postgresql::SUPERUSER).await,
        EngineKind::Redis => firecamp_probe::redis::role(&t).await,
        EngineKind::Zookeeper => firecamp_probe::zookeeper::role(&t).await,
        EngineKind::Kafka => {
            let node = firecamp_core::member::MemberName::from_string(member).parts().map_or(u32::MAX, |(_, i)| i);
            firecamp_probe::kafka::role(&t, kafka::ADMIN_USER, node).await
        }
        EngineKind::Mariadb => firecamp_probe::mariadb::role(&t, mariadb::ADMIN_USER).await,
        EngineKind::Cassandra => crate::cassandra::role(rec, member).await,
    }
}

fn redis_mode(rec: &ServiceRecord) -> RedisMode {
    rec.spec.redis.as_ref().map(|r| r.mode).unwrap_or_default()
}

pub fn is_redis_cluster(rec: &ServiceRecord) -> bool {
    rec.spec.engine == EngineKind::Redis && redis_mode(rec) == RedisMode::Cluster
}

/// What is wrong with the service's membership, given every member's probed role; `None` when
/// every member is in it.
pub async fn membership_problem(rec: &ServiceRecord, roles: &BTreeMap<String, Result<Role, ProbeError>>) -> Option<String> {
    let down: Vec<&str> = roles.iter().filter(|(_, r)| r.is_err()).map(|(m, _)| m.as_str()).collect();
    if !down.is_empty() {
        return Some(format!("not answering: {}", down.join(", ")));
    }
    let with = |role: Role| -> Vec<String> { roles.iter().filter(|(_, r)| matches!(r, Ok(x) if *x == role)).map(|(m, _)| m.clone()).collect() };
    let n = roles.len();
    match rec.spec.engine {
        EngineKind::Postgresql => {
            let primaries = with(Role::Primary);
            let [primary] = primaries.as_slice() else {
                return Some(format!("expected one primary, found {}", primaries.len()));
            };
            let others: Vec<String> = roles.keys().filter(|m| *m != primary).cloned().collect();
            let t = target(rec, primary)?;
            match firecamp_probe::postgresql::replicas(&t, postgresql::SUPERUSER).await {
                Err(e) => Some(e.to_string()),
                Ok(rows) => {
                    let missing = firecamp_probe::postgresql::not_streaming(&rows, &others);
                    (!missing.is_empty()).then(|| format!("not streaming from {primary}: {}", missing.join(", ")))
                }
            }
        }
        EngineKind::Redis if redis_mode(rec) == RedisMode::Cluster => {
            // Every member's own view: gossip takes a moment to reach the last one added.
            for m in roles.keys() {
                let problem = match firecamp_probe::redis::cluster_info(&target(rec, m)?).await {
                    Err(e) => Some(e.to_string()),
                    Ok(ci) if !ci.covers_all_slots() => Some(format!("{m}: cluster state is not ok ({} of 16384 slots served)", ci.slots_ok)),
                    Ok(ci) if ci.known_nodes as usize != n => Some(format!("{m} knows {} of {n} members", ci.known_nodes)),
                    Ok(_) => None,
                };
                if problem.is_some() {
                    return problem;
                }
            }
            None
        }
        EngineKind::Redis => {
            let primaries = with(Role::Primary);
            let [primary] = primaries.as_slice() else {
                return Some(format!("expected one primary, found {}", primaries.len()));
            };
            match firecamp_probe::redis::replication(&target(rec, primary)?).await {
                Err(e) => Some(e.to_string()),
                Ok(info) => {
                    // `slaveN:ip=…,state=online,…`: connected and past the initial sync.
                    let online = info.iter().filter(|(k, v)| k.starts_with("slave") && v.contains("state=online")).count();
                    (online != n - 1).then(|| format!("{online} of {} replicas in sync with {primary}", n - 1))
                }
            }
        }
        EngineKind::Zookeeper => {
            if n == 1 {
                return (with(Role::Standalone).len() != 1).then(|| "not serving".to_string());
            }
            let leaders = with(Role::Leader).len();
            let followers = with(Role::Follower).len();
            (leaders != 1 || followers != n - 1).then(|| format!("{leaders} leader(s) and {followers} follower(s) among {n} members"))
        }
        // Every member answered with the quorum's leader (the active controller), so each is a
        // broker logged in to the cluster; all of them must name one leader among themselves.
        EngineKind::Kafka => {
            let leaders = with(Role::Leader).len();
            (leaders != 1).then(|| format!("{leaders} of {n} members are the active controller (want exactly one)"))
        }
        EngineKind::Mariadb => {
            let primaries = with(Role::Primary);
            let [primary] = primaries.as_slice() else {
                return Some(format!("expected one primary, found {}", primaries.len()));
            };
            for m in roles.keys().filter(|m| *m != primary) {
                if let Err(e) = mariadb_linked(rec, m).await {
                    return Some(e);
                }
            }
            None
        }
        // Every member's gossip has every member in the ring, serving (NORMAL).
        EngineKind::Cassandra => {
            for m in roles.keys() {
                if let Some(p) = crate::cassandra::ring_problem(rec, m).await {
                    return Some(p);
                }
            }
            None
        }
    }
}

/// Whether replica `member` receives and applies the current primary's changes.
pub async fn mariadb_linked(rec: &ServiceRecord, member: &str) -> Result<(), String> {
    let t = target(rec, member).ok_or("no address")?;
    match firecamp_probe::mariadb::replica_status(&t, mariadb::ADMIN_USER).await.map_err(|e| e.to_string())? {
        Some(s) if s.linked() => Ok(()),
        Some(s) => Err(format!("{member} does not replicate from {}: {}", s.master_host, if s.last_error.is_empty() { "connecting" } else { &s.last_error })),
        None => Err(format!("{member} replicates from no primary")),
    }
}

pub async fn probe_all(rec: &ServiceRecord) -> BTreeMap<String, Result<Role, ProbeError>> {
    let names: Vec<String> = rec.ips.keys().cloned().collect();
    let results = futures::future::join_all(names.iter().map(|m| probe_role(rec, m))).await;
    names.into_iter().zip(results).collect()
}

/// Everything status needs to know besides the engine's answers.
pub struct Context<'a> {
    pub rec: &'a ServiceRecord,
    pub plan: Option<&'a ServicePlan>,
    pub run: &'a BTreeMap<String, RunState>,
    pub node: &'a str,
    /// Why the runtime could not run the service (e.g. its server was uninstalled).
    pub failure: Option<String>,
}

pub async fn status(cx: &Context<'_>) -> ServiceStatus {
    let rec = cx.rec;
    let stopped = rec.desired == Desired::Stopped;
    let roles = if stopped || cx.failure.is_some() { BTreeMap::new() } else { probe_all(rec).await };
    let members: Vec<MemberStatus> = rec
        .ips
        .iter()
        .map(|(name, ip)| {
            let mp = cx.plan.and_then(|p| p.member(name));
            let run = cx.run.get(name);
            let probed = roles.get(name);
            let message = match (probed, run) {
                (_, _) if stopped => Some("stopped".to_string()),
                (Some(Err(e)), Some(r)) if r.pid.is_none() && r.last_exit.is_some() => {
                    Some(format!("restarting after exit ({}), {} restart(s): {e}", r.last_exit.clone().unwrap_or_default(), r.restarts))
                }
                (Some(Err(e)), _) => Some(e.to_string()),
                _ => None,
            };
            MemberStatus {
                name: name.clone(),
                zone: mp.map(|m| m.member.zone.clone()).unwrap_or_default(),
                dns_name: mp.map(|m| m.member.dns_name.clone()).unwrap_or_default(),
                static_ip: Some(ip.to_string()),
                node: Some(cx.node.to_string()),
                address: Some(ip.to_string()),
                role: probed.and_then(|r| r.as_ref().ok().copied()).unwrap_or_default(),
                ready: matches!(probed, Some(Ok(_))),
                revision: cx.plan.zip(mp).map(|(p, m)| crate::materialize::revision(p, m)),
                message,
                metrics: run.and_then(|r| r.metrics.clone()),
            }
        })
        .collect();
    let (phase, message) = if let Some(f) = &cx.failure {
        (Phase::Failed, Some(f.clone()))
    } else if stopped {
        (Phase::Stopped, None)
    } else if !rec.init.done {
        let all_started = rec.ips.keys().all(|m| cx.run.get(m).is_some_and(|r| r.started));
        (if all_started { Phase::Initializing } else { Phase::Creating }, rec.init.message.clone())
    } else {
        match membership_problem(rec, &roles).await {
            None => (Phase::Active, None),
            Some(p) => (Phase::Degraded, Some(p)),
        }
    };
    let endpoints = cx.plan.map(|p| rec.endpoints(&p.cluster)).unwrap_or_default();
    ServiceStatus { phase, message, members, endpoints }
}
