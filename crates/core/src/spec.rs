//! The service spec: what a user asks for. The same type is read from CLI flags, REST bodies and
//! (later) the custom resource, so every entry point shares one set of rules.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The engines FireCamp's catalog knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Postgresql,
    Redis,
    Zookeeper,
    Kafka,
    Mariadb,
    Cassandra,
}

impl EngineKind {
    pub const ALL: [EngineKind; 6] =
        [EngineKind::Postgresql, EngineKind::Redis, EngineKind::Zookeeper, EngineKind::Kafka, EngineKind::Mariadb, EngineKind::Cassandra];

    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Postgresql => "postgresql",
            EngineKind::Redis => "redis",
            EngineKind::Zookeeper => "zookeeper",
            EngineKind::Kafka => "kafka",
            EngineKind::Mariadb => "mariadb",
            EngineKind::Cassandra => "cassandra",
        }
    }

    /// Parses an engine name; the error lists the engines there are.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|e| e.as_str() == s).ok_or_else(|| {
            let all: Vec<_> = Self::ALL.iter().map(|e| e.as_str()).collect();
            format!("unknown engine {s:?}; FireCamp's catalog has: {}", all.join(", "))
        })
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stateful service as the user describes it. The name lives outside the spec (it is the
/// object's name) and is validated with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSpec {
    pub engine: EngineKind,
    /// Engine version from the catalog's pinned list (e.g. `16`, `7.2`, `3.9`); newest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Number of members.
    pub replicas: u32,
    /// Availability zones, in order: member i lives in `zones[i mod zones.len()]`, always.
    pub zones: Vec<String>,
    #[serde(default)]
    pub resources: Resources,
    pub volumes: Volumes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgresql: Option<PostgresOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zookeeper: Option<ZooKeeperOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mariadb: Option<MariadbOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cassandra: Option<CassandraOptions>,
    /// Order of restarts in day-2 operations; the engine's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_policy: Option<crate::operation::UpdatePolicy>,
    /// Engine parameters for every member (`postgresql.conf`, `redis.conf`, `zoo.cfg` keys).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Engine parameters of single members, by member name; they win over `config`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub member_config: BTreeMap<String, BTreeMap<String, String>>,
    /// Every member stopped, data kept (`firecamp service stop`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
    /// Labels added to every object of the service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to every object of the service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Who may connect to the members besides each other and the manage service (on
    /// Kubernetes, the service's NetworkPolicy).
    #[serde(default, skip_serializing_if = "Clients::is_default")]
    pub clients: Clients,
    /// How clients connect to engines that serve TLS (every member does, with a certificate
    /// from the service's own CA).
    #[serde(default, skip_serializing_if = "TlsSpec::is_default")]
    pub tls: TlsSpec,
    /// Automatic failover of a lost primary (PostgreSQL, Redis replication mode; the local runtime
    /// and Kubernetes with the roles from the engines).
    #[serde(default, skip_serializing_if = "FailoverSpec::is_default")]
    pub failover: FailoverSpec,
    /// Backups (PostgreSQL, Redis, ZooKeeper on the local runtime; on Kubernetes all but a
    /// Redis Cluster).
    /// PostgreSQL: every WAL file archived as it fills, base backups on request or schedule, so
    /// the service can be restored to any moment since its oldest kept backup. Redis, ZooKeeper:
    /// snapshots, each restored as it was taken. See docs/backup.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSpec>,
}

/// How a service is backed up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupSpec {
    /// How many base backups are kept (1 to 100, 7 when absent): after each backup the oldest
    /// beyond this go, and with them the archived WAL only they needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<u32>,
    /// When base backups are taken by themselves: a cron expression in UTC (`0 3 * * *`: each
    /// day at 03:00; a sixth field first for seconds). None when absent: backups on request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

impl BackupSpec {
    pub const DEFAULT_RETENTION: u32 = 7;
    pub const RETENTION_RANGE: std::ops::RangeInclusive<u32> = 1..=100;
    pub fn retention(&self) -> u32 {
        self.retention.unwrap_or(Self::DEFAULT_RETENTION)
    }

    /// Why `schedule` is not a cron expression, if it is not.
    pub fn schedule_problem(schedule: &str) -> Option<String> {
        schedule
            .parse::<croner::Cron>()
            .err()
            .map(|e| format!("{schedule:?} is not a cron expression (minute hour day-of-month month day-of-week, in UTC; e.g. \"0 3 * * *\"): {e}"))
    }

    /// The first scheduled moment after `after`, if the service has a (valid) schedule.
    pub fn next_after(&self, after: std::time::SystemTime) -> Option<std::time::SystemTime> {
        let cron: croner::Cron = self.schedule.as_deref()?.parse().ok()?;
        let after = chrono::DateTime::<chrono::Utc>::from(after);
        cron.find_next_occurrence(&after, false).ok().map(std::time::SystemTime::from)
    }
}

/// When a lost primary is replaced by its most advanced replica.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailoverSpec {
    /// How long the primary must stay lost (unreachable, and no replica receiving from it)
    /// before a replica is promoted: 5 to 3600 seconds, 30 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_seconds: Option<u32>,
    /// No automatic failover: a lost primary waits for its member to come back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

impl FailoverSpec {
    pub const DEFAULT_DELAY_SECONDS: u32 = 30;
    pub const DELAY_RANGE: std::ops::RangeInclusive<u32> = 5..=3600;
    pub fn is_default(&self) -> bool {
        *self == FailoverSpec::default()
    }
    pub fn delay_seconds(&self) -> u32 {
        self.delay_seconds.unwrap_or(Self::DEFAULT_DELAY_SECONDS)
    }
}

