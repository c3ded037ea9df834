//! Property tests over whole service specs and names, as a REST body or a CR would carry them:
//! whatever arrives, planning never panics, every refusal names a field of the request, and what
//! is accepted obeys the rules users read in docs/service-spec.md. (Engine parameters have their
//! own property tests in param_attacks.rs.)

use std::collections::BTreeMap;

use firecamp_catalog::examples::spec;
use firecamp_catalog::layout::KubernetesLayout;
use firecamp_catalog::plan;
use firecamp_core::spec::{CassandraOptions, KafkaOptions, MariadbOptions, PostgresOptions, PostgresReplication, RedisMode, RedisOptions, ZooKeeperOptions};
use firecamp_core::{ClusterConfig, EngineKind, ServiceSpec};
use proptest::prelude::*;

use EngineKind::*;

/// Strings users type, and strings attackers type: quantities, names, paths, newlines, unicode.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[0-9]{1,6}(Mi|Gi|Ti|m|k|M|G)?",
        "[a-z][a-z0-9-]{0,70}",
        "us-east-1[a-f]",
        any::<String>(),
        "[ -~]{0,40}",
        Just("1Gi\nrm -rf /".to_string()),
        Just("../../etc/passwd".to_string()),
    ]
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text())
}

prop_compose! {
    fn any_spec()(
        engine in prop::sample::select(vec![Postgresql, Redis, Zookeeper, Kafka, Mariadb, Cassandra]),
        replicas in prop_oneof![0u32..12, any::<u32>()],
        zones in prop::collection::vec(text(), 0..5),
        cpu in opt_text(), memory in opt_text(), cpu_limit in opt_text(), memory_limit in opt_text(),
        size in text(),
        iops in prop::option::of(any::<u32>()),
        journal in prop::option::of(text()),
        shards in prop::option::of(prop_oneof![0u32..8, any::<u32>()]),
        cluster_mode in any::<bool>(),
        policy in opt_text(),
        max_connections in prop::option::of(any::<u32>()),
        heap in opt_text(),
        sync in any::<bool>(),
        labels in prop::collection::btree_map(text(), text(), 0..3),
        annotations in prop::collection::btree_map(text(), text(), 0..3),
        client_namespaces in prop::collection::vec(text(), 0..3),
        client_cidrs in prop::collection::vec(text(), 0..3),
    ) -> ServiceSpec {
        let mut s = spec(engine, replicas);
        s.zones = zones;
        s.resources.requests.cpu = cpu;
        s.resources.requests.memory = memory;
        s.resources.limits.cpu = cpu_limit;
        s.resources.limits.memory = memory_limit;
        s.volumes.data.size = size;
        s.volumes.data.iops = iops;
        s.volumes.journal = journal.map(firecamp_core::spec::VolumeSpec::new);
        match engine {
            Redis => s.redis = Some(RedisOptions { mode: if cluster_mode { RedisMode::Cluster } else { RedisMode::Replication }, shards, maxmemory_policy: policy }),
            Postgresql => s.postgresql = Some(PostgresOptions { replication: if sync { PostgresReplication::Sync } else { PostgresReplication::Async }, max_connections }),
            Zookeeper => s.zookeeper = Some(ZooKeeperOptions { heap }),
            Kafka => s.kafka = Some(KafkaOptions { heap }),
            Mariadb => s.mariadb = Some(MariadbOptions { semi_sync: sync, max_connections }),
            Cassandra => s.cassandra = Some(CassandraOptions { heap }),
        }
        s.labels = labels;
        s.annotations = annotations;
        s.clients.namespaces = client_namespaces;
        s.clients.cidrs = client_cidrs;
        s
    }
}

fn cluster() -> ClusterConfig {
    ClusterConfig::new("prod")
}

/// Runs a property on a thread with a large stack: a debug build's strategy over a whole spec
/// (a tuple of some twenty strategies) needs more than a test thread's 2 MiB.
fn check<S: Strategy + 'static>(cases: u32, strategy: fn() -> S, property: fn(S::Value) -> Result<(), TestCaseError>) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases));
            if let Err(e) = runner.run(&strategy(), property) {
                panic!("{e}");
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

/// Any spec under any name: no panic; a refusal lists at least one error, each on `name` or a
/// `spec.` field with a message; an accepted plan has one member per replica, each in
/// `zones[i mod n]`. (It found that 4 billion replicas made validation build 4 billion member
/// names before refusing them.)
#[test]
fn any_spec_is_planned_or_refused_field_by_field() {
    check(
        3000,
        || (text(), any_spec()),
        |(name, s)| {
            match plan(&name, &s, &cluster(), &KubernetesLayout::default(), &BTreeMap::new()) {
                Err(errs) => {
                    prop_assert!(!errs.0.is_empty());
                    for e in &errs.0 {
                        prop_assert!(e.field == "name" || e.field.starts_with("spec."), "{}: {}", e.field, e.message);
                        prop_assert!(!e.message.is_empty(), "{}", e.field);
                    }
                }
                Ok(p) => {
                    prop_assert_eq!(p.members.len() as u32, s.replicas);
                    for (i, m) in p.members.iter().enumerate() {
                        prop_assert_eq!(&m.member.zone, &s.zones[i % s.zones.len()]);
                    }
                    prop_assert!(name.len() <= 52 && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{:?}", name);
                }
            }
            Ok(())
        },
    );
}

/// A REST body or CR of arbitrary JSON shaped like a spec: it either fails to parse (a 400
/// from serde, naming the field) or plans without a panic.
#[test]
fn arbitrary_json_bodies_parse_or_are_refused() {
    check(3000, json_spec, |body| {
        if let Ok(s) = serde_json::from_value::<ServiceSpec>(body) {
            let _ = plan("svc", &s, &cluster(), &KubernetesLayout::default(), &BTreeMap::new());
        }
        Ok(())
    });
}

/// JSON with the spec's keys (and some others) holding values of any JSON type.
fn json_spec() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(text(), inner, 0..4).prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    let keys = prop::sample::select(vec![
        "engine",
        "version",
        "replicas",
        "zones",
        "resources",
        "volumes",
        "postgresql",
        "redis",
        "zookeeper",
        "updatePolicy",
        "config",
        "memberConfig",
        "stopped",
        "labels",
        "annotations",
        "clients",
        "colour",
    ]);
    (prop::sample::select(vec!["postgresql", "redis", "zookeeper"]), prop::collection::btree_map(keys, value, 0..8)).prop_map(|(engine, fields)| {
        let mut o: serde_json::Map<String, serde_json::Value> = fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        o.entry("engine").or_insert_with(|| engine.into());
        o.entry("replicas").or_insert_with(|| 3.into());
        o.entry("zones").or_insert_with(|| serde_json::json!(["us-east-1a", "us-east-1b", "us-east-1c"]));
        o.entry("volumes").or_insert_with(|| serde_json::json!({"data": {"size": "10Gi"}}));
        serde_json::Value::Object(o)
    })
}
