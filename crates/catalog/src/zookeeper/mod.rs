//! ZooKeeper 3.8/3.9: an ensemble of odd size; server N is member N-1.
//!
//! Security: clients reach a member over TLS on the standard port ([`CLIENT_PORT`],
//! `secureClientPort`, the member's certificate from the service's CA) and must log in with SASL
//! DIGEST-MD5 as one of the service's users ([`SUPER_USER`], [`CLIENT_USER`]); the plain
//! [`PLAIN_CLIENT_PORT`] listens only with `spec.tls.allowPlaintext` (and asks for the same login). Members talk among themselves over
//! mutual TLS (`sslQuorum`) and authenticate with SASL DIGEST-MD5 as [`QUORUM_USER`]. The
//! passwords live in the service Secret; `start.sh` writes them into a JAAS file in the private
//! run directory at every start, whose path alone is on the JVM's command line.

use firecamp_core::spec::{ResourceAmounts, Resources};
use firecamp_core::{EngineKind, Member, ServiceSpec, ValidationErrors};

use crate::engine::Engine;
use crate::layout::MemberPaths;
use crate::plan::{ConfigFile, ContainerPlan, Port, Probe, RenderContext, Role};
use crate::render::{Conf, env_file, file, header};
use crate::version::EngineVersion;

pub struct ZooKeeper;

/// The client port, TLS only (`secureClientPort`): ZooKeeper's standard port, always open;
/// FireCamp's probes use it.
pub const CLIENT_PORT: u16 = 2181;
/// The plain client port (`clientPort`): open only with `spec.tls.allowPlaintext`.
pub const PLAIN_CLIENT_PORT: u16 = 2182;
pub const PEER_PORT: u16 = 2888;
pub const ELECTION_PORT: u16 = 3888;
pub const MAX_MEMBERS: u32 = 9;
/// Where ZooKeeper keeps its database (snapshots; and transaction logs, unless a journal
/// volume has them) below a volume's root; `start.sh` spells the same.
pub const DATABASE_DIR: &str = "zookeeper/version-2";
/// Four-letter words the probes and FireCamp's role detection use.
pub const FOUR_LETTER_WORDS: &str = "srvr,ruok,mntr,conf,isro";
/// The SASL user members log in as to each other (quorum authentication).
pub const QUORUM_USER: &str = "quorum";
/// ZooKeeper's superuser (`zookeeper.superUser`): every ACL admits it. FireCamp's own login.
pub const SUPER_USER: &str = "super";
/// The applications' user: an ordinary SASL identity, subject to ACLs.
pub const CLIENT_USER: &str = "client";
/// The service Secret's keys: one password per SASL user.
pub const QUORUM_PASSWORD: &str = "quorum-password";
pub const SUPER_PASSWORD: &str = "super-password";
pub const CLIENT_PASSWORD: &str = "client-password";
/// The JAAS login contexts of `jaas.conf` (written by start.sh): the client side of quorum
/// authentication, its server side, and the client port's server side.
pub const JAAS_QUORUM_LEARNER: &str = "QuorumLearner";
pub const JAAS_QUORUM_SERVER: &str = "QuorumServer";
pub const JAAS_SERVER: &str = "Server";
/// The factory that serves TLS (the default NIO one cannot).
pub const NETTY_FACTORY: &str = "org.apache.zookeeper.server.NettyServerCnxnFactory";
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
    crate::jvm::heap_mib(spec.zookeeper.as_ref().and_then(|z| z.heap.as_deref()), resources)
}

impl Engine for ZooKeeper {
    fn kind(&self) -> EngineKind {
        EngineKind::Zookeeper
    }

