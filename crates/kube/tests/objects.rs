//! What users rely on in the rendered objects, asserted directly.

mod common;

use std::collections::BTreeMap;

use firecamp_catalog::examples::spec;
use firecamp_core::EngineKind;
use firecamp_kube::config::REDACTED;
use firecamp_kube::{Object, Secrets, build, labels, names, objects};
use k8s_openapi::api::apps::v1::StatefulSet;

fn objects_of(case: &str) -> Vec<Object> {
    let (_, name, spec, ips) = common::cases().into_iter().find(|c| c.0 == case).unwrap();
    build(&common::plan_of(name, &spec, &ips), &Secrets::Redacted)
}

fn sts(objs: &[Object]) -> &StatefulSet {
    objs.iter().find_map(|o| if let Object::StatefulSet(s) = o { Some(s) } else { None }).unwrap()
}

fn config_file<'a>(objs: &'a [Object], member: &str, file: &str) -> &'a str {
    objs.iter()
        .find_map(|o| match o {
            Object::ConfigMap(c) if c.metadata.name.as_deref() == Some(&format!("{member}-config")) => {
                c.data.as_ref().and_then(|d| d.get(file)).map(String::as_str)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {file} for {member}"))
}

#[test]
fn every_object_parses_back_as_its_typed_kubernetes_object() {
    for (case, ..) in common::cases() {
        let objs = objects_of(case);
        let yaml = objects::to_yaml(&objs).unwrap();
        assert_eq!(objects::from_yaml(&yaml).unwrap(), objs, "{case}: YAML round trip");
        let json: serde_json::Value = serde_json::from_str(&objects::to_json(&objs).unwrap()).unwrap();
        let items: Vec<Object> = json["items"].as_array().unwrap().iter().cloned().map(|v| Object::from_value(v).unwrap()).collect();
        assert_eq!(items, objs, "{case}: JSON round trip");
    }
}

#[test]
fn statefulset_is_parallel_on_delete_and_retains_volumes() {
    let objs = objects_of("zookeeper");
    let spec = sts(&objs).spec.as_ref().unwrap();
    assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
    assert_eq!(spec.update_strategy.as_ref().unwrap().type_.as_deref(), Some("OnDelete"));
    assert_eq!(spec.service_name.as_deref(), Some("zk-headless"));
    let retention = spec.persistent_volume_claim_retention_policy.as_ref().unwrap();
    assert_eq!((retention.when_deleted.as_deref(), retention.when_scaled.as_deref()), (Some("Retain"), Some("Retain")));
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.init_containers.as_ref().unwrap()[0].args.as_ref().unwrap()[0], "member-init");
    assert_eq!(pod.node_selector.as_ref().unwrap().get(labels::WORKER).map(String::as_str), Some("prod"));
    let engine = &pod.containers[0];
    assert!(engine.readiness_probe.is_some() && engine.liveness_probe.is_some() && engine.startup_probe.is_some());
    assert_eq!(pod.termination_grace_period_seconds, Some(30));
}

#[test]
fn member_i_is_pinned_to_zone_i_mod_n_through_its_claims() {
    let objs = objects_of("redis-cluster");
    let zones = ["us-east-1a", "us-east-1b", "us-east-1c"];
    for i in 0..6 {
        let member = format!("rc-{i}");
        let zone = zones[i % 3];
        let pvc = objs
            .iter()
            .find_map(|o| match o {
                Object::PersistentVolumeClaim(p) if p.metadata.name.as_deref() == Some(&format!("data-{member}")) => Some(p),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no PVC for {member}"));
        let class = pvc.spec.as_ref().unwrap().storage_class_name.clone().unwrap();
        assert_eq!(class, format!("firecamp.databases.rc.data.{zone}"));
        let sc = objs
            .iter()
            .find_map(|o| match o {
                Object::StorageClass(s) if s.metadata.name.as_deref() == Some(&class) => Some(s),
                _ => None,
            })
            .unwrap();
        let topo = &sc.allowed_topologies.as_ref().unwrap()[0].match_label_expressions.as_ref().unwrap()[0];
        assert_eq!((topo.key.as_str(), topo.values.clone()), (labels::ZONE_TOPOLOGY, vec![zone.to_string()]));
        assert_eq!(sc.volume_binding_mode.as_deref(), Some("WaitForFirstConsumer"));
    }
    // A claim the StatefulSet would make itself names a class that does not exist.
    let template = &sts(&objs).spec.as_ref().unwrap().volume_claim_templates.as_ref().unwrap()[0];
    let class = template.spec.as_ref().unwrap().storage_class_name.clone().unwrap();
    assert_eq!(class, names::unpinned_storage_class("databases", "rc", "data"));
    assert!(!objs.iter().any(|o| o.kind() == "StorageClass" && o.name() == class));
}

#[test]
fn redis_members_use_the_host_network_and_only_member_init_gets_net_admin() {
    let objs = objects_of("redis-replication");
    let pod = sts(&objs).spec.as_ref().unwrap().template.spec.clone().unwrap();
    assert_eq!(pod.host_network, Some(true));
    let init = &pod.init_containers.unwrap()[0];
    let caps = init.security_context.as_ref().unwrap().capabilities.clone().unwrap();
    assert_eq!(caps.add, Some(vec!["NET_ADMIN".to_string()]));
    let engine_caps = pod.containers[0].security_context.as_ref().unwrap().capabilities.clone().unwrap();
    assert_eq!((engine_caps.add, engine_caps.drop), (None, Some(vec!["ALL".to_string()])));
    assert!(pod.affinity.unwrap().pod_anti_affinity.unwrap().required_during_scheduling_ignored_during_execution.is_some());
}

#[test]
fn redis_announces_each_members_static_ip() {
    let objs = objects_of("redis-cluster");
    let conf = config_file(&objs, "rc-4", "redis.conf");
    assert!(conf.contains("cluster-enabled yes\n"), "{conf}");
    assert!(conf.contains("cluster-announce-ip 10.0.2.14\n"), "{conf}");
    assert!(conf.contains("bind 10.0.2.14 127.0.0.1\n"), "{conf}");
    assert!(conf.contains("appendonly yes\n"));
    let repl = objects_of("redis-replication");
    let replica = config_file(&repl, "cache-1", "redis.conf");
    assert!(replica.contains("replicaof cache-0.databases.prod-firecamp.com 6379\n"), "{replica}");
    assert!(!config_file(&repl, "cache-0", "redis.conf").contains("replicaof"));
}

#[test]
fn postgresql_replicas_stream_from_the_primary_by_dns_name_through_slots() {
    let objs = objects_of("postgresql-async");
    let conf = config_file(&objs, "pg-2", "postgresql.conf");
    assert!(conf.contains("primary_conninfo = 'host=pg-0.databases.prod-firecamp.com port=5432 user=replicator"), "{conf}");
    assert!(conf.contains("primary_slot_name = 'pg_2'"), "{conf}");
    assert!(conf.contains("hot_standby = on"));
    let env = config_file(&objs, "pg-0", "member.env");
    assert!(env.contains("INITIAL_ROLE='primary'") && env.contains("REPLICA_SLOTS='pg_1 pg_2'"), "{env}");
    assert!(env.contains("WAL_DIR='/journal/pg_wal'"), "{env}");
    let hba = config_file(&objs, "pg-0", "pg_hba.conf");
    assert!(hba.contains("hostssl replication  replicator  10.0.0.0/16"), "{hba}");
    assert!(conf.contains("sslmode=verify-full sslrootcert=/etc/firecamp/tls/ca.crt"), "{conf}");
    assert!(!hba.contains("0.0.0.0/0"), "{hba}");
    let sync_objs = objects_of("postgresql-sync");
    let sync = config_file(&sync_objs, "pgs-0", "postgresql.conf");
    assert!(sync.contains("synchronous_standby_names = 'ANY 1 (\"pgs-1\")'"), "{sync}");
    assert!(sync.contains("max_connections = 500") && sync.contains("shared_buffers = '1024MB'"), "{sync}");
}

#[test]
fn postgresql_client_service_selects_the_primary() {
    let objs = objects_of("postgresql-async");
    let svc = objs
        .iter()
        .find_map(|o| match o {
            Object::Service(s) if s.metadata.name.as_deref() == Some("pg") => Some(s),
            _ => None,
        })
        .unwrap();
    let sel = svc.spec.as_ref().unwrap().selector.clone().unwrap();
    assert_eq!(sel, BTreeMap::from([(labels::ROLE.into(), "primary".into()), (labels::SERVICE.into(), "pg".into())]));
    let headless = objs.iter().find(|o| o.name() == "pg-headless").unwrap();
    let Object::Service(h) = headless else { panic!() };
    assert_eq!(h.spec.as_ref().unwrap().publish_not_ready_addresses, Some(true));
}

#[test]
fn zookeeper_members_know_the_ensemble_and_their_ids() {
    let objs = objects_of("zookeeper");
    let cfg = config_file(&objs, "zk-1", "zoo.cfg");
    // The servers are in the dynamic file, which a scale changes with reconfig (issue #16).
    assert!(cfg.contains("reconfigEnabled=true\n") && cfg.contains("dynamicConfigFile=/run/firecamp/zoo.cfg.dynamic\n"), "{cfg}");
    let dynamic = config_file(&objs, "zk-1", "zoo.cfg.dynamic");
    for i in 0..3 {
        assert!(dynamic.contains(&format!("server.{}=zk-{i}.databases.prod-firecamp.com:2888:3888:participant\n", i + 1)), "{dynamic}");
    }
    assert!(cfg.contains("4lw.commands.whitelist=srvr,ruok,mntr,conf,isro\n"));
    assert!(cfg.contains("dataLogDir=/journal/zookeeper\n"));
    assert_eq!(config_file(&objs, "zk-1", "myid"), "2\n");
}

/// Issue #13 item 4: ZooKeeper serves clients over TLS on 2181 and asks them to log in with
/// SASL; members use mutual TLS and SASL among themselves; the passwords are in the Secret
/// `<svc>-credentials` and reach the server only through the JAAS file start.sh writes, never a
/// ConfigMap; the probes speak four-letter words over TLS. With allowPlaintext, 2182 is plain.
#[test]
fn zookeeper_members_serve_tls_and_sasl_with_passwords_only_in_the_secret() {
    let objs = objects_of("zookeeper");
    let secrets: Vec<&str> = objs.iter().filter_map(|o| if let Object::Secret(s) = o { s.metadata.name.as_deref() } else { None }).collect();
    assert_eq!(secrets, ["zk-credentials", "zk-ca", "zk-tls"]);
    let Some(Object::Secret(creds)) = objs.iter().find(|o| o.name() == "zk-credentials") else { panic!() };
    let keys: Vec<String> = creds.string_data.clone().unwrap().into_keys().collect();
    assert_eq!(keys, ["client-password", "quorum-password", "super-password"]);
    let pod = sts(&objs).spec.as_ref().unwrap().template.spec.clone().unwrap();
    let mounted: Vec<&str> = pod.volumes.iter().flatten().filter_map(|v| v.secret.as_ref()?.secret_name.as_deref()).collect();
    assert_eq!(mounted, ["zk-credentials", "zk-tls"], "the CA's key is never mounted");

    let cfg = config_file(&objs, "zk-1", "zoo.cfg");
    for line in
        ["secureClientPort=2181\n", "ssl.keyStore.type=PEM\n", "enforce.auth.schemes=sasl\n", "sslQuorum=true\n", "quorum.auth.serverRequireSasl=true\n"]
    {
        assert!(cfg.contains(line), "{line:?} missing:\n{cfg}");
    }
    assert!(!cfg.contains("\nclientPort="), "no plain port:\n{cfg}");
    assert!(config_file(&objs, "zk-1", "java.env").contains("-Djava.security.auth.login.config=/run/firecamp/jaas.conf"));

    // Real passwords: none in any ConfigMap, nor any key material.
    let plan = common::plan_of("zk", &spec_of("zookeeper"), &BTreeMap::new());
    let values: BTreeMap<String, String> = plan.secret_keys.iter().enumerate().map(|(i, k)| (k.to_string(), format!("Pw{i}x7Qz9"))).collect();
    let objs = build(&plan, &Secrets::Values(values.clone()));
    for o in &objs {
        if let Object::ConfigMap(c) = o {
            let text = serde_json::to_string(&c.data).unwrap();
            assert!(values.values().all(|v| !text.contains(v.as_str())), "{:?} holds a password", c.metadata.name);
            assert!(!text.contains("PRIVATE KEY") && !text.contains("BEGIN CERTIFICATE"), "{:?} holds key material", c.metadata.name);
        }
    }
    let engine = &sts(&objs).spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0];
    assert!(engine.env.iter().flatten().all(|e| e.value.as_deref().is_none_or(|v| values.values().all(|p| !v.contains(p.as_str())))));
    for probe in [&engine.readiness_probe, &engine.liveness_probe, &engine.startup_probe] {
        let cmd = probe.as_ref().unwrap().exec.as_ref().unwrap().command.as_ref().unwrap().join(" ");
        assert!(cmd.contains("openssl s_client -quiet -connect 127.0.0.1:2181 -CAfile /etc/firecamp/tls/ca.crt -verify_return_error"), "{cmd}");
    }
    let ports: Vec<i32> = engine.ports.iter().flatten().map(|p| p.container_port).collect();
    assert_eq!(ports, [2181, 2888, 3888, 7000], "7000: the server's own Prometheus provider");
    assert_eq!(sts(&objs).spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers.len(), 1, "no exporter sidecar for ZooKeeper");

    let mut open = spec_of("zookeeper");
    open.tls.allow_plaintext = true;
    let objs = build(&common::plan_of("zk", &open, &BTreeMap::new()), &Secrets::Redacted);
    assert!(config_file(&objs, "zk-0", "zoo.cfg").contains("\nclientPort=2182\n"));
    let np = objs.iter().find_map(|o| if let Object::NetworkPolicy(n) = o { Some(n) } else { None }).expect("a NetworkPolicy");
    let admitted: Vec<String> = np.spec.as_ref().unwrap().ingress.as_ref().unwrap()[0].ports.iter().flatten().map(|p| format!("{:?}", p.port)).collect();
    assert_eq!(admitted, ["Some(Int(2181))", "Some(Int(2182))", "Some(Int(2888))", "Some(Int(3888))", "Some(Int(7000))"]);
}

#[test]
fn secrets_are_redacted_unless_given() {
    let objs = objects_of("postgresql-async");
    let Some(Object::Secret(s)) = objs.iter().find(|o| o.kind() == "Secret") else { panic!("no Secret") };
    let data = s.string_data.clone().unwrap();
    assert_eq!(data.keys().collect::<Vec<_>>(), ["monitor-password", "replication-password", "superuser-password"]);
    assert!(data.values().all(|v| v == REDACTED));
    let plan = common::plan_of("pg", &spec(EngineKind::Postgresql, 1), &BTreeMap::new());
    let values = BTreeMap::from([
        ("superuser-password".into(), "s3cr3t".into()),
        ("replication-password".into(), "r3pl".into()),
        ("monitor-password".into(), "m0n".into()),
    ]);
    let objs = build(&plan, &Secrets::Values(values.clone()));
    let Some(Object::Secret(s)) = objs.iter().find(|o| o.kind() == "Secret") else { panic!() };
    assert_eq!(s.string_data.clone().unwrap(), values);
    // Passwords never reach a ConfigMap.
    assert!(!objects::to_yaml(&objs).unwrap().split("kind: Secret").next().unwrap().contains("s3cr3t"));
}

/// Issue #12, item 5: the user's labels and annotations stay in the service's namespace. A
/// StorageClass is cluster-scoped, so it carries FireCamp's labels only.
#[test]
fn user_labels_and_annotations_reach_namespaced_objects_only() {
    let objs = objects_of("postgresql-async");
    let (scoped, namespaced): (Vec<&Object>, Vec<&Object>) = objs.iter().partition(|o| matches!(o, Object::StorageClass(_)));
    assert!(!scoped.is_empty() && !namespaced.is_empty());
    for o in scoped {
        let m = o.metadata();
        assert!(m.annotations.is_none(), "{:?}", m.name);
        assert!(m.labels.as_ref().unwrap().keys().all(|k| k.starts_with("firecamp.dev/") || k.starts_with("app.kubernetes.io/")), "{:?}", m.labels);
    }
    for o in namespaced {
        let m = o.metadata();
        assert_eq!(m.labels.as_ref().unwrap().get("team").map(String::as_str), Some("payments"), "{:?}", m.name);
        assert_eq!(m.annotations.as_ref().and_then(|a| a.get("example.com/owner")).map(String::as_str), Some("payments-oncall"), "{:?}", m.name);
    }
}

#[test]
fn the_network_policy_admits_the_namespace_the_manage_service_and_the_named_clients_on_the_engine_ports() {
    let objs = objects_of("postgresql-sync");
    let np = objs.iter().find_map(|o| if let Object::NetworkPolicy(n) = o { Some(n) } else { None }).expect("a NetworkPolicy");
    let spec = np.spec.as_ref().unwrap();
    assert_eq!(spec.pod_selector.as_ref().unwrap().match_labels.as_ref().unwrap().get(labels::SERVICE).map(String::as_str), Some("pgs"));
    assert_eq!(spec.policy_types.as_deref(), Some(&["Ingress".to_string()][..]));
    let rule = &spec.ingress.as_ref().unwrap()[0];
    let ports: Vec<String> = rule.ports.as_ref().unwrap().iter().map(|p| format!("{:?}", p.port)).collect();
    assert_eq!(ports, ["Some(Int(5432))", "Some(Int(9187))"], "the engine's port and the metrics port");
    let from = serde_json::to_value(rule.from.as_ref().unwrap()).unwrap();
    assert_eq!(
        from,
        serde_json::json!([
            {"podSelector": {}},
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "firecamp-system"}},
             "podSelector": {"matchLabels": {"app.kubernetes.io/name": "firecamp-manage"}}},
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "payments"}}},
            {"ipBlock": {"cidr": "10.20.0.0/16"}}
        ])
    );
    // Asked for none, the service renders none.
    let (_, name, mut spec, ips) = common::cases().into_iter().find(|c| c.0 == "postgresql-async").unwrap();
    spec.clients.network_policy = false;
    let objs = build(&common::plan_of(name, &spec, &ips), &Secrets::Redacted);
    assert!(!objs.iter().any(|o| matches!(o, Object::NetworkPolicy(_))));
}

