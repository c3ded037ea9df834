//! Cassandra 5.0: a ring of equal members in one datacenter, the service's region, each zone
//! a rack (`GossipingPropertyFileSnitch`), so a keyspace with `NetworkTopologyStrategy` and 3
//! replicas keeps one copy per zone. The first member of each zone is a seed (by DNS name): with
//! one member per zone every member is a seed and none bootstraps, so all start at once
//! (Kubernetes' Parallel pod management, the original FireCamp's Cassandra example).
//!
//! Security: clients reach a member over TLS only on [`CQL_PORT`] and log in
//! (`PasswordAuthenticator`, `CassandraAuthorizer`); members talk to each other over mutual TLS
//! on [`STORAGE_PORT`], both with the member's certificate from the service's CA. Cassandra
//! creates its default superuser `cassandra`/`cassandra` when the ring has no role; the runtime
//! then creates [`ADMIN_USER`] with the Secret's password, and turns `cassandra` into a role that
//! can neither log in nor act as a superuser, with a random password (docs/cassandra.md). The
//! roles keyspace (`system_auth`) has one replica per member up to 3 from the first start.
//!
//! Scale: a member added later is never a seed (the seeds are the first member of each zone,
//! which exist already), so it joins by bootstrap, streaming its ranges; a member leaves by
//! `nodetool decommission`, over JMX on [`JMX_PORT`] at the member's own address, with a login as
//! [`ADMIN_USER`] (start.sh writes JMX's password and access files from the Secret, private to
//! the server).

use firecamp_core::spec::{ResourceAmounts, Resources};
use firecamp_core::{EngineKind, Member, ServiceSpec, ValidationErrors};

use crate::engine::Engine;
use crate::layout::MemberPaths;
use crate::plan::{ConfigFile, ContainerPlan, Port, Probe, RenderContext, Role};
use crate::render::{Conf, env_file, file, header};
use crate::version::EngineVersion;

pub struct Cassandra;

/// Clients' port (CQL native protocol, TLS).
pub const CQL_PORT: u16 = 9042;
/// Members' port (gossip and data, mutual TLS).
pub const STORAGE_PORT: u16 = 7000;
/// JMX, for nodetool (FireCamp's decommission): on the member's own address, logins required.
pub const JMX_PORT: u16 = 7199;
/// FireCamp's superuser, whose password is the Secret's [`ADMIN_PASSWORD`].
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password";
/// The superuser Cassandra creates on a ring without roles, and its well-known password: used
/// once, to create [`ADMIN_USER`], then locked.
pub const DEFAULT_SUPERUSER: &str = "cassandra";
pub const DEFAULT_PASSWORD: &str = "cassandra";
/// Below the data volume: Cassandra's data, commit log (unless there is a journal volume),
/// hints and caches.
pub const DATA_SUBDIR: &str = "cassandra";
/// The member's key and certificate in one PEM file (Cassandra's PEM key store), in its run dir.
pub const TLS_PEM: &str = "tls.pem";
/// The address placeholder start.sh replaces with the pod's IP when the member binds no IP of
/// its own (Cassandra cannot listen on 0.0.0.0 for its peers).
pub const POD_IP: &str = "@POD_IP@";
const START_SH: &str = include_str!("start.sh");

/// Cassandra 5.0 from Maven Central (scripts/cassandra/pom.xml), which the local runtime runs.
const VERSIONS: &[EngineVersion] = &[EngineVersion { version: "5.0", image: "docker.io/library/cassandra:5.0.6" }];

/// The service's datacenter: the region of its zones (`us-east-1a` → `us-east-1`); `dc1` when
/// its zones are labels rather than a region's zones (the local runtime's `local`, `a`, `b`).
pub fn datacenter(spec: &ServiceSpec) -> String {
    spec.zones.first().and_then(|z| region_of(z)).unwrap_or("dc1").to_string()
}

/// An AWS zone's region: the zone without the letters that follow its last digit.
fn region_of(zone: &str) -> Option<&str> {
    let trimmed = zone.trim_end_matches(|c: char| c.is_ascii_lowercase());
    (trimmed.len() < zone.len() && trimmed.ends_with(|c: char| c.is_ascii_digit())).then_some(trimmed)
}

/// Replicas of Cassandra's own keyspaces (`system_auth`, `system_distributed`, `system_traces`):
/// one per member, up to 3.
pub fn system_replication(replicas: u32) -> u32 {
    replicas.clamp(1, 3)
}

/// Whether member `index` is a seed: the first member of each zone (members fill the zones in
/// turn). The others join by bootstrap, one at a time.
pub fn is_seed(spec: &ServiceSpec, index: u32) -> bool {
    (index as usize) < spec.zones.len().max(1)
}

