//! PostgreSQL: member 0 bootstraps as primary, the others stream from it through physical
//! replication slots; WAL on the journal volume when there is one.

use firecamp_core::spec::{PostgresReplication, ResourceAmounts, Resources};
use firecamp_core::{EngineKind, Member, ServiceSpec, ValidationErrors};

use crate::engine::Engine;
use crate::layout::MemberPaths;
use crate::plan::{ConfigFile, ContainerPlan, Port, Probe, RenderContext, Role, memory_limit_mib};
use crate::render::{Conf, env_file, file, header};
use crate::version::EngineVersion;

pub struct PostgreSql;

pub const PORT: u16 = 5432;
pub const SUPERUSER: &str = "postgres";
pub const REPLICATION_USER: &str = "replicator";
pub const SUPERUSER_PASSWORD: &str = "superuser-password";
pub const REPLICATION_PASSWORD: &str = "replication-password";
/// The role postgres_exporter logs in as: `pg_monitor`, no other right.
pub const MONITOR_USER: &str = "firecamp_monitor";
const START_SH: &str = include_str!("start.sh");
const WAL_SH: &str = include_str!("wal.sh");
const METRICS_SH: &str = include_str!("metrics.sh");
const QUERIES_YAML: &str = include_str!("queries.yaml");

/// Debian 12 ships 15, which the local runtime runs.
const VERSIONS: &[EngineVersion] = &[
    EngineVersion { version: "15", image: "docker.io/library/postgres:15.10-bookworm" },
    EngineVersion { version: "16", image: "docker.io/library/postgres:16.6-bookworm" },
    EngineVersion { version: "17", image: "docker.io/library/postgres:17.2-bookworm" },
];

/// Parameters PostgreSQL reads only at server start (`pg_settings.context = 'postmaster'`,
/// PostgreSQL 15-17): a change restarts the members in order.
pub const POSTMASTER_CONTEXT: &[&str] = &[
    "archive_mode",
    "autovacuum_freeze_max_age",
    "autovacuum_max_workers",
    "autovacuum_multixact_freeze_max_age",
    "bonjour",
    "bonjour_name",
    "cluster_name",
    "config_file",
    "data_directory",
    "data_sync_retry",
    "dynamic_shared_memory_type",
    "event_source",
    "external_pid_file",
    "hba_file",
    "hot_standby",
    "huge_pages",
    "huge_page_size",
    "ident_file",
    "ignore_invalid_pages",
    "io_combine_limit",
    "jit_provider",
    "listen_addresses",
    "logging_collector",
    "max_connections",
    "max_files_per_process",
    "max_locks_per_transaction",
    "max_logical_replication_workers",
    "max_notify_queue_pages",
    "max_pred_locks_per_transaction",
    "max_prepared_transactions",
    "max_replication_slots",
    "max_wal_senders",
    "max_worker_processes",
    "min_dynamic_shared_memory",
    "old_snapshot_threshold",
    "port",
    "recovery_init_sync_method",
    "recovery_prefetch",
    "reserved_connections",
    "shared_buffers",
    "shared_memory_type",
    "shared_preload_libraries",
    "superuser_reserved_connections",
    "track_activity_query_size",
    "track_commit_timestamp",
    "unix_socket_directories",
    "unix_socket_group",
    "unix_socket_permissions",
    "wal_buffers",
    "wal_decode_buffer_size",
    "wal_level",
    "wal_log_hints",
    "summarize_wal",
    "pg_stat_statements.max",
];

