//! MariaDB: member 0 bootstraps as the primary, the others replicate from the current primary
//! through GTIDs (`MASTER_USE_GTID=slave_pos`, `gtid_strict_mode`, `log_slave_updates`, so any
//! replica can become the primary and the others follow it by position). Replicas are
//! `read_only`; the primary is the one member that is not. Semi-synchronous replication is an
//! option (`spec.mariadb.semiSync`).
//!
//! Security: TCP connections must use TLS (`require_secure_transport`) with the member's
//! certificate from the service's CA; replicas connect to the primary over TLS verifying its
//! name. Users: [`ADMIN_USER`] (FireCamp's and the operators' login, every right) and
//! [`REPLICATION_USER`], both from the service Secret; `start.sh` writes the statements that set
//! them into an init file in the private run directory (no password on any command line).

use firecamp_core::spec::{ResourceAmounts, Resources};
use firecamp_core::{EngineKind, Member, ServiceSpec, ValidationErrors};

use crate::engine::Engine;
use crate::layout::MemberPaths;
use crate::plan::{ConfigFile, ContainerPlan, Port, Probe, RenderContext, Role, memory_limit_mib};
use crate::render::{Conf, env_file, file, header};
use crate::version::EngineVersion;

pub struct MariaDb;

pub const PORT: u16 = 3306;
pub const ADMIN_USER: &str = "root";
pub const REPLICATION_USER: &str = "replicator";
pub const ADMIN_PASSWORD: &str = "root-password";
pub const REPLICATION_PASSWORD: &str = "replication-password";
/// The member's data directory below its data volume.
pub const DATA_SUBDIR: &str = "mariadb";
/// The server's socket in the run directory (local logins: the readiness probe).
pub const SOCKET: &str = "mariadb.sock";
/// How long a semi-synchronous commit waits for a replica before it goes on without (ms).
pub const SEMI_SYNC_TIMEOUT_MS: u32 = 10_000;
const START_SH: &str = include_str!("start.sh");

/// Debian 12 ships 10.11, which the local runtime runs.
const VERSIONS: &[EngineVersion] = &[EngineVersion { version: "10.11", image: "docker.io/library/mariadb:10.11.10-jammy" }];

/// Parameters FireCamp renders itself, and why a service may not set them.
const OWNED: &[(&str, &str)] = &[
    ("datadir", "the member's data directory is FireCamp's layout"),
    ("socket", "the socket lives in the member's private run directory"),
    ("tmpdir", "temporary tables live in the member's own directory"),
    ("port", "members use the engine's standard port 3306"),
    ("bind_address", "members listen on their own address"),
    ("server_id", "each member's server id is its index + 1"),
    ("read_only", "replicas are read-only and the primary is not; a switchover changes it"),
    ("log_bin", "replication needs the binary log"),
    ("log_bin_index", "replication needs the binary log"),
    ("binlog_format", "replication uses row-based events"),
    ("log_slave_updates", "every member logs what it applies, so any replica can become the primary"),
    ("relay_log", "the relay log is FireCamp's layout"),
    ("skip_slave_start", "FireCamp points a replica at the current primary at each start"),
    ("max_connections", "set it with spec.mariadb.maxConnections"),
    ("rpl_semi_sync_master_enabled", "set spec.mariadb.semiSync instead"),
    ("rpl_semi_sync_slave_enabled", "set spec.mariadb.semiSync instead"),
    ("require_secure_transport", "TCP connections must use TLS (spec.tls.allowPlaintext to allow clients without)"),
    ("log_error", "logs go to stderr, the member's log"),
    ("init_file", "start.sh writes the member's init file"),
];

/// Replica `index`'s server id (`server_id` must differ per member): the index + 1.
pub fn server_id(member: &Member) -> u32 {
    member.index + 1
}

impl Engine for MariaDb {
    fn kind(&self) -> EngineKind {
        EngineKind::Mariadb
    }