/// The seeds' members.
pub fn seeds<'a>(ctx: &'a RenderContext) -> impl Iterator<Item = &'a Member> {
    ctx.members.iter().map(|(m, _, _)| m).filter(|m| is_seed(ctx.spec, m.index))
}

/// The address a member binds, when it binds one of its own (a static IP).
fn own_address(ctx: &RenderContext, m: &Member) -> Option<String> {
    ctx.listen_addresses(m).first().filter(|a| *a != "0.0.0.0").cloned()
}

/// The address a member listens on and its peers reach it at: its own, else [`POD_IP`], which
/// start.sh replaces with the pod's (Cassandra's peers need one they can reach, never 0.0.0.0).
fn listen_address(ctx: &RenderContext, m: &Member) -> String {
    own_address(ctx, m).unwrap_or_else(|| POD_IP.to_string())
}

/// The JVM heap in MiB: the option, else half the memory limit.
pub fn heap_mib(spec: &ServiceSpec, resources: &Resources) -> u128 {
    crate::jvm::heap_mib(spec.cassandra.as_ref().and_then(|c| c.heap.as_deref()), resources)
}

/// Keys FireCamp sets, and why.
const OWNED: &[(&str, &str)] = &[
    ("cluster_name", "the ring is named after the service"),
    ("num_tokens", "a member's tokens are fixed when it first joins"),
    ("allocate_tokens_for_local_replication_factor", "token allocation follows the system keyspaces' replicas"),
    ("partitioner", "a ring's partitioner cannot change"),
    ("seed_provider", "the seeds are the first member of each zone"),
    ("endpoint_snitch", "the datacenter is the region and the rack the zone"),
    ("authenticator", "logins are always required"),
    ("authorizer", "permissions are always checked"),
    ("role_manager", "roles are Cassandra's own"),
    ("network_authorizer", "network permissions are not configurable yet"),
    ("commitlog_sync", "the commit log is synced periodically (every 10 s)"),
    ("start_native_transport", "clients always reach members over CQL"),
];

impl Engine for Cassandra {
    fn kind(&self) -> EngineKind {
        EngineKind::Cassandra
    }

