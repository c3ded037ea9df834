//! Where a member's files live and what address it listens on. Kubernetes and the local runtime
//! differ only here.

use firecamp_core::{ClusterConfig, EngineKind, Member, ServiceSpec};

/// How a member's server binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// All interfaces (a pod with its own network namespace).
    AllInterfaces,
    /// The member's static IP only (the local runtime's loopback IPs, shared ports).
    StaticIp,
    /// The member's static IP and 127.0.0.1 (host network on Kubernetes, one member per node),
    /// so in-pod probes reach the server on loopback.
    StaticIpAndLoopback,
}

impl Binding {
    pub fn uses_static_ip(self) -> bool {
        !matches!(self, Binding::AllInterfaces)
    }
}

/// Paths of one member's directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberPaths {
    /// Rendered config files (this plan's `files`).
    pub config_dir: String,
    /// The service Secret's keys, one file each.
    pub secret_dir: String,
    /// The service CA's certificate and the members' certificates and keys (`crate::tls`).
    pub tls_dir: String,
    /// The data volume.
    pub data_dir: String,
    /// The journal volume, when the service has one.
    pub journal_dir: String,
    /// Sockets, pid files and files derived from secrets; private to the member.
    pub run_dir: String,
    /// Directory of the engine's executables, or empty when they are on PATH.
    pub bin_dir: String,
    /// Where the member archives WAL and, when it is restored, what it starts from.
    pub backup: BackupPaths,
    /// What serves the member's metrics (`crate::metrics`); `None`: the runtime has nothing
    /// that does, so the member has none.
    pub metrics: Option<MetricsTools>,
}

/// What a runtime has to serve members' metrics with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsTools {
    /// The exporter's executable (PostgreSQL: postgres_exporter, Redis: redis_exporter); empty
    /// for ZooKeeper, whose server serves them itself once its provider's jars are on its class
    /// path (the runtime's launcher sees to that).
    pub exporter: String,
}

/// A member's side of backups (docs/backup.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupPaths {
    /// The service's WAL archive, a directory or an `s3://bucket/key` URL; empty: nothing is
    /// archived.
    pub archive_dir: String,
    /// A service restored from a backup: its first member starts from it.
    pub restore: Option<RestorePaths>,
    /// How `wal.sh` reaches an `s3://` archive (its own or, restored, its source's).
    pub s3: Option<S3Access>,
}

/// The client `wal.sh` runs for an S3 archive: FireCamp's own `firecamp wal push|fetch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Access {
    /// The `firecamp` executable the member's user may run.
    pub tool: String,
    pub region: String,
    /// An endpoint other than AWS's (moto, MinIO); empty for AWS.
    pub endpoint: String,
}

/// What a restored service's first member recovers from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestorePaths {
    /// The base backup (`base.tar`, `pg_wal.tar`).
    pub base_dir: String,
    /// The source service's WAL archive (a directory or an `s3://` URL).
    pub wal_dir: String,
    /// Recovery stops at this moment (RFC 3339, checked); at the end of the archive when absent.
    pub target_time: Option<String>,
    /// Kubernetes: where member-init downloads the base backup from into `base_dir` before the
    /// first start (`RESTORE_FROM`, a JSON file of the member's); `None` where the runtime puts
    /// it there itself (the local runtime).
    pub fetch: Option<RestoreFetch>,
}

/// A base backup in a bucket: `s3://bucket/key/<backup id>` and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreFetch {
    pub url: String,
    pub region: String,
    /// Empty for AWS's own.
    pub endpoint: String,
}

impl RestoreFetch {
    /// As the [`RESTORE_FROM`] file holds it: `key=value` lines.
    pub fn render(&self) -> String {
        format!("url={}\nregion={}\nendpoint={}\n", self.url, self.region, self.endpoint)
    }

    pub fn parse(text: &str) -> Option<RestoreFetch> {
        let get = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)?.strip_prefix('=')).map(str::to_string);
        Some(RestoreFetch { url: get("url")?, region: get("region")?, endpoint: get("endpoint").unwrap_or_default() })
    }
}

/// The file of a restored member's that names its [`RestoreFetch`].
pub const RESTORE_FROM: &str = "restore-from";

/// A runtime's way of placing members.
pub trait Layout {
    fn paths(&self, engine: EngineKind, member: &Member) -> MemberPaths;
    /// How members bind, given whether their engine needs a static IP.
    fn binding(&self, needs_static_ip: bool) -> Binding;
}

