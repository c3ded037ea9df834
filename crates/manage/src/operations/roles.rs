//! The members' engines, reached from the manage service (role source `engine`): each member
//! at its address (static IP, else pod IP), with the service's password from its Secret. Roles
//! are asked over each engine's own protocol, pods whose role label disagrees are relabelled
//! (the client Service selects the primary by that label), and Redis switchovers are run here.
//! Members that serve TLS are verified against the service's CA (`ca.crt` of the Secret
//! `<service>-tls`) under their DNS name, whatever address is dialed.

use std::collections::BTreeMap;

use firecamp_api::Role;
use firecamp_catalog::{ServicePlan, postgresql, redis, zookeeper};
use firecamp_core::EngineKind;
use firecamp_kube::{labels, names};
use firecamp_probe::Target;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};

use crate::error::{Error, Result};

/// How long Redis may pause writes for a switchover before it gives up (`FAILOVER … TIMEOUT`).
const REDIS_FAILOVER_TIMEOUT_MS: u64 = 30_000;

/// The port, the password key of the Secret, and the login of each engine's probe.
fn access(engine: EngineKind) -> (u16, Option<&'static str>) {
    match engine {
        EngineKind::Postgresql => (postgresql::PORT, Some(postgresql::SUPERUSER_PASSWORD)),
        EngineKind::Redis => (redis::PORT, Some(redis::PASSWORD)),
        // Four-letter words need no login; a scale's `reconfig` logs in as the superuser.
        EngineKind::Zookeeper => (zookeeper::CLIENT_PORT, Some(zookeeper::SUPER_PASSWORD)),
        EngineKind::Kafka => (firecamp_catalog::kafka::CLIENT_PORT, Some(firecamp_catalog::kafka::ADMIN_PASSWORD)),
        EngineKind::Mariadb => (firecamp_catalog::mariadb::PORT, Some(firecamp_catalog::mariadb::ADMIN_PASSWORD)),
        EngineKind::Cassandra => (firecamp_catalog::cassandra::CQL_PORT, Some(firecamp_catalog::cassandra::ADMIN_PASSWORD)),
    }
}

/// Where and how to reach each member's engine now.
pub struct Engines {
    engine: EngineKind,
    port: u16,
    password: Option<String>,
    /// The service's CA certificate (PEM) when its members serve TLS.
    tls_ca: Option<String>,
    /// Member → address, for members that have one.
    addrs: BTreeMap<String, String>,
    /// Member → DNS name, the name its certificate carries.
    dns_names: BTreeMap<String, String>,
}

impl Engines {
    pub async fn read(client: &kube::Client, plan: &ServicePlan, ns: &str, pods: &BTreeMap<String, Pod>) -> Result<Self> {
        let (port, key) = access(plan.engine);
        let password = match key {
            Some(k) => secret_key(client, ns, &names::secret(&plan.name), k).await?,
            None => None,
        };
        // Until the reconciler has issued the certificates there is no CA, and no member can
        // serve TLS yet either.
        let tls_ca = if plan.tls { secret_key(client, ns, &names::tls_secret(&plan.name), firecamp_catalog::tls::CA_FILE).await? } else { None };
        let addrs = plan
            .members
            .iter()
            .filter_map(|m| {
                let pod = pods.get(&names::pod_of(&m.member.name));
                let addr = m.member.static_ip.map(|ip| ip.to_string()).or_else(|| pod.and_then(|p| p.status.as_ref()?.pod_ip.clone()))?;
                Some((m.member.name.to_string(), addr))
            })
            .collect();
        let dns_names = plan.members.iter().map(|m| (m.member.name.to_string(), m.member.dns_name.clone())).collect();
        Ok(Engines { engine: plan.engine, port, password, tls_ca, addrs, dns_names })
    }

    fn target(&self, member: &str) -> Option<Target> {
        let t = Target::new(self.addrs.get(member)?.clone(), self.port);
        let t = match &self.password {
            Some(p) => t.with_password(p.clone()),
            None => t,
        };
        // Every engine's members serve TLS (ZooKeeper's four-letter words too, on its TLS port).
        Some(match (&self.tls_ca, self.dns_names.get(member)) {
            (Some(ca), Some(name)) => t.with_tls(ca.clone(), name.clone()),
            _ => t,
        })
    }