    fn versions(&self) -> &'static [EngineVersion] {
        VERSIONS
    }

    fn validate(&self, spec: &ServiceSpec, errs: &mut ValidationErrors) {
        let first = spec.zones.first().map(|z| region_of(z));
        if let Some(z) = spec.zones.iter().find(|z| Some(region_of(z)) != first) {
            errs.push("spec.zones", format!("a Cassandra service lives in one region (its datacenter, {}); zone {z:?} is not in it", datacenter(spec)));
        }
        crate::jvm::validate_heap("spec.cassandra.heap", spec.cassandra.as_ref().and_then(|c| c.heap.as_deref()), 512, spec, errs);
    }

    fn supports_switchover(&self) -> bool {
        false
    }

    fn owned_config_key(&self, key: &str) -> Option<&'static str> {
        if let Some((_, why)) = OWNED.iter().find(|(k, _)| *k == key) {
            return Some(why);
        }
        if key.contains("encryption") || key.starts_with("ssl") || key.contains("keystore") || key.contains("truststore") {
            return Some("TLS is always on, with the member's certificate from the service's CA");
        }
        if key.contains("address") || key.contains("interface") || key.ends_with("_port") || key.ends_with("port_ssl") {
            return Some("members listen on their own address and FireCamp's ports");
        }
        if key.ends_with("_directory") || key.ends_with("_directories") {
            return Some("the data directories are FireCamp's layout");
        }
        if key.contains("user_defined_function") || key.contains("udf") || key.contains("scripted") {
            return Some("user-defined functions run code inside the server: not configurable");
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
            requests: ResourceAmounts { cpu: Some("1".into()), memory: Some("4Gi".into()) },
            limits: ResourceAmounts { cpu: None, memory: Some("4Gi".into()) },
        }
    }

    fn ports(&self, _spec: &ServiceSpec) -> Vec<Port> {
        vec![
            Port { name: "cql", port: CQL_PORT, client: true },
            Port { name: "storage", port: STORAGE_PORT, client: false },
            Port { name: "jmx", port: JMX_PORT, client: false },
        ]
    }

    fn secret_keys(&self) -> &'static [&'static str] {
        &[ADMIN_PASSWORD]
    }

    fn role(&self, _spec: &ServiceSpec, _index: u32) -> (Role, Option<u32>) {
        (Role::Peer, None)
    }

    fn client_role(&self, _spec: &ServiceSpec) -> Option<Role> {
        None
    }

    fn files(&self, ctx: &RenderContext, member: &Member, paths: &MemberPaths) -> Vec<ConfigFile> {
        let data = format!("{}/{DATA_SUBDIR}", paths.data_dir);
        let seed = seeds(ctx).any(|s| s.name == member.name);
        vec![
            file("cassandra.yaml", cassandra_yaml(ctx, member, paths, &data), 0o644),
            file(
                "cassandra-rackdc.properties",
                format!("# The member's place, rendered by FireCamp.\ndc={}\nrack={}\n", datacenter(ctx.spec), member.zone),
                0o644,
            ),
            file("jvm.args", JVM_ARGS.to_string(), 0o644),
            file("logback.xml", LOGBACK.to_string(), 0o644),
            file(
                "member.env",
                env_file(
                    &header("Identity read by start.sh", member.name.as_str(), ctx.name),
                    &[
                        ("MEMBER", member.name.to_string()),
                        ("SEED", seed.to_string()),
                        ("HEAP_MIB", heap_mib(ctx.spec, ctx.resources).to_string()),
                        ("JMX_ADDRESS", listen_address(ctx, member)),
                        ("JMX_PORT", JMX_PORT.to_string()),
                        ("SYSTEM_RF", system_replication(ctx.spec.replicas).to_string()),
                        ("CONFIG_DIR", paths.config_dir.clone()),
                        ("TLS_DIR", paths.tls_dir.clone()),
                        ("SECRET_DIR", paths.secret_dir.clone()),
                        ("RUN_DIR", paths.run_dir.clone()),
                        ("DATA_DIR", data),
                        ("BIN_DIR", paths.bin_dir.clone()),
                    ],
                ),
                0o644,
            ),
            file("start.sh", START_SH.to_string(), 0o755),
        ]
    }

    fn container(&self, version: &EngineVersion) -> ContainerPlan {
        // A TCP connection to the CQL port: the image's cqlsh would need the password and the
        // CA; FireCamp's role probe logs in (firecamp_probe::cassandra).
        let port_open = |port: u16| vec!["/bin/bash".to_string(), "-c".to_string(), format!("exec 3<>/dev/tcp/127.0.0.1/{port}")];
        ContainerPlan {
            image: version.image,
            command: vec!["/bin/bash".into(), format!("{}/start.sh", crate::layout::K8S_CONFIG_DIR)],
            run_as_user: 999,
            run_as_group: 999,
            readiness: Probe { command: port_open(CQL_PORT), period_seconds: 5, timeout_seconds: 3, failure_threshold: 3 },
            liveness: Probe { command: port_open(STORAGE_PORT), period_seconds: 10, timeout_seconds: 5, failure_threshold: 6 },
            // A first start waits for the ring (up to ~1 min); a restart replays the commit log.
            startup: Probe { command: port_open(CQL_PORT), period_seconds: 5, timeout_seconds: 3, failure_threshold: 120 },
            // SIGTERM drains the member (its shutdown hook flushes memtables) before it exits.
            termination_grace_seconds: 120,
        }
    }
}

/// Java 17's module flags Cassandra 5.0 needs (its `conf/jvm17-server.options`), G1, and what
/// keeps the JVM from lingering; the heap comes from start.sh.
pub const JVM_ARGS: &str = "-Djdk.attach.allowAttachSelf=true
--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED
--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED
--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED
--add-exports=java.sql/java.sql=ALL-UNNAMED
--add-exports=java.base/java.lang.ref=ALL-UNNAMED
--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED
--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
--add-exports=jdk.attach/sun.tools.attach=ALL-UNNAMED
--add-opens=java.base/java.lang.module=ALL-UNNAMED
--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED
--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED
--add-opens=java.base/jdk.internal.math=ALL-UNNAMED
--add-opens=java.base/jdk.internal.module=ALL-UNNAMED
--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED
--add-opens=java.base/sun.nio.ch=ALL-UNNAMED
--add-opens=java.base/java.io=ALL-UNNAMED
--add-opens=java.base/java.lang.reflect=ALL-UNNAMED
--add-opens=java.base/java.lang=ALL-UNNAMED
--add-opens=java.base/java.util=ALL-UNNAMED
--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED
--add-opens=jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
-Dio.netty.tryReflectionSetAccessible=true
-Djava.net.preferIPv4Stack=true
-Djava.awt.headless=true
-Dcassandra-foreground=yes
-Xss256k
-XX:+UseG1GC
-XX:MaxGCPauseMillis=300
-XX:+ExitOnOutOfMemoryError
-XX:+UseThreadPriorities
";

/// Logback: INFO to stderr, the member's log.
const LOGBACK: &str = r#"<!-- Cassandra's logging, rendered by FireCamp: INFO to stderr (the member's log). -->
<configuration scan="false">
  <appender name="STDERR" class="ch.qos.logback.core.ConsoleAppender">
    <target>System.err</target>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDERR"/></root>