/// Parameters FireCamp renders itself, and why a service may not set them.
const OWNED: &[(&str, &str)] = &[
    ("data_directory", "the member's data directory is FireCamp's layout"),
    ("config_file", "the member's files are FireCamp's layout"),
    ("hba_file", "the member's files are FireCamp's layout"),
    ("ident_file", "the member's files are FireCamp's layout"),
    ("external_pid_file", "the runtime tracks the server itself"),
    ("listen_addresses", "members listen on their own address"),
    ("port", "members use the engine's standard port 5432"),
    ("unix_socket_directories", "the socket lives in the member's private run directory"),
    ("max_connections", "set it with spec.postgresql.maxConnections"),
    ("primary_conninfo", "replicas follow the current primary, which FireCamp tracks"),
    ("primary_slot_name", "each replica streams through its own slot"),
    ("recovery_target_timeline", "replicas must follow the latest timeline after a switchover"),
    ("synchronous_standby_names", "set spec.postgresql.replication instead"),
    ("hot_standby", "replicas must serve reads and report their state"),
    ("wal_level", "streaming replication needs wal_level replica"),
    ("wal_log_hints", "a demoted primary may need pg_rewind"),
    ("logging_collector", "logs go to stderr, the member's log"),
    ("ssl", "TLS is always on, with the member's certificate from the service's CA"),
    ("ssl_cert_file", "the member's certificate comes from the service's CA"),
    ("ssl_key_file", "the member's key comes from the service's CA"),
    ("ssl_ca_file", "the service's CA is FireCamp's"),
    ("log_destination", "logs go to stderr, the member's log"),
];

/// How replica `member` connects to the primary at `primary_dns`: as the replication user with
/// the passfile its start script writes in `run_dir`, verifying the primary's certificate with
/// the CA in `tls_dir`. The manage service sets the same through `ALTER SYSTEM` to re-point a
/// running replica after a switchover or failover (start.sh drops that at the next start).
pub fn primary_conninfo(primary_dns: &str, member: &str, run_dir: &str, tls_dir: &str) -> String {
    format!(
        "host={primary_dns} port={PORT} user={REPLICATION_USER} passfile={run_dir}/pgpass application_name={member} sslmode=verify-full sslrootcert={tls_dir}/{}",
        crate::tls::CA_FILE
    )
}

/// Physical replication slot of a member: slot names allow only `[a-z0-9_]`.
pub fn slot_name(member: &str) -> String {
    member.replace('-', "_")
}

impl Engine for PostgreSql {
    fn kind(&self) -> EngineKind {
        EngineKind::Postgresql
    }

