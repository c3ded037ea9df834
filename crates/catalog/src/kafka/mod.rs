//! Kafka 4 in KRaft mode (no ZooKeeper): every member is both a broker and a controller (one
//! process, `process.roles=broker,controller`), the combined mode Kafka recommends for small
//! clusters; the quorum's voters are all members, so a service has an odd number of them.
//! Member N is node N (`node.id`).
//!
//! Security: clients reach a broker over TLS on [`CLIENT_PORT`] (SASL_SSL, the member's
//! certificate from the service's CA) and must log in with SASL SCRAM-SHA-512 as one of the
//! service's users ([`ADMIN_USER`], [`CLIENT_USER`]); brokers log in to each other as
//! [`ADMIN_USER`] on the same listener. Controllers talk over mutual TLS on [`CONTROLLER_PORT`]
//! (a client certificate from the service's CA is required). The passwords live in the service
//! Secret. Kafka's StandardAuthorizer checks every request: [`ADMIN_USER`] and the members'
//! certificates are superusers, [`CLIENT_USER`] gets ACLs on every topic, group and
//! transactional id (created once the cluster formed), nothing else. The SCRAM credentials (salted, in the metadata log) are written when a member's
//! storage is formatted: `start.sh` puts the storage tool's arguments, passwords included, in a
//! private argument file that Java reads (`java @file`) and removes it after. The broker's own
//! login goes into a JAAS file in the private run directory at every start, whose path alone is
//! on the JVM's command line.

use firecamp_core::spec::{ResourceAmounts, Resources};
use firecamp_core::{EngineKind, Member, ServiceSpec, ValidationErrors};

use crate::engine::Engine;
use crate::layout::MemberPaths;
use crate::plan::{ConfigFile, ContainerPlan, Port, Probe, RenderContext, Role};
use crate::render::{Conf, env_file, file, header};
use crate::version::EngineVersion;

pub struct Kafka;

/// The brokers' port: SASL_SSL.
pub const CLIENT_PORT: u16 = 9092;
/// The controllers' port: mutual TLS.
pub const CONTROLLER_PORT: u16 = 9093;
/// At most this many members: every member is a voter of the controller quorum.
pub const MAX_MEMBERS: u32 = 9;
/// FireCamp's own login, and the brokers' to each other.
pub const ADMIN_USER: &str = "admin";
/// The applications' user: every operation on every topic, group and transactional id (the
/// ACLs FireCamp creates once the cluster formed), nothing on the cluster itself.
pub const CLIENT_USER: &str = "client";
/// The principal a member's certificate maps to on the controllers' listener (a superuser).
pub const MEMBER_PRINCIPAL: &str = "firecamp-member";
pub const ADMIN_PASSWORD: &str = "admin-password";
pub const CLIENT_PASSWORD: &str = "client-password";
/// The only SASL mechanism the brokers take, clients and brokers alike.
pub const SASL_MECHANISM: &str = "SCRAM-SHA-512";
/// The listeners' names in `server.properties`.
pub const CLIENT_LISTENER: &str = "CLIENT";
pub const CONTROLLER_LISTENER: &str = "CONTROLLER";
/// Where a member keeps its partitions (and, without a journal volume, the metadata log) below
/// its data volume.
pub const DATA_SUBDIR: &str = "kafka";
/// The member's key and certificate in one PEM file (Kafka's PEM key store), in its run dir.
pub const TLS_PEM: &str = "tls.pem";
/// The JAAS file start.sh writes into the run dir.
pub const JAAS_CONF: &str = "jaas.conf";
const START_SH: &str = include_str!("start.sh");

/// Kafka 4.4 from Maven Central (scripts/kafka/pom.xml), which the local runtime runs.
const VERSIONS: &[EngineVersion] = &[EngineVersion { version: "4.4", image: "docker.io/apache/kafka:4.4.0" }];

/// Kafka's node id of a member (`node.id`, the quorum's voter id): its index.
pub fn node_id(member: &Member) -> u32 {
    member.index
}

/// The JVM heap in MiB: the option, else half the memory limit.
pub fn heap_mib(spec: &ServiceSpec, resources: &Resources) -> u128 {
    crate::jvm::heap_mib(spec.kafka.as_ref().and_then(|k| k.heap.as_deref()), resources)
}