    /// A connection to `member`'s PostgreSQL as the superuser (TLS verified), within 3 s.
    pub async fn pg(&self, member: &str) -> std::result::Result<tokio_postgres::Client, String> {
        let t = self.target_of(member)?;
        firecamp_probe::postgresql::connect(&t, postgresql::SUPERUSER).await.map_err(|e| e.to_string())
    }

    /// `INFO replication` of `member`'s Redis.
    pub async fn redis_replication(&self, member: &str) -> std::result::Result<BTreeMap<String, String>, String> {
        let t = self.target_of(member)?;
        firecamp_probe::redis::replication(&t).await.map_err(|e| e.to_string())
    }

    /// A Redis command on `member`.
    pub async fn redis(&self, member: &str, args: &[&str]) -> std::result::Result<(), String> {
        let t = self.target_of(member)?;
        firecamp_probe::redis::command(&t, args).await.map(|_| ()).map_err(|e| e.to_string())
    }

    /// `CLUSTER NODES` of `member`'s Redis.
    pub async fn cluster_nodes(&self, member: &str) -> std::result::Result<Vec<firecamp_probe::redis::Node>, String> {
        let t = self.target_of(member)?;
        firecamp_probe::redis::cluster_nodes(&t).await.map_err(|e| e.to_string())
    }

    /// `CLUSTER MYID` of `member`'s Redis.
    pub async fn cluster_myid(&self, member: &str) -> std::result::Result<String, String> {
        let t = self.target_of(member)?;
        firecamp_probe::redis::cluster_myid(&t).await.map_err(|e| e.to_string())
    }

    /// A ZooKeeper session with `member` as the superuser. It dials the member's DNS name, the
    /// name its certificate carries (the client verifies the name it dials), once the member has
    /// an address.
    pub async fn zookeeper(&self, member: &str) -> std::result::Result<(Target, firecamp_probe::zookeeper::ensemble::Client), String> {
        self.target_of(member)?;
        let name = self.dns_names.get(member).ok_or_else(|| format!("{member} has no DNS name"))?;
        let mut t = Target::new(name.clone(), self.port);
        if let Some(p) = &self.password {
            t = t.with_password(p.clone());
        }
        if let Some(ca) = &self.tls_ca {
            t = t.with_tls(ca.clone(), name.clone());
        }
        let c = firecamp_probe::zookeeper::ensemble::session(&t, zookeeper::SUPER_USER).await.map_err(|e| e.to_string())?;
        Ok((t, c))
    }

    /// The address `member` is reached at (static IP, else pod IP).
    pub fn address(&self, member: &str) -> Option<&str> {
        self.addrs.get(member).map(String::as_str)
    }

    pub fn engine(&self) -> EngineKind {
        self.engine
    }

    fn target_of(&self, member: &str) -> std::result::Result<Target, String> {
        self.target(member).ok_or_else(|| format!("{member} has no address yet"))
    }

    pub async fn role(&self, member: &str) -> Role {
        let Some(t) = self.target(member) else {
            return Role::Unknown;
        };
        let r = match self.engine {
            EngineKind::Postgresql => firecamp_probe::postgresql::role(&t, postgresql::SUPERUSER).await,
            EngineKind::Redis => firecamp_probe::redis::role(&t).await,
            EngineKind::Zookeeper => firecamp_probe::zookeeper::role(&t).await,
            EngineKind::Kafka => {
                let node = firecamp_core::member::MemberName::from_string(member).parts().map_or(u32::MAX, |(_, i)| i);
                firecamp_probe::kafka::role(&t, firecamp_catalog::kafka::ADMIN_USER, node).await
            }
            EngineKind::Mariadb => firecamp_probe::mariadb::role(&t, firecamp_catalog::mariadb::ADMIN_USER).await,
            EngineKind::Cassandra => firecamp_probe::cassandra::role(&t, firecamp_catalog::cassandra::ADMIN_USER).await,
        };
        // A member that does not answer is not (yet) back in the engine's membership.
        r.unwrap_or(Role::Unknown)
    }

