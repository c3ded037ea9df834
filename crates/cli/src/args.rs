//! The command line.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Shown under `firecamp --help` and in the manual page.
const EXAMPLES: &str = "\
Examples:
  sudo firecamp local up                                  # the local runtime: real servers on loopback IPs
  firecamp service create postgresql pg --replicas 3 --memory 256Mi --wait
  firecamp service get pg                                 # members, roles, the primary and replicas endpoints
  firecamp service top pg                                 # each member's connections, lag, memory, ops/s
  firecamp service connect pg                             # psql on the primary, TLS verified
  firecamp service credentials pg --ca-file pg-ca.crt     # the CA and verified connection lines
  firecamp service restart pg --policy primary-last --wait
  firecamp service create redis cache --zones us-east-1a,us-east-1b,us-east-1c --kube -n databases --wait
  firecamp install render --cluster prod --zones us-east-1a,us-east-1b,us-east-1c | kubectl apply -f -
  source <(firecamp completion bash)

Docs: README.md, docs/local.md, docs/operations.md, docs/manage.md in the source tree.";

#[derive(Parser)]
#[command(name = "firecamp", version, about = "Stateful services on Kubernetes in AWS, every member keeping its identity", after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create and manage stateful services.
    Service {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: ServiceCommand,
    },
    /// A service's (or one member's) log lines.
    Logs {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        args: LogsArgs,
    },
    /// Run FireCamp on this machine: real servers on loopback IPs (docs/local.md).
    Local {
        #[command(subcommand)]
        command: crate::local_cmd::LocalCommand,
    },
    /// Run the manage service: the FireCampService controller and the REST API.
    Manage(crate::manage_cmd::ManageArgs),
    /// Inside a member's pod: write its files and put its static IP on the host (init container).
    #[command(hide = true)]
    MemberInit(crate::member_cmd::MemberInitArgs),
    /// Inside a member's pod: hold its static IP and take it off when the pod stops (sidecar).
    #[command(hide = true)]
    MemberIp(crate::member_cmd::MemberIpArgs),
    /// Inside a PostgreSQL member: one WAL file to or from an S3 archive (wal.sh runs it).
    #[command(hide = true)]
    Wal(crate::wal_cmd::WalArgs),
    /// Inside a backup Job on Kubernetes: a PostgreSQL base backup into the cluster's bucket.
    #[command(hide = true)]
    BackupJob(crate::backup_job_cmd::BackupJobArgs),
    /// Inside a restored Redis Cluster's init Job on Kubernetes: its backup loaded into it.
    #[command(hide = true)]
    RedisLoad(crate::redis_load_cmd::RedisLoadArgs),
    /// Install FireCamp into a cluster.
    Install {
        #[command(subcommand)]
        command: crate::manage_cmd::InstallCommand,
    },
    /// List the engines and versions FireCamp can run.
    Catalog {
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Print a shell completion script: `source <(firecamp completion bash)`, or save it where
    /// your shell loads completions (e.g. /etc/bash_completion.d/firecamp).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `firecamp man > /usr/local/share/man/man1/firecamp.1`.
    Man,
}

