//! A service plan: everything a runtime needs to run a service, derived purely from its spec.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use firecamp_core::names::MAX_MEMBERS;
use firecamp_core::spec::{ResourceAmounts, Resources};
use firecamp_core::validate::validate_common;
use firecamp_core::{ClusterConfig, Endpoints, EngineKind, Member, ServiceSpec, ValidationErrors, member};
use serde::Serialize;

use crate::engine::engine;
use crate::layout::{Binding, Layout};
use crate::version::{self, EngineVersion};

/// A member's role as the catalog first assigns it. Later roles are found through the engine's
/// own protocol; this is only who bootstraps as what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Replica,
    /// A member of a quorum whose leader is elected (ZooKeeper).
    Peer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
            Role::Peer => "peer",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    pub name: &'static str,
    pub port: u16,
    /// Whether clients use it (exposed by the client Service).
    pub client: bool,
}

/// A command run inside the member's container to probe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub command: Vec<String>,
    pub period_seconds: i32,
    pub timeout_seconds: i32,
    pub failure_threshold: i32,
}

/// How the engine's container runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerPlan {
    pub image: &'static str,
    pub command: Vec<String>,
    /// The engine image's own user and group.
    pub run_as_user: i64,
    pub run_as_group: i64,
    pub readiness: Probe,
    pub liveness: Probe,
    /// Guards a long first start (a replica cloning its primary) from the liveness probe.
    pub startup: Probe,
    pub termination_grace_seconds: i64,
}

/// A one-off task that finishes a service's creation once its members run (Redis Cluster
/// creation). Runs in the engine's image with the service Secret at the layout's secret dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InitTask {
    pub name: &'static str,
    pub command: Vec<String>,
    /// Attempts before the task, and so the service, is FAILED.
    pub max_attempts: i32,
    /// Kubernetes: the task reads the cluster's bucket (a restore's load), so its Job gets
    /// FireCamp's tool, the tenant's bucket credentials and room for the backup.
    pub reads_bucket: bool,
}

/// One file of a member's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigFile {
    pub name: &'static str,
    pub content: String,
    /// Unix mode the file is written with.
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberPlan {
    pub member: Member,
    pub role: Role,
    /// Redis Cluster shard of the member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    pub paths: MemberPathsView,
    pub files: Vec<ConfigFile>,
}

/// Serializable copy of [`MemberPaths`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberPathsView {
    pub config_dir: String,
    pub data_dir: String,
    pub run_dir: String,
    pub tls_dir: String,
}

/// Everything about a service that does not depend on where it runs, and its members' files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServicePlan {
    pub name: String,
    pub cluster: ClusterConfig,
    /// The spec with the version resolved.
    pub spec: ServiceSpec,
    pub engine: EngineKind,
    #[serde(skip)]
    pub version: EngineVersion,
    pub needs_static_ip: bool,
    pub ports: Vec<Port>,
    /// Requests and limits with the engine's defaults filled in.
    pub resources: Resources,
    pub container: ContainerPlan,
    /// Keys of the service Secret (generated passwords); empty when the engine has none.
    pub secret_keys: Vec<&'static str>,
    /// Members serve TLS with certificates of the service's CA (`crate::tls`).
    pub tls: bool,
    /// The port members serve their metrics on (`crate::metrics`), when they do.
    pub metrics: Option<u16>,
    /// The role the client Service selects; all members when `None`.
    pub client_role: Option<Role>,
    /// The primary and replicas endpoints of a single-writer service (`client_role` is the
    /// primary); `None` for engines whose clients reach any member.
    pub endpoints: Option<Endpoints>,
    pub members: Vec<MemberPlan>,
    /// What must run once the members run, in order.
    pub init_tasks: Vec<InitTask>,
}

impl ServicePlan {
    pub fn member(&self, name: &str) -> Option<&MemberPlan> {
        self.members.iter().find(|m| m.member.name.as_str() == name)
    }
}

/// What an engine renders from.
pub struct RenderContext<'a> {
    pub name: &'a str,
    pub spec: &'a ServiceSpec,
    pub cluster: &'a ClusterConfig,
    pub resources: &'a Resources,
    pub members: &'a [(Member, Role, Option<u32>)],
    pub binding: Binding,
    /// Kubernetes: the backup a restored service starts from (its first member's), fetched
    /// from the bucket by whoever loads it.
    pub restore: Option<crate::layout::RestoreFetch>,
}

