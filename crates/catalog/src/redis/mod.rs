//! Redis 7: replication mode (one primary, the others its replicas) or cluster mode (shards of
//! a primary and its replicas). Members keep static IPs: clients and cluster peers cache them.
//! Every member serves TLS on the standard port with its certificate from the service's CA;
//! replication and the cluster bus use TLS too, and the plain port is off unless the service
//! allows plaintext (then on [`PLAIN_PORT`]).

use firecamp_core::spec::{RedisMode, ResourceAmounts, Resources};
use firecamp_core::{EngineKind, Member, ServiceSpec, ValidationErrors};

use crate::engine::Engine;
use crate::layout::MemberPaths;
use crate::plan::{ConfigFile, ContainerPlan, InitTask, Port, Probe, RenderContext, Role, memory_limit_mib};
use crate::render::{Conf, env_file, file, header};
use crate::version::EngineVersion;

pub struct Redis;

/// The client port, TLS only.
pub const PORT: u16 = 6379;
/// The plain client port, open only with `spec.tls.allowPlaintext`.
pub const PLAIN_PORT: u16 = 6380;
pub const BUS_PORT: u16 = 16379;
pub const PASSWORD: &str = "password";
pub const MIN_SHARDS: u32 = 3;
const START_SH: &str = include_str!("start.sh");
const METRICS_SH: &str = include_str!("metrics.sh");
pub const INIT_CLUSTER_SH: &str = include_str!("init-cluster.sh");
/// Moves slots for a scale of a Redis Cluster on Kubernetes (a Job on the Redis image).
pub const MOVE_SLOTS_SH: &str = include_str!("move-slots.sh");

/// Debian 12 ships 7.0, which the local runtime runs.
const VERSIONS: &[EngineVersion] = &[
    EngineVersion { version: "7.0", image: "docker.io/library/redis:7.0.15-bookworm" },
    EngineVersion { version: "7.2", image: "docker.io/library/redis:7.2.7-bookworm" },
    EngineVersion { version: "7.4", image: "docker.io/library/redis:7.4.2-bookworm" },
];

pub const MAXMEMORY_POLICIES: &[&str] =
    &["noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"];

/// Members per shard in cluster mode (a primary and its replicas).
/// How the cluster's tasks reach a member: its static IP when allocated (what it announces),
/// else its DNS name.
pub fn cluster_address(m: &Member) -> String {
    m.static_ip.map(|ip| ip.to_string()).unwrap_or_else(|| m.dns_name.clone())
}

/// The task of a scale's `fill` (`drain`: true for a `drain`) step: slots moved to (from) the
/// primaries among `moving` (addresses, [`cluster_address`]), through `via`, a member that stays.
pub fn move_slots_task(drain: bool, via: &str, moving: &[String]) -> InitTask {
    let mode = if drain { "drain" } else { "fill" };
    let mut command = vec!["/bin/bash".to_string(), "-c".into(), MOVE_SLOTS_SH.into(), "move-slots".into(), mode.into(), via.into()];
    command.extend(moving.iter().cloned());
    InitTask { name: "move-slots", command, max_attempts: 3, reads_bucket: false }
}

pub fn members_per_shard(spec: &ServiceSpec) -> u32 {
    let shards = spec.redis.as_ref().and_then(|r| r.shards).unwrap_or(1).max(1);
    (spec.replicas / shards).max(1)
}

fn mode(spec: &ServiceSpec) -> RedisMode {
    spec.redis.as_ref().map(|r| r.mode).unwrap_or_default()
}

impl Engine for Redis {
    fn kind(&self) -> EngineKind {
        EngineKind::Redis
    }

