//! Faults on real pods, one after the other on a PostgreSQL service of three members in three
//! zones (and, from part 4, a Redis replication group beside it): the primary's pod deleted, a
//! PrimaryLast restart (replicas, a switchover, the old primary) under a continuous writer on the
//! primary endpoint while the manage service's leader is deleted mid-operation, a replica's zone
//! going dark (its node's kubelet stopped and its link cut), the zone of both primaries going dark
//! (two failovers), and a partition (the manage service cut from the primary, whose kubelet
//! stops, while its replicas still hear it: no failover). The members' commands go through
//! `kubectl exec` (the API server and the node's kubelet). Needs the bed's real nodes
//! (`testbed/bed up --real-nodes 6`) and CoreDNS; fails, loudly, without them.

use std::collections::BTreeSet;
use std::time::Duration;

use firecamp_api::Phase;
use firecamp_core::operation::OperationPhase;
use firecamp_manage::crd::FireCampService;
use firecamp_testbed::{client, fresh_namespace};
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, ListParams};
use kube::runtime::wait::await_condition;
use kube::{Api, ResourceExt};

mod real;
use real::{
    Cut, Dark, STREAMING, SYSTEM, Uninstall, bed_env, installed, is_ready, leader, node_index, phase, psql, psql_until, redis, redis_until, rest,
    service_until, token,
};