    fn versions(&self) -> &'static [EngineVersion] {
        VERSIONS
    }

    fn size_rule(&self, replicas: u32) -> Option<String> {
        (replicas.is_multiple_of(2) || replicas > MAX_MEMBERS)
            .then(|| format!("a ZooKeeper ensemble needs an odd number of members, 1 to {MAX_MEMBERS} (a majority must survive), got {replicas}"))
    }

    fn validate(&self, spec: &ServiceSpec, errs: &mut ValidationErrors) {
        // Even in the middle of a scale, never beyond what ZooKeeper's server ids allow here.
        if spec.replicas > MAX_MEMBERS {
            errs.push("spec.replicas", format!("a ZooKeeper ensemble has at most {MAX_MEMBERS} members, got {}", spec.replicas));
        }
        crate::jvm::validate_heap("spec.zookeeper.heap", spec.zookeeper.as_ref().and_then(|z| z.heap.as_deref()), 64, spec, errs);
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
        if key.starts_with("ssl.") {
            return Some("TLS uses the member's certificate from the service's CA");
        }
        if ["quorum.auth.", "enforce.auth."].iter().any(|p| key.starts_with(p)) || key == "authProvider.sasl" {
            return Some("members and clients always authenticate with SASL as the service's users");
        }
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
            requests: ResourceAmounts { cpu: Some("250m".into()), memory: Some("1Gi".into()) },
            limits: ResourceAmounts { cpu: None, memory: Some("1Gi".into()) },
        }
    }

    /// `client` (2181, TLS) always, `client-plain` (2182) only with `spec.tls.allowPlaintext`;
    /// the quorum's two ports carry TLS.
    fn ports(&self, spec: &ServiceSpec) -> Vec<Port> {
        let mut ports = vec![Port { name: "client", port: CLIENT_PORT, client: true }];
        if spec.tls.allow_plaintext {
            ports.push(Port { name: "client-plain", port: PLAIN_CLIENT_PORT, client: true });
        }
        ports.push(Port { name: "peer", port: PEER_PORT, client: false });
        ports.push(Port { name: "election", port: ELECTION_PORT, client: false });
        ports
    }

    fn secret_keys(&self) -> &'static [&'static str] {
        &[QUORUM_PASSWORD, SUPER_PASSWORD, CLIENT_PASSWORD]
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
             # The JAAS file (SASL logins) is written by start.sh from the service Secret: only its path is here.\n\
             SERVER_JVMFLAGS=\"-Xms{heap}m -XX:+UseG1GC -XX:MaxGCPauseMillis=50 -XX:+ExitOnOutOfMemoryError -Dzookeeper.4lw.commands.whitelist={FOUR_LETTER_WORDS} -Djava.security.auth.login.config={jaas}\"\n",
            m = member.name,
            s = ctx.name,
            jaas = jaas_file(paths),
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
                        ("DNS_NAME", member.dns_name.clone()),
                        // In a pod: wait until the DNS name is the pod's own address (see zoo_cfg).
                        ("WAIT_DNS", if ctx.binds_own_address() { "0" } else { "1" }.to_string()),
                        ("CONFIG_DIR", paths.config_dir.clone()),
                        ("SECRET_DIR", paths.secret_dir.clone()),
                        ("TLS_DIR", paths.tls_dir.clone()),
                        ("RUN_DIR", paths.run_dir.clone()),
                        ("DATA_DIR", paths.data_dir.clone()),
                        ("LOG_DIR", log_dir),
                        ("BIN_DIR", paths.bin_dir.clone()),
                    ]
                    .into_iter()
                    // A restored service's first member starts from the backup's snapshots and logs.
                    .chain(paths.backup.restore.as_ref().map(|r| ("RESTORE_BASE", r.base_dir.clone())))
                    .collect::<Vec<_>>(),
                ),
                0o644,
            ),
            file("start.sh", START_SH.to_string(), 0o755),
            file(DYNAMIC_CFG, dynamic_cfg(ctx, member), 0o644),
        ]
        .into_iter()
        // Kubernetes: member-init downloads the backup's files before the first start.
        .chain(paths.backup.restore.as_ref().and_then(|r| r.fetch.as_ref()).map(|f| file(crate::layout::RESTORE_FROM, f.render(), 0o644)))
        .collect()
    }

    fn container(&self, version: &EngineVersion) -> ContainerPlan {
        // The plain port may be off: the four-letter words go over TLS to the secure port, with
        // `openssl s_client` verifying the member's certificate (it names 127.0.0.1) against the
        // service's CA. `-quiet` waits for the server to close after its answer.
        let word = |w: &str, expect: &str| {
            vec![
                "/bin/bash".to_string(),
                "-c".to_string(),
                format!(
                    "printf {w} | openssl s_client -quiet -connect 127.0.0.1:{CLIENT_PORT} -CAfile {}/{} -verify_return_error -verify_ip 127.0.0.1 2>/dev/null | grep -q '{expect}'",
                    crate::layout::K8S_TLS_DIR,
                    crate::tls::CA_FILE
                ),
            ]
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
    ("clientPort", "the plain port is 2182, open only with spec.tls.allowPlaintext"),
    ("clientPortAddress", "members listen on their own address"),
    ("secureClientPort", "members serve TLS on the engine's standard port 2181"),
    ("secureClientPortAddress", "members listen on their own address"),
    ("serverCnxnFactory", "TLS needs the Netty connection factory"),
    ("sslQuorum", "members always talk among themselves over TLS"),
    ("portUnification", "members always talk among themselves over TLS"),
    ("client.portUnification", "the TLS port serves only TLS (spec.tls.allowPlaintext opens the plain port)"),
    ("superUser", "the superuser is the service's SASL user super"),
    ("sessionRequireClientSASLAuth", "clients must always log in with SASL (enforce.auth)"),
    ("standaloneEnabled", "follows the number of members"),
    ("reconfigEnabled", "the ensemble is the service's members"),
    ("dynamicConfigFile", "the ensemble is the service's members"),
    ("quorumListenOnAllIPs", "follows where members bind"),
    ("4lw.commands.whitelist", "the runtime's probes need srvr and ruok"),
    ("admin.enableServer", "the admin server's port would collide between members"),
    ("admin.serverPort", "the admin server's port would collide between members"),
];

/// The member's key and certificate in one PEM file (ZooKeeper's PEM key store), in its run dir.
pub const TLS_PEM: &str = "tls.pem";
/// The ensemble's servers (ZooKeeper's dynamic configuration file), rendered beside zoo.cfg.
pub const DYNAMIC_CFG: &str = "zoo.cfg.dynamic";
/// The JAAS file start.sh writes into the run dir.
pub const JAAS_CONF: &str = "jaas.conf";

pub fn jaas_file(paths: &MemberPaths) -> String {
    format!("{}/{JAAS_CONF}", paths.run_dir)
}

fn zoo_cfg(ctx: &RenderContext, m: &Member, paths: &MemberPaths, log_dir: &str) -> String {
    let mut c = Conf::new("=", &header("ZooKeeper configuration", m.name.as_str(), ctx.name));
    c.section("Time and storage.").set("tickTime", 2000).set("initLimit", 10).set("syncLimit", 5).set("dataDir", format!("{}/zookeeper", paths.data_dir));
    if !log_dir.is_empty() {
        c.set("dataLogDir", log_dir);
    }
    c.set("autopurge.snapRetainCount", 5).set("autopurge.purgeInterval", 24);
    let addr = ctx.listen_addresses(m)[0].clone();
    let pem = format!("{}/{}", paths.run_dir, TLS_PEM);
    let ca = format!("{}/{}", paths.tls_dir, crate::tls::CA_FILE);
    // start.sh writes the member's key and certificate into one private PEM file at every start.
    c.section("Clients: TLS with the member's certificate from the service's CA (no client certificate asked).")
        .set("secureClientPort", CLIENT_PORT)
        .set("secureClientPortAddress", &addr)
        .set("serverCnxnFactory", NETTY_FACTORY)
        .set("ssl.keyStore.location", &pem)
        .set("ssl.keyStore.type", "PEM")
        .set("ssl.trustStore.location", &ca)
        .set("ssl.trustStore.type", "PEM")
        .set("ssl.clientAuth", "none");
    if ctx.spec.tls.allow_plaintext {
        c.section("The plain client port too (spec.tls.allowPlaintext); its clients must log in all the same.")
            .set("clientPort", PLAIN_CLIENT_PORT)
            .set("clientPortAddress", &addr);
    }
    c.section(&format!(
        "Every client session must log in with SASL (DIGEST-MD5, users in the JAAS file start.sh writes);\n\
         {SUPER_USER} is ZooKeeper's superuser, whom every ACL admits."
    ))
    .set("authProvider.sasl", "org.apache.zookeeper.server.auth.SASLAuthenticationProvider")
    .set("enforce.auth.enabled", "true")
    .set("enforce.auth.schemes", "sasl")
    .set("superUser", SUPER_USER);
    c.section("Client limits and the four-letter words FireCamp's probes use (over TLS).")
        .set("maxClientCnxns", 60)
        .set("minSessionTimeout", 4000)
        .set("maxSessionTimeout", 40000)
        .set("4lw.commands.whitelist", FOUR_LETTER_WORDS)
        .set("admin.enableServer", "false");
    if paths.metrics.is_some() {
        c.section("Metrics in Prometheus' text format from ZooKeeper's own provider (docs/monitoring.md).")
            .set("metricsProvider.className", "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider")
            .set("metricsProvider.httpHost", &addr)
            .set("metricsProvider.httpPort", crate::metrics::port(EngineKind::Zookeeper))
            .set("metricsProvider.exportJvmInfo", "true");
    }
    // The servers are in the dynamic file (zoo.cfg.dynamic), so that a scale can change the
    // membership with `reconfig` (FireCamp's superuser only: /zookeeper/config admits no one
    // else). ZooKeeper rewrites both files when a reconfig commits: start.sh copies them into
    // the private run directory at every start, and the server runs from there. In a pod,
    // start.sh first waits until the member's DNS name resolves to the pod's own address: with
    // reconfig on, a leader that saw its own address change as it took over would hand
    // leadership to another member and commit nothing (seen on real nodes).
    c.section("The ensemble: server N is member N-1, reached by its DNS name.")
        .set("standaloneEnabled", ctx.members.len() == 1)
        .set("reconfigEnabled", "true")
        // A pod's address is not its DNS name's until the record follows it; listening on all
        // interfaces never binds a stale one.
        .set("quorumListenOnAllIPs", !ctx.binds_own_address())
        .set("dynamicConfigFile", format!("{}/{DYNAMIC_CFG}", paths.run_dir));
    // Every certificate of the service's CA is one of its members: hostname verification would
    // add nothing, and on Kubernetes a peer's pod address is in no certificate.
    c.section("Members among themselves: mutual TLS with the service's CA, and SASL DIGEST-MD5 as the quorum user.")
        .set("sslQuorum", "true")
        .set("ssl.quorum.keyStore.location", &pem)
        .set("ssl.quorum.keyStore.type", "PEM")
        .set("ssl.quorum.trustStore.location", &ca)
        .set("ssl.quorum.trustStore.type", "PEM")
        .set("ssl.quorum.hostnameVerification", "false")
        .set("quorum.auth.enableSasl", "true")
        .set("quorum.auth.learnerRequireSasl", "true")
        .set("quorum.auth.serverRequireSasl", "true")
        .set("quorum.auth.learner.loginContext", JAAS_QUORUM_LEARNER)
        .set("quorum.auth.server.loginContext", JAAS_QUORUM_SERVER);
    crate::params::append(&mut c, ctx.spec, m.name.as_str(), |v| v.to_string());
    c.build()
}

/// The dynamic configuration: one `server.N` line per member (see [`server_entry`]).
fn dynamic_cfg(ctx: &RenderContext, m: &Member) -> String {
    let mut c = Conf::new("=", &header("ZooKeeper ensemble (dynamic configuration)", m.name.as_str(), ctx.name));
    for (o, _, _) in ctx.members {
        let (key, value) = server_entry(o);
        c.set(&key, value);
    }
    c.build()
}

/// A member's line in the ensemble: `server.<id>` = `<dns name>:<peer>:<election>:participant`,
/// as in the dynamic file and in a `reconfig` that adds it.
pub fn server_entry(m: &Member) -> (String, String) {
    (format!("server.{}", server_id(m)), format!("{}:{PEER_PORT}:{ELECTION_PORT}:participant", m.dns_name))
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use firecamp_core::ClusterConfig;

    use super::*;
    use crate::examples::spec;
    use crate::layout::KubernetesLayout;
    use crate::plan::{ServicePlan, plan};

    fn planned(s: &ServiceSpec) -> ServicePlan {
        plan("zk", s, &ClusterConfig::new("prod"), &KubernetesLayout::default(), &BTreeMap::new()).expect("valid")
    }

    fn file<'a>(p: &'a ServicePlan, name: &str) -> &'a str {
        &p.members[0].files.iter().find(|f| f.name == name).unwrap().content
    }

    /// Issue #16: the servers are in the dynamic file, which a scale changes with `reconfig`,
    /// on the local runtime and in pods alike; a pod waits for its DNS name first.
    #[test]
    fn the_ensemble_is_dynamic_everywhere_and_pods_wait_for_their_dns_name() {
        let s = spec(EngineKind::Zookeeper, 3);
        let ips: BTreeMap<String, std::net::Ipv4Addr> = (0..3u8).map(|i| (format!("zk-{i}"), std::net::Ipv4Addr::new(127, 0, 9, i + 1))).collect();
        let layout =
            crate::layout::LocalLayout { service_dir: "/var/lib/fc/services/zk".into(), bin_dir: String::new(), backup: Default::default(), metrics: None };
        let local = plan("zk", &s, &ClusterConfig::new("prod"), &layout, &ips).expect("valid");
        let cfg = file(&local, "zoo.cfg");
        assert!(cfg.contains("reconfigEnabled=true\n") && cfg.contains("dynamicConfigFile=/var/lib/fc/services/zk/zk-0/run/zoo.cfg.dynamic\n"), "{cfg}");
        assert!(!cfg.contains("\nserver."), "{cfg}");
        let dynamic = file(&local, DYNAMIC_CFG);
        assert!(dynamic.contains("server.3=zk-2.default.prod-firecamp.com:2888:3888:participant\n"), "{dynamic}");
        assert!(file(&local, "member.env").contains("WAIT_DNS='0'\n"));

        let pods = planned(&s);
        let cfg = file(&pods, "zoo.cfg");
        assert!(cfg.contains("reconfigEnabled=true\n") && cfg.contains("dynamicConfigFile=/run/firecamp/zoo.cfg.dynamic\n"), "{cfg}");
        assert!(!cfg.contains("\nserver."), "{cfg}");
        assert!(file(&pods, DYNAMIC_CFG).contains("server.1=zk-0.default.prod-firecamp.com:2888:3888:participant\n"));
        let env = file(&pods, "member.env");
        assert!(env.contains("DNS_NAME='zk-0.default.prod-firecamp.com'\n") && env.contains("WAIT_DNS='1'\n"), "{env}");
        assert!(START_SH.contains(r#"if [ "$WAIT_DNS" = 1 ]"#), "start.sh honours WAIT_DNS");
    }

    #[test]
    fn clients_get_tls_and_sasl_and_the_plain_port_only_when_allowed() {
        let s = spec(EngineKind::Zookeeper, 3);
        let p = planned(&s);
        assert!(p.tls);
        let cfg = file(&p, "zoo.cfg");
        for line in [
            "secureClientPort=2181\n",
            "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n",
            "ssl.keyStore.location=/run/firecamp/tls.pem\n",
            "ssl.keyStore.type=PEM\n",
            "ssl.trustStore.location=/etc/firecamp/tls/ca.crt\n",
            "ssl.clientAuth=none\n",
            "enforce.auth.enabled=true\n",
            "enforce.auth.schemes=sasl\n",
            "superUser=super\n",
            "sslQuorum=true\n",
            "ssl.quorum.keyStore.location=/run/firecamp/tls.pem\n",
            "quorum.auth.enableSasl=true\n",
            "quorum.auth.learnerRequireSasl=true\n",
            "quorum.auth.serverRequireSasl=true\n",
        ] {
            assert!(cfg.contains(line), "{line} missing in:\n{cfg}");
        }
        assert!(!cfg.contains("\nclientPort="), "no plain port by default:\n{cfg}");
        let names: Vec<&str> = p.ports.iter().map(|p| p.name).collect();
        assert_eq!(names, ["client", "peer", "election", "metrics"]);
        // The Prometheus provider serves the members' metrics (docs/monitoring.md).
        assert!(cfg.contains("metricsProvider.httpPort=7000\n"), "{cfg}");

        let mut s = s;
        s.tls.allow_plaintext = true;
        let p = planned(&s);
        assert!(file(&p, "zoo.cfg").contains("\nclientPort=2182\n"));
        let names: Vec<&str> = p.ports.iter().map(|p| p.name).collect();
        assert_eq!(names, ["client", "client-plain", "peer", "election", "metrics"]);
    }

    #[test]
    fn passwords_reach_the_server_only_through_the_jaas_file_start_sh_writes() {
        let p = planned(&spec(EngineKind::Zookeeper, 3));
        assert_eq!(p.secret_keys, [QUORUM_PASSWORD, SUPER_PASSWORD, CLIENT_PASSWORD]);
        // The JVM is told the file's path, never a password.
        assert!(file(&p, "java.env").contains("-Djava.security.auth.login.config=/run/firecamp/jaas.conf"));
        // start.sh reads each key of the Secret and writes the users and contexts zoo.cfg names.
        for k in &p.secret_keys {
            assert!(START_SH.contains(&format!("read_secret {k}")), "start.sh reads {k}");
        }
        for s in [
            format!("username=\"{QUORUM_USER}\""),
            format!("user_{QUORUM_USER}="),
            format!("user_{SUPER_USER}="),
            format!("user_{CLIENT_USER}="),
            format!("'{JAAS_QUORUM_LEARNER} {{"),
            format!("'{JAAS_QUORUM_SERVER} {{"),
            format!("'{JAAS_SERVER} {{"),
        ] {
            assert!(START_SH.contains(&s), "start.sh lacks {s}");
        }
        assert!(START_SH.contains("umask 0077"), "the JAAS file and the key are private");
    }

    #[test]
    fn probes_speak_four_letter_words_over_tls_with_the_ca() {
        let c = ZooKeeper.container(&VERSIONS[0]);
        for probe in [&c.readiness, &c.liveness, &c.startup] {
            let cmd = probe.command.join(" ");
            assert!(cmd.contains("openssl s_client -quiet -connect 127.0.0.1:2181 -CAfile /etc/firecamp/tls/ca.crt -verify_return_error"), "{cmd}");
        }
    }
}
