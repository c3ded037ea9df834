//! Engine parameters of a service (`config`, `memberConfig`): rendered into each engine's file,
//! the member's value winning; refused by name when FireCamp owns the key or it is not on the
//! engine's allow-list; and which keys reload without a restart. The attacks (a key that runs a
//! command or loads code) are in tests/param_attacks.rs.

use std::collections::BTreeMap;

use firecamp_catalog::examples::spec;
use firecamp_catalog::layout::KubernetesLayout;
use firecamp_catalog::{ServicePlan, engine, plan, plan_with_primary};
use firecamp_core::{ClusterConfig, EngineKind, ServiceSpec};

use EngineKind::*;

fn planned(name: &str, s: &ServiceSpec) -> ServicePlan {
    plan(name, s, &ClusterConfig::new("prod"), &KubernetesLayout::default(), &BTreeMap::new()).expect("valid")
}

fn file<'a>(p: &'a ServicePlan, member: &str, name: &str) -> &'a str {
    &p.member(member).unwrap().files.iter().find(|f| f.name == name).unwrap().content
}

fn refused(name: &str, s: &ServiceSpec, field: &str, text: &str) {
    let e = plan(name, s, &ClusterConfig::new("prod"), &KubernetesLayout::default(), &BTreeMap::new()).expect_err("refused");
    assert!(e.0.iter().any(|f| f.field == field && f.message.contains(text)), "want {field}: {text}; got {e}");
}

#[test]
fn postgresql_parameters_go_last_and_the_member_value_wins() {
    let mut s = spec(Postgresql, 3);
    s.config.insert("work_mem".into(), "8MB".into());
    s.member_config.insert("pg-2".into(), BTreeMap::from([("work_mem".into(), "16MB".into())]));
    let p = planned("pg", &s);
    let conf0 = file(&p, "pg-0", "postgresql.conf");
    assert!(conf0.ends_with("work_mem = '8MB'\n"), "{conf0}");
    assert!(conf0.find("work_mem = '4MB'").unwrap() < conf0.find("work_mem = '8MB'").unwrap(), "after FireCamp's own line");
    assert!(file(&p, "pg-2", "postgresql.conf").ends_with("work_mem = '16MB'\n"));
}

#[test]
fn redis_and_zookeeper_parameters_use_their_own_syntax() {
    let mut s = spec(Redis, 3);
    s.config.insert("hz".into(), "20".into());
    assert!(file(&planned("r", &s), "r-1", "redis.conf").ends_with("hz 20\n"));
    let mut s = spec(Zookeeper, 3);
    s.config.insert("maxClientCnxns".into(), "100".into());
    assert!(file(&planned("zk", &s), "zk-0", "zoo.cfg").ends_with("maxClientCnxns=100\n"));
}

#[test]
fn without_parameters_the_files_are_unchanged() {
    for e in [Postgresql, Redis, Zookeeper] {
        let s = spec(e, 3);
        for m in &planned("x", &s).members {
            for f in &m.files {
                assert!(!f.content.contains("spec.config"), "{}", f.name);
            }
        }
    }
}

#[test]
fn owned_and_misspelled_keys_and_unknown_members_are_refused_by_name() {
    let mut s = spec(Postgresql, 3);
    s.config.insert("port".into(), "5433".into());
    refused("pg", &s, "spec.config.port", "FireCamp sets port itself");
    let mut s = spec(Postgresql, 3);
    s.config.insert("Work Mem".into(), "1".into());
    refused("pg", &s, "spec.config.Work Mem", "not an allowed PostgreSQL parameter");
    let mut s = spec(Postgresql, 3);
    s.member_config.insert("pg-7".into(), BTreeMap::from([("work_mem".into(), "1MB".into())]));
    refused("pg", &s, "spec.memberConfig.pg-7", "not a member");
    let mut s = spec(Redis, 3);
    s.config.insert("cluster-enabled".into(), "yes".into());
    refused("r", &s, "spec.config.cluster-enabled", "spec.redis.mode");
    let mut s = spec(Redis, 3);
    s.config.insert("hz".into(), "1\nbind 0.0.0.0".into());
    refused("r", &s, "spec.config.hz", "hz takes an integer from 1 to 500");
    let mut s = spec(Zookeeper, 3);
    s.config.insert("server.4".into(), "x:2888:3888".into());
    refused("zk", &s, "spec.config.server.4", "members");
    let mut s = spec(Zookeeper, 3);
    s.member_config.insert("zk-1".into(), BTreeMap::from([("dataDir".into(), "/tmp".into())]));
    refused("zk", &s, "spec.memberConfig.zk-1.dataDir", "FireCamp sets dataDir");
}

#[test]
fn reloadable_keys_per_engine() {
    let pg = engine(Postgresql);
    assert!(pg.reloadable("work_mem") && pg.reloadable("log_min_duration_statement"));
    for k in ["shared_buffers", "max_connections", "max_wal_senders", "wal_level", "shared_preload_libraries", "max_prepared_transactions"] {
        assert!(!pg.reloadable(k), "{k}");
    }
    let r = engine(Redis);
    assert!(r.reloadable("hz") && r.reloadable("maxmemory"));
    for k in ["port", "bind", "cluster-enabled", "databases", "daemonize", "dir", "appendfilename"] {
        assert!(!r.reloadable(k), "{k}");
    }
    assert!(!engine(Zookeeper).reloadable("maxClientCnxns"));
}

#[test]
fn a_switched_over_primary_is_rendered_as_primary_and_the_others_follow_it() {
    let s = spec(Postgresql, 3);
    let p = plan_with_primary("pg", &s, &ClusterConfig::new("prod"), &KubernetesLayout::default(), &BTreeMap::new(), Some("pg-1")).unwrap();
    assert!(file(&p, "pg-0", "postgresql.conf").contains("host=pg-1.default.prod-firecamp.com"));
    assert!(file(&p, "pg-0", "member.env").contains("INITIAL_ROLE='replica'"));
    assert!(!file(&p, "pg-1", "postgresql.conf").contains("primary_conninfo"));
    let s = spec(Redis, 3);
    let p = plan_with_primary("r", &s, &ClusterConfig::new("prod"), &KubernetesLayout::default(), &BTreeMap::new(), Some("r-2")).unwrap();
    assert!(file(&p, "r-0", "redis.conf").contains("replicaof r-2.default.prod-firecamp.com 6379"));
    assert!(!file(&p, "r-2", "redis.conf").contains("replicaof"));
}