#[tokio::test]
async fn primaries_on_real_pods_survive_a_lost_pod_a_restart_under_writes_a_dark_zone_and_a_partition() {
    let env = bed_env();
    let client = client().await;
    let _uninstall = Uninstall;
    let server = installed(&client, &env).await;
    let ns = fresh_namespace(&client, "fc-fault").await;
    let tok = token(&client, &ns, "dba", &["get", "list", "watch", "create", "update", "patch", "delete"]).await;
    let zones = format!("--zones={}", real::ZONES.join(","));
    rest(&server, &tok, &ns, &["service", "create", "postgresql", "pg", "--version=15", "--replicas=3", &zones, "--wait", "--timeout=420"]);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let nodes: Api<Node> = Api::all(client.clone());
    let zone_of = |p: Pod| {
        let nodes = nodes.clone();
        async move {
            let node = nodes.get(p.spec.as_ref().unwrap().node_name.as_deref().unwrap()).await.unwrap();
            node.labels().get("topology.kubernetes.io/zone").cloned().unwrap()
        }
    };
    psql(&client, &ns, "pg-0", "create table t (v text); insert into t values ('before the faults')").await;
    psql_until(&client, &ns, "pg-0", STREAMING, "2", 120).await;

    // 1. The primary's pod is deleted: it comes back in its zone, on its own volume, with its
    //    data, still the primary, and both replicas stream from it again.
    let old = pods.get("pg-0").await.unwrap();
    let old_uid = old.uid().unwrap();
    let old_zone = zone_of(old).await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let volume = |c: PersistentVolumeClaim| c.spec.and_then(|s| s.volume_name).expect("a bound claim");
    let old_volume = volume(pvcs.get("data-pg-0").await.unwrap());
    pods.delete("pg-0", &DeleteParams::default()).await.unwrap();
    let back = |p: Option<&Pod>| p.is_some_and(|p| p.uid().as_deref() != Some(old_uid.as_str()) && is_ready(p));
    let again = tokio::time::timeout(Duration::from_secs(240), await_condition(pods.clone(), "pg-0", back))
        .await
        .expect("pg-0 is back and Ready within 240 s")
        .unwrap()
        .unwrap();
    assert_eq!(zone_of(again).await, old_zone, "pg-0 came back in its zone");
    assert_eq!(volume(pvcs.get("data-pg-0").await.unwrap()), old_volume, "pg-0 came back on its own volume");
    assert_eq!(psql(&client, &ns, "pg-0", "select v from t").await, "before the faults");
    assert_eq!(psql(&client, &ns, "pg-0", "select pg_is_in_recovery()").await, "f", "pg-0 is still the primary");
    psql_until(&client, &ns, "pg-0", STREAMING, "2", 120).await;
    service_until(&client, &ns, "pg", "ACTIVE after pg-0 came back", 120, |s| phase(s) == Some(Phase::Active)).await;

    // 2. A PrimaryLast restart while a client writes through the primary endpoint, and the
    //    manage service's leader deleted while the operation runs: the other replica carries
    //    it on to the end; the replicas restart, one of them takes over in a switchover (no
    //    pods/exec: the manage service speaks SQL, the old primary's pod stops cleanly), the
    //    old primary comes back as its replica, and every acknowledged write is there.
    psql(&client, &ns, "pg-0", "create table w (i int primary key)").await;
    // Members are named in their namespace's subdomain of the cluster's zone.
    let domain = format!("{ns}.{}-firecamp.com", env.cluster);
    // The replicas endpoint (Route53 on moto, one record set) leads to both replicas.
    let mut replica_ips = Vec::new();
    for m in ["pg-1", "pg-2"] {
        replica_ips.push(pods.get(m).await.unwrap().status.and_then(|s| s.pod_ip).expect("a pod IP"));
    }
    replica_ips.sort();
    let writer_script = format!(
        r#"set -u
export PGPASSWORD="$(cat /secret/superuser-password)" PGCONNECT_TIMEOUT=3
q() {{ psql -v ON_ERROR_STOP=1 -qAt -U postgres -d postgres -h "primary.pg.{domain}" -c "$1"; }}
echo "replicas: $(getent ahostsv4 replicas.pg.{domain} | awk '{{print $1}}' | sort -u | tr '\n' ' ')"
i=0
until [ "$(q 'select count(*) from stop' 2>/dev/null)" = 1 ]; do
  i=$((i + 1))
  if r=$(q "insert into w values ($i) returning pg_postmaster_start_time()" 2>/dev/null); then echo "acked $i ${{r%%$'\n'*}}"; else echo "failed $i $(date +%s.%N)"; fi
done
echo "stopped after $i attempts"
"#
    );
    let image = env.image("docker.io/library/postgres:15.10-bookworm");
    let writer = real::spawn_client_pod(&client, &ns, "writer", image, &[("pg-credentials", "/secret"), ("pg-tls", "/tls")], writer_script);
    psql_until(&client, &ns, "pg-0", "select count(*) > 0 from w", "t", 120).await;
    let first_leader = leader(&client).await.expect("a manage pod leads");
    let manage = real::manage_pods(&client).await;
    let server = real::server(&manage[0]);
    rest(&server, &tok, &ns, &["service", "restart", "pg", "--policy=PrimaryLast"]);
    let running = |s: &FireCampService| s.status.as_ref().and_then(|st| st.operations.last()).is_some_and(|o| o.phase == OperationPhase::Running);
    let svc = service_until(&client, &ns, "pg", "the restart running", 120, running).await;
    let op = svc.status.unwrap().operations.last().unwrap().id.clone();
    Api::<Pod>::namespaced(client.clone(), SYSTEM).delete(&first_leader, &DeleteParams::default()).await.unwrap();
    let finished = |s: &FireCampService| s.status.as_ref().and_then(|st| st.operations.iter().find(|o| o.id == op)).is_some_and(|o| o.phase.is_terminal());
    let svc = service_until(&client, &ns, "pg", "the restart finished under the new leader", 600, finished).await;
    let done = svc.status.as_ref().unwrap().operations.iter().find(|o| o.id == op).unwrap().clone();
    assert_eq!(done.phase, OperationPhase::Succeeded, "the restart: {done:#?}");
    assert_eq!(done.steps.last().map(|s| s.member.as_str()), Some("pg-0"), "PrimaryLast restarts the primary last: {done:#?}");
    let switchover = done.steps.iter().find(|s| s.action == firecamp_core::operation::StepAction::Switchover).expect("a switchover step");
    let primary = switchover.to.clone().expect("the switchover's target");
    assert_eq!(svc.status.as_ref().unwrap().primary.as_deref(), Some(primary.as_str()), "the new primary is recorded");
    eprintln!("switchover pg-0 → {primary}: {:?} → {:?}", switchover.started, switchover.finished);
    assert_eq!(psql(&client, &ns, &primary, "select pg_is_in_recovery()").await, "f", "{primary} is the primary");
    assert_eq!(psql(&client, &ns, "pg-0", "select pg_is_in_recovery()").await, "t", "pg-0 came back as a replica");
    let new_leader = leader(&client).await.expect("a manage pod leads");
    assert_ne!(new_leader, first_leader, "leadership moved while the restart ran");
    psql(&client, &ns, &primary, "create table stop (x int); insert into stop values (1)").await;
    let log = tokio::time::timeout(Duration::from_secs(120), writer).await.expect("the writer stops").unwrap();
    assert!(
        log.contains(&format!("replicas: {} ", replica_ips.join(" "))),
        "replicas.pg resolves to both replicas {replica_ips:?}: {}",
        log.lines().next().unwrap_or("")
    );
    let mut acked = BTreeSet::new();
    let mut incarnations = BTreeSet::new();
    for l in log.lines().filter_map(|l| l.strip_prefix("acked ")) {
        let (i, started) = l.split_once(' ').unwrap_or((l, ""));
        acked.insert(i.parse::<u64>().unwrap());
        incarnations.insert(started.to_string());
    }
    let failures: Vec<f64> = log.lines().filter_map(|l| l.strip_prefix("failed ")?.split_once(' ')?.1.parse().ok()).collect();
    let failed = failures.len();
    let pause = failures.last().zip(failures.first()).map(|(l, f)| l - f).unwrap_or(0.0);
    let stored: BTreeSet<u64> = psql(&client, &ns, &primary, "select i from w").await.lines().map(|l| l.parse().unwrap()).collect();
    let lost: Vec<&u64> = acked.difference(&stored).collect();
    eprintln!(
        "writer: {} acknowledged, {failed} refused during the restart (first to last {pause:.2} s), {} rows stored, primary incarnations {incarnations:?}",
        acked.len(),
        stored.len()
    );
    assert!(lost.is_empty(), "acknowledged writes lost in the restart: {lost:?}");
    assert!(incarnations.len() >= 2, "the writer wrote to the old primary and to the new one: {incarnations:?}");
    service_until(&client, &ns, "pg", "ACTIVE after the restart", 120, |s| phase(s) == Some(Phase::Active)).await;

    // 3. The zone of pg-2 goes dark (its node's kubelet stopped, its link cut): the service is
    //    DEGRADED naming the member and its node, the primary still takes writes and the other
    //    replica serves them; when the zone comes back, pg-2 catches up and the service is ACTIVE.
    psql_until(&client, &ns, &primary, STREAMING, "2", 120).await;
    let (dark_member, other) = if primary == "pg-2" { ("pg-1", "pg-0") } else { ("pg-2", if primary == "pg-1" { "pg-0" } else { "pg-1" }) };
    let p2 = pods.get(dark_member).await.unwrap();
    let node = p2.spec.as_ref().unwrap().node_name.clone().unwrap();
    let dark = Dark::new(node_index(&node));
    let degraded = |s: &FireCampService| {
        phase(s) == Some(Phase::Degraded)
            && s.status.as_ref().and_then(|st| st.message.as_deref()).is_some_and(|m| m.contains(dark_member) && m.contains(&node))
    };
    let svc = service_until(&client, &ns, "pg", "DEGRADED naming the dark member's node", 240, degraded).await;
    eprintln!("dark zone: {}", svc.status.unwrap().message.unwrap());
    psql(&client, &ns, &primary, "insert into t values ('written in the dark')").await;
    psql_until(&client, &ns, other, "select count(*) from t where v = 'written in the dark'", "1", 60).await;
    dark.light();
    // A Redis replication group joins, its creation overlapping the catch-up below, placed so
    // that its primary rd-0 lives in the PostgreSQL primary's zone: part 4 darkens that zone.
    let primary_zone = zone_of(pods.get(&primary).await.unwrap()).await;
    let rd_zones: Vec<&str> = std::iter::once(primary_zone.as_str()).chain(real::ZONES.iter().copied().filter(|z| *z != primary_zone)).collect();
    let create_rd = {
        let (server, tok, ns) = (real::server(&real::manage_pods(&client).await[0]), tok.clone(), ns.clone());
        let zones = format!("--zones={}", rd_zones.join(","));
        tokio::task::spawn_blocking(move || {
            rest(
                &server,
                &tok,
                &ns,
                &["service", "create", "redis", "rd", "--version=7.0", "--replicas=3", "--option=mode=replication", &zones, "--wait", "--timeout=420"],
            )
        })
    };
    service_until(&client, &ns, "pg", "ACTIVE once the zone is back", 240, |s| phase(s) == Some(Phase::Active)).await;
    psql_until(&client, &ns, dark_member, "select count(*) from t where v = 'written in the dark'", "1", 120).await;
    psql_until(&client, &ns, &primary, STREAMING, "2", 120).await;
    create_rd.await.unwrap();

    // 4. The PostgreSQL primary's zone goes dark, every real node of it, and the Redis primary
    //    rd-0 with it: once a node is NotReady, the primary's engine silent and no replica hears
    //    it for the failover delay, each service's most advanced replica is promoted (no
    //    pods/exec), writes through the primary endpoints reach them; when the zone comes back,
    //    the old primaries (their servers stopped by their own kubelets first) rejoin the new
    //    ones as replicas.
    let old_primary = primary.clone();
    psql(&client, &ns, &old_primary, "insert into t values ('before the failover')").await;
    redis_until(&client, &ns, "rd-0", "rc info replication | grep -c 'state=online' || true", "2", 120).await;
    assert_eq!(redis(&client, &ns, "rd-0", "rc set before-failover on-rd-0").await, "OK");
    assert_eq!(redis(&client, &ns, "rd-0", "rc wait 2 5000").await, "2", "both Redis replicas have the key");
    let lost_pod = pods.get(&old_primary).await.unwrap();
    let (lost_uid, zone) = (lost_pod.uid().unwrap(), zone_of(lost_pod).await);
    let rd0 = pods.get("rd-0").await.unwrap();
    let rd0_uid = rd0.uid().unwrap();
    assert_eq!(zone_of(rd0).await, zone, "rd-0 lives in the PostgreSQL primary's zone");
    let in_zone = ListParams::default().labels(&format!("type=real,topology.kubernetes.io/zone={zone}"));
    let zone_nodes: Vec<String> = nodes.list(&in_zone).await.unwrap().items.iter().map(|n| n.name_any()).collect();
    let manage_outside =
        real::manage_pods(&client).await.iter().filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some_and(|n| !zone_nodes.contains(n))).count();
    assert!(manage_outside > 0, "a manage pod outside zone {zone} carries on ({zone_nodes:?} go dark)");
    let dark_at = k8s_openapi::jiff::Timestamp::now();
    let darks: Vec<Dark> = zone_nodes.iter().map(|n| Dark::new(node_index(n))).collect();
    let failed_over = |s: &FireCampService| {
        s.status.as_ref().is_some_and(|st| st.operations.iter().any(|o| o.kind == firecamp_core::operation::OperationKind::Failover && o.phase.is_terminal()))
    };
    let mut heirs = Vec::new();
    for (name, old) in [("pg", old_primary.as_str()), ("rd", "rd-0")] {
        let svc = service_until(&client, &ns, name, "a failover", 420, failed_over).await;
        let st = svc.status.unwrap();
        let op = st.operations.iter().find(|o| o.kind == firecamp_core::operation::OperationKind::Failover).unwrap();
        assert_eq!(op.phase, OperationPhase::Succeeded, "{name}'s failover: {op:#?}");
        let heir = st.primary.clone().expect("the new primary is recorded");
        assert_ne!(heir, old, "another member is {name}'s primary");
        // Figures for docs/operations.md (printed, never asserted): the zone dark → the failover
        // recorded (detection: the node's grace, the delay, a look) → its steps done.
        let at = |t: &str| t.parse::<k8s_openapi::jiff::Timestamp>().ok();
        let secs = |a: k8s_openapi::jiff::Timestamp, b: k8s_openapi::jiff::Timestamp| (b.as_millisecond() - a.as_millisecond()) as f64 / 1000.0;
        let created = at(&op.created).unwrap();
        let finished = op.finished.as_deref().and_then(at).unwrap();
        eprintln!(
            "{name} failover: {}; dark → recorded {:.1} s, → done {:.1} s more",
            op.target.as_deref().unwrap_or(""),
            secs(dark_at, created),
            secs(created, finished)
        );
        assert!(op.target.as_deref().is_some_and(|t| t.contains(&format!("{heir} replaces {old}"))), "{op:#?}");
        heirs.push(heir);
    }
    let (primary, rd_primary) = (heirs[0].clone(), heirs[1].clone());
    assert_eq!(psql(&client, &ns, &primary, "select pg_is_in_recovery()").await, "f", "{primary} was promoted");
    assert_eq!(redis(&client, &ns, &rd_primary, "rc info replication | grep '^role:'").await, "role:master", "{rd_primary} was promoted");
    let script = format!(
        r#"set -eu
export PGPASSWORD="$(cat /secret/superuser-password)" PGCONNECT_TIMEOUT=3
for i in $(seq 60); do
  psql -v ON_ERROR_STOP=1 -qAt -U postgres -d postgres -h "primary.pg.{domain}" -c "insert into t values ('after the failover')" && exit 0
  sleep 1
done
exit 1
"#
    );
    let image = env.image("docker.io/library/postgres:15.10-bookworm");
    real::run_client_pod(&client, &ns, "after", &image, 999, &[("pg-credentials", "/secret"), ("pg-tls", "/tls")], &script).await;
    assert_eq!(psql(&client, &ns, &primary, "select count(*) from t where v in ('before the failover', 'after the failover')").await, "2");
    let script = format!(
        r#"set -u
export REDISCLI_AUTH="$(cat /secret/password)"
rc() {{ redis-cli --tls --cacert /tls/ca.crt -h "primary.rd.{domain}" "$@" 2>/dev/null | tr -d '\r'; }}
for i in $(seq 60); do r=$(rc set after-failover yes); [ "$r" = OK ] && break; sleep 1; done
echo "set: $r; before: $(rc get before-failover); role: $(rc info replication | grep '^role:')"
"#
    );
    let image = env.image("docker.io/library/redis:7.0.15-bookworm");
    let logs = real::run_client_pod(&client, &ns, "rd-after", &image, 999, &[("rd-credentials", "/secret"), ("rd-tls", "/tls")], &script).await;
    assert!(logs.contains("set: OK; before: on-rd-0; role: role:master"), "writes through primary.rd after the failover: {logs}");
    darks.into_iter().for_each(Dark::light);
    // Its kubelet back, each fenced pod goes (its server stopped first) and a new one starts.
    for (member, uid) in [(old_primary.as_str(), lost_uid.as_str()), ("rd-0", rd0_uid.as_str())] {
        let rejoined = |p: Option<&Pod>| p.is_some_and(|p| p.uid().as_deref() != Some(uid) && is_ready(p));
        tokio::time::timeout(Duration::from_secs(300), await_condition(pods.clone(), member, rejoined))
            .await
            .unwrap_or_else(|_| panic!("{member} has a new Ready pod within 300 s"))
            .unwrap();
    }
    psql_until(&client, &ns, &old_primary, "select count(*) from t where v = 'after the failover'", "1", 120).await;
    assert_eq!(psql(&client, &ns, &old_primary, "select pg_is_in_recovery()").await, "t", "{old_primary} rejoined as a replica");
    psql_until(&client, &ns, &primary, STREAMING, "2", 120).await;
    redis_until(&client, &ns, "rd-0", "rc get after-failover", "yes", 120).await;
    assert_eq!(redis(&client, &ns, "rd-0", "rc info replication | grep '^role:'").await, "role:slave", "rd-0 rejoined as a replica");
    for name in ["pg", "rd"] {
        service_until(&client, &ns, name, "ACTIVE after the failover", 240, |s| phase(s) == Some(Phase::Active)).await;
    }

    // 5. A partition: the manage service no longer reaches the PostgreSQL primary and the
    //    primary's kubelet stops (its node NotReady, its pod not Ready), but it still serves its
    //    replicas. Two witnesses say lost, the replicas' says not: no failover for longer than
    //    the failover delay, and the status says why; healed, the service is ACTIVE with the
    //    same primary.
    let p = pods.get(&primary).await.unwrap();
    let p_ip = p.status.as_ref().and_then(|s| s.pod_ip.clone()).expect("the primary's pod IP");
    let p_node = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap();
    let manage_ips: Vec<String> = real::manage_pods(&client).await.into_iter().filter_map(|p| p.status?.pod_ip).collect();
    let cut = Cut::new(&manage_ips, &p_ip);
    let muted = Dark::mute(node_index(&p_node));
    let held = |s: &FireCampService| {
        s.status.as_ref().and_then(|st| st.message.as_deref()).is_some_and(|m| m.contains("failover held") && m.contains(&format!("{primary} does not answer")))
    };
    let svc = service_until(&client, &ns, "pg", "the failover held", 240, held).await;
    eprintln!("partition: {}", svc.status.as_ref().unwrap().message.as_deref().unwrap());
    let failovers = |s: &FireCampService| {
        s.status.as_ref().map_or(0, |st| st.operations.iter().filter(|o| o.kind == firecamp_core::operation::OperationKind::Failover).count())
    };
    let before = failovers(&svc);
    let another =
        |s: Option<&FireCampService>| s.is_some_and(|s| failovers(s) > before || s.status.as_ref().and_then(|st| st.primary.as_ref()) != Some(&primary));
    let window = Duration::from_secs(u64::from(firecamp_core::spec::FailoverSpec::DEFAULT_DELAY_SECONDS) + 20);
    let services: Api<FireCampService> = Api::namespaced(client.clone(), &ns);
    assert!(tokio::time::timeout(window, await_condition(services, "pg", another)).await.is_err(), "a failover during the partition");
    let replica = ["pg-0", "pg-1", "pg-2"].into_iter().find(|m| *m != primary).unwrap();
    assert_eq!(psql(&client, &ns, replica, "select status from pg_stat_wal_receiver").await, "streaming", "{replica} still receives from {primary}");
    drop(cut);
    muted.light();
    let healed = |s: &FireCampService| {
        phase(s) == Some(Phase::Active) && s.status.as_ref().is_some_and(|st| st.primary.as_ref() == Some(&primary) && st.primary_lost_since.is_none())
    };
    service_until(&client, &ns, "pg", "ACTIVE with the same primary after the partition", 240, healed).await;
    assert_eq!(psql(&client, &ns, &primary, "select pg_is_in_recovery()").await, "f", "{primary} is still the primary");

    let manage = real::manage_pods(&client).await;
    let server = real::server(&manage[0]);
    for name in ["pg", "rd"] {
        rest(&server, &tok, &ns, &["service", "delete", name, "--delete-volumes", "--wait", "--timeout=180"]);
    }
    firecamp_testbed::drop_namespace(&client, &ns).await;
}