/// The container layout: every member sees the same paths inside its pod.
#[derive(Debug, Clone, Default)]
pub struct KubernetesLayout {
    /// The service's WAL archive in the cluster's bucket ([`KubernetesLayout::archiving`]).
    pub backup: BackupPaths,
}

/// Where member-init puts the `firecamp` executable (an emptyDir) for `wal.sh` to run.
pub const K8S_TOOL_DIR: &str = "/opt/firecamp/bin";

impl KubernetesLayout {
    /// Whether a service's members archive WAL on Kubernetes: PostgreSQL with `spec.backup`, in
    /// a cluster whose manage service has a backup bucket.
    pub fn archives(cluster: &ClusterConfig, spec: &ServiceSpec) -> bool {
        Self::backs_up(cluster, spec) && spec.engine == EngineKind::Postgresql
    }

    /// Whether a service is backed up on Kubernetes (its backups in the cluster's bucket, its
    /// members and Jobs given the tenant's credentials): PostgreSQL, Redis (RDB snapshots, one
    /// per shard of a cluster) and ZooKeeper (its database files), with `spec.backup`, where the
    /// manage service has a bucket.
    pub fn backs_up(cluster: &ClusterConfig, spec: &ServiceSpec) -> bool {
        cluster.archive.is_some() && spec.backup.is_some()
    }

    /// The layout of a service of `cluster` (its namespace set), incarnation `uid` (the
    /// FireCampService's own): its WAL goes to `<bucket url>/<namespace>/<service>/<uid>/wal`.
    pub fn archiving(cluster: &ClusterConfig, spec: &ServiceSpec, service: &str, uid: &str) -> KubernetesLayout {
        Self::restoring(cluster, spec, service, uid, None)
    }

    /// [`KubernetesLayout::archiving`] for a service restored from `from` (until its first
    /// start is done): its first member starts from that backup of a service of its namespace.
    pub fn restoring(cluster: &ClusterConfig, spec: &ServiceSpec, service: &str, uid: &str, from: Option<&RestoreSource>) -> KubernetesLayout {
        let Some(a) = cluster.archive.as_ref().filter(|_| Self::backs_up(cluster, spec)) else {
            return KubernetesLayout::default();
        };
        let tree = |svc: &str, inc: &str| format!("{}/{}/{svc}/{inc}", a.url.trim_end_matches('/'), cluster.namespace);
        // Only PostgreSQL has WAL (archived, and replayed by a restore); a Redis restore starts
        // from the snapshot alone.
        let wal = Self::archives(cluster, spec);
        KubernetesLayout {
            backup: BackupPaths {
                archive_dir: if wal { format!("{}/wal", tree(service, uid)) } else { String::new() },
                restore: from.map(|f| RestorePaths {
                    base_dir: format!("{K8S_DATA_DIR}/restore"),
                    wal_dir: if wal { format!("{}/wal", tree(&f.service, &f.uid)) } else { String::new() },
                    target_time: f.target_time.clone().filter(|_| wal),
                    fetch: Some(RestoreFetch {
                        url: format!("{}/base/{}", tree(&f.service, &f.uid), f.backup),
                        region: a.region.clone(),
                        endpoint: a.endpoint.clone(),
                    }),
                }),
                s3: wal.then(|| S3Access { tool: format!("{K8S_TOOL_DIR}/firecamp"), region: a.region.clone(), endpoint: a.endpoint.clone() }),
            },
        }
    }
}

/// What a restored service on Kubernetes starts from: a backup of `service` (of its own
/// namespace), incarnation `uid`, recovered up to `target_time` (PostgreSQL's form, checked).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSource {
    pub service: String,
    pub uid: String,
    pub backup: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_time: Option<String>,
}

impl RestoreSource {
    /// Why it cannot name a backup (each part reaches a key and a config file), if so.
    pub fn problem(&self) -> Option<String> {
        if let Some(p) = firecamp_core::names::dns1035_label_problem(&self.service) {
            return Some(format!("service {:?}: {p}", self.service));
        }
        let plain =
            |s: &str, extra: &[u8]| !s.is_empty() && s.len() <= 80 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b));
        if !plain(&self.uid, b"-") {
            return Some(format!("uid {:?} is not a uid", self.uid));
        }
        if !plain(&self.backup, b"-TZ") || !self.backup.starts_with(&format!("{}-", self.service)) {
            return Some(format!("backup {:?} is not a backup of {}", self.backup, self.service));
        }
        // `2026-12-02 20:08:37.365879+00`, as recovery_target_time reads it.
        if let Some(t) = &self.target_time
            && !(t.len() <= 40 && t.bytes().all(|b| b.is_ascii_digit() || b" -:.+".contains(&b)))
        {
            return Some(format!("target time {t:?} is not a time"));
        }
        None
    }
}

