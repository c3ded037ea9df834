//! FireCamp on real pods: the test bed's real nodes (kubelet, containerd, runc, kube-proxy, each
//! in its own network namespace) run the images `scripts/image.sh` builds. `install render` is
//! applied as a user would apply it: both manage-service replicas run from FireCamp's image under
//! the rendered ServiceAccount and ClusterRole, with AWS (moto) for the members' Route53 records,
//! which CoreDNS serves to pods. Needs `testbed/bed up --real-nodes 6` and `testbed/bed dns`;
//! fails, loudly, without them.

use std::time::Duration;

use firecamp_testbed::{client, fresh_namespace};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::DeleteParams;

mod real;
use real::{SYSTEM, Uninstall, bed_env, cli, installed, leader, token};

#[tokio::test]
async fn postgresql_runs_on_real_pods_under_the_manage_service_from_its_image() {
    let env = bed_env();
    let client = client().await;
    let _uninstall = Uninstall;
    // Both replicas run from FireCamp's image on real nodes, and one holds the Lease.
    installed(&client, &env).await;
    let manage = real::manage_pods(&client).await;
    let nodes: Api<Node> = Api::all(client.clone());
    for p in &manage {
        let node = nodes.get(p.spec.as_ref().unwrap().node_name.as_deref().unwrap()).await.unwrap();
        assert_eq!(node.metadata.labels.as_ref().unwrap().get("type").map(String::as_str), Some("real"), "manage pod on a real node");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let first_leader = loop {
        if let Some(l) = leader(&client).await.filter(|l| manage.iter().any(|p| p.metadata.name.as_deref() == Some(l))) {
            break l;
        }
        assert!(tokio::time::Instant::now() < deadline, "no manage pod took the Lease");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // The CLI reaches the REST API (a manage pod's IP: the host routes to every node's pods)
    // with a ServiceAccount token of the test's namespace.
    let ns = fresh_namespace(&client, "fc-real").await;
    let tok = token(&client, &ns, "dba", &["get", "list", "watch", "create", "update", "patch", "delete"]).await;
    let server = real::server(&manage[0]);
    let rest = |server: &str, args: &[&str]| {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend([format!("--server={server}"), format!("--token={tok}"), format!("--namespace={ns}"), format!("--ca-cert={}", real::ca_file().display())]);
        cli(&a)
    };
    // HTTPS by default: the pod's certificate verifies by its IP against the published CA;
    // plain HTTP, or a client that does not trust the CA, gets nothing.
    let plain = rest(&server.replace("https://", "http://"), &["service", "list"]);
    assert!(!plain.status.success(), "plain HTTP answered");
    let mut a: Vec<String> = ["service", "list", "--token", &tok, "--namespace", &ns, "--server", &server].map(String::from).to_vec();
    let untrusting = cli(&a);
    assert!(!untrusting.status.success() && String::from_utf8_lossy(&untrusting.stderr).to_lowercase().contains("certificate"), "{untrusting:?}");
    a.push(format!("--ca-cert={}", real::ca_file().display()));
    assert!(cli(&a).status.success(), "{:?}", cli(&a));
    let t0 = std::time::Instant::now();
    let out = rest(
        &server,
        &["service", "create", "postgresql", "pg", "--version=15", "--replicas=3", &format!("--zones={}", real::ZONES.join(",")), "--wait", "--timeout=420"],
    );
    assert!(out.status.success(), "create: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("postgresql 3 on real pods: create -> ACTIVE in {:.1} s", t0.elapsed().as_secs_f64());

    // The manage service applied the service's NetworkPolicy under the rendered ClusterRole.
    // (The bed's CNI bridge enforces no policy: what it admits is asserted on the rendered
    // object in crates/kube/tests/objects.rs.)
    let np = Api::<k8s_openapi::api::networking::v1::NetworkPolicy>::namespaced(client.clone(), &ns).get("pg").await.expect("the NetworkPolicy pg");
    assert_eq!(np.spec.and_then(|s| s.policy_types), Some(vec!["Ingress".to_string()]));

    // Each member in its zone, on a real node.
    let members: Api<Pod> = Api::namespaced(client.clone(), &ns);
    for (i, zone) in real::ZONES.iter().enumerate() {
        let p = members.get(&format!("pg-{i}")).await.unwrap();
        let node = nodes.get(p.spec.as_ref().unwrap().node_name.as_deref().unwrap()).await.unwrap();
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels.get("topology.kubernetes.io/zone").map(String::as_str), Some(*zone), "pg-{i}'s zone");
        assert_eq!(labels.get("type").map(String::as_str), Some("real"));
    }

    // From inside another pod, through the members' DNS names: both replicas stream from the
    // primary, and a row written on the primary is read on a replica.
    // Members are named in their namespace's subdomain of the cluster's zone.
    let domain = format!("{ns}.{}-firecamp.com", env.cluster);
    let script = format!(
        r#"set -eu
export PGPASSWORD="$(cat /secret/superuser-password)" PGCONNECT_TIMEOUT=5
# TLS verified against the service's CA, by the member's name (issue #13).
export PGSSLMODE=verify-full PGSSLROOTCERT=/tls/ca.crt
q() {{ psql -v ON_ERROR_STOP=1 -At -U postgres -d postgres -h "$1.{domain}" -c "$2"; }}
for i in $(seq 300); do n=$(q pg-0 "select count(*) from pg_stat_replication where state = 'streaming'" || true); [ "$n" = 2 ] && break; sleep 0.2; done
echo "streaming=$n"
echo "replication over TLS: $(q pg-0 "select count(*) from pg_stat_replication r join pg_stat_ssl s using (pid) where s.ssl")"
echo "plain: $(PGSSLMODE=disable q pg-0 'select 1' 2>&1 | grep -o 'no encryption' | head -1)"
q pg-0 "create table t (v text); insert into t values ('written on pg-0')"
for i in $(seq 300); do v=$(q pg-1 "select v from t" 2>/dev/null || true); [ -n "$v" ] && break; sleep 0.2; done
echo "read on pg-1: $v"
echo "pg-1 in recovery: $(q pg-1 'select pg_is_in_recovery()')"
# The members' metrics (docs/monitoring.md), over plain HTTP from bash alone.
metrics() {{ exec 4<>"/dev/tcp/$1.{domain}/$2"; printf 'GET /metrics HTTP/1.0\r\n\r\n' >&4; timeout 5 cat <&4 | tr -d '\r'; exec 4<&-; }}
for i in $(seq 150); do up=$(metrics pg-1 9187 | grep '^pg_up ' || true); [ "$up" = "pg_up 1" ] && break; sleep 0.2; done
echo "pg-1 metrics: $up, replica $(metrics pg-1 9187 | grep '^pg_replication_is_replica' | awk '{{print $2}}' || true)"
echo "pg-0 metrics: $(metrics pg-0 9187 | grep -c '^pg_stat_replication_pg_wal_lsn_diff{{' || true) replicas reported"
"#
    );
    let logs = real::run_client_pod(
        &client,
        &ns,
        "client",
        &env.image("docker.io/library/postgres:15.10-bookworm"),
        999,
        &[("pg-credentials", "/secret"), ("pg-tls", "/tls")],
        &script,
    )
    .await;
    assert!(logs.contains("streaming=2"), "both replicas streaming: {logs}");
    assert!(logs.contains("replication over TLS: 2"), "{logs}");
    assert!(logs.contains("plain: no encryption"), "a plain connection is refused: {logs}");
    assert!(logs.contains("read on pg-1: written on pg-0"), "the row reached the replica: {logs}");
    assert!(logs.contains("pg-1 in recovery: t"), "{logs}");
    // The metrics sidecar (issue #17): the replica's exporter logged in, the primary's reports
    // both replicas' replication.
    assert!(logs.contains("pg-1 metrics: pg_up 1, replica 1"), "{logs}");
    assert!(logs.contains("pg-0 metrics: 2 replicas reported"), "{logs}");

    // Deleting the leader's pod hands the Lease over at once (the leader releases it on SIGTERM):
    // to the other replica, or to the Deployment's replacement pod if that one asks first.
    let t0 = std::time::Instant::now();
    Api::<Pod>::namespaced(client.clone(), SYSTEM).delete(&first_leader, &DeleteParams::default()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let other = loop {
        if let Some(l) = leader(&client).await.filter(|l| *l != first_leader) {
            break l;
        }
        assert!(tokio::time::Instant::now() < deadline, "the Lease did not move from {first_leader}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("leadership moved from {first_leader} to {other} in {:.1} s", t0.elapsed().as_secs_f64());
    // The new leader serves the API and deletes the service, once its pod is Ready (the
    // replacement pod may win the Lease a moment before its API listens).
    let pods = Api::<Pod>::namespaced(client.clone(), SYSTEM);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let pod = loop {
        let p = pods.get(&other).await.unwrap();
        let ready = p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready {
            break p;
        }
        assert!(tokio::time::Instant::now() < deadline, "the new leader {other} never became Ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let server = real::server(&pod);
    assert!(server.starts_with("https://10.251."), "the new leader {other} is not a pod of the bed's real nodes: {server}");
    let out = rest(&server, &["service", "delete", "pg", "--delete-volumes", "--wait", "--timeout=180"]);
    assert!(out.status.success(), "delete: {}", String::from_utf8_lossy(&out.stderr));
    firecamp_testbed::drop_namespace(&client, &ns).await;
}