    /// Starts a Redis switchover of `from`'s primary role to `to` ( `FAILOVER TO` on the primary
    /// in replication mode, `CLUSTER FAILOVER` on the replica in cluster mode). Returns once the
    /// engine accepted it; the roles show when it is done.
    pub async fn switchover(&self, plan: &ServicePlan, from: &str, to: &str) -> std::result::Result<(), String> {
        if self.engine != EngineKind::Redis {
            return Err(format!("FireCamp runs no {} switchover on Kubernetes", self.engine));
        }
        if redis_cluster(plan) {
            let t = self.target_of(to)?;
            return firecamp_probe::redis::cluster_failover(&t).await.map_err(|e| format!("CLUSTER FAILOVER on {to}: {e}"));
        }
        let (t, to_addr) = (self.target_of(from)?, self.target_of(to)?.host);
        firecamp_probe::redis::failover_to(&t, &to_addr, self.port, REDIS_FAILOVER_TIMEOUT_MS).await.map_err(|e| format!("FAILOVER TO {to} on {from}: {e}"))
    }

    /// After a switchover to `primary` (Redis replication mode): the replicas other than the
    /// old primary (which follows by itself) replicate from the new one, not through the old.
    pub async fn follow(&self, plan: &ServicePlan, primary: &str, old: &str) -> std::result::Result<(), String> {
        if self.engine != EngineKind::Redis || redis_cluster(plan) {
            return Ok(());
        }
        let host = self.target_of(primary)?.host;
        for m in plan.members.iter().map(|m| m.member.name.as_str()).filter(|m| *m != primary && *m != old) {
            let t = self.target_of(m)?;
            firecamp_probe::redis::replicate_from(&t, &host, self.port).await.map_err(|e| format!("REPLICAOF {primary} on {m}: {e}"))?;
        }
        Ok(())
    }
}

/// One key of a Secret of the service's namespace, `None` when the Secret or the key is missing.
async fn secret_key(client: &kube::Client, ns: &str, name: &str, key: &str) -> Result<Option<String>> {
    let secret = Api::<Secret>::namespaced(client.clone(), ns).get_opt(name).await.map_err(Error::kube("get", "Secret", name))?;
    Ok(secret.and_then(|s| s.data?.get(key).map(|b| String::from_utf8_lossy(&b.0).into_owned())))
}

/// Whether the plan is a Redis Cluster (members in shards).
fn redis_cluster(plan: &ServicePlan) -> bool {
    plan.members.iter().any(|m| m.shard.is_some())
}

/// Whether the manage service can switch `plan`'s primary over through the engine itself
/// (PostgreSQL over SQL with the pods' own stop, `operations::postgresql`; Redis with FAILOVER).
pub fn engine_switchover(plan: &ServicePlan) -> bool {
    matches!(plan.engine, EngineKind::Redis | EngineKind::Postgresql)
}

/// Each member's role as its engine reports it now (`Unknown` for one without a ready pod or
/// that does not answer); pods whose label disagrees are relabelled.
pub async fn probe(client: &kube::Client, engines: &Engines, plan: &ServicePlan, ns: &str, pods: &BTreeMap<String, Pod>) -> Result<BTreeMap<String, Role>> {
    // A member whose pod is not Ready counts as Unknown anyway: it is not asked (a dark node's
    // member would hold the look for the whole connect timeout).
    let ready = |m: &firecamp_catalog::MemberPlan| {
        pods.get(&names::pod_of(&m.member.name))
            .and_then(|p| p.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready").map(|c| c.status == "True"))
            .unwrap_or(false)
    };
    let asks = plan.members.iter().map(|m| async move {
        let role = if ready(m) { engines.role(m.member.name.as_str()).await } else { Role::Unknown };
        (m.member.name.clone(), role)
    });
    let roles: Vec<_> = futures::future::join_all(asks).await;
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    for (member, role) in &roles {
        let pod_name = names::pod_of(member);
        let Some(pod) = pods.get(&pod_name) else {
            continue;
        };
        if *role != Role::Unknown && pod.labels().get(labels::ROLE).map(String::as_str) != Some(role.as_str()) {
            let patch = serde_json::json!({"metadata": {"labels": {labels::ROLE: role.as_str()}}});
            api.patch(&pod_name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(Error::kube("relabel", "Pod", &pod_name))?;
        }
    }
    Ok(roles.into_iter().map(|(m, r)| (m.to_string(), r)).collect())
}