/// The local runtime's layout: every member has its own directory tree on the machine
/// (`<service_dir>/<member>/{config,secret,tls,data,journal,run}`) and binds its loopback static IP,
/// so all members share the engines' standard ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalLayout {
    /// The service's directory; members live in subdirectories named after them.
    pub service_dir: String,
    /// The engine's executables (empty when they are on PATH).
    pub bin_dir: String,
    /// The service's backups (a restore applies to its first member only).
    pub backup: BackupPaths,
    /// The engine's metrics exporter, when this machine has it.
    pub metrics: Option<MetricsTools>,
}

impl LocalLayout {
    pub fn member_dir(&self, member: &Member) -> String {
        format!("{}/{}", self.service_dir, member.name)
    }
}

impl Layout for LocalLayout {
    fn paths(&self, engine: EngineKind, member: &Member) -> MemberPaths {
        let dir = self.member_dir(member);
        MemberPaths {
            config_dir: format!("{dir}/config"),
            secret_dir: format!("{dir}/secret"),
            tls_dir: format!("{dir}/tls"),
            data_dir: format!("{dir}/data"),
            journal_dir: format!("{dir}/journal"),
            run_dir: format!("{dir}/run"),
            bin_dir: self.bin_dir.clone(),
            backup: BackupPaths {
                archive_dir: self.backup.archive_dir.clone(),
                // The first member of a single-writer engine (the others copy it); every member of
                // an ensemble (whichever is elected, it has the restored data).
                restore: first_restores(&self.backup, engine, member),
                s3: self.backup.s3.clone(),
            },
            metrics: self.metrics.clone(),
        }
    }
    /// One machine: every member binds its own loopback address, whatever the engine.
    fn binding(&self, _needs_static_ip: bool) -> Binding {
        Binding::StaticIp
    }
}

pub const K8S_CONFIG_DIR: &str = "/etc/firecamp/config";
pub const K8S_SECRET_DIR: &str = "/etc/firecamp/secret";
pub const K8S_TLS_DIR: &str = "/etc/firecamp/tls";
pub const K8S_DATA_DIR: &str = "/data";
/// Where a Job that reads the cluster's bucket stages what it downloads (an emptyDir).
pub const K8S_STAGING_DIR: &str = "/staging";
pub const K8S_JOURNAL_DIR: &str = "/journal";
pub const K8S_RUN_DIR: &str = "/run/firecamp";

/// The metrics exporter of an engine's image (Debian's package names; none for ZooKeeper).
pub fn k8s_exporter(engine: EngineKind) -> &'static str {
    match engine {
        EngineKind::Postgresql => "/usr/bin/prometheus-postgres-exporter",
        EngineKind::Redis => "/usr/bin/prometheus-redis-exporter",
        EngineKind::Zookeeper | EngineKind::Kafka | EngineKind::Mariadb | EngineKind::Cassandra => "",
    }
}

/// The restore, for the members that start from it: the first member of a single-writer engine
/// (the others copy it); every member of an ensemble (whichever is elected, it has the data).
fn first_restores(b: &BackupPaths, engine: EngineKind, member: &Member) -> Option<RestorePaths> {
    b.restore.clone().filter(|_| member.index == 0 || engine == EngineKind::Zookeeper)
}

impl Layout for KubernetesLayout {
    fn paths(&self, engine: EngineKind, member: &Member) -> MemberPaths {
        MemberPaths {
            config_dir: K8S_CONFIG_DIR.into(),
            secret_dir: K8S_SECRET_DIR.into(),
            tls_dir: K8S_TLS_DIR.into(),
            data_dir: K8S_DATA_DIR.into(),
            journal_dir: K8S_JOURNAL_DIR.into(),
            run_dir: K8S_RUN_DIR.into(),
            bin_dir: String::new(),
            backup: BackupPaths { restore: first_restores(&self.backup, engine, member), ..self.backup.clone() },
            // FireCamp's engine images carry the exporters (scripts/image.sh; docs/images.md),
            // run by a sidecar container; ZooKeeper's image has the provider's jars.
            metrics: Some(MetricsTools { exporter: k8s_exporter(engine).into() }),
        }
    }
    /// Engines that need a static IP run with the host network and bind that IP.
    fn binding(&self, needs_static_ip: bool) -> Binding {
        if needs_static_ip { Binding::StaticIpAndLoopback } else { Binding::AllInterfaces }
    }
}