    fn versions(&self) -> &'static [EngineVersion] {
        VERSIONS
    }

    fn validate(&self, spec: &ServiceSpec, errs: &mut ValidationErrors) {
        let opts = spec.redis.clone().unwrap_or_default();
        match (opts.mode, opts.shards) {
            (RedisMode::Replication, Some(_)) => errs.push("spec.redis.shards", "shards apply to cluster mode only; set mode: cluster"),
            (RedisMode::Cluster, None) => errs.push("spec.redis.shards", format!("cluster mode needs shards (at least {MIN_SHARDS})")),
            (RedisMode::Cluster, Some(s)) if s < MIN_SHARDS => {
                errs.push("spec.redis.shards", format!("Redis Cluster needs at least {MIN_SHARDS} shards, got {s}"))
            }
            (RedisMode::Cluster, Some(s)) if !spec.replicas.is_multiple_of(s) || spec.replicas < s => errs.push(
                "spec.replicas",
                format!("must be a multiple of spec.redis.shards ({s}): each shard has the same number of members, got {}", spec.replicas),
            ),
            _ => {}
        }
        if let Some(p) = &opts.maxmemory_policy
            && !MAXMEMORY_POLICIES.contains(&p.as_str())
        {
            errs.push("spec.redis.maxmemoryPolicy", format!("{p:?} is not a policy; allowed: {}", MAXMEMORY_POLICIES.join(", ")));
        }
        if spec.volumes.journal.is_some() {
            errs.push("spec.volumes.journal", "Redis keeps its append-only file on the data volume; remove the journal volume");
        }
    }

    fn supports_switchover(&self) -> bool {
        true
    }

    /// `CONFIG SET` applies every parameter except the immutable ones.
    fn reloadable(&self, key: &str) -> bool {
        !IMMUTABLE.contains(&key)
    }

    fn owned_config_key(&self, key: &str) -> Option<&'static str> {
        OWNED.iter().find(|(k, _)| *k == key).map(|(_, why)| *why)
    }

    fn needs_static_ip(&self) -> bool {
        true
    }

    fn supports_tls(&self) -> bool {
        true
    }

    fn default_resources(&self) -> Resources {
        Resources {
            requests: ResourceAmounts { cpu: Some("250m".into()), memory: Some("1Gi".into()) },
            limits: ResourceAmounts { cpu: None, memory: Some("1Gi".into()) },
        }
    }

    fn ports(&self, spec: &ServiceSpec) -> Vec<Port> {
        let mut ports = vec![Port { name: "redis", port: PORT, client: true }];
        if spec.tls.allow_plaintext {
            ports.push(Port { name: "redis-plain", port: PLAIN_PORT, client: true });
        }
        if mode(spec) == RedisMode::Cluster {
            ports.push(Port { name: "cluster-bus", port: BUS_PORT, client: false });
        }
        ports
    }

    fn secret_keys(&self) -> &'static [&'static str] {
        &[PASSWORD, crate::metrics::MONITOR_PASSWORD]
    }

    /// Cluster mode: member i is in shard i / members-per-shard, so a shard's members sit in
    /// consecutive indexes and so in different zones; the first of each shard is its primary.
    fn role(&self, spec: &ServiceSpec, index: u32) -> (Role, Option<u32>) {
        match mode(spec) {
            RedisMode::Replication => (if index == 0 { Role::Primary } else { Role::Replica }, None),
            RedisMode::Cluster => {
                let per = members_per_shard(spec);
                (if index.is_multiple_of(per) { Role::Primary } else { Role::Replica }, Some(index / per))
            }
        }
    }

    fn client_role(&self, spec: &ServiceSpec) -> Option<Role> {
        match mode(spec) {
            RedisMode::Replication => Some(Role::Primary),
            // Cluster clients follow MOVED redirects to any member.
            RedisMode::Cluster => None,
        }
    }

    fn files(&self, ctx: &RenderContext, member: &Member, paths: &MemberPaths) -> Vec<ConfigFile> {
        vec![
            file("redis.conf", redis_conf(ctx, member, paths), 0o644),
            file(
                "member.env",
                env_file(
                    &header("Identity read by start.sh", member.name.as_str(), ctx.name),
                    &[
                        ("MEMBER", member.name.to_string()),
                        ("CONFIG_DIR", paths.config_dir.clone()),
                        ("SECRET_DIR", paths.secret_dir.clone()),
                        ("TLS_DIR", paths.tls_dir.clone()),
                        ("RUN_DIR", paths.run_dir.clone()),
                        ("DATA_DIR", paths.data_dir.clone()),
                        ("BIN_DIR", paths.bin_dir.clone()),
                    ]
                    .into_iter()
                    .chain(paths.metrics.iter().flat_map(|t| crate::metrics::env(ctx, member, &t.exporter)))
                    // The exporter reaches the server as any client does, over TLS.
                    .chain(paths.metrics.iter().map(|_| ("METRICS_SERVER", format!("{}:{PORT}", cluster_address(member)))))
                    // A restored service's first member starts from the backup's snapshot (a
                    // cluster's shards are loaded once it is formed: the local runtime's init).
                    .chain(paths.backup.restore.as_ref().filter(|_| mode(ctx.spec) == RedisMode::Replication).map(|r| ("RESTORE_BASE", r.base_dir.clone())))
                    .collect::<Vec<_>>(),
                ),
                0o644,
            ),
            file("start.sh", START_SH.to_string(), 0o755),
        ]
        .into_iter()
        .chain(paths.metrics.iter().map(|_| crate::metrics::script(METRICS_SH)))
        // Kubernetes: member-init downloads the snapshot before the first start.
        .chain(
            paths
                .backup
                .restore
                .as_ref()
                .and_then(|r| r.fetch.as_ref())
                .filter(|_| mode(ctx.spec) == RedisMode::Replication)
                .map(|f| file(crate::layout::RESTORE_FROM, f.render(), 0o644)),
        )
        .collect()
    }

    /// Cluster mode: create the cluster with the shard layout of [`Engine::role`]. Members are
    /// addressed by static IP when allocated (what they announce), else by DNS name. A restored
    /// cluster's task then loads the backup's shard snapshots into it (`firecamp redis-load`,
    /// after `--`), before the service counts as ACTIVE.
    fn init_tasks(&self, ctx: &RenderContext) -> Vec<InitTask> {
        if mode(ctx.spec) != RedisMode::Cluster {
            return Vec::new();
        }
        let mut command = vec!["/bin/bash".to_string(), "-c".into(), INIT_CLUSTER_SH.into(), "init-cluster".into(), members_per_shard(ctx.spec).to_string()];
        command.extend(ctx.members.iter().map(|(m, _, _)| cluster_address(m)));
        if let Some(from) = &ctx.restore {
            command.extend(["--".into(), format!("{}/firecamp", crate::layout::K8S_TOOL_DIR), "redis-load".into(), format!("--from={}", from.url)]);
            command.push(format!("--region={}", from.region));
            if !from.endpoint.is_empty() {
                command.push(format!("--endpoint={}", from.endpoint));
            }
            command.push(format!("--password-file={}/{PASSWORD}", crate::layout::K8S_SECRET_DIR));
            command.push(format!("--ca-file={}/{}", crate::layout::K8S_TLS_DIR, crate::tls::CA_FILE));
            command.push(format!("--staging={}", crate::layout::K8S_STAGING_DIR));
            // Each member by the address the cluster names it by and the name its certificate carries.
            command.extend(ctx.members.iter().map(|(m, _, _)| format!("--member={}={}", cluster_address(m), m.dns_name)));
        }
        vec![InitTask { name: "create-cluster", command, max_attempts: 3, reads_bucket: ctx.restore.is_some() }]
    }

    fn container(&self, version: &EngineVersion) -> ContainerPlan {
        // Over TLS, verified against the service's CA (the certificate names 127.0.0.1).
        let ping = |expect: &str| {
            vec![
                "/bin/sh".to_string(),
                "-c".to_string(),
                format!(
                    "REDISCLI_AUTH=\"$(cat {}/{PASSWORD})\" redis-cli --tls --cacert {}/{} -h 127.0.0.1 -p {PORT} ping | grep -qE '{expect}'",
                    crate::layout::K8S_SECRET_DIR,
                    crate::layout::K8S_TLS_DIR,
                    crate::tls::CA_FILE
                ),
            ]
        };
        // Ready: PONG. Alive: any answer, LOADING or BUSY included: a member busy with a slow
        // script or a large dataset is not dead, and a restart would only make it start over.
        let (ready, alive) = (ping("^PONG$"), ping("."));
        ContainerPlan {
            image: version.image,
            command: vec!["/bin/bash".into(), format!("{}/start.sh", crate::layout::K8S_CONFIG_DIR)],
            run_as_user: 999,
            run_as_group: 999,
            readiness: Probe { command: ready.clone(), period_seconds: 5, timeout_seconds: 3, failure_threshold: 3 },
            liveness: Probe { command: alive, period_seconds: 10, timeout_seconds: 5, failure_threshold: 6 },
            // Loading a large AOF takes a while after a restart.
            startup: Probe { command: ready, period_seconds: 5, timeout_seconds: 3, failure_threshold: 120 },
            // SHUTDOWN fsyncs the AOF; give it time.
            termination_grace_seconds: 60,
        }
    }
}