impl RenderContext<'_> {
    /// The first member bootstrapped as primary (the initial primary of PostgreSQL and Redis).
    pub fn initial_primary(&self) -> Option<&Member> {
        self.members.iter().find(|(_, r, _)| *r == Role::Primary).map(|(m, _, _)| m)
    }

    /// The addresses a member listens on: its static IP when it binds one (plus loopback on
    /// Kubernetes), else all interfaces. Before Kubernetes allocates the IP, all interfaces.
    pub fn listen_addresses(&self, m: &Member) -> Vec<String> {
        match (self.binding, m.static_ip) {
            (Binding::StaticIp, Some(ip)) => vec![ip.to_string()],
            (Binding::StaticIpAndLoopback, Some(ip)) => vec![ip.to_string(), "127.0.0.1".into()],
            _ => vec!["0.0.0.0".into()],
        }
    }

    /// Whether the member binds one address of its own (so its ports are shared with others).
    pub fn binds_own_address(&self) -> bool {
        self.binding == Binding::StaticIp
    }
}

/// Validates the spec and builds the plan. `static_ips` are the members' allocated addresses
/// (by member name); a runtime that binds static IPs must supply one for every member.
pub fn plan(
    name: &str,
    spec: &ServiceSpec,
    cluster: &ClusterConfig,
    layout: &dyn Layout,
    static_ips: &BTreeMap<String, Ipv4Addr>,
) -> Result<ServicePlan, ValidationErrors> {
    plan_with_primary(name, spec, cluster, layout, static_ips, None)
}

/// [`plan`] for a service whose primary is no longer the member that bootstrapped as primary
/// (after a switchover): `primary` is rendered as the primary and every other member as its
/// replica (PostgreSQL `primary_conninfo`, Redis `replicaof`). Engines without a single
/// bootstrap primary (ZooKeeper, Redis Cluster) ignore it.
pub fn plan_with_primary(
    name: &str,
    spec: &ServiceSpec,
    cluster: &ClusterConfig,
    layout: &dyn Layout,
    static_ips: &BTreeMap<String, Ipv4Addr>,
    primary: Option<&str>,
) -> Result<ServicePlan, ValidationErrors> {
    plan_sized(name, spec, cluster, layout, static_ips, primary, true)
}

/// [`plan_with_primary`] for the members a service has now, which a scale moves one at a time
/// through sizes the engine refuses as a target (a ZooKeeper ensemble of 4 between 3 and 5):
/// every rule but the engine's [`Engine::size_rule`] applies. The target itself was planned
/// with it when the scale was accepted.
pub fn plan_mid_scale(
    name: &str,
    spec: &ServiceSpec,
    cluster: &ClusterConfig,
    layout: &dyn Layout,
    static_ips: &BTreeMap<String, Ipv4Addr>,
    primary: Option<&str>,
) -> Result<ServicePlan, ValidationErrors> {
    plan_sized(name, spec, cluster, layout, static_ips, primary, false)
}