    fn versions(&self) -> &'static [EngineVersion] {
        VERSIONS
    }

    fn validate(&self, spec: &ServiceSpec, errs: &mut ValidationErrors) {
        let opts = spec.mariadb.clone().unwrap_or_default();
        if opts.semi_sync && spec.replicas < 2 {
            errs.push("spec.mariadb.semiSync", "semi-synchronous replication needs at least 2 members (a primary and a replica)");
        }
        if let Some(n) = opts.max_connections
            && !(10..=10_000).contains(&n)
        {
            errs.push("spec.mariadb.maxConnections", format!("must be 10 to 10000, got {n}"));
        }
    }

    fn supports_switchover(&self) -> bool {
        true
    }

    fn owned_config_key(&self, key: &str) -> Option<&'static str> {
        if let Some((_, why)) = OWNED.iter().find(|(k, _)| *k == key) {
            return Some(why);
        }
        if key.starts_with("ssl") || key == "tls_version" {
            return Some("TLS is always on, with the member's certificate from the service's CA");
        }
        if key.starts_with("gtid_") {
            return Some("replication is by GTID in strict mode, domain 0");
        }
        if key.starts_with("plugin") || key.starts_with("init_") || key.starts_with("general_log") || key == "secure_file_priv" {
            return Some("plugins, init statements and server-side files are not configurable");
        }
        None
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
        vec![Port { name: "mariadb", port: PORT, client: true }]
    }

    fn secret_keys(&self) -> &'static [&'static str] {
        &[ADMIN_PASSWORD, REPLICATION_PASSWORD]
    }

    fn role(&self, _spec: &ServiceSpec, index: u32) -> (Role, Option<u32>) {
        (if index == 0 { Role::Primary } else { Role::Replica }, None)
    }

    fn client_role(&self, _spec: &ServiceSpec) -> Option<Role> {
        Some(Role::Primary)
    }

    fn files(&self, ctx: &RenderContext, member: &Member, paths: &MemberPaths) -> Vec<ConfigFile> {
        vec![
            file("my.cnf", my_cnf(ctx, member, paths), 0o644),
            file("member.env", member_env(ctx, member, paths), 0o644),
            file("start.sh", START_SH.to_string(), 0o755),
        ]
    }

    fn container(&self, version: &EngineVersion) -> ContainerPlan {
        // `ping` answers 0 when the server runs, even to a login it refuses.
        let ping = ["mariadb-admin", &format!("--socket={}/{SOCKET}", crate::layout::K8S_RUN_DIR), "ping"].map(String::from).to_vec();
        ContainerPlan {
            image: version.image,
            command: vec!["/bin/bash".into(), format!("{}/start.sh", crate::layout::K8S_CONFIG_DIR)],
            run_as_user: 999,
            run_as_group: 999,
            readiness: Probe { command: ping.clone(), period_seconds: 5, timeout_seconds: 3, failure_threshold: 3 },
            liveness: Probe { command: ping.clone(), period_seconds: 10, timeout_seconds: 5, failure_threshold: 6 },
            startup: Probe { command: ping, period_seconds: 5, timeout_seconds: 3, failure_threshold: 120 },
            // A clean shutdown flushes InnoDB; give it time rather than lose it.
            termination_grace_seconds: 120,
        }
    }
}

/// Temporary tables: on the data volume, the member's own.
fn tmp_dir(paths: &MemberPaths) -> String {
    format!("{}/tmp", paths.data_dir)
}

fn data_dir(paths: &MemberPaths) -> String {
    format!("{}/{DATA_SUBDIR}", paths.data_dir)
}

/// The binary log's base name: on the journal volume when there is one.
fn binlog_base(ctx: &RenderContext, paths: &MemberPaths) -> String {
    match &ctx.spec.volumes.journal {
        Some(_) => format!("{}/binlog/mariadb-bin", paths.journal_dir),
        None => format!("{}/mariadb-bin", data_dir(paths)),
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "ON" } else { "OFF" }
}