    fn versions(&self) -> &'static [EngineVersion] {
        VERSIONS
    }

    fn validate(&self, spec: &ServiceSpec, errs: &mut ValidationErrors) {
        let opts = spec.postgresql.clone().unwrap_or_default();
        if opts.replication == PostgresReplication::Sync && spec.replicas < 2 {
            errs.push("spec.postgresql.replication", "sync replication needs at least 2 members (a primary and a replica)");
        }
        if let Some(n) = opts.max_connections
            && !(10..=10_000).contains(&n)
        {
            errs.push("spec.postgresql.maxConnections", format!("must be 10 to 10000, got {n}"));
        }
    }

    fn supports_switchover(&self) -> bool {
        true
    }

    /// Every parameter applies with `pg_reload_conf()` except the postmaster-context ones,
    /// which PostgreSQL reads only when the server starts.
    fn reloadable(&self, key: &str) -> bool {
        !POSTMASTER_CONTEXT.contains(&key)
    }

    fn owned_config_key(&self, key: &str) -> Option<&'static str> {
        OWNED.iter().find(|(k, _)| *k == key).map(|(_, why)| *why)
    }

    fn needs_static_ip(&self) -> bool {
        false
    }

    fn supports_tls(&self) -> bool {
        true
    }

    fn default_resources(&self) -> Resources {
        Resources {
            requests: ResourceAmounts { cpu: Some("500m".into()), memory: Some("1Gi".into()) },
            limits: ResourceAmounts { cpu: None, memory: Some("1Gi".into()) },
        }
    }

    fn ports(&self, _spec: &ServiceSpec) -> Vec<Port> {
        vec![Port { name: "postgresql", port: PORT, client: true }]
    }

    fn secret_keys(&self) -> &'static [&'static str] {
        &[SUPERUSER_PASSWORD, REPLICATION_PASSWORD, crate::metrics::MONITOR_PASSWORD]
    }

    fn role(&self, _spec: &ServiceSpec, index: u32) -> (Role, Option<u32>) {
        (if index == 0 { Role::Primary } else { Role::Replica }, None)
    }

    fn client_role(&self, _spec: &ServiceSpec) -> Option<Role> {
        Some(Role::Primary)
    }

    fn files(&self, ctx: &RenderContext, member: &Member, paths: &MemberPaths) -> Vec<ConfigFile> {
        let mut files = vec![
            file("postgresql.conf", postgresql_conf(ctx, member, paths), 0o644),
            file("pg_hba.conf", pg_hba_conf(ctx, member), 0o644),
            file("member.env", member_env(ctx, member, paths), 0o644),
            file("start.sh", START_SH.to_string(), 0o755),
        ];
        if backs_up(paths) {
            files.push(file("wal.sh", WAL_SH.to_string(), 0o755));
        }
        // Kubernetes: member-init downloads the base backup before the first start.
        if let Some(f) = paths.backup.restore.as_ref().and_then(|r| r.fetch.as_ref()) {
            files.push(file(crate::layout::RESTORE_FROM, f.render(), 0o644));
        }
        if paths.metrics.is_some() {
            files.push(crate::metrics::script(METRICS_SH));
            files.push(file("queries.yaml", QUERIES_YAML.to_string(), 0o644));
        }
        files
    }

    fn container(&self, version: &EngineVersion) -> ContainerPlan {
        let ready = ["pg_isready", "-q", "-h", crate::layout::K8S_RUN_DIR, "-p", "5432"].map(String::from).to_vec();
        // Alive means the postmaster runs and listens, not that it answers quickly: a primary
        // slowed by load must not be killed (readiness, which asks it, takes it out of service).
        let alive = vec![
            "/bin/bash".to_string(),
            "-c".into(),
            format!("kill -0 \"$(head -1 {}/pgdata/postmaster.pid)\" && test -S {}/.s.PGSQL.5432", crate::layout::K8S_DATA_DIR, crate::layout::K8S_RUN_DIR),
        ];
        ContainerPlan {
            image: version.image,
            command: vec!["/bin/bash".into(), format!("{}/start.sh", crate::layout::K8S_CONFIG_DIR)],
            run_as_user: 999,
            run_as_group: 999,
            readiness: Probe { command: ready.clone(), period_seconds: 5, timeout_seconds: 3, failure_threshold: 3 },
            liveness: Probe { command: alive, period_seconds: 10, timeout_seconds: 5, failure_threshold: 6 },
            // A replica's first start clones the primary; allow it an hour.
            startup: Probe { command: ready, period_seconds: 10, timeout_seconds: 5, failure_threshold: 360 },
            // A fast shutdown checkpoints first; give it time rather than lose the clean stop.
            termination_grace_seconds: 120,
        }
    }
}

/// Whether the member archives WAL or is restored (both through `wal.sh`).
fn backs_up(paths: &MemberPaths) -> bool {
    !paths.backup.archive_dir.is_empty() || paths.backup.restore.is_some()
}

fn data_dir(paths: &MemberPaths) -> String {
    format!("{}/pgdata", paths.data_dir)
}

fn wal_dir(ctx: &RenderContext, paths: &MemberPaths) -> Option<String> {
    ctx.spec.volumes.journal.as_ref().map(|_| format!("{}/pg_wal", paths.journal_dir))
}

fn gib(size: &str) -> u128 {
    firecamp_core::quantity::parse(size).map(|q| q.units() >> 30).unwrap_or(1)
}

