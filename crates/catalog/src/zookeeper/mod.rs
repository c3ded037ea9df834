//! ZooKeeper 3.8/3.9: an ensemble of odd size; server N is member N-1.

use firecamp_core::spec::{ResourceAmounts, Resources};
use firecamp_core::{EngineKind, Member, ServiceSpec, ValidationErrors, quantity};

use crate::engine::Engine;
use crate::layout::MemberPaths;
use crate::plan::{ConfigFile, ContainerPlan, Port, Probe, RenderContext, Role, memory_limit_mib};
use crate::render::{Conf, env_file, file, header};
use crate::version::EngineVersion;

pub struct ZooKeeper;

pub const CLIENT_PORT: u16 = 2181;
pub const PEER_PORT: u16 = 2888;
pub const ELECTION_PORT: u16 = 3888;
pub const MAX_MEMBERS: u32 = 9;
/// Four-letter words the probes and FireCamp's role detection use.
pub const FOUR_LETTER_WORDS: &str = "srvr,ruok,mntr,conf,isro";
const START_SH: &str = include_str!("start.sh");

/// Debian 12 ships 3.8, which the local runtime runs.
const VERSIONS: &[EngineVersion] = &[
    EngineVersion { version: "3.8", image: "docker.io/library/zookeeper:3.8.4" },
    EngineVersion { version: "3.9", image: "docker.io/library/zookeeper:3.9.3" },
];

/// ZooKeeper's server id of a member (`myid`, `server.N`): its index plus one.
pub fn server_id(member: &Member) -> u32 {
    member.index + 1
}

/// The JVM heap in MiB: the option, else half the memory limit.
pub fn heap_mib(spec: &ServiceSpec, resources: &Resources) -> u128 {
    spec.zookeeper
        .as_ref()
        .and_then(|z| z.heap.as_deref())
        .and_then(|h| quantity::parse(h).ok())
        .map(|q| q.mebibytes())
        .unwrap_or_else(|| memory_limit_mib(resources).unwrap_or(1024) / 2)
}

impl Engine for ZooKeeper {
    fn kind(&self) -> EngineKind {
        EngineKind::Zookeeper
    }

    fn versions(&self) -> &'static [EngineVersion] {
        VERSIONS
    }

    fn validate(&self, spec: &ServiceSpec, errs: &mut ValidationErrors) {
        if spec.replicas.is_multiple_of(2) || spec.replicas > MAX_MEMBERS {
            errs.push(
                "spec.replicas",
                format!("a ZooKeeper ensemble needs an odd number of members, 1 to {MAX_MEMBERS} (a majority must survive), got {}", spec.replicas),
            );
        }
        let heap = spec.zookeeper.as_ref().and_then(|z| z.heap.as_deref());
        if let Some(h) = heap {
            match quantity::parse(h) {
                Err(e) => errs.push("spec.zookeeper.heap", e),
                Ok(q) if q.mebibytes() < 64 => errs.push("spec.zookeeper.heap", "must be at least 64Mi"),
                Ok(q) => {
                    let limit = spec.resources.limits.memory.as_deref().and_then(|m| quantity::parse(m).ok());
                    if limit.is_some_and(|l| q >= l) {
                        errs.push("spec.zookeeper.heap", "must be below spec.resources.limits.memory (the JVM needs memory beyond its heap)");
                    }
                }
            }
        }
    }

    fn supports_switchover(&self) -> bool {
        false
    }

    /// ZooKeeper reads zoo.cfg only at start: every change restarts the members (leader last).
    fn reloadable(&self, _key: &str) -> bool {
        false
    }

    fn owned_config_key(&self, key: &str) -> Option<&'static str> {
        if ["server.", "group.", "weight."].iter().any(|p| key.starts_with(p)) {
            return Some("the ensemble's servers are the service's members");
        }
        OWNED.iter().find(|(k, _)| *k == key).map(|(_, why)| *why)
    }

    fn needs_static_ip(&self) -> bool {
        false
    }

    fn default_resources(&self) -> Resources {
        Resources {
            requests: ResourceAmounts { cpu: Some("250m".into()), memory: Some("1Gi".into()) },
            limits: ResourceAmounts { cpu: None, memory: Some("1Gi".into()) },
        }
    }

    fn ports(&self, _spec: &ServiceSpec) -> Vec<Port> {
        vec![
            Port { name: "client", port: CLIENT_PORT, client: true },
            Port { name: "peer", port: PEER_PORT, client: false },
            Port { name: "election", port: ELECTION_PORT, client: false },
        ]
    }

    fn secret_keys(&self) -> &'static [&'static str] {
        &[]
    }

    fn role(&self, _spec: &ServiceSpec, _index: u32) -> (Role, Option<u32>) {
        (Role::Peer, None)
    }

    fn client_role(&self, _spec: &ServiceSpec) -> Option<Role> {
        None
    }

    fn files(&self, ctx: &RenderContext, member: &Member, paths: &MemberPaths) -> Vec<ConfigFile> {
        let heap = heap_mib(ctx.spec, ctx.resources);
        let log_dir = ctx.spec.volumes.journal.as_ref().map(|_| format!("{}/zookeeper", paths.journal_dir)).unwrap_or_default();
        let java_env = format!(
            "# JVM settings of member {m} (service {s}), rendered by FireCamp; read by zkEnv.sh.\n\
             ZK_SERVER_HEAP={heap}\n\
             SERVER_JVMFLAGS=\"-Xms{heap}m -XX:+UseG1GC -XX:MaxGCPauseMillis=50 -XX:+ExitOnOutOfMemoryError -Dzookeeper.4lw.commands.whitelist={FOUR_LETTER_WORDS}\"\n",
            m = member.name,
            s = ctx.name
        );
        vec![
            file("zoo.cfg", zoo_cfg(ctx, member, paths, &log_dir), 0o644),
            file("myid", format!("{}\n", server_id(member)), 0o644),
            file("java.env", java_env, 0o644),
            file("logback.xml", LOGBACK_XML.to_string(), 0o644),
            file(
                "member.env",
                env_file(
                    &header("Identity read by start.sh", member.name.as_str(), ctx.name),
                    &[
                        ("MEMBER", member.name.to_string()),
                        ("MYID", server_id(member).to_string()),
                        ("CONFIG_DIR", paths.config_dir.clone()),
                        ("RUN_DIR", paths.run_dir.clone()),
                        ("DATA_DIR", paths.data_dir.clone()),
                        ("LOG_DIR", log_dir),
                        ("BIN_DIR", paths.bin_dir.clone()),
                    ],
                ),
                0o644,
            ),
            file("start.sh", START_SH.to_string(), 0o755),
        ]
    }

    fn container(&self, version: &EngineVersion) -> ContainerPlan {
        // The image has bash but no nc: speak the four-letter words over bash's /dev/tcp.
        let word = |w: &str, expect: &str| {
            vec!["/bin/bash".to_string(), "-c".to_string(), format!("exec 3<>/dev/tcp/127.0.0.1/{CLIENT_PORT} && printf {w} >&3 && grep -q '{expect}' <&3")]
        };
        ContainerPlan {
            image: version.image,
            command: vec!["/bin/bash".into(), format!("{}/start.sh", crate::layout::K8S_CONFIG_DIR)],
            run_as_user: 1000,
            run_as_group: 1000,
            // Ready only when serving: `srvr` reports a Mode once the member is in a quorum.
            readiness: Probe { command: word("srvr", "^Mode: "), period_seconds: 5, timeout_seconds: 3, failure_threshold: 3 },
            liveness: Probe { command: word("ruok", "imok"), period_seconds: 10, timeout_seconds: 5, failure_threshold: 6 },
            startup: Probe { command: word("ruok", "imok"), period_seconds: 5, timeout_seconds: 3, failure_threshold: 60 },
            termination_grace_seconds: 30,
        }
    }
}