</configuration>
"#;

fn cassandra_yaml(ctx: &RenderContext, m: &Member, paths: &MemberPaths, data: &str) -> String {
    let mut c = Conf::new(": ", &header("Cassandra configuration", m.name.as_str(), ctx.name));
    let seeds: Vec<String> = seeds(ctx).map(|s| format!("{}:{STORAGE_PORT}", s.dns_name)).collect();
    let own = own_address(ctx, m);
    let addr = listen_address(ctx, m);
    c.section("The ring: named after the service; the seeds are the first member of each zone.")
        .set("cluster_name", format!("'{}'", ctx.name))
        .set("num_tokens", 16)
        .set("allocate_tokens_for_local_replication_factor", system_replication(ctx.spec.replicas))
        .set("partitioner", "org.apache.cassandra.dht.Murmur3Partitioner")
        .line("seed_provider:")
        .line("  - class_name: org.apache.cassandra.locator.SimpleSeedProvider")
        .line("    parameters:")
        .line(&format!("      - seeds: \"{}\"", seeds.join(",")))
        .set("endpoint_snitch", "GossipingPropertyFileSnitch");
    c.section("Addresses: the member's own.")
        .set("listen_address", &addr)
        .set("broadcast_address", &addr)
        .set("rpc_address", own.as_deref().unwrap_or("0.0.0.0"))
        .set("broadcast_rpc_address", &addr)
        .set("storage_port", STORAGE_PORT)
        .set("native_transport_port", CQL_PORT)
        .set("start_native_transport", "true");
    let commitlog = match &ctx.spec.volumes.journal {
        Some(_) => format!("{}/{DATA_SUBDIR}-commitlog", paths.journal_dir),
        None => format!("{data}/commitlog"),
    };
    c.section("Storage: the data volume (the commit log on the journal volume when there is one).")
        .set("data_file_directories", format!("[{data}/data]"))
        .set("commitlog_directory", commitlog)
        .set("saved_caches_directory", format!("{data}/saved_caches"))
        .set("hints_directory", format!("{data}/hints"))
        .set("cdc_raw_directory", format!("{data}/cdc_raw"))
        .set("commitlog_sync", "periodic")
        .set("commitlog_sync_period", "10000ms")
        .set("disk_failure_policy", "stop")
        .set("commit_failure_policy", "stop");
    c.section("Security: logins and permissions; TLS between members (mutual) and to clients (only).")
        .set("authenticator", "PasswordAuthenticator")
        .set("authorizer", "CassandraAuthorizer")
        .set("role_manager", "CassandraRoleManager")
        .set("user_defined_functions_enabled", "false")
        .set("scripted_user_defined_functions_enabled", "false");
    let pem = format!("{}/{TLS_PEM}", paths.run_dir);
    let ca = format!("{}/{}", paths.tls_dir, crate::tls::CA_FILE);
    let ssl = |c: &mut Conf, block: &str, first: (&str, &str), optional: Option<&str>, client_auth: bool| {
        c.line(&format!("{block}:")).line(&format!("  {}: {}", first.0, first.1));
        if let Some(o) = optional {
            c.line(&format!("  optional: {o}"));
        }
        c.line("  ssl_context_factory:")
            .line("    class_name: org.apache.cassandra.security.PEMBasedSslContextFactory")
            .line(&format!("  keystore: {pem}"))
            .line(&format!("  truststore: {ca}"))
            .line(&format!("  require_client_auth: {client_auth}"));
    };
    ssl(&mut c, "server_encryption_options", ("internode_encryption", "all"), Some("false"), true);
    ssl(&mut c, "client_encryption_options", ("enabled", "true"), Some("false"), false);
    crate::params::append(&mut c, ctx.spec, m.name.as_str(), str::to_string);
    c.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_datacenter_is_the_zones_region() {
        assert_eq!(region_of("us-east-1a"), Some("us-east-1"));
        assert_eq!(region_of("ap-southeast-2c"), Some("ap-southeast-2"));
        assert_eq!(region_of("local"), None);
        assert_eq!(region_of("zone-a"), None);
        let mut s = crate::examples::spec(EngineKind::Cassandra, 3);
        assert_eq!(datacenter(&s), "us-east-1");
        s.zones = vec!["a".into(), "b".into()];
        assert_eq!(datacenter(&s), "dc1");
        let mut errs = ValidationErrors::default();
        s.zones = vec!["us-east-1a".into(), "us-west-2a".into()];
        Cassandra.validate(&s, &mut errs);
        assert!(errs.to_string().contains("spec.zones") && errs.to_string().contains("us-west-2a"), "{errs}");
    }
}
