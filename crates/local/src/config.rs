//! How a local runtime is set up: where its state lives, where it listens, its cluster name and
//! the loopback addresses its members get.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::ips::IpPool;

/// The cluster name of the local runtime: members are `<member>.local-firecamp.com`.
pub const DEFAULT_CLUSTER: &str = "local";
pub const DEFAULT_DNS_ADDR: &str = "127.0.0.1:27053";

#[derive(Debug, Clone)]
pub struct Config {
    /// State directory: the store, members' directories, pid and log files.
    pub dir: PathBuf,
    /// The REST API's address (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The embedded DNS server's address (UDP).
    pub dns_listen: SocketAddr,
    pub cluster: String,
    /// Loopback addresses members are given, in order.
    pub ips: IpPool,
    /// Whether to keep a block of member names in /etc/hosts (needs write access).
    pub manage_hosts: bool,
    /// The hosts file (tests never need another; kept configurable for them anyway).
    pub hosts_file: PathBuf,
    /// Where to look for each engine's executables instead of the standard places.
    pub bin_dirs: BinDirs,
    /// Test hook: an operation pauses (without failing) once this many of its steps have
    /// finished in this daemon, so a test can stop the daemon mid-operation deterministically.
    pub hold_operations_after_steps: Option<usize>,
    /// A member's log is rotated when it passes this size (`member.log.1`, `.2` kept).
    pub member_log_max_bytes: u64,
    /// The group whose members may read the API token, when it exists (`firecamp`, as
    /// Docker's `docker`; tests name another).
    pub token_group: String,
    /// Where backups go: an S3 bucket and prefix, or the state directory's `backups/` when
    /// `None` (docs/backup.md).
    pub backup_target: Option<S3Target>,
    /// The `firecamp` executable PostgreSQL members run to reach an S3 archive (`firecamp wal`);
    /// the daemon's own when `None` (tests, whose daemon runs inside the test, name it).
    pub firecamp_bin: Option<PathBuf>,
}

/// An S3 backup target (`--backup-target s3://bucket/prefix`).
#[derive(Clone)]
pub struct S3Target {
    /// `s3://bucket/prefix`, checked when the runtime starts.
    pub url: String,
    /// The region; the AWS SDK's default chain's when `None` (AWS_REGION, profile, IMDS).
    pub region: Option<String>,
    /// An endpoint other than AWS's (moto in tests, MinIO); `AWS_ENDPOINT_URL` works too.
    pub endpoint: Option<String>,
    /// Keys the daemon was given in its environment: members get them in a 0600 file of their
    /// own. `None`: the daemon and the members each use the SDK's default chain (instance role).
    pub credentials: Option<StaticCredentials>,
}

/// An access key; its secret parts never appear in `Debug` output.
#[derive(Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl StaticCredentials {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, when the first two are set.
    pub fn from_env() -> Option<StaticCredentials> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Some(StaticCredentials {
            access_key_id: var("AWS_ACCESS_KEY_ID")?,
            secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN"),
        })
    }
}

impl std::fmt::Debug for S3Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Target")
            .field("url", &self.url)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials.as_ref().map(|c| &c.access_key_id))
            .finish()
    }
}

#[derive(Debug, Clone, Default)]
pub struct BinDirs {
    /// A PostgreSQL `bin` directory (default: the newest supported /usr/lib/postgresql/*/bin).
    pub postgresql: Option<PathBuf>,
    /// The directory of redis-server and redis-cli (default: PATH).
    pub redis: Option<PathBuf>,
    /// The directory holding zookeeper.jar (default: /usr/share/java).
    pub zookeeper: Option<PathBuf>,
    /// The directory of the metrics exporters, postgres_exporter and redis_exporter under
    /// Debian's or their own names (default: PATH).
    pub exporters: Option<PathBuf>,
    /// The directory of ZooKeeper's Prometheus provider and its jars (default:
    /// [`ZOOKEEPER_METRICS_DIR`], where `scripts/setup.d/30-local.sh` puts them).
    pub zookeeper_metrics: Option<PathBuf>,
    /// The directory whose `lib` holds Kafka's jars (default: [`KAFKA_DIR`]).
    pub kafka: Option<PathBuf>,
    /// The directory whose `lib` holds Cassandra's jars (default: [`CASSANDRA_DIR`]).
    pub cassandra: Option<PathBuf>,
}

/// Where Kafka's jars are looked for unless told otherwise (`scripts/setup.d/30-local.sh`
/// fetches them there).
pub const KAFKA_DIR: &str = "/usr/local/share/firecamp/kafka-4.4.0";

/// Where Cassandra's jars are looked for unless told otherwise (`scripts/setup.d/30-local.sh`
/// fetches them there).
pub const CASSANDRA_DIR: &str = "/usr/local/share/firecamp/cassandra-5.0.6";

/// Where ZooKeeper's Prometheus provider is looked for unless told otherwise.
pub const ZOOKEEPER_METRICS_DIR: &str = "/usr/local/share/firecamp/zookeeper-metrics";

impl Config {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Config {
            dir: dir.into(),
            listen: firecamp_api::LOCAL_ADDR.parse().expect("static address"),
            dns_listen: DEFAULT_DNS_ADDR.parse().expect("static address"),
            cluster: DEFAULT_CLUSTER.into(),
            ips: IpPool { first: Ipv4Addr::new(127, 0, 100, 1), count: 1000 },
            manage_hosts: true,
            hosts_file: PathBuf::from("/etc/hosts"),
            bin_dirs: BinDirs::default(),
            hold_operations_after_steps: None,
            member_log_max_bytes: crate::logs::DEFAULT_MAX_BYTES,
            token_group: crate::guard::GROUP.into(),
            backup_target: None,
            firecamp_bin: None,
        }
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.join("store.redb")
    }
    pub fn pid_path(&self) -> PathBuf {
        self.dir.join("firecamp-local.pid")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("firecamp-local.log")
    }
    /// The address file: where a running daemon says it listens.
    pub fn addr_path(&self) -> PathBuf {
        self.dir.join("firecamp-local.addr")
    }
    /// The API's bearer token (0600, or 0640 group `firecamp`); the CLI reads it from here.
    pub fn token_path(&self) -> PathBuf {
        self.dir.join("api-token")
    }
    pub fn services_dir(&self) -> PathBuf {
        self.dir.join("services")
    }
    /// Backups: `<service>/<uid>/{wal,base/<id>}` (docs/backup.md).
    pub fn backup_dir(&self) -> PathBuf {
        self.dir.join("backups")
    }
    pub fn service_dir(&self, service: &str) -> PathBuf {
        self.services_dir().join(service)
    }
    /// Helper scripts the runtime writes (the ZooKeeper launcher).
    pub fn bin_dir(&self) -> PathBuf {
        self.dir.join("bin")
    }
}

/// `$FIRECAMP_LOCAL_DIR`, else for root `/var/lib/firecamp` (server processes run as other
/// users, such as postgres, and cannot enter /root), else `$XDG_DATA_HOME/firecamp` or
/// `~/.local/share/firecamp`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FIRECAMP_LOCAL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if nix::unistd::Uid::effective().is_root() {
        return PathBuf::from("/var/lib/firecamp");
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("firecamp");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/firecamp")
}