/// TLS is always on for engines that support it; this only says whether plain connections are
/// accepted as well (refused by default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsSpec {
    /// Also accept clients that do not use TLS (members among themselves always use it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_plaintext: bool,
    /// Members' certificates from this cert-manager issuer instead of the service's own CA
    /// (Kubernetes with cert-manager only; fixed when the service is created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<CertIssuer>,
}

/// A cert-manager issuer (`cert-manager.io/v1`): an `Issuer` of the service's namespace or a
/// `ClusterIssuer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertIssuer {
    pub kind: IssuerKind,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum IssuerKind {
    Issuer,
    ClusterIssuer,
}

impl IssuerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IssuerKind::Issuer => "Issuer",
            IssuerKind::ClusterIssuer => "ClusterIssuer",
        }
    }
}

impl CertIssuer {
    /// `Issuer/NAME` or `ClusterIssuer/NAME`, as the CLI takes it.
    pub fn parse(s: &str) -> Result<CertIssuer, String> {
        let kind = match s.split_once('/') {
            Some(("Issuer", _)) => IssuerKind::Issuer,
            Some(("ClusterIssuer", _)) => IssuerKind::ClusterIssuer,
            _ => return Err(format!("{s:?}: expected Issuer/NAME or ClusterIssuer/NAME")),
        };
        let name = s.split_once('/').map(|(_, n)| n).unwrap_or_default();
        match crate::names::dns1123_subdomain_problem(name) {
            None => Ok(CertIssuer { kind, name: name.to_string() }),
            Some(p) => Err(format!("{s:?}: the issuer's name {p}")),
        }
    }
}

impl std::fmt::Display for CertIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind.as_str(), self.name)
    }
}

impl TlsSpec {
    pub fn is_default(&self) -> bool {
        *self == TlsSpec::default()
    }
}

/// The clients admitted to a service's ports. The members, the manage service and the pods of
/// the service's own namespace always are; these add to them. On Kubernetes FireCamp renders a
/// NetworkPolicy that admits exactly that, unless `networkPolicy` is false.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Clients {
    /// Namespaces whose pods may connect, besides the service's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Address ranges that may connect (clients outside the cluster, or through static IPs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,
    /// Render the NetworkPolicy (the default); false leaves the ports open to every pod.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub network_policy: bool,
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Default for Clients {
    fn default() -> Self {
        Clients { namespaces: Vec::new(), cidrs: Vec::new(), network_policy: true }
    }
}

impl Clients {
    pub fn is_default(&self) -> bool {
        *self == Clients::default()
    }
}

/// CPU and memory per member; engine defaults apply to what is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub requests: ResourceAmounts,
    #[serde(default)]
    pub limits: ResourceAmounts,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceAmounts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volumes {
    pub data: VolumeSpec,
    /// A separate volume for the engine's journal (PostgreSQL WAL, ZooKeeper transaction log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<VolumeSpec>,
}

/// One EBS-backed volume per member. FireCamp renders one StorageClass per zone from these
/// parameters, which is what pins a member to its zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeSpec {
    /// Size as a quantity, e.g. `100Gi`.
    pub size: String,
    #[serde(default, rename = "type")]
    pub volume_type: VolumeType,
    /// Provisioned IOPS (gp3, io1, io2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<u32>,
    /// Throughput in MiB/s (gp3 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<u32>,
    #[serde(default = "yes")]
    pub encrypted: bool,
    /// KMS key for encryption; the account's default EBS key when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

fn yes() -> bool {
    true
}

impl VolumeSpec {
    pub fn new(size: impl Into<String>) -> Self {
        VolumeSpec { size: size.into(), volume_type: VolumeType::Gp3, iops: None, throughput: None, encrypted: true, kms_key_id: None }
    }
}

/// EBS volume types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VolumeType {
    #[default]
    Gp3,
    Gp2,
    Io1,
    Io2,
    St1,
    Sc1,
}

impl VolumeType {
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeType::Gp3 => "gp3",
            VolumeType::Gp2 => "gp2",
            VolumeType::Io1 => "io1",
            VolumeType::Io2 => "io2",
            VolumeType::St1 => "st1",
            VolumeType::Sc1 => "sc1",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostgresOptions {
    /// `async` (default) or `sync`: with `sync`, a commit waits until at least one replica has it.
    #[serde(default)]
    pub replication: PostgresReplication,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PostgresReplication {
    #[default]
    Async,
    Sync,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedisOptions {
    #[serde(default)]
    pub mode: RedisMode,
    /// Cluster mode: the number of shards (at least 3); `replicas / shards` members per shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
    /// Redis `maxmemory-policy`; `noeviction` by default, since FireCamp runs Redis as a store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxmemory_policy: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// One primary, the other members its replicas.
    #[default]
    Replication,
    /// Redis Cluster: shards × members per shard.
    Cluster,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZooKeeperOptions {
    /// JVM heap as a quantity (e.g. `1Gi`); half the memory limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaOptions {
    /// JVM heap as a quantity (e.g. `1Gi`); half the memory limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CassandraOptions {
    /// JVM heap as a quantity (e.g. `1Gi`); half the memory limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MariadbOptions {
    /// Semi-synchronous replication: a commit on the primary waits until one replica has the
    /// transaction (up to 10 s, then it goes on asynchronously). Asynchronous when absent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub semi_sync: bool,
    /// `max_connections`, 10 to 10000; 200 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
}