/// Issue #13: members serve TLS with certificates of the service's CA. The pods mount the
/// members' Secret, never the CA's; no ConfigMap holds a key or a certificate; clients must use
/// TLS unless the service allows plain connections, and replication always does.
#[test]
fn postgresql_members_serve_tls_from_the_service_ca_and_keys_stay_out_of_config_maps() {
    let objs = objects_of("postgresql-async");
    let secrets: Vec<&str> = objs.iter().filter_map(|o| if let Object::Secret(s) = o { s.metadata.name.as_deref() } else { None }).collect();
    assert_eq!(secrets, ["pg-credentials", "pg-ca", "pg-tls"]);
    let spec = &sts(&objs).spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let mounted: Vec<&str> = spec.volumes.iter().flatten().filter_map(|v| v.secret.as_ref()?.secret_name.as_deref()).collect();
    assert_eq!(mounted, ["pg-credentials", "pg-tls", "pg-credentials", "pg-tls"], "the CA's key is never mounted");
    // The metrics sidecar (docs/monitoring.md) sees its own password and the CA, nothing else:
    // no superuser password, no member key.
    let exporter = spec.containers.iter().find(|c| c.name == "metrics").expect("a metrics sidecar");
    assert_eq!(exporter.command.as_ref().unwrap(), &["/bin/bash", "/etc/firecamp/config/metrics.sh"]);
    assert_eq!(exporter.ports.as_ref().unwrap()[0].container_port, 9187);
    let seen: Vec<&str> = exporter.volume_mounts.iter().flatten().map(|m| m.name.as_str()).collect();
    assert_eq!(seen, ["config", "run", "metrics-secret", "metrics-tls"]);
    for (volume, only) in [("metrics-secret", "monitor-password"), ("metrics-tls", "ca.crt")] {
        let v = spec.volumes.iter().flatten().find(|v| v.name == volume).unwrap();
        let items: Vec<&str> = v.secret.as_ref().unwrap().items.iter().flatten().map(|i| i.key.as_str()).collect();
        assert_eq!(items, [only], "{volume}");
    }
    assert!(!spec.containers[0].ports.iter().flatten().any(|p| p.container_port == 9187), "the metrics port is the sidecar's");
    let mounts = spec.containers[0].volume_mounts.as_ref().unwrap();
    assert!(mounts.iter().any(|m| m.mount_path == "/etc/firecamp/tls" && m.read_only == Some(true)), "{mounts:?}");
    for o in &objs {
        if let Object::ConfigMap(c) = o {
            let text = serde_json::to_string(&c.data).unwrap();
            assert!(!text.contains("PRIVATE KEY") && !text.contains("BEGIN CERTIFICATE"), "{:?} holds key material", c.metadata.name);
        }
    }
    let conf = config_file(&objs, "pg-0", "postgresql.conf");
    assert!(conf.contains("ssl = on\n") && conf.contains("ssl_key_file = '/run/firecamp/tls.key'"), "{conf}");

    let mut open = spec_of("postgresql-async");
    open.tls.allow_plaintext = true;
    let plan = common::plan_of("pg", &open, &Default::default());
    let objs = build(&plan, &Secrets::Redacted);
    let hba = config_file(&objs, "pg-0", "pg_hba.conf");
    assert!(hba.contains("hostssl replication") && hba.contains("host    all          all         10.0.0.0/16"), "{hba}");
}

