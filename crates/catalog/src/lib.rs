//! FireCamp's catalog: per engine, the pinned images, ports, replica rules, config files of each
//! member, probes and roles. Pure: it turns a validated spec into a [`ServicePlan`] that the
//! Kubernetes builders and the local runtime both consume, so only paths and addresses differ.

pub mod cassandra;
pub mod engine;
pub mod jvm;
pub mod kafka;
pub mod layout;
pub mod mariadb;
pub mod metrics;
pub mod operation;
pub mod params;
pub mod plan;
pub mod postgresql;
pub mod redis;
mod render;
pub mod tls;
pub mod version;
pub mod zookeeper;

pub use engine::{Engine, engine};
pub use layout::{Binding, KubernetesLayout, Layout, LocalLayout, MemberPaths};
pub use plan::{ConfigFile, ContainerPlan, InitTask, MemberPlan, Port, Probe, Role, ServicePlan, plan, plan_mid_scale, plan_with_primary};
pub use version::EngineVersion;

/// Specs for examples and tests: a small, valid service of each engine.
pub mod examples {
    use firecamp_core::spec::{RedisMode, RedisOptions, VolumeSpec, Volumes};
    use firecamp_core::{EngineKind, ServiceSpec};

    pub fn spec(engine: EngineKind, replicas: u32) -> ServiceSpec {
        ServiceSpec {
            engine,
            version: None,
            replicas,
            zones: ["us-east-1a", "us-east-1b", "us-east-1c"].map(String::from).to_vec(),
            resources: Default::default(),
            volumes: Volumes { data: VolumeSpec::new("10Gi"), journal: None },
            postgresql: None,
            redis: None,
            zookeeper: None,
            kafka: None,
            mariadb: None,
            cassandra: None,
            update_policy: None,
            config: Default::default(),
            member_config: Default::default(),
            stopped: false,
            labels: Default::default(),
            annotations: Default::default(),
            clients: Default::default(),
            tls: Default::default(),
            failover: Default::default(),
            backup: None,
        }
    }

    pub fn redis_cluster(shards: u32, replicas: u32) -> ServiceSpec {
        let mut s = spec(EngineKind::Redis, replicas);
        s.redis = Some(RedisOptions { mode: RedisMode::Cluster, shards: Some(shards), maxmemory_policy: None });
        s
    }
}