/// Parameters FireCamp renders itself, and why a service may not set them.
const OWNED: &[(&str, &str)] = &[
    ("dataDir", "the data directory is FireCamp's layout"),
    ("dataLogDir", "the transaction log goes to the journal volume when the spec has one"),
    ("clientPort", "members use the engine's standard port 2181"),
    ("clientPortAddress", "members listen on their own address"),
    ("secureClientPort", "members use the engine's standard port 2181"),
    ("secureClientPortAddress", "members listen on their own address"),
    ("standaloneEnabled", "follows the number of members"),
    ("reconfigEnabled", "the ensemble is the service's members"),
    ("dynamicConfigFile", "the ensemble is the service's members"),
    ("quorumListenOnAllIPs", "follows where members bind"),
    ("4lw.commands.whitelist", "the runtime's probes need srvr and ruok"),
    ("admin.enableServer", "the admin server's port would collide between members"),
    ("admin.serverPort", "the admin server's port would collide between members"),
];

fn zoo_cfg(ctx: &RenderContext, m: &Member, paths: &MemberPaths, log_dir: &str) -> String {
    let mut c = Conf::new("=", &header("ZooKeeper configuration", m.name.as_str(), ctx.name));
    c.section("Time and storage.").set("tickTime", 2000).set("initLimit", 10).set("syncLimit", 5).set("dataDir", format!("{}/zookeeper", paths.data_dir));
    if !log_dir.is_empty() {
        c.set("dataLogDir", log_dir);
    }
    c.set("autopurge.snapRetainCount", 5).set("autopurge.purgeInterval", 24);
    c.section("Clients.")
        .set("clientPort", CLIENT_PORT)
        .set("clientPortAddress", ctx.listen_addresses(m)[0].clone())
        .set("maxClientCnxns", 60)
        .set("minSessionTimeout", 4000)
        .set("maxSessionTimeout", 40000)
        .set("4lw.commands.whitelist", FOUR_LETTER_WORDS)
        .set("admin.enableServer", "false");
    c.section("The ensemble: server N is member N-1, reached by its DNS name.")
        .set("standaloneEnabled", ctx.members.len() == 1)
        .set("reconfigEnabled", "false")
        // In a pod the member's DNS name may still point at its previous address when the
        // server starts; listening on all interfaces avoids binding a stale one.
        .set("quorumListenOnAllIPs", !ctx.binds_own_address());
    for (o, _, _) in ctx.members {
        c.set(&format!("server.{}", server_id(o)), format!("{}:{PEER_PORT}:{ELECTION_PORT}", o.dns_name));
    }
    crate::params::append(&mut c, ctx.spec, m.name.as_str(), |v| v.to_string());
    c.build()
}

const LOGBACK_XML: &str = r#"<!-- ZooKeeper logging, rendered by FireCamp: everything to the console (the member's log). -->
<configuration>
  <appender name="CONSOLE" class="ch.qos.logback.core.ConsoleAppender">
    <encoder>
      <pattern>%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="CONSOLE"/>
  </root>
</configuration>
"#;