/// The service's Kafka cluster id: 16 bytes, URL-safe base64 without padding (what
/// `kafka-storage random-uuid` prints), derived from the service's namespace and name so that
/// every member, and every later render, formats with the same one without storing it.
pub fn cluster_id(namespace: &str, service: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("firecamp-kafka\0{namespace}\0{service}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// Replication factor of Kafka's internal topics and of new topics: the cluster's size, up to 3.
pub fn replication_factor(replicas: u32) -> u32 {
    replicas.clamp(1, 3)
}

impl Engine for Kafka {
    fn kind(&self) -> EngineKind {
        EngineKind::Kafka
    }

    fn versions(&self) -> &'static [EngineVersion] {
        VERSIONS
    }

    fn size_rule(&self, replicas: u32) -> Option<String> {
        (replicas.is_multiple_of(2) || replicas > MAX_MEMBERS).then(|| {
            format!(
                "a Kafka service needs an odd number of members, 1 to {MAX_MEMBERS}: each is a voter of the KRaft controller quorum (a majority must survive), got {replicas}"
            )
        })
    }

    fn validate(&self, spec: &ServiceSpec, errs: &mut ValidationErrors) {
        if spec.replicas > MAX_MEMBERS {
            errs.push("spec.replicas", format!("a Kafka service has at most {MAX_MEMBERS} members, got {}", spec.replicas));
        }
        crate::jvm::validate_heap("spec.kafka.heap", spec.kafka.as_ref().and_then(|k| k.heap.as_deref()), 256, spec, errs);
    }

    fn supports_switchover(&self) -> bool {
        false
    }

    fn owned_config_key(&self, key: &str) -> Option<&'static str> {
        if key.starts_with("controller.") || key == "process.roles" || key == "node.id" {
            return Some("the controller quorum is the service's members, each a broker and a controller");
        }
        if ["listener", "advertised.", "inter.broker.", "security.", "sasl.", "ssl.", "principal."].iter().any(|p| key.starts_with(p)) {
            return Some("listeners are TLS with the service's CA and SASL logins as the service's users");
        }
        if key.starts_with("log.dir") || key == "metadata.log.dir" {
            return Some("the data directories are FireCamp's layout");
        }
        match key {
            "broker.rack" => Some("a member's rack is its availability zone"),
            "authorizer.class.name" | "super.users" | "allow.everyone.if.no.acl.found" => {
                Some("authorization is FireCamp's: admin is the superuser, client may use every topic, group and transactional id (docs/kafka.md)")
            }
            _ => None,
        }
    }

    fn needs_static_ip(&self) -> bool {
        false
    }

    fn supports_tls(&self) -> bool {
        true
    }

    fn default_resources(&self) -> Resources {
        Resources {
            requests: ResourceAmounts { cpu: Some("500m".into()), memory: Some("2Gi".into()) },
            limits: ResourceAmounts { cpu: None, memory: Some("2Gi".into()) },
        }
    }

    fn ports(&self, _spec: &ServiceSpec) -> Vec<Port> {
        vec![Port { name: "client", port: CLIENT_PORT, client: true }, Port { name: "controller", port: CONTROLLER_PORT, client: false }]
    }

    fn secret_keys(&self) -> &'static [&'static str] {
        &[ADMIN_PASSWORD, CLIENT_PASSWORD]
    }

    fn role(&self, _spec: &ServiceSpec, _index: u32) -> (Role, Option<u32>) {
        (Role::Peer, None)
    }

    fn client_role(&self, _spec: &ServiceSpec) -> Option<Role> {
        None
    }

    fn files(&self, ctx: &RenderContext, member: &Member, paths: &MemberPaths) -> Vec<ConfigFile> {
        let log_dirs = format!("{}/{DATA_SUBDIR}", paths.data_dir);
        // With a journal volume, the KRaft metadata log (fsynced on every commit) goes there.
        let metadata_dir =
            ctx.spec.volumes.journal.as_ref().map(|_| format!("{}/{DATA_SUBDIR}-metadata", paths.journal_dir)).unwrap_or_else(|| log_dirs.clone());
        vec![
            file("server.properties", server_properties(ctx, member, paths, &log_dirs, &metadata_dir), 0o644),
            file("log4j2.properties", LOG4J2.to_string(), 0o644),
            file(
                "member.env",
                env_file(
                    &header("Identity read by start.sh", member.name.as_str(), ctx.name),
                    &[
                        ("MEMBER", member.name.to_string()),
                        ("NODE_ID", node_id(member).to_string()),
                        ("CLUSTER_ID", cluster_id(&ctx.cluster.namespace, ctx.name)),
                        ("HEAP_MIB", heap_mib(ctx.spec, ctx.resources).to_string()),
                        ("CONFIG_DIR", paths.config_dir.clone()),
                        ("SECRET_DIR", paths.secret_dir.clone()),
                        ("TLS_DIR", paths.tls_dir.clone()),
                        ("RUN_DIR", paths.run_dir.clone()),
                        ("LOG_DIRS", log_dirs),
                        ("METADATA_DIR", metadata_dir),
                        ("BIN_DIR", paths.bin_dir.clone()),
                    ],
                ),
                0o644,
            ),
            file("start.sh", START_SH.to_string(), 0o755),
        ]
    }

    fn container(&self, version: &EngineVersion) -> ContainerPlan {
        // A TCP connection to the brokers' port: Kafka's own protocol needs a client the image
        // does not have (FireCamp's role probe speaks it: firecamp_probe::kafka).
        let port_open = |port: u16| vec!["/bin/bash".to_string(), "-c".to_string(), format!("exec 3<>/dev/tcp/127.0.0.1/{port}")];
        ContainerPlan {
            image: version.image,
            command: vec!["/bin/bash".into(), format!("{}/start.sh", crate::layout::K8S_CONFIG_DIR)],
            run_as_user: 1000,
            run_as_group: 1000,
            readiness: Probe { command: port_open(CLIENT_PORT), period_seconds: 5, timeout_seconds: 3, failure_threshold: 3 },
            liveness: Probe { command: port_open(CONTROLLER_PORT), period_seconds: 10, timeout_seconds: 5, failure_threshold: 6 },
            startup: Probe { command: port_open(CONTROLLER_PORT), period_seconds: 5, timeout_seconds: 3, failure_threshold: 60 },
            // A broker's controlled shutdown moves its partitions' leadership away first.
            termination_grace_seconds: 60,
        }
    }
}