/// Parameters `CONFIG SET` refuses (Redis 7: immutable or protected configs, with
/// `enable-protected-configs no`): a change restarts the members in order.
pub const IMMUTABLE: &[&str] = &[
    "aclfile",
    "always-show-logo",
    "appenddirname",
    "appendfilename",
    "bind",
    "bind-source-addr",
    "cluster-config-file",
    "cluster-enabled",
    "cluster-port",
    "daemonize",
    "databases",
    "dbfilename",
    "dir",
    "disable-thp",
    "enable-debug-command",
    "enable-module-command",
    "enable-protected-configs",
    "io-threads",
    "io-threads-do-reads",
    "locale-collate",
    "logfile",
    "oom-score-adj",
    "pidfile",
    "port",
    "set-proc-title",
    "supervised",
    "syslog-enabled",
    "syslog-facility",
    "syslog-ident",
    "tcp-backlog",
    "tls-port",
    "unixsocket",
    "unixsocketperm",
];

/// Parameters FireCamp renders itself, and why a service may not set them.
const OWNED: &[(&str, &str)] = &[
    ("bind", "members listen on their own address"),
    ("port", "the plain port is off, or 6380 with spec.tls.allowPlaintext"),
    ("tls-port", "members serve TLS on the engine's standard port 6379"),
    ("tls-cert-file", "the member's certificate comes from the service's CA"),
    ("tls-key-file", "the member's key comes from the service's CA"),
    ("tls-ca-cert-file", "the service's CA is FireCamp's"),
    ("tls-ca-cert-dir", "the service's CA is FireCamp's"),
    ("tls-client-cert-file", "members use their own certificate"),
    ("tls-client-key-file", "members use their own certificate"),
    ("tls-auth-clients", "clients authenticate with the password, not a certificate"),
    ("tls-replication", "replication always uses TLS"),
    ("tls-cluster", "the cluster bus always uses TLS"),
    ("tls-protocols", "members accept TLS 1.2 and 1.3 only"),
    ("dir", "the data directory is FireCamp's layout"),
    ("logfile", "logs go to stdout, the member's log"),
    ("daemonize", "the runtime supervises the server in the foreground"),
    ("pidfile", "the runtime tracks the server itself"),
    ("include", "only FireCamp's auth file is included"),
    ("requirepass", "the password comes from the service's secret"),
    ("masterauth", "the password comes from the service's secret"),
    ("replicaof", "replicas follow the current primary, which FireCamp tracks"),
    ("slaveof", "replicas follow the current primary, which FireCamp tracks"),
    ("cluster-enabled", "set spec.redis.mode instead"),
    ("cluster-config-file", "the cluster's node file is FireCamp's layout"),
    ("cluster-announce-ip", "members announce their own address"),
    ("cluster-announce-port", "members announce the standard port"),
    ("cluster-announce-tls-port", "members announce the standard port"),
    ("cluster-announce-bus-port", "members announce the standard bus port"),
    ("replica-announce-ip", "members announce their own address"),
    ("unixsocket", "clients connect over TCP to the member's address"),
    ("maxmemory-policy", "set spec.redis.maxmemoryPolicy instead"),
    ("enable-debug-command", "no debugging over the network"),
    ("enable-module-command", "no module loading over the network"),
    ("enable-protected-configs", "protected configs stay protected"),
    ("rename-command", "the runtime's probes need the commands by name"),
];