#[derive(Subcommand)]
pub enum ServiceCommand {
    /// Create a service, or print its Kubernetes objects with --dry-run.
    Create(CreateArgs),
    /// List the services.
    List {
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Show one service and its members (phase, message, each member's zone, role, readiness).
    #[command(alias = "status")]
    Get {
        name: String,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// List a service's members: zone, role (as the engine reports it), readiness, address.
    Members {
        name: String,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Each member's key figures, refreshed: role, whether its exporter reaches the server,
    /// connections, replication lag, memory, operations per second — read from the members'
    /// metrics endpoints (docs/monitoring.md; the local runtime's members have them).
    Top {
        name: String,
        /// Seconds between frames (and between the two scrapes of `--once`, for the rates).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=3600))]
        interval: u64,
        /// Print one frame and end (scripts, `-o json|yaml`).
        #[arg(long)]
        once: bool,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// How clients connect: the service's CA certificate and a connection string per member
    /// (TLS verified against that CA), and where the password is. Never prints a password.
    Credentials {
        name: String,
        /// Write the CA's certificate to this file (the connection strings name it).
        #[arg(long, value_name = "FILE")]
        ca_file: Option<std::path::PathBuf>,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// The engine's own client (psql, redis-cli, zkCli) on a member, over TLS verified against
    /// the service's CA and logged in; arguments after `--` go to the client.
    Connect(crate::connect_cmd::ConnectArgs),
    /// Delete a service; its data volumes are kept unless --delete-volumes.
    Delete {
        name: String,
        /// Also delete the members' data (irreversible).
        #[arg(long)]
        delete_volumes: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Stop every member, replicas first; the data is kept (an operation).
    Stop {
        name: String,
        #[command(flatten)]
        op: crate::operation_cmds::OperationArgs,
    },
    /// Start a stopped service, primary first (an operation).
    Start {
        name: String,
        #[command(flatten)]
        op: crate::operation_cmds::OperationArgs,
    },
    /// Move to another engine version of the catalog, one member at a time in the policy's order.
    Upgrade {
        name: String,
        /// The catalog version (`firecamp catalog` lists them).
        #[arg(long)]
        version: String,
        #[command(flatten)]
        op: crate::operation_cmds::OperationArgs,
    },
    /// Add or remove members: a new replica copies the primary (PostgreSQL: through a slot
    /// made before it starts); a Redis Cluster by whole shards (`--shards`, with their slots'
    /// keys migrated); on the local runtime also ZooKeeper (reconfig); the highest members are
    /// removed first, after a switchover when the primary is among them, their slots and data
    /// dropped.
    #[command(group(clap::ArgGroup::new("size").required(true).args(["replicas", "shards"])))]
    Scale {
        name: String,
        /// The number of members to have.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(firecamp_core::names::MAX_MEMBERS)))]
        replicas: Option<u32>,
        /// A Redis Cluster: the number of shards to have (each with as many members as now).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(firecamp_core::names::MAX_MEMBERS)))]
        shards: Option<u32>,
        #[command(flatten)]
        op: crate::operation_cmds::OperationArgs,
    },
    /// Restart every member, one at a time in the policy's order.
    Restart {
        name: String,
        #[command(flatten)]
        op: crate::operation_cmds::OperationArgs,
    },
    /// New TLS certificates for every member, or one stage of replacing the service's CA
    /// (`--ca add`, then `switch`, then `drop`); members restart in order onto them.
    RotateCerts {
        name: String,
        /// A stage of a CA rotation: `add` (a new CA trusted next to the old; give clients the new
        /// bundle from `service credentials --ca-file` after it), `switch` (the new CA signs every
        /// member's certificate), `drop` (the old CA no longer trusted).
        #[arg(long, value_parser = firecamp_api::CaStage::parse)]
        ca: Option<firecamp_api::CaStage>,
        #[command(flatten)]
        op: crate::operation_cmds::OperationArgs,
    },
    /// Change engine parameters: reloaded where the engine can, else members restarted in order.
    Config(crate::operation_cmds::ConfigArgs),
    /// Change CPU and memory; members restarted in order.
    Resources(crate::operation_cmds::ResourcesArgs),
    /// Grow every member's volume (Kubernetes: each PVC, waited for until its capacity is the
    /// new size; the local runtime records the size). Volumes never shrink.
    ResizeVolume {
        name: String,
        /// The new size, larger than the current one (e.g. 20Gi).
        #[arg(long)]
        size: String,
        /// Which volume grows.
        #[arg(long, value_parser = ["data", "journal"], default_value = "data")]
        volume: String,
        #[command(flatten)]
        op: crate::operation_cmds::OperationArgs,
    },
    /// Cancel an operation: no further step starts (on Kubernetes at once; locally after the
    /// step under way). The spec stays as requested.
    Cancel {
        name: String,
        /// The operation; the one under way when absent.
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Take a backup now (an operation; a service created with --backup, on the local runtime):
    /// PostgreSQL's base backup or Redis's snapshot from a replica where one is up, ZooKeeper's
    /// database files from the leader (docs/backup.md).
    Backup {
        name: String,
        #[command(flatten)]
        op: crate::operation_cmds::OperationArgs,
    },
    /// A service's backups, newest first, with the window each restores to; also a deleted
    /// service's.
    Backups {
        name: String,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Make a new service from a backup, recovered to a moment (`--to-time`, PostgreSQL) or to
    /// the end of the archive (a snapshot: as taken); the backup is checked first, and nothing
    /// is made when it does not pass.
    Restore(crate::backup_cmds::RestoreArgs),
    /// Delete one backup, and the archived WAL only it needed.
    DeleteBackup { name: String, id: String },
    /// The service's operations, newest first, with their steps.
    Operations {
        name: String,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// A service's (or one member's) log lines.
    Logs(LogsArgs),
}

/// Where the manage service is.
#[derive(Args, Clone)]
pub struct ServerArgs {
    /// The manage service's URL.
    #[arg(long, global = true, env = "FIRECAMP_SERVER", default_value = concat!("http://", "127.0.0.1:27040"))]
    pub server: String,
    /// Bearer token (a Kubernetes ServiceAccount token on a cluster).
    #[arg(long, global = true, env = "FIRECAMP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate of the manage service's TLS certificate.
    #[arg(long, global = true, env = "FIRECAMP_CA_CERT")]
    pub ca_cert: Option<String>,
    /// Talk to Kubernetes directly (the FireCampService resources, through the kubeconfig)
    /// instead of the manage service's REST API.
    #[arg(long, global = true, env = "FIRECAMP_KUBE")]
    pub kube: bool,
    /// Namespace of the services.
    #[arg(short, long, global = true, env = "FIRECAMP_NAMESPACE", default_value = "default")]
    pub namespace: String,
}

#[derive(Args, Clone, Copy)]
pub struct WaitArgs {
    /// Follow the operation until it is done, showing progress.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

#[derive(Args, Clone)]
pub struct LogsArgs {
    pub service: String,
    /// One member only.
    pub member: Option<String>,
    /// Lines since this long ago (e.g. 10m, 2h) or since an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Keep printing new lines.
    #[arg(short, long)]
    pub follow: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectFormat {
    Json,
    Yaml,
}

/// A member's CPU and memory, as `service create` and `service resources` take them.
#[derive(Args)]
pub struct ResourceFlags {
    /// CPU request per member, e.g. 500m.
    #[arg(long)]
    pub cpu: Option<String>,
    /// CPU limit per member (none by default: throttling hurts databases more than sharing).
    #[arg(long)]
    pub cpu_limit: Option<String>,
    /// Memory request per member, e.g. 2Gi (the limit follows unless given).
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long)]
    pub memory_limit: Option<String>,
}

impl ResourceFlags {
    pub fn to_resources(&self) -> firecamp_core::spec::Resources {
        use firecamp_core::spec::{ResourceAmounts, Resources};
        Resources {
            requests: ResourceAmounts { cpu: self.cpu.clone(), memory: self.memory.clone() },
            limits: ResourceAmounts { cpu: self.cpu_limit.clone(), memory: self.memory_limit.clone() },
        }
    }
}

#[derive(Args)]
pub struct CreateArgs {
    /// Engine: postgresql, redis or zookeeper.
    pub engine: String,
    /// Service name (a DNS-1035 label).
    pub name: String,

    /// Engine version from the catalog (`firecamp catalog`); the newest when absent.
    #[arg(long)]
    pub version: Option<String>,
    /// Number of members (default 3; Redis cluster mode: 2 per shard).
    #[arg(long)]
    pub replicas: Option<u32>,
    /// Availability zones in placement order: member i lives in zone i mod n (a local
    /// runtime's default: `local`).
    #[arg(long, value_delimiter = ',', env = "FIRECAMP_ZONES")]
    pub zones: Vec<String>,

    #[command(flatten)]
    pub resources: ResourceFlags,

    /// Data volume size per member.
    #[arg(long, default_value = "10Gi")]
    pub volume_size: String,
    /// EBS volume type: gp3, gp2, io1, io2, st1, sc1.
    #[arg(long, default_value = "gp3")]
    pub volume_type: String,
    #[arg(long)]
    pub volume_iops: Option<u32>,
    /// gp3 throughput in MiB/s.
    #[arg(long)]
    pub volume_throughput: Option<u32>,
    /// Leave the volumes unencrypted (they are encrypted by default).
    #[arg(long)]
    pub no_encryption: bool,
    /// KMS key for the volumes' encryption.
    #[arg(long)]
    pub kms_key_id: Option<String>,
    /// Size of a separate journal volume (PostgreSQL WAL, ZooKeeper transaction log).
    #[arg(long)]
    pub journal_size: Option<String>,
    #[arg(long, default_value = "gp3")]
    pub journal_type: String,
    #[arg(long)]
    pub journal_iops: Option<u32>,
    #[arg(long)]
    pub journal_throughput: Option<u32>,

    /// Engine option as key=value (repeatable): postgresql replication=async|sync,
    /// max-connections=N; redis mode=replication|cluster, shards=N, maxmemory-policy=P;
    /// zookeeper heap=1Gi.
    #[arg(long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Label for every object of the service (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Annotation for every object of the service (repeatable).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// A namespace whose pods may connect to the members, besides the service's own (repeatable).
    #[arg(long = "client-namespace", value_name = "NAMESPACE")]
    pub client_namespaces: Vec<String>,
    /// An address range that may connect to the members, e.g. 10.1.0.0/16 (repeatable).
    #[arg(long = "client-cidr", value_name = "CIDR")]
    pub client_cidrs: Vec<String>,
    /// Render no NetworkPolicy: every pod of the cluster may reach the members' ports.
    #[arg(long)]
    pub no_network_policy: bool,
    /// Accept clients that do not use TLS as well (members always use it among themselves).
    #[arg(long)]
    pub allow_plaintext: bool,
    /// Members' certificates from this cert-manager issuer instead of the service's own CA:
    /// `Issuer/NAME` (of the service's namespace) or `ClusterIssuer/NAME`. Kubernetes with
    /// cert-manager only; fixed once the service exists.
    #[arg(long, value_name = "KIND/NAME", value_parser = firecamp_core::spec::CertIssuer::parse)]
    pub tls_issuer: Option<firecamp_core::spec::CertIssuer>,
    /// Seconds a primary must stay lost before its most advanced replica is promoted
    /// (5 to 3600; 30 when absent). PostgreSQL and Redis replication mode.
    #[arg(long, value_name = "SECONDS")]
    pub failover_delay: Option<u32>,
    /// No automatic failover: a lost primary waits for its member to come back.
    #[arg(long, conflicts_with = "failover_delay")]
    pub no_failover: bool,
    /// Back the service up (local runtime): PostgreSQL's WAL archived continuously with base
    /// backups, restorable to any moment since the oldest kept one; Redis (per shard) and
    /// ZooKeeper snapshots, restorable as taken. Backups with `service backup` or a schedule.
    #[arg(long)]
    pub backup: bool,
    /// With --backup: how many backups are kept (1 to 100; 7 when absent).
    #[arg(long, value_name = "COUNT", requires = "backup")]
    pub backup_retention: Option<u32>,
    /// With --backup: take backups by themselves on this cron schedule, in UTC
    /// (e.g. "0 3 * * *": each day at 03:00).
    #[arg(long, value_name = "CRON", requires = "backup")]
    pub backup_schedule: Option<String>,
    /// An engine parameter for every member (repeatable); only the engine's allow-list
    /// (docs/service-spec.md#engine-parameters).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// An engine parameter for one member, `member:key=value` (repeatable).
    #[arg(long = "member-set", value_name = "MEMBER:KEY=VALUE")]
    pub member_set: Vec<String>,
    /// An allocated static IP of a member, as member=ip (repeatable; engines that need them).
    #[arg(long = "static-ip", value_name = "MEMBER=IP")]
    pub static_ips: Vec<String>,

    /// Cluster name; the members' DNS zone is `<cluster>-firecamp.com`.
    #[arg(long, env = "FIRECAMP_CLUSTER", default_value = "default")]
    pub cluster: String,
    /// Networks (CIDRs) clients connect from; engines admit only these (repeatable).
    #[arg(long = "network", env = "FIRECAMP_NETWORKS", value_delimiter = ',', default_value = "10.0.0.0/8")]
    pub networks: Vec<String>,
    /// CSI driver of the per-zone StorageClasses.
    #[arg(long, env = "FIRECAMP_VOLUME_PROVISIONER", default_value = firecamp_core::cluster::EBS_CSI_PROVISIONER)]
    pub volume_provisioner: String,
    /// With --dry-run: the registry the images come from instead of their own (see `manage --image-registry`).
    #[arg(long, env = "FIRECAMP_IMAGE_REGISTRY")]
    pub image_registry: Option<String>,

    /// Print the objects instead of creating them.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
    /// Output format of --dry-run.
    #[arg(short, long, value_enum, default_value_t = ObjectFormat::Yaml)]
    pub output: ObjectFormat,
    /// Print the generated passwords instead of a placeholder.
    #[arg(long)]
    pub show_secrets: bool,
}