fn postgresql_conf(ctx: &RenderContext, m: &Member, paths: &MemberPaths) -> String {
    let opts = ctx.spec.postgresql.clone().unwrap_or_default();
    let others: Vec<&Member> = ctx.members.iter().map(|(o, _, _)| o).filter(|o| o.name != m.name).collect();
    let mut c = Conf::new(" = ", &header("PostgreSQL configuration", m.name.as_str(), ctx.name));
    c.section("Files and connections.")
        .set("data_directory", q(&data_dir(paths)))
        .set("hba_file", q(&format!("{}/pg_hba.conf", paths.config_dir)))
        .set("ident_file", q(&format!("{}/pg_ident.conf", data_dir(paths))))
        .set("listen_addresses", q(&ctx.listen_addresses(m).join(",").replace("0.0.0.0", "*")))
        .set("port", PORT)
        .set("unix_socket_directories", q(&paths.run_dir))
        .set("max_connections", opts.max_connections.unwrap_or(200))
        .set("password_encryption", q("scram-sha-256"));
    // start.sh copies the member's certificate and key from the TLS directory (the key private).
    c.section("TLS with the member's certificate from the service's CA (pg_hba.conf says who must use it).")
        .set("ssl", "on")
        .set("ssl_cert_file", q(&format!("{}/tls.crt", paths.run_dir)))
        .set("ssl_key_file", q(&format!("{}/tls.key", paths.run_dir)))
        .set("ssl_ca_file", q(&format!("{}/{}", paths.tls_dir, crate::tls::CA_FILE)))
        .set("ssl_min_protocol_version", q("TLSv1.2"));

    let mem = memory_limit_mib(ctx.resources).unwrap_or(1024);
    c.section(&format!("Memory, sized from the member's memory limit ({mem} MiB)."))
        .set("shared_buffers", q(&format!("{}MB", (mem / 4).max(128))))
        .set("effective_cache_size", q(&format!("{}MB", (mem * 3 / 4).max(128))))
        .set("maintenance_work_mem", q(&format!("{}MB", (mem / 16).clamp(64, 2048))))
        .set("work_mem", q("4MB"));

    // A slot keeps WAL for a replica that is down; cap it so a dead replica cannot fill the disk.
    let wal_budget_gib = match &ctx.spec.volumes.journal {
        Some(j) => gib(&j.size) / 2,
        None => gib(&ctx.spec.volumes.data.size) / 4,
    }
    .max(1);
    // Fixed, not sized from the members: a standby refuses to run with fewer WAL senders than
    // its primary, so a scale must never leave the files of a member with another value.
    let senders = firecamp_core::names::MAX_MEMBERS + 5;
    c.section("Streaming replication through one physical slot per replica.")
        .set("wal_level", "replica")
        .set("max_wal_senders", senders)
        .set("max_replication_slots", senders)
        .set("wal_keep_size", q("512MB"))
        .set("max_slot_wal_keep_size", q(&format!("{wal_budget_gib}GB")))
        .set("hot_standby", "on")
        .set("hot_standby_feedback", "on")
        .set("wal_log_hints", "on")
        .set("recovery_target_timeline", q("latest"));
    if let Some(primary) = ctx.initial_primary().filter(|p| p.name != m.name) {
        c.section("Used only while this member is a standby (standby.signal present).")
            .set("primary_conninfo", q(&primary_conninfo(&primary.dns_name, m.name.as_str(), &paths.run_dir, &paths.tls_dir)))
            .set("primary_slot_name", q(&slot_name(m.name.as_str())));
    }
    match opts.replication {
        PostgresReplication::Async => {
            c.section("Asynchronous replication: commits do not wait for replicas.").set("synchronous_commit", "on");
        }
        PostgresReplication::Sync => {
            let names: Vec<String> = others.iter().map(|o| format!("\"{}\"", o.name)).collect();
            c.section("Synchronous replication: a commit waits until any one replica has flushed it.")
                .set("synchronous_commit", "on")
                .set("synchronous_standby_names", q(&format!("ANY 1 ({})", names.join(", "))));
        }
    }
    if !paths.backup.archive_dir.is_empty() {
        // Every member's files say so; PostgreSQL archives only on the primary (archive_mode
        // on), so after a switchover or failover the new primary goes on where the old stopped.
        c.section("WAL archiving for backups (spec.backup): each WAL file copied to the service's archive once filled, at least every minute.")
            .set("archive_mode", "on")
            .set("archive_command", q(&format!("\"{}/wal.sh\" push \"%p\" \"%f\"", paths.config_dir)))
            .set("archive_timeout", q("60s"));
    }
    c.section("Checkpoints.")
        .set("checkpoint_timeout", q("15min"))
        .set("checkpoint_completion_target", "0.9")
        .set("max_wal_size", q("2GB"))
        .set("min_wal_size", q("256MB"));
    c.section("Logs go to stderr: the container log on Kubernetes, the member's log file locally.")
        .set("logging_collector", "off")
        .set("log_destination", q("stderr"))
        .set("log_line_prefix", q("%m [%p] %q%u@%d "))
        .set("log_checkpoints", "on")
        .set("log_lock_waits", "on")
        .set("log_min_duration_statement", q("1s"))
        .set("shared_preload_libraries", q("pg_stat_statements"));
    crate::params::append(&mut c, ctx.spec, m.name.as_str(), q);
    c.build()
}

fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn pg_hba_conf(ctx: &RenderContext, m: &Member) -> String {
    let mut out: String = header("PostgreSQL client authentication", m.name.as_str(), ctx.name).lines().map(|l| format!("# {l}\n")).collect();
    out.push_str("# Only the cluster's networks are admitted, always with a password (SCRAM), over TLS\n");
    out.push_str("# (hostssl): a connection without it matches no line and is refused. Replication always\n");
    // `host` matches connections with and without TLS.
    let clients = if ctx.spec.tls.allow_plaintext {
        out.push_str("# uses TLS; clients may also connect without it (spec.tls.allowPlaintext).\n");
        "host   "
    } else {
        out.push_str("# uses TLS, and so do clients.\n");
        "hostssl"
    };
    out.push_str("# TYPE  DATABASE     USER        ADDRESS              METHOD\n");
    out.push_str("local   all          postgres                         peer\n");
    out.push_str("local   all          all                              scram-sha-256\n");
    // The member's own loopback: inside its pod, but every local user's on the local runtime's
    // machine, so it is held to the same rule as the network.
    out.push_str(&format!("{clients} all          all         127.0.0.1/32         scram-sha-256\n"));
    for net in &ctx.cluster.networks {
        out.push_str(&format!("hostssl replication  {REPLICATION_USER:<10}  {net:<20} scram-sha-256\n"));
    }
    for net in &ctx.cluster.networks {
        out.push_str(&format!("{clients} all          all         {net:<20} scram-sha-256\n"));
    }
    out
}

fn member_env(ctx: &RenderContext, m: &Member, paths: &MemberPaths) -> String {
    let (role, primary) = match ctx.initial_primary() {
        Some(p) if p.name == m.name => ("primary", String::new()),
        Some(p) => ("replica", p.dns_name.clone()),
        None => ("replica", String::new()),
    };
    let slots: Vec<String> = if role == "primary" {
        ctx.members.iter().filter(|(o, _, _)| o.name != m.name).map(|(o, _, _)| slot_name(o.name.as_str())).collect()
    } else {
        Vec::new()
    };
    let mut backup = Vec::new();
    if !paths.backup.archive_dir.is_empty() {
        backup.push(("ARCHIVE_DIR", paths.backup.archive_dir.clone()));
    }
    if let Some(r) = &paths.backup.restore {
        backup.push(("RESTORE_BASE", r.base_dir.clone()));
        backup.push(("RESTORE_WAL", r.wal_dir.clone()));
        backup.push(("RESTORE_TARGET_TIME", r.target_time.clone().unwrap_or_default()));
    }
    if let Some(s3) = &paths.backup.s3 {
        backup.push(("ARCHIVE_TOOL", s3.tool.clone()));
        backup.push(("ARCHIVE_S3_REGION", s3.region.clone()));
        backup.push(("ARCHIVE_S3_ENDPOINT", s3.endpoint.clone()));
    }
    let vars: Vec<(&str, String)> = [
        ("MEMBER", m.name.to_string()),
        ("INITIAL_ROLE", role.into()),
        ("PRIMARY_HOST", primary),
        ("PORT", PORT.to_string()),
        ("SLOT", slot_name(m.name.as_str())),
        ("REPLICA_SLOTS", slots.join(" ")),
        ("REPLICATION_USER", REPLICATION_USER.into()),
        ("MONITOR_USER", MONITOR_USER.into()),
        ("CONFIG_DIR", paths.config_dir.clone()),
        ("SECRET_DIR", paths.secret_dir.clone()),
        ("TLS_DIR", paths.tls_dir.clone()),
        ("RUN_DIR", paths.run_dir.clone()),
        ("PGDATA", data_dir(paths)),
        ("WAL_DIR", wal_dir(ctx, paths).unwrap_or_default()),
        ("BIN_DIR", paths.bin_dir.clone()),
    ]
    .into_iter()
    .chain(backup)
    .chain(paths.metrics.iter().flat_map(|t| crate::metrics::env(ctx, m, &t.exporter)))
    .collect();
    env_file(&header("Identity read by start.sh", m.name.as_str(), ctx.name), &vars)
}