fn redis_conf(ctx: &RenderContext, m: &Member, paths: &MemberPaths) -> String {
    let opts = ctx.spec.redis.clone().unwrap_or_default();
    let mut c = Conf::new(" ", &header("Redis configuration", m.name.as_str(), ctx.name));
    let plain_port = if ctx.spec.tls.allow_plaintext { PLAIN_PORT } else { 0 };
    c.section("Network. Authentication is always on; the password is included from the run directory.")
        .set("bind", ctx.listen_addresses(m).join(" "))
        .set("port", plain_port)
        .set("protected-mode", "no")
        .set("tcp-backlog", 511)
        .set("timeout", 0)
        .set("tcp-keepalive", 60)
        .set("daemonize", "no")
        .set("loglevel", "notice")
        .set("logfile", "\"\"")
        .set("dir", format!("{}/redis", paths.data_dir))
        .set("include", format!("{}/auth.conf", paths.run_dir));
    // start.sh copies the member's certificate and key from the TLS directory (the key private).
    // Clients log in with the password and need present no certificate; cluster peers always
    // present theirs (Redis demands it on the bus).
    c.section(if ctx.spec.tls.allow_plaintext {
        "TLS on the standard port with the member's certificate from the service's CA; plain clients on 6380 (spec.tls.allowPlaintext)."
    } else {
        "TLS on the standard port with the member's certificate from the service's CA; the plain port is off."
    })
    .set("tls-port", PORT)
    .set("tls-cert-file", format!("{}/tls.crt", paths.run_dir))
    .set("tls-key-file", format!("{}/tls.key", paths.run_dir))
    .set("tls-ca-cert-file", format!("{}/{}", paths.tls_dir, crate::tls::CA_FILE))
    .set("tls-auth-clients", "no")
    .set("tls-protocols", "\"TLSv1.2 TLSv1.3\"")
    .set("tls-replication", "yes");
    c.section("Persistence: the AOF, fsynced every second, loses at most a second of writes on a crash.")
        .set("appendonly", "yes")
        .set("appendfsync", "everysec")
        .set("aof-use-rdb-preamble", "yes")
        .set("auto-aof-rewrite-percentage", 100)
        .set("auto-aof-rewrite-min-size", "64mb")
        .set("save", "3600 1 300 100 60 10000")
        .set("stop-writes-on-bgsave-error", "yes");
    let mem = memory_limit_mib(ctx.resources).unwrap_or(1024);
    c.section(&format!("Memory: 75% of the member's memory limit ({mem} MiB), the rest for forks and buffers."))
        .set("maxmemory", format!("{}mb", mem * 3 / 4))
        .set("maxmemory-policy", opts.maxmemory_policy.as_deref().unwrap_or("noeviction"));
    c.section("Replication.")
        .set("replica-serve-stale-data", "yes")
        .set("replica-read-only", "yes")
        .set("repl-diskless-sync", "yes")
        .set("repl-backlog-size", "64mb")
        .set("repl-timeout", 60)
        .set("client-output-buffer-limit", "replica 512mb 128mb 60");
    if let Some(ip) = m.static_ip {
        c.set("replica-announce-ip", ip);
    }
    match opts.mode {
        RedisMode::Replication => {
            if let Some(primary) = ctx.initial_primary().filter(|p| p.name != m.name) {
                c.set("replicaof", format!("{} {PORT}", primary.dns_name));
            }
        }
        RedisMode::Cluster => {
            c.section("Redis Cluster. Peers and clients reach this member at its static IP; the bus uses TLS.")
                .set("cluster-enabled", "yes")
                .set("tls-cluster", "yes")
                .set("cluster-config-file", format!("{}/redis/nodes.conf", paths.data_dir))
                .set("cluster-node-timeout", 15000)
                .set("cluster-replica-validity-factor", 10)
                .set("cluster-migration-barrier", 1)
                .set("cluster-require-full-coverage", "yes")
                .set("cluster-allow-reads-when-down", "no");
            match m.static_ip {
                Some(ip) => c.set("cluster-announce-ip", ip),
                None => c.section("cluster-announce-ip: set to the member's static IP once FireCamp allocates it."),
            };
            // With tls-cluster, cluster-announce-port is the plain port clients without TLS are
            // redirected to (0: none).
            c.set("cluster-announce-tls-port", PORT).set("cluster-announce-port", plain_port).set("cluster-announce-bus-port", BUS_PORT);
        }
    }
    c.section("Safety: no debugging or module loading over the network.")
        .set("enable-debug-command", "no")
        .set("enable-module-command", "no")
        .set("enable-protected-configs", "no")
        .set("slowlog-log-slower-than", 10000)
        .set("slowlog-max-len", 128);
    crate::params::append(&mut c, ctx.spec, m.name.as_str(), |v| v.to_string());
    c.build()
}