/// Log4j 2: everything at INFO to stderr, the member's log; the chattiest loggers at WARN.
const LOG4J2: &str = "# Kafka's logging, rendered by FireCamp: INFO to stderr (the member's log).
status = error
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stderr.ref = STDERR
logger.network.name = org.apache.kafka.clients.NetworkClient
logger.network.level = WARN
logger.raft.name = org.apache.kafka.raft
logger.raft.level = WARN
";

fn server_properties(ctx: &RenderContext, m: &Member, paths: &MemberPaths, log_dirs: &str, metadata_dir: &str) -> String {
    let mut c = Conf::new("=", &header("Kafka configuration (KRaft)", m.name.as_str(), ctx.name));
    let voters: Vec<String> = ctx.members.iter().map(|(o, _, _)| format!("{}@{}:{CONTROLLER_PORT}", node_id(o), o.dns_name)).collect();
    c.section("Identity: every member is a broker and a voter of the controller quorum.")
        .set("process.roles", "broker,controller")
        .set("node.id", node_id(m))
        .set("controller.quorum.voters", voters.join(","))
        .set("broker.rack", &m.zone);
    let addr = ctx.listen_addresses(m)[0].clone();
    c.section(&format!(
        "Listeners: {CLIENT_LISTENER} (clients and brokers) is SASL SCRAM-SHA-512 over TLS, {CONTROLLER_LISTENER} mutual TLS;\n\
         both with the member's certificate from the service's CA."
    ))
    .set("listeners", format!("{CLIENT_LISTENER}://{addr}:{CLIENT_PORT},{CONTROLLER_LISTENER}://{addr}:{CONTROLLER_PORT}"))
    .set("advertised.listeners", format!("{CLIENT_LISTENER}://{}:{CLIENT_PORT}", m.dns_name))
    .set("listener.security.protocol.map", format!("{CLIENT_LISTENER}:SASL_SSL,{CONTROLLER_LISTENER}:SSL"))
    .set("controller.listener.names", CONTROLLER_LISTENER)
    .set("inter.broker.listener.name", CLIENT_LISTENER)
    .set("sasl.enabled.mechanisms", SASL_MECHANISM)
    .set("sasl.mechanism.inter.broker.protocol", SASL_MECHANISM)
    .set("ssl.keystore.type", "PEM")
    .set("ssl.keystore.location", format!("{}/{TLS_PEM}", paths.run_dir))
    .set("ssl.truststore.type", "PEM")
    .set("ssl.truststore.location", format!("{}/{}", paths.tls_dir, crate::tls::CA_FILE))
    .set("listener.name.controller.ssl.client.auth", "required");
    c.section(&format!(
        "Authorization: {ADMIN_USER} (FireCamp, and the brokers among themselves) and the members' certificates on\n\
         {CONTROLLER_LISTENER} are superusers; {CLIENT_USER} has what FireCamp grants it once the cluster formed."
    ))
    .set("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer")
    .set("super.users", format!("User:{ADMIN_USER};User:{MEMBER_PRINCIPAL}"))
    .set("allow.everyone.if.no.acl.found", "false")
    // Only the controllers' listener takes certificates as logins, and only the service CA's.
    .set("ssl.principal.mapping.rules", format!("RULE:^.*$/{MEMBER_PRINCIPAL}/"));
    let rf = replication_factor(ctx.spec.replicas);
    c.section("Storage and durability: replicated over the zones (up to 3 copies); a write waits for 2 of 3.")
        .set("log.dirs", log_dirs)
        .set("metadata.log.dir", metadata_dir)
        .set("default.replication.factor", rf)
        .set("min.insync.replicas", rf.min(2))
        .set("offsets.topic.replication.factor", rf)
        .set("transaction.state.log.replication.factor", rf)
        .set("transaction.state.log.min.isr", rf.min(2))
        .set("share.coordinator.state.topic.replication.factor", rf)
        .set("share.coordinator.state.topic.min.isr", rf.min(2))
        .set("unclean.leader.election.enable", "false")
        .set("auto.create.topics.enable", "false")
        .set("group.initial.rebalance.delay.ms", 0);
    crate::params::append(&mut c, ctx.spec, m.name.as_str(), str::to_string);
    c.build()
}