fn plan_sized(
    name: &str,
    spec: &ServiceSpec,
    cluster: &ClusterConfig,
    layout: &dyn Layout,
    static_ips: &BTreeMap<String, Ipv4Addr>,
    primary: Option<&str>,
    size_rule: bool,
) -> Result<ServicePlan, ValidationErrors> {
    let eng = engine(spec.engine);
    let mut errs = ValidationErrors::default();
    cluster.validate(&mut errs);
    validate_common(name, spec, cluster, &mut errs);
    validate_engine_blocks(spec, &mut errs);
    let version = version::resolve(spec.engine.as_str(), eng.versions(), spec.version.as_deref()).map_err(|e| errs.push("spec.version", e)).ok();
    if let Some(e) = eng.size_rule(spec.replicas).filter(|_| size_rule) {
        errs.push("spec.replicas", e);
    }
    eng.validate(spec, &mut errs);
    crate::params::validate(name, spec, eng, &mut errs);
    if let Some(p) = primary
        && !(0..spec.replicas.min(MAX_MEMBERS)).any(|i| member::MemberName::new(name, i).as_str() == p)
    {
        errs.push("primary", format!("{p:?} is not a member of service {name:?}"));
    }
    let needs_static_ip = eng.needs_static_ip();
    let binding = layout.binding(needs_static_ip);
    for member_name in static_ips.keys() {
        let known = (0..spec.replicas.min(MAX_MEMBERS)).any(|i| member::MemberName::new(name, i).as_str() == member_name);
        if !known {
            errs.push("staticIps", format!("{member_name:?} is not a member of service {name:?}"));
        }
    }
    errs.clone().into_result()?;
    let version = *version.expect("resolved when there are no errors");

    let mut members = member::members(name, spec.replicas, &spec.zones, cluster, needs_static_ip);
    for m in &mut members {
        m.static_ip = static_ips.get(m.name.as_str()).copied();
        if binding == Binding::StaticIp && m.static_ip.is_none() {
            errs.push("staticIps", format!("member {} needs a static IP on this runtime", m.name));
        }
    }
    errs.into_result()?;

    let resources = with_defaults(&spec.resources, &eng.default_resources());
    let mut resolved = spec.clone();
    resolved.version = Some(version.version.to_string());
    let mut roles: Vec<(Member, Role, Option<u32>)> = members
        .into_iter()
        .map(|m| {
            let (role, shard) = eng.role(spec, m.index);
            (m, role, shard)
        })
        .collect();
    let single_primary = roles.iter().filter(|(_, r, _)| *r == Role::Primary).count() == 1 && roles.iter().all(|(_, _, s)| s.is_none());
    if let (Some(p), true) = (primary, single_primary) {
        for (m, role, _) in &mut roles {
            *role = if m.name.as_str() == p { Role::Primary } else { Role::Replica };
        }
    }
    let restore = roles.first().and_then(|(m, _, _)| layout.paths(spec.engine, m).backup.restore?.fetch);
    let ctx = RenderContext { name, spec: &resolved, cluster, resources: &resources, members: &roles, binding, restore };
    let metrics = roles.first().and_then(|(m, _, _)| layout.paths(spec.engine, m).metrics).map(|_| crate::metrics::port(spec.engine));
    let mut ports = eng.ports(&resolved);
    if let Some(port) = metrics {
        ports.push(Port { name: crate::metrics::PORT_NAME, port, client: false });
    }
    let init_tasks = eng.init_tasks(&ctx);
    let members = roles
        .iter()
        .map(|(m, role, shard)| {
            let paths = layout.paths(spec.engine, m);
            let files = eng.files(&ctx, m, &paths);
            MemberPlan {
                member: m.clone(),
                role: *role,
                shard: *shard,
                paths: MemberPathsView { config_dir: paths.config_dir, data_dir: paths.data_dir, run_dir: paths.run_dir, tls_dir: paths.tls_dir },
                files,
            }
        })
        .collect();
    Ok(ServicePlan {
        name: name.to_string(),
        cluster: cluster.clone(),
        engine: spec.engine,
        needs_static_ip,
        ports,
        metrics,
        container: eng.container(&version),
        secret_keys: eng.secret_keys().to_vec(),
        tls: eng.supports_tls(),
        client_role: eng.client_role(&resolved),
        endpoints: (eng.client_role(&resolved) == Some(Role::Primary)).then(|| Endpoints::of(name, cluster)),
        resources,
        version,
        spec: resolved,
        members,
        init_tasks,
    })
}

/// The option block must match the engine: a `redis:` block on a PostgreSQL service is a mistake.
fn validate_engine_blocks(spec: &ServiceSpec, errs: &mut ValidationErrors) {
    let blocks = [
        (EngineKind::Postgresql, spec.postgresql.is_some()),
        (EngineKind::Redis, spec.redis.is_some()),
        (EngineKind::Zookeeper, spec.zookeeper.is_some()),
        (EngineKind::Kafka, spec.kafka.is_some()),
        (EngineKind::Mariadb, spec.mariadb.is_some()),
        (EngineKind::Cassandra, spec.cassandra.is_some()),
    ];
    for (kind, present) in blocks {
        if present && kind != spec.engine {
            errs.push(format!("spec.{kind}"), format!("options for {kind} do not apply to a {} service", spec.engine));
        }
    }
}

fn with_defaults(given: &Resources, defaults: &Resources) -> Resources {
    let pick = |g: &ResourceAmounts, d: &ResourceAmounts| ResourceAmounts {
        cpu: g.cpu.clone().or_else(|| d.cpu.clone()),
        memory: g.memory.clone().or_else(|| d.memory.clone()),
    };
    let mut r = Resources { requests: pick(&given.requests, &defaults.requests), limits: pick(&given.limits, &defaults.limits) };
    // A memory request above the default limit lifts the limit with it (never request > limit).
    if given.limits.memory.is_none() && given.requests.memory.is_some() {
        r.limits.memory = given.requests.memory.clone();
    }
    if given.requests.memory.is_none() && given.limits.memory.is_some() {
        r.requests.memory = given.limits.memory.clone();
    }
    r
}

/// Memory limit in MiB, the basis of engine memory settings.
pub fn memory_limit_mib(resources: &Resources) -> Option<u128> {
    resources.limits.memory.as_deref().and_then(|m| firecamp_core::quantity::parse(m).ok()).map(|q| q.mebibytes())
}
