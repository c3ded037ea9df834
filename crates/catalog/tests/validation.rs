//! One test per validation rule: the rule rejects, and its message names the field and says
//! what is allowed.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use firecamp_catalog::examples::{redis_cluster, spec};
use firecamp_catalog::layout::KubernetesLayout;
use firecamp_catalog::plan;
use firecamp_core::spec::{CassandraOptions, KafkaOptions, PostgresOptions, PostgresReplication, RedisOptions, VolumeSpec, VolumeType, ZooKeeperOptions};
use firecamp_core::{ClusterConfig, EngineKind, ServiceSpec, ValidationErrors};

use EngineKind::*;

fn cluster() -> ClusterConfig {
    ClusterConfig::new("prod")
}

fn errors(name: &str, s: &ServiceSpec) -> ValidationErrors {
    plan(name, s, &cluster(), &KubernetesLayout::default(), &BTreeMap::new()).expect_err("spec should be refused")
}

/// Asserts the spec is refused with an error on `field` whose message contains `text`.
fn refused(s: &ServiceSpec, field: &str, text: &str) {
    refused_named("svc", s, field, text)
}

fn refused_named(name: &str, s: &ServiceSpec, field: &str, text: &str) {
    let errs = errors(name, s);
    assert!(errs.0.iter().any(|e| e.field == field && e.message.contains(text)), "expected `{field}: …{text}…`, got:\n{errs}");
}

#[test]
fn valid_specs_plan() {
    for s in [spec(Postgresql, 3), spec(Redis, 3), spec(Zookeeper, 3), spec(Kafka, 3), spec(Cassandra, 3), redis_cluster(3, 6)] {
        plan("svc", &s, &cluster(), &KubernetesLayout::default(), &BTreeMap::new()).unwrap();
    }
}

#[test]
fn name_must_be_a_dns_1035_label() {
    refused_named("1pg", &spec(Postgresql, 1), "name", "start with a lowercase letter");
    refused_named("pg_1", &spec(Postgresql, 1), "name", "lowercase letters, digits and '-'");
    refused_named("", &spec(Postgresql, 1), "name", "must not be empty");
}

#[test]
fn name_length_boundary_is_52() {
    let ok = "a".repeat(52);
    plan(&ok, &spec(Postgresql, 3), &cluster(), &KubernetesLayout::default(), &BTreeMap::new()).unwrap();
    refused_named(&"a".repeat(53), &spec(Postgresql, 3), "name", "at most 52 characters");
}

#[test]
fn replicas_must_be_1_to_99() {
    refused(&spec(Postgresql, 0), "spec.replicas", "must be 1 to 99");
    refused(&spec(Postgresql, 100), "spec.replicas", "must be 1 to 99");
}

#[test]
fn unknown_version_lists_the_supported_ones() {
    let mut s = spec(Postgresql, 1);
    s.version = Some("14".into());
    refused(&s, "spec.version", "supported versions: 15, 16, 17");
    s.version = Some("latest".into());
    refused(&s, "spec.version", "is not in FireCamp's catalog");
}

#[test]
fn zones_are_needed_and_unique() {
    let mut s = spec(Postgresql, 1);
    s.zones.clear();
    refused(&s, "spec.zones", "at least one availability zone");
    s.zones = vec!["us-east-1a".into(), "us-east-1a".into()];
    refused(&s, "spec.zones[1]", "listed twice");
    s.zones = vec!["US East".into()];
    refused(&s, "spec.zones[0]", "is not a zone name");
}