/// Issue #13 item 3: Redis serves TLS on 6379 with the member's certificate, the plain port
/// off; replication and the cluster bus use TLS; the probes and the init task verify the
/// members against the CA. With allowPlaintext, plain clients get 6380, on every Service and
/// in the NetworkPolicy.
#[test]
fn redis_members_serve_tls_on_the_standard_port_and_plain_only_when_allowed() {
    let objs = objects_of("redis-cluster");
    let conf = config_file(&objs, "rc-4", "redis.conf");
    for line in [
        "port 0\n",
        "tls-port 6379\n",
        "tls-cert-file /run/firecamp/tls.crt\n",
        "tls-key-file /run/firecamp/tls.key\n",
        "tls-ca-cert-file /etc/firecamp/tls/ca.crt\n",
        "tls-auth-clients no\n",
        "tls-replication yes\n",
        "tls-cluster yes\n",
        "cluster-announce-tls-port 6379\n",
        "cluster-announce-port 0\n",
        "cluster-announce-bus-port 16379\n",
    ] {
        assert!(conf.contains(line), "{line:?} missing:\n{conf}");
    }
    let env = config_file(&objs, "rc-4", "member.env");
    assert!(env.contains("TLS_DIR='/etc/firecamp/tls'"), "{env}");
    let start = config_file(&objs, "rc-4", "start.sh");
    assert!(start.contains("install -m 0600 \"$TLS_DIR/$MEMBER.key\" \"$RUN_DIR/tls.key\""), "{start}");
    let pod = sts(&objs).spec.as_ref().unwrap().template.spec.clone().unwrap();
    let mounted: Vec<&str> = pod.volumes.iter().flatten().filter_map(|v| v.secret.as_ref()?.secret_name.as_deref()).collect();
    assert_eq!(mounted, ["rc-credentials", "rc-tls", "rc-credentials", "rc-tls"], "the CA's key is never mounted (the metrics sidecar's own views)");
    let engine = &pod.containers[0];
    for probe in [&engine.readiness_probe, &engine.liveness_probe, &engine.startup_probe] {
        let cmd = probe.as_ref().unwrap().exec.as_ref().unwrap().command.as_ref().unwrap().join(" ");
        assert!(cmd.contains("redis-cli --tls --cacert /etc/firecamp/tls/ca.crt -h 127.0.0.1 -p 6379 ping"), "{cmd}");
    }
    let ports: Vec<i32> = engine.ports.iter().flatten().map(|p| p.container_port).collect();
    assert_eq!(ports, [6379, 16379]);
    assert!(firecamp_catalog::redis::INIT_CLUSTER_SH.contains("redis-cli\" --tls --cacert \"$cacert\""));
    assert!(!config_file(&objects_of("redis-replication"), "cache-1", "redis.conf").contains("tls-cluster"));

    let mut open = spec_of("redis-cluster");
    open.tls.allow_plaintext = true;
    let (_, name, _, ips) = common::cases().into_iter().find(|c| c.0 == "redis-cluster").unwrap();
    let objs = build(&common::plan_of(name, &open, &ips), &Secrets::Redacted);
    let conf = config_file(&objs, "rc-4", "redis.conf");
    assert!(conf.contains("port 6380\n") && conf.contains("tls-port 6379\n") && conf.contains("cluster-announce-port 6380\n"), "{conf}");
    let engine = &sts(&objs).spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0];
    let ports: Vec<(Option<&str>, i32)> = engine.ports.iter().flatten().map(|p| (p.name.as_deref(), p.container_port)).collect();
    assert_eq!(ports, [(Some("redis"), 6379), (Some("redis-plain"), 6380), (Some("cluster-bus"), 16379)]);
    let service_ports = |svc: &str| -> Vec<i32> {
        objs.iter()
            .find_map(|o| match o {
                Object::Service(s) if s.metadata.name.as_deref() == Some(svc) => {
                    Some(s.spec.as_ref().unwrap().ports.iter().flatten().map(|p| p.port).collect())
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no Service {svc}"))
    };
    assert_eq!(service_ports("rc"), [6379, 6380], "clients reach both ports, never the bus");
    assert_eq!(service_ports("rc-headless"), [6379, 6380, 16379, 9121], "and the metrics port, for scrapers");
    let np = objs.iter().find_map(|o| if let Object::NetworkPolicy(n) = o { Some(n) } else { None }).expect("a NetworkPolicy");
    let admitted: Vec<String> = np.spec.as_ref().unwrap().ingress.as_ref().unwrap()[0].ports.iter().flatten().map(|p| format!("{:?}", p.port)).collect();
    assert_eq!(admitted, ["Some(Int(6379))", "Some(Int(6380))", "Some(Int(16379))", "Some(Int(9121))"]);
}

fn spec_of(case: &str) -> firecamp_core::ServiceSpec {
    common::cases().into_iter().find(|c| c.0 == case).unwrap().2
}

/// #13: with a cert-manager issuer, one Certificate per member names what the service's own CA
/// would (member DNS names, endpoints, static IP), issues into a Secret of its own name carrying
/// the service's labels, and FireCamp keeps no CA Secret; the pods mount `<service>-tls` as before.
#[test]
fn a_cert_manager_issuer_gets_one_certificate_per_member_and_no_ca_secret() {
    let objs = objects_of("redis-replication-cert-manager");
    let (_, name, spec, ips) = common::cases().into_iter().find(|c| c.0 == "redis-replication-cert-manager").unwrap();
    let plan = common::plan_of(name, &spec, &ips);
    let certs: Vec<_> = objs.iter().filter_map(|o| if let Object::Certificate(c) = o { Some(c) } else { None }).collect();
    assert_eq!(certs.len(), 3);
    for (m, c) in plan.members.iter().zip(&certs) {
        let wanted = firecamp_kube::tls::member_names(&plan, m);
        assert_eq!(c.metadata.name.as_deref(), Some(format!("{}-certificate", m.member.name).as_str()));
        assert_eq!(c.spec.secret_name, format!("{}-certificate", m.member.name));
        assert_eq!(c.spec.dns_names, wanted.names);
        assert!(c.spec.dns_names.contains(&m.member.dns_name));
        let ip = m.member.static_ip.expect("a static IP").to_string();
        assert_eq!(c.spec.ip_addresses, [ip, "127.0.0.1".to_string()]);
        assert_eq!((c.spec.issuer_ref.kind.as_str(), c.spec.issuer_ref.name.as_str()), ("ClusterIssuer", "corp-ca"));
        assert!(c.spec.usages.iter().any(|u| u == "client auth") && c.spec.usages.iter().any(|u| u == "server auth"));
        assert_eq!(c.spec.private_key.as_ref().map(|k| k.encoding.as_str()), Some("PKCS8"));
        let template = c.spec.secret_template.as_ref().expect("a secret template").labels.clone();
        assert_eq!(template.get(labels::SERVICE).map(String::as_str), Some("cache"));
        assert_eq!(template.get(labels::MANAGED_BY).map(String::as_str), Some("firecamp"));
    }
    let secrets: Vec<&str> = objs.iter().filter(|o| matches!(o, Object::Secret(_))).map(|o| o.name()).collect();
    assert!(!secrets.contains(&names::ca_secret("cache").as_str()), "{secrets:?}");
    assert!(secrets.contains(&names::tls_secret("cache").as_str()), "{secrets:?}");
    // The same service without an issuer has no Certificate.
    assert!(!objects_of("redis-replication").iter().any(|o| matches!(o, Object::Certificate(_))));
}

/// #13: `<service>-tls` assembled from cert-manager's Secrets: each issued member's certificate
/// and key, a member not issued yet keeping what it had, and every distinct CA once.
#[test]
fn the_members_secret_is_assembled_from_what_cert_manager_issued() {
    use firecamp_kube::tls::{Issued, mounted_from_issued};
    let (_, name, spec, ips) = common::cases().into_iter().find(|c| c.0 == "redis-replication-cert-manager").unwrap();
    let plan = common::plan_of(name, &spec, &ips);
    let pem = |n: &str| format!("-----BEGIN CERTIFICATE-----\n{n}\n-----END CERTIFICATE-----\n");
    let issued = |n: &str, ca: &str| Issued { cert: pem(n), key: format!("key {n}"), ca: pem(ca) };
    let previous = BTreeMap::from([("cache-2.crt".to_string(), pem("old 2")), ("cache-2.key".to_string(), "old key 2".to_string())]);
    let got =
        mounted_from_issued(&plan, &BTreeMap::from([("cache-0".to_string(), issued("0", "ca A")), ("cache-1".to_string(), issued("1", "ca B"))]), &previous);
    assert_eq!(got["cache-0.crt"], pem("0"));
    assert_eq!(got["cache-1.key"], "key 1");
    assert_eq!(got["cache-2.crt"], pem("old 2"), "a member not issued keeps its certificate");
    assert_eq!(got["ca.crt"], format!("{}{}", pem("ca A"), pem("ca B")));
    let same_ca = mounted_from_issued(
        &plan,
        &BTreeMap::from([("cache-0".to_string(), issued("0", "ca A")), ("cache-1".to_string(), issued("1", "ca A"))]),
        &BTreeMap::new(),
    );
    assert_eq!(same_ca["ca.crt"], pem("ca A"));
    assert!(!same_ca.contains_key("cache-2.crt"));
    // What is issued lacks nothing, or it is not taken.
    let data = |keys: &[&str]| keys.iter().map(|k| (k.to_string(), "x".to_string())).collect::<BTreeMap<_, _>>();
    assert!(Issued::from_data(&data(&["tls.crt", "tls.key", "ca.crt"])).is_some());
    assert!(Issued::from_data(&data(&["tls.crt", "tls.key"])).is_none(), "an issuer without ca.crt");
}
