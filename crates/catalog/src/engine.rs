//! What every engine of the catalog provides.

use firecamp_core::operation::UpdatePolicy;
use firecamp_core::spec::Resources;
use firecamp_core::{EngineKind, Member, ServiceSpec, ValidationErrors};

use crate::layout::MemberPaths;
use crate::plan::{ConfigFile, ContainerPlan, InitTask, Port, RenderContext, Role};
use crate::version::EngineVersion;

pub trait Engine: Sync {
    fn kind(&self) -> EngineKind;
    /// Supported versions, oldest first; the last is the default.
    fn versions(&self) -> &'static [EngineVersion];
    /// Engine rules on replicas and options (common rules are checked elsewhere).
    fn validate(&self, spec: &ServiceSpec, errs: &mut ValidationErrors);
    /// The engine's rule on the size a service is asked to have (a ZooKeeper ensemble is odd),
    /// beyond the common 1 to 99; `None` when `replicas` is allowed. Not applied to the sizes a
    /// scale passes through one member at a time ([`crate::plan_mid_scale`]).
    fn size_rule(&self, _replicas: u32) -> Option<String> {
        None
    }
    /// Whether members must keep one IP wherever they run (clients cache member IPs).
    fn needs_static_ip(&self) -> bool;
    fn default_resources(&self) -> Resources;
    fn ports(&self, spec: &ServiceSpec) -> Vec<Port>;
    /// Passwords the service Secret holds.
    fn secret_keys(&self) -> &'static [&'static str];
    /// Bootstrap role and shard of member `index`.
    fn role(&self, spec: &ServiceSpec, index: u32) -> (Role, Option<u32>);
    /// The role the client Service selects (the primary, for single-writer engines).
    fn client_role(&self, spec: &ServiceSpec) -> Option<Role>;
    /// The member's config files, rendered for its paths.
    fn files(&self, ctx: &RenderContext, member: &Member, paths: &MemberPaths) -> Vec<ConfigFile>;
    fn container(&self, version: &EngineVersion) -> ContainerPlan;
    /// Whether the engine can hand the primary role to a chosen replica (PostgreSQL promote,
    /// Redis `FAILOVER` / `CLUSTER FAILOVER`); ZooKeeper cannot choose its leader.
    fn supports_switchover(&self) -> bool;
    /// The order of day-2 restarts when the service does not say.
    fn default_update_policy(&self) -> UpdatePolicy {
        UpdatePolicy::PrimaryLast
    }
    /// Whether a change of engine parameter `key` applies without a restart.
    fn reloadable(&self, _key: &str) -> bool {
        false
    }
    /// Why FireCamp sets parameter `key` itself (so `config` may not), if it does; checked
    /// before the allow-list (`crate::params::allowed`), for a message that says what to do.
    fn owned_config_key(&self, _key: &str) -> Option<&'static str> {
        None
    }
    /// Whether members serve TLS with the service CA's certificates (`crate::tls`).
    fn supports_tls(&self) -> bool {
        false
    }
    /// Tasks that finish the service's creation once its members run.
    fn init_tasks(&self, _ctx: &RenderContext) -> Vec<InitTask> {
        Vec::new()
    }
}

pub fn engine(kind: EngineKind) -> &'static dyn Engine {
    match kind {
        EngineKind::Postgresql => &crate::postgresql::PostgreSql,
        EngineKind::Redis => &crate::redis::Redis,
        EngineKind::Zookeeper => &crate::zookeeper::ZooKeeper,
        EngineKind::Kafka => &crate::kafka::Kafka,
        EngineKind::Mariadb => &crate::mariadb::MariaDb,
        EngineKind::Cassandra => &crate::cassandra::Cassandra,
    }
}
