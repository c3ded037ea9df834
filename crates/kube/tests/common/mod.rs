//! The services the golden files and object tests render.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use firecamp_catalog::examples::{redis_cluster, spec};
use firecamp_catalog::layout::{KubernetesLayout, RestoreSource};
use firecamp_catalog::{ServicePlan, plan};
use firecamp_core::cluster::ArchiveTarget;
use firecamp_core::spec::BackupSpec;
use firecamp_core::spec::{CertIssuer, IssuerKind, PostgresOptions, PostgresReplication, VolumeSpec};
use firecamp_core::{ClusterConfig, EngineKind, ServiceSpec};

pub fn cluster() -> ClusterConfig {
    let mut c = ClusterConfig::new("prod");
    c.namespace = "databases".into();
    c.networks = vec!["10.0.0.0/16".into()];
    c.cert_manager = true;
    // The bucket members archive WAL into; only services with spec.backup use it.
    c.backups = true;
    c.archive = Some(ArchiveTarget {
        url: "s3://prod-backups/firecamp".into(),
        region: "us-east-1".into(),
        endpoint: String::new(),
        credentials_secret: Some("backup-keys".into()),
    });
    c
}

fn ips(service: &str, n: u32) -> BTreeMap<String, Ipv4Addr> {
    (0..n).map(|i| (format!("{service}-{i}"), Ipv4Addr::new(10, 0, (i % 3) as u8 + 1, 10 + i as u8))).collect()
}

/// (golden file name, service name, spec, static IPs)
pub fn cases() -> Vec<(&'static str, &'static str, ServiceSpec, BTreeMap<String, Ipv4Addr>)> {
    let mut pg = spec(EngineKind::Postgresql, 3);
    pg.version = Some("16".into());
    pg.volumes.journal = Some(VolumeSpec::new("5Gi"));
    pg.labels.insert("team".into(), "payments".into());
    // On the namespaced objects only; never on the cluster-scoped StorageClasses.
    pg.annotations.insert("example.com/owner".into(), "payments-oncall".into());
    let mut pg_sync = spec(EngineKind::Postgresql, 2);
    pg_sync.version = Some("15".into());
    pg_sync.postgresql = Some(PostgresOptions { replication: PostgresReplication::Sync, max_connections: Some(500) });
    pg_sync.resources.limits.memory = Some("4Gi".into());
    pg_sync.clients.namespaces = vec!["payments".into()];
    pg_sync.clients.cidrs = vec!["10.20.0.0/16".into()];
    let redis = spec(EngineKind::Redis, 3);
    let mut redis_issued = spec(EngineKind::Redis, 3);
    redis_issued.tls.issuer = Some(CertIssuer { kind: IssuerKind::ClusterIssuer, name: "corp-ca".into() });
    let mut pg_archived = spec(EngineKind::Postgresql, 2);
    pg_archived.backup = Some(BackupSpec { retention: Some(7), schedule: None });
    let mut redis_backed_up = spec(EngineKind::Redis, 2);
    redis_backed_up.backup = Some(BackupSpec { retention: Some(3), schedule: Some("0 3 * * *".into()) });
    let mut zk = spec(EngineKind::Zookeeper, 3);
    zk.volumes.journal = Some(VolumeSpec::new("2Gi"));
    let mut zk_backed_up = zk.clone();
    zk_backed_up.backup = Some(BackupSpec::default());
    let mut kafka = spec(EngineKind::Kafka, 3);
    kafka.volumes.journal = Some(VolumeSpec::new("2Gi"));
    kafka.config.insert("log.retention.hours".into(), "72".into());
    let mut mariadb = spec(EngineKind::Mariadb, 3);
    mariadb.volumes.journal = Some(VolumeSpec::new("2Gi"));
    mariadb.mariadb = Some(firecamp_core::spec::MariadbOptions { semi_sync: true, max_connections: Some(300) });
    mariadb.config.insert("innodb_flush_log_at_trx_commit".into(), "2".into());
    let mut cassandra = spec(EngineKind::Cassandra, 3);
    cassandra.volumes.journal = Some(VolumeSpec::new("2Gi"));
    cassandra.cassandra = Some(firecamp_core::spec::CassandraOptions { heap: Some("2Gi".into()) });
    cassandra.config.insert("concurrent_reads".into(), "64".into());
    vec![
        ("postgresql-async", "pg", pg, BTreeMap::new()),
        ("postgresql-sync", "pgs", pg_sync, BTreeMap::new()),
        ("postgresql-archived", "pga", pg_archived.clone(), BTreeMap::new()),
        ("postgresql-restored", "pgr", pg_archived, BTreeMap::new()),
        ("redis-replication", "cache", redis, ips("cache", 3)),
        ("redis-replication-cert-manager", "cache", redis_issued, ips("cache", 3)),
        ("redis-restored", "cr", redis_backed_up, ips("cr", 2)),
        ("redis-cluster", "rc", redis_cluster(3, 6), ips("rc", 6)),
        ("redis-cluster-unallocated", "rcu", redis_cluster(3, 6), BTreeMap::new()),
        ("zookeeper", "zk", zk, BTreeMap::new()),
        ("zookeeper-restored", "zkr", zk_backed_up, BTreeMap::new()),
        ("kafka", "kf", kafka, BTreeMap::new()),
        ("mariadb", "md", mariadb, BTreeMap::new()),
        ("cassandra", "cs", cassandra, BTreeMap::new()),
    ]
}

pub fn plan_of(name: &str, spec: &ServiceSpec, ips: &BTreeMap<String, Ipv4Addr>) -> ServicePlan {
    // `pgr`: restored from a backup of `pga` up to a moment, until its first start is done.
    let from = RestoreSource {
        service: "pga".into(),
        uid: "0b9f2c1e-uid".into(),
        backup: "pga-20261203T230102345Z".into(),
        target_time: Some("2026-12-03 23:05:00.000000+00".into()),
    };
    // `cr`: restored from a snapshot of `cache` (as taken: no time).
    let snapshot = RestoreSource { service: "cache".into(), uid: "7d1e4a0b-uid".into(), backup: "cache-20261204T030000123Z".into(), target_time: None };
    let zk_copy = RestoreSource { service: "zk".into(), uid: "3c5a9d2f-uid".into(), backup: "zk-20261204T040000456Z".into(), target_time: None };
    let restored = match name {
        "pgr" => Some(&from),
        "cr" => Some(&snapshot),
        "zkr" => Some(&zk_copy),
        _ => None,
    };
    let layout = KubernetesLayout::restoring(&cluster(), spec, name, "0b9f2c1e-uid", restored);
    plan(name, spec, &cluster(), &layout, ips).expect("valid example")
}