fn my_cnf(ctx: &RenderContext, m: &Member, paths: &MemberPaths) -> String {
    let opts = ctx.spec.mariadb.clone().unwrap_or_default();
    let primary = ctx.initial_primary().is_some_and(|p| p.name == m.name);
    let mut c = Conf::new(" = ", &header("MariaDB configuration", m.name.as_str(), ctx.name));
    c.line("[mariadbd]");
    c.section("Files and connections.")
        .set("datadir", data_dir(paths))
        .set("socket", format!("{}/{SOCKET}", paths.run_dir))
        .set("pid_file", format!("{}/mariadb.pid", paths.run_dir))
        .set("tmpdir", tmp_dir(paths))
        .set("bind_address", ctx.listen_addresses(m)[0].replace("0.0.0.0", "*"))
        .set("port", PORT)
        .set("skip_name_resolve", "ON")
        .set("max_connections", opts.max_connections.unwrap_or(200))
        .set("character_set_server", "utf8mb4")
        .set("collation_server", "utf8mb4_unicode_ci");
    c.section("TLS with the member's certificate from the service's CA; TCP clients must use it.")
        .set("ssl_cert", format!("{}/{}.crt", paths.tls_dir, m.name))
        .set("ssl_key", format!("{}/{}.key", paths.tls_dir, m.name))
        .set("ssl_ca", format!("{}/{}", paths.tls_dir, crate::tls::CA_FILE))
        .set("tls_version", "TLSv1.2,TLSv1.3")
        .set("require_secure_transport", on_off(!ctx.spec.tls.allow_plaintext));
    let mem = memory_limit_mib(ctx.resources).unwrap_or(1024);
    c.section(&format!("Memory, sized from the member's memory limit ({mem} MiB).")).set("innodb_buffer_pool_size", format!("{}M", (mem / 2).max(128)));
    c.section(&format!(
        "Replication by GTID: every member logs what it applies, so any replica can become the primary.\n\
         This member is {}; start.sh points a replica at the current primary at each start.",
        if primary { "the primary" } else { "a replica (read-only)" }
    ))
    .set("server_id", server_id(m))
    .set("log_bin", binlog_base(ctx, paths))
    .set("log_bin_index", format!("{}.index", binlog_base(ctx, paths)))
    .set("relay_log", format!("{}/mariadb-relay", data_dir(paths)))
    .set("binlog_format", "ROW")
    .set("log_slave_updates", "ON")
    .set("gtid_strict_mode", "ON")
    .set("gtid_domain_id", 0)
    .set("skip_slave_start", "ON")
    .set("read_only", on_off(!primary))
    .set("sync_binlog", 1)
    .set("innodb_flush_log_at_trx_commit", 1)
    .set("binlog_expire_logs_seconds", 7 * 24 * 3600);
    if opts.semi_sync {
        c.section("Semi-synchronous replication: a commit waits until one replica has it (then goes on without after the timeout).")
            .set("rpl_semi_sync_master_enabled", "ON")
            .set("rpl_semi_sync_slave_enabled", "ON")
            .set("rpl_semi_sync_master_timeout", SEMI_SYNC_TIMEOUT_MS)
            .set("rpl_semi_sync_master_wait_point", "AFTER_SYNC");
    }
    c.section("Logs go to stderr: the container log on Kubernetes, the member's log file locally.").set("log_warnings", 2);
    crate::params::append(&mut c, ctx.spec, m.name.as_str(), str::to_string);
    c.build()
}

fn member_env(ctx: &RenderContext, m: &Member, paths: &MemberPaths) -> String {
    let (role, primary) = match ctx.initial_primary() {
        Some(p) if p.name == m.name => ("primary", String::new()),
        Some(p) => ("replica", p.dns_name.clone()),
        None => ("replica", String::new()),
    };
    let vars: Vec<(&str, String)> = vec![
        ("MEMBER", m.name.to_string()),
        ("ROLE", role.into()),
        ("PRIMARY_HOST", primary),
        ("PORT", PORT.to_string()),
        ("ADMIN_USER", ADMIN_USER.into()),
        ("REPLICATION_USER", REPLICATION_USER.into()),
        ("CONFIG_DIR", paths.config_dir.clone()),
        ("SECRET_DIR", paths.secret_dir.clone()),
        ("TLS_DIR", paths.tls_dir.clone()),
        ("RUN_DIR", paths.run_dir.clone()),
        ("DATADIR", data_dir(paths)),
        ("TMP_DIR", tmp_dir(paths)),
        ("BINLOG_DIR", binlog_base(ctx, paths).rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default()),
        ("BIN_DIR", paths.bin_dir.clone()),
    ];
    env_file(&header("Identity read by start.sh", m.name.as_str(), ctx.name), &vars)
}