#[test]
fn zones_are_the_clusters_when_it_names_them() {
    let s = spec(Postgresql, 3);
    let with = |zones: &[&str]| ClusterConfig { zones: zones.iter().map(|z| z.to_string()).collect(), ..cluster() };
    // Named by `install render --zones`: a zone outside them is refused, naming them.
    let errs =
        plan("svc", &s, &with(&["us-east-1a", "us-east-1b"]), &KubernetesLayout::default(), &BTreeMap::new()).expect_err("us-east-1c is not the cluster's");
    assert!(
        errs.0
            .iter()
            .any(|e| e.field == "spec.zones[2]" && e.message.contains("\"us-east-1c\" is not a zone of cluster prod: its zones are us-east-1a, us-east-1b")),
        "{errs}"
    );
    assert_eq!(errs.0.len(), 1, "only the foreign zone: {errs}");
    plan("svc", &s, &with(&["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]), &KubernetesLayout::default(), &BTreeMap::new())
        .expect("a subset of the cluster's");
    plan("svc", &s, &with(&[]), &KubernetesLayout::default(), &BTreeMap::new()).expect("not named: not checked");
}

#[test]
fn resources_must_parse_and_requests_fit_limits() {
    let mut s = spec(Postgresql, 1);
    s.resources.requests.cpu = Some("two".into());
    refused(&s, "spec.resources.requests.cpu", "e.g. 500m");
    let mut s = spec(Postgresql, 1);
    s.resources.requests.cpu = Some("2".into());
    s.resources.limits.cpu = Some("1".into());
    refused(&s, "spec.resources.requests.cpu", "must not exceed spec.resources.limits.cpu");
    let mut s = spec(Postgresql, 1);
    s.resources.requests.memory = Some("2Gi".into());
    s.resources.limits.memory = Some("1Gi".into());
    refused(&s, "spec.resources.requests.memory", "must not exceed");
    let mut s = spec(Postgresql, 1);
    s.resources.limits.memory = Some("32Mi".into());
    refused(&s, "spec.resources", "at least 64Mi");
}

#[test]
fn volume_rules() {
    let with = |f: &dyn Fn(&mut VolumeSpec)| {
        let mut s = spec(Postgresql, 1);
        f(&mut s.volumes.data);
        s
    };
    refused(&with(&|v| v.size = "10GB".into()), "spec.volumes.data.size", "is not a quantity");
    refused(&with(&|v| v.size = "500Mi".into()), "spec.volumes.data.size", "whole number of Gi from 1Gi to 16384Gi");
    refused(&with(&|v| v.size = "17Ti".into()), "spec.volumes.data.size", "to 16384Gi");
    refused(&with(&|v| v.iops = Some(100)), "spec.volumes.data.iops", "gp3 allows 3000 to 16000 IOPS");
    refused(
        &with(&|v| {
            v.volume_type = VolumeType::Gp2;
            v.iops = Some(3000)
        }),
        "spec.volumes.data.iops",
        "take no provisioned IOPS",
    );
    refused(&with(&|v| v.volume_type = VolumeType::Io2), "spec.volumes.data.iops", "io2 volumes need provisioned IOPS");
    refused(&with(&|v| v.throughput = Some(50)), "spec.volumes.data.throughput", "125 to 1000 MiB/s");
    refused(
        &with(&|v| {
            v.volume_type = VolumeType::St1;
            v.throughput = Some(200)
        }),
        "spec.volumes.data.throughput",
        "only gp3",
    );
    refused(
        &with(&|v| {
            v.encrypted = false;
            v.kms_key_id = Some("k".into())
        }),
        "spec.volumes.data.kmsKeyId",
        "encrypted: true",
    );
    let mut s = spec(Postgresql, 1);
    s.volumes.journal = Some(VolumeSpec::new("abc"));
    refused(&s, "spec.volumes.journal.size", "is not a quantity");
}

#[test]
fn labels_and_annotations() {
    let mut s = spec(Postgresql, 1);
    s.labels.insert("firecamp.dev/x".into(), "y".into());
    refused(&s, "spec.labels[\"firecamp.dev/x\"]", "reserved");
    let mut s = spec(Postgresql, 1);
    s.labels.insert("team".into(), "a b".into());
    refused(&s, "spec.labels[\"team\"]", "value may contain only");
    let mut s = spec(Postgresql, 1);
    s.annotations.insert("bad key".into(), "v".into());
    refused(&s, "spec.annotations[\"bad key\"]", "only letters");
}

/// Issue #12, item 5: every key under a domain Kubernetes or FireCamp gives meaning to is
/// refused, on labels and annotations alike, naming the field and the key.
#[test]
fn reserved_prefixes_and_their_subdomains_are_refused() {
    for key in [
        "storageclass.kubernetes.io/is-default-class",
        "kubernetes.io/hostname",
        "app.kubernetes.io/part-of",
        "node-role.kubernetes.io/control-plane",
        "k8s.io/x",
        "volume.beta.k8s.io/x",
        "firecamp.dev/service",
        "mesh.firecamp.dev/x",
    ] {
        let mut s = spec(Postgresql, 1);
        s.annotations.insert(key.into(), "true".into());
        refused(&s, &format!("spec.annotations[{key:?}]"), key);
        let mut s = spec(Postgresql, 1);
        s.labels.insert(key.into(), "x".into());
        refused(&s, &format!("spec.labels[{key:?}]"), "reserved");
    }
    let mut s = spec(Postgresql, 1);
    s.annotations.insert("example.com/kubernetes.io".into(), "ok".into());
    s.labels.insert("team.example.com/k8s.io-owner".into(), "ok".into());
    assert!(plan("pg", &s, &cluster(), &KubernetesLayout::default(), &BTreeMap::new()).is_ok());
}

#[test]
fn cluster_settings() {
    let mut c = cluster();
    c.name = "Prod".into();
    c.networks = vec!["10.0.0.0".into(), "10.0.0.0/33".into()];
    let errs = plan("pg", &spec(Postgresql, 1), &c, &KubernetesLayout::default(), &BTreeMap::new()).unwrap_err();
    assert!(errs.has("cluster"), "{errs}");
    assert!(errs.0.iter().any(|e| e.field == "networks[0]" && e.message.contains("address/prefix")), "{errs}");
    assert!(errs.0.iter().any(|e| e.field == "networks[1]" && e.message.contains("0 to 32")), "{errs}");
}

#[test]
fn option_block_must_match_the_engine() {
    let mut s = spec(Postgresql, 1);
    s.redis = Some(RedisOptions::default());
    refused(&s, "spec.redis", "do not apply to a postgresql service");
}

#[test]
fn postgresql_rules() {
    let mut s = spec(Postgresql, 1);
    s.postgresql = Some(PostgresOptions { replication: PostgresReplication::Sync, max_connections: None });
    refused(&s, "spec.postgresql.replication", "at least 2 members");
    let mut s = spec(Postgresql, 2);
    s.postgresql = Some(PostgresOptions { replication: PostgresReplication::Async, max_connections: Some(5) });
    refused(&s, "spec.postgresql.maxConnections", "10 to 10000");
}

#[test]
fn redis_rules() {
    refused(&redis_cluster(2, 4), "spec.redis.shards", "at least 3 shards");
    refused(&redis_cluster(3, 7), "spec.replicas", "multiple of spec.redis.shards (3)");
    let mut s = redis_cluster(3, 6);
    s.redis.as_mut().unwrap().shards = None;
    refused(&s, "spec.redis.shards", "cluster mode needs shards");
    let mut s = spec(Redis, 2);
    s.redis = Some(RedisOptions { shards: Some(3), ..Default::default() });
    refused(&s, "spec.redis.shards", "cluster mode only");
    let mut s = spec(Redis, 2);
    s.redis = Some(RedisOptions { maxmemory_policy: Some("lru".into()), ..Default::default() });
    refused(&s, "spec.redis.maxmemoryPolicy", "allowed: noeviction, allkeys-lru");
    let mut s = spec(Redis, 2);
    s.volumes.journal = Some(VolumeSpec::new("1Gi"));
    refused(&s, "spec.volumes.journal", "append-only file on the data volume");
}

#[test]
fn zookeeper_rules() {
    refused(&spec(Zookeeper, 4), "spec.replicas", "odd number of members, 1 to 9");
    refused(&spec(Zookeeper, 11), "spec.replicas", "odd number");
    let mut s = spec(Zookeeper, 3);
    s.zookeeper = Some(ZooKeeperOptions { heap: Some("1Gi".into()) });
    s.resources.limits.memory = Some("1Gi".into());
    refused(&s, "spec.zookeeper.heap", "below spec.resources.limits.memory");
    s.zookeeper = Some(ZooKeeperOptions { heap: Some("big".into()) });
    refused(&s, "spec.zookeeper.heap", "is not a quantity");
}

/// Issue #18: every Kafka member votes in the KRaft quorum (odd, 1 to 9); its heap fits below
/// the memory limit; no backups yet; the operations say what Kafka does not do yet.
#[test]
fn kafka_rules() {
    refused(&spec(Kafka, 2), "spec.replicas", "odd number of members, 1 to 9");
    refused(&spec(Kafka, 11), "spec.replicas", "KRaft controller quorum");
    let mut s = spec(Kafka, 3);
    s.kafka = Some(KafkaOptions { heap: Some("2Gi".into()) });
    s.resources.limits.memory = Some("2Gi".into());
    refused(&s, "spec.kafka.heap", "below spec.resources.limits.memory");
    s.kafka = Some(KafkaOptions { heap: Some("128Mi".into()) });
    refused(&s, "spec.kafka.heap", "at least 256Mi");
    s.kafka = Some(KafkaOptions { heap: Some("big".into()) });
    refused(&s, "spec.kafka.heap", "is not a quantity");
    let mut z = spec(Zookeeper, 3);
    z.kafka = Some(KafkaOptions::default());
    refused(&z, "spec.kafka", "options for kafka do not apply to a zookeeper service");
    let mut b = spec(Kafka, 3);
    b.backup = Some(Default::default());
    let local = ClusterConfig { backups: true, ..cluster() };
    let errs = plan("kf", &b, &local, &KubernetesLayout::default(), &BTreeMap::new()).expect_err("no Kafka backups yet");
    assert!(errs.0.iter().any(|e| e.field == "spec.backup" && e.message.contains("Kafka services have no backups yet")), "{errs}");
    let scale =
        firecamp_core::operation::OperationRequest { kind: Some(firecamp_core::operation::OperationKind::Scale), replicas: Some(5), ..Default::default() };
    let e = firecamp_catalog::operation::change(&spec(Kafka, 3), &scale).unwrap_err().to_string();
    assert!(e.contains("replicas") && e.contains("scaling a Kafka service is not supported yet"), "{e}");
}

/// Issue #18: a Cassandra ring lives in one region (its datacenter); its heap fits below the
/// memory limit; no backups and no scale yet; the option block is its own.
#[test]
fn cassandra_rules() {
    let mut s = spec(Cassandra, 3);
    s.zones = vec!["us-east-1a".into(), "us-west-2b".into()];
    refused(&s, "spec.zones", "one region (its datacenter, us-east-1)");
    let mut s = spec(Cassandra, 3);
    s.cassandra = Some(CassandraOptions { heap: Some("256Mi".into()) });
    refused(&s, "spec.cassandra.heap", "at least 512Mi");
    s.cassandra = Some(CassandraOptions { heap: Some("2Gi".into()) });
    s.resources.limits.memory = Some("2Gi".into());
    refused(&s, "spec.cassandra.heap", "below spec.resources.limits.memory");
    let mut k = spec(Kafka, 3);
    k.cassandra = Some(CassandraOptions::default());
    refused(&k, "spec.cassandra", "options for cassandra do not apply to a kafka service");
    let mut b = spec(Cassandra, 3);
    b.backup = Some(Default::default());
    let local = ClusterConfig { backups: true, ..cluster() };
    let errs = plan("cs", &b, &local, &KubernetesLayout::default(), &BTreeMap::new()).expect_err("no Cassandra backups yet");
    assert!(errs.0.iter().any(|e| e.field == "spec.backup" && e.message.contains("Cassandra services have no backups yet")), "{errs}");
    let scale =
        firecamp_core::operation::OperationRequest { kind: Some(firecamp_core::operation::OperationKind::Scale), replicas: Some(4), ..Default::default() };
    let scale_to = |current: &ServiceSpec, n: u32| {
        firecamp_catalog::operation::change(current, &firecamp_core::operation::OperationRequest { replicas: Some(n), ..scale.clone() })
            .map(|c| c.spec.replicas)
    };
    // Out by bootstrap and in by decommission, above one member per zone (the seeds).
    assert_eq!(scale_to(&spec(Cassandra, 3), 4).unwrap(), 4);
    assert_eq!(scale_to(&spec(Cassandra, 5), 3).unwrap(), 3);
    let e = scale_to(&spec(Cassandra, 3), 2).unwrap_err().to_string();
    assert!(e.contains("replicas") && e.contains("at least one member per zone (3)"), "{e}");
    // A new first member of a zone would be a seed, which does not bootstrap.
    let e = scale_to(&spec(Cassandra, 1), 3).unwrap_err().to_string();
    assert!(e.contains("replicas") && e.contains("once every zone has a member (1 of 3"), "{e}");
    // Labels rather than a region's zones (a local runtime's): one datacenter, `dc1`.
    let mut l = spec(Cassandra, 3);
    l.zones = vec!["a".into(), "b".into(), "c".into()];
    let p = plan("cs", &l, &cluster(), &KubernetesLayout::default(), &BTreeMap::new()).expect("label zones are one datacenter");
    let rackdc = &p.members[1].files.iter().find(|f| f.name == "cassandra-rackdc.properties").unwrap().content;
    assert!(rackdc.contains("dc=dc1\nrack=b\n"), "{rackdc}");
}

#[test]
fn static_ips_must_name_members() {
    let ips = BTreeMap::from([("other-0".to_string(), Ipv4Addr::new(10, 0, 1, 5))]);
    let errs = plan("r", &spec(Redis, 1), &cluster(), &KubernetesLayout::default(), &ips).unwrap_err();
    assert!(errs.0.iter().any(|e| e.field == "staticIps" && e.message.contains("not a member")), "{errs}");
}

#[test]
fn all_errors_are_reported_at_once() {
    let mut s = spec(Zookeeper, 4);
    s.zones.clear();
    s.volumes.data.size = "x".into();
    let errs = errors("Bad", &s);
    for f in ["name", "spec.replicas", "spec.zones", "spec.volumes.data.size"] {
        assert!(errs.has(f), "missing {f} in {errs}");
    }
}

#[test]
fn unknown_fields_are_refused_by_name() {
    let yaml = "engine: postgresql\nreplicas: 1\nzones: [a]\nvolumes: {data: {size: 1Gi}}\nreplica: 3\n";
    let err = serde_saphyr::from_str::<ServiceSpec>(yaml).unwrap_err().to_string();
    assert!(err.contains("replica"), "{err}");
}

#[test]
fn clients_name_namespaces_and_cidrs_the_network_policy_can_hold() {
    let with = |namespaces: &[&str], cidrs: &[&str], policy: bool| {
        let mut s = spec(Postgresql, 1);
        s.clients.namespaces = namespaces.iter().map(|x| x.to_string()).collect();
        s.clients.cidrs = cidrs.iter().map(|x| x.to_string()).collect();
        s.clients.network_policy = policy;
        s
    };
    plan("svc", &with(&["apps", "payments"], &["10.1.0.0/16", "fd00::/64"], true), &cluster(), &KubernetesLayout::default(), &BTreeMap::new()).unwrap();
    // A selector value is no place for another selector, a wildcard or a path.
    refused(&with(&["apps,kube-system"], &[], true), "spec.clients.namespaces[0]", "not a namespace name");
    refused(&with(&["*"], &[], true), "spec.clients.namespaces[0]", "not a namespace name");
    refused(&with(&[], &["0.0.0.0/33"], true), "spec.clients.cidrs[0]", "prefix length");
    refused(&with(&[], &["10.1.0.0"], true), "spec.clients.cidrs[0]", "is not a CIDR");
    refused(&with(&[], &["10.1.0.0/16", "example.com/8"], true), "spec.clients.cidrs[1]", "is not an IP address");
    let many: Vec<String> = (0..33).map(|i| format!("ns-{i}")).collect();
    refused(&with(&many.iter().map(String::as_str).collect::<Vec<_>>(), &[], true), "spec.clients.namespaces", "at most 32");
    // Clients named with no policy to admit them would be a promise nothing keeps.
    refused(&with(&["apps"], &[], false), "spec.clients.networkPolicy", "nothing would enforce");
    plan("svc", &with(&[], &[], false), &cluster(), &KubernetesLayout::default(), &BTreeMap::new()).unwrap();
}

#[test]
fn four_billion_replicas_are_refused_without_naming_four_billion_members() {
    let mut s = spec(Postgresql, u32::MAX);
    s.member_config.insert("svc-1".into(), [("work_mem".to_string(), "8MB".to_string())].into());
    // Before the fix validation built every member's name first: minutes and gigabytes.
    let errs = plan("svc", &s, &cluster(), &KubernetesLayout::default(), &[("svc-5".to_string(), Ipv4Addr::new(10, 0, 0, 5))].into()).unwrap_err();
    assert!(errs.0.iter().any(|e| e.field == "spec.replicas" && e.message.contains("must be 1 to 99")), "{errs}");
}

#[test]
fn failover_delay_is_5_to_3600_seconds() {
    for bad in [0, 4, 3601] {
        let mut s = spec(Postgresql, 3);
        s.failover.delay_seconds = Some(bad);
        refused(&s, "spec.failover.delaySeconds", "5 to 3600");
    }
    let mut s = spec(Postgresql, 3);
    s.failover.delay_seconds = Some(5);
    plan("svc", &s, &cluster(), &KubernetesLayout::default(), &BTreeMap::new()).unwrap();
    assert_eq!(firecamp_core::spec::FailoverSpec::default().delay_seconds(), 30);
}

/// Issue #15: backups need a runtime with a backup target (the local runtime's directory),
/// PostgreSQL, and a retention of 1 to 100.
#[test]
fn backups_are_refused_where_there_is_no_target_and_for_other_engines() {
    let mut s = spec(Postgresql, 3);
    s.backup = Some(firecamp_core::spec::BackupSpec { retention: Some(0), schedule: Some("every day".into()) });
    refused(&s, "spec.backup", "no backup target");
    refused(&s, "spec.backup.retention", "1 to 100");
    refused(&s, "spec.backup.schedule", "not a cron expression");
    let local = ClusterConfig { backups: true, ..cluster() };
    s.backup = Some(firecamp_core::spec::BackupSpec { retention: Some(3), schedule: Some("0 3 * * *".into()) });
    plan("svc", &s, &local, &KubernetesLayout::default(), &BTreeMap::new()).expect("a local runtime keeps backups");
    let mut r = spec(Redis, 3);
    r.backup = Some(Default::default());
    plan("svc", &r, &local, &KubernetesLayout::default(), &BTreeMap::new()).expect("Redis with replication is backed up");
    r.redis = Some(firecamp_core::spec::RedisOptions { mode: firecamp_core::spec::RedisMode::Cluster, shards: Some(3), maxmemory_policy: None });
    r.replicas = 6;
    plan("svc", &r, &local, &KubernetesLayout::default(), &BTreeMap::new()).expect("Redis Cluster is backed up, a snapshot per shard");
    let mut z = spec(Zookeeper, 3);
    z.backup = Some(Default::default());
    plan("svc", &z, &local, &KubernetesLayout::default(), &BTreeMap::new()).expect("ZooKeeper is backed up");
}

/// Issue #15 on Kubernetes: with the manage service's backup bucket, a PostgreSQL service may
/// have `spec.backup` (its WAL is archived, with a schedule if it likes), a Redis service in
/// replication mode and a ZooKeeper ensemble too (snapshots); a Redis Cluster is refused there.
#[test]
fn on_kubernetes_every_engine_but_a_redis_cluster_is_backed_up() {
    let archive =
        firecamp_core::cluster::ArchiveTarget { url: "s3://b/p".into(), region: "us-east-1".into(), endpoint: String::new(), credentials_secret: None };
    let k8s = ClusterConfig { backups: true, archive: Some(archive), ..cluster() };
    let refused_on = |s: &ServiceSpec, field: &str, text: &str| {
        let errs = plan("svc", s, &k8s, &KubernetesLayout::default(), &BTreeMap::new()).expect_err("refused");
        assert!(errs.0.iter().any(|e| e.field == field && e.message.contains(text)), "expected `{field}: …{text}…`, got:\n{errs}");
    };
    let mut s = spec(Postgresql, 3);
    s.backup = Some(firecamp_core::spec::BackupSpec { retention: Some(3), schedule: None });
    plan("svc", &s, &k8s, &KubernetesLayout::default(), &BTreeMap::new()).expect("PostgreSQL archives its WAL");
    s.backup = Some(firecamp_core::spec::BackupSpec { retention: Some(3), schedule: Some("0 3 * * *".into()) });
    plan("svc", &s, &k8s, &KubernetesLayout::default(), &BTreeMap::new()).expect("the controller takes scheduled backups");
    s.backup = Some(firecamp_core::spec::BackupSpec { retention: Some(3), schedule: Some("0 3 * * 9".into()) });
    refused_on(&s, "spec.backup.schedule", "not a cron expression");
    s.backup = Some(firecamp_core::spec::BackupSpec { retention: Some(3), schedule: Some("0 3 * * *".into()) });
    let mut r = spec(Redis, 3);
    r.backup = Some(Default::default());
    plan("svc", &r, &k8s, &KubernetesLayout::default(), &BTreeMap::new()).expect("Redis in replication mode takes snapshots");
    r.redis = Some(firecamp_core::spec::RedisOptions { mode: firecamp_core::spec::RedisMode::Cluster, shards: Some(3), maxmemory_policy: None });
    r.replicas = 6;
    plan("svc", &r, &k8s, &KubernetesLayout::default(), &BTreeMap::new()).expect("a Redis Cluster takes a snapshot per shard");
    let mut z = spec(Zookeeper, 3);
    z.backup = Some(Default::default());
    plan("svc", &z, &k8s, &KubernetesLayout::default(), &BTreeMap::new()).expect("ZooKeeper's database files are copied");
    refused(&s, "spec.backup", "--backup-target");
}

/// Issue #13: a cert-manager issuer needs a cluster where cert-manager runs (never the local
/// runtime) and a valid name.
#[test]
fn a_cert_manager_issuer_is_refused_where_cert_manager_does_not_run() {
    let mut s = spec(Postgresql, 3);
    s.tls.issuer = Some(firecamp_core::spec::CertIssuer { kind: firecamp_core::spec::IssuerKind::Issuer, name: "ca".into() });
    refused(&s, "spec.tls.issuer", "cert-manager does not issue certificates here");
    let with = ClusterConfig { cert_manager: true, ..cluster() };
    plan("svc", &s, &with, &KubernetesLayout::default(), &BTreeMap::new()).expect("an issuer where cert-manager runs");
    s.tls.issuer = Some(firecamp_core::spec::CertIssuer { kind: firecamp_core::spec::IssuerKind::ClusterIssuer, name: "Bad/Name".into() });
    let errs = plan("svc", &s, &with, &KubernetesLayout::default(), &BTreeMap::new()).unwrap_err().to_string();
    assert!(errs.contains("spec.tls.issuer.name"), "{errs}");
}

/// Issue #15 on Kubernetes: a restore's source reaches a bucket key and `postgresql.conf`
/// (`recovery_target_time`), so each part is checked; the backup's address survives its file.
#[test]
fn a_restores_source_is_plain_names_and_a_time() {
    use firecamp_catalog::layout::{RestoreFetch, RestoreSource};
    let ok = RestoreSource {
        service: "pg".into(),
        uid: "0b9f2c1e-77aa".into(),
        backup: "pg-20261203T230102345Z".into(),
        target_time: Some("2026-12-03 23:05:00.123456+00".into()),
    };
    assert_eq!(ok.problem(), None);
    for (bad, what) in [
        (RestoreSource { service: "../pg".into(), ..ok.clone() }, "service"),
        (RestoreSource { uid: "u/../x".into(), ..ok.clone() }, "uid"),
        (RestoreSource { backup: "other-20261203T230102345Z".into(), ..ok.clone() }, "backup"),
        (RestoreSource { backup: "pg-x/../y".into(), ..ok.clone() }, "backup"),
        (RestoreSource { target_time: Some("2026-12-03' recovery_target_action='shutdown".into()), ..ok.clone() }, "target time"),
    ] {
        let p = bad.problem().unwrap_or_else(|| panic!("{bad:?} passed"));
        assert!(p.starts_with(what), "{p}");
    }
    let f = RestoreFetch { url: "s3://b/fc/team-a/pg/u1/base/pg-20261203T230102345Z".into(), region: "us-east-1".into(), endpoint: String::new() };
    assert_eq!(RestoreFetch::parse(&f.render()), Some(f));
}
