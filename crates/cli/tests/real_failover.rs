//! Failover on real pods as a user meets it (issue #14), under clients that write without pause
//! through the primary endpoints:
//! 1. PostgreSQL with synchronous replication loses its primary's zone (kubelets stopped, links
//!    cut), and the manage service's leader is replaced in the middle of the failover — after the
//!    heir is promoted, before its pod is labelled primary (a ValidatingAdmissionPolicy refuses
//!    that one label to the manage service until the test lifts it). The next leader finishes;
//!    exactly one primary; the old one rejoins as a replica.
//! 2. Figures: a primary's pod deleted while its zone is cordoned (it cannot come back there),
//!    for PostgreSQL and Redis: detection, promotion and the first write accepted through the
//!    primary endpoint, counted from the deletion; printed (never asserted) as `BENCH` lines,
//!    `FIRECAMP_FAILOVER_ROUNDS` rounds per engine (1 by default; scripts/bench.sh asks for 3).
//!
//! At the end every write the PostgreSQL client saw acknowledged is on the last primary.
//! Needs the bed's real nodes (`testbed/bed up --real-nodes 6`) and CoreDNS; fails without them.

use std::collections::BTreeSet;
use std::time::Duration;

use firecamp_api::Phase;
use firecamp_core::operation::{Operation, OperationKind, OperationPhase};
use firecamp_manage::crd::FireCampService;
use firecamp_testbed::{client, fresh_namespace};
use k8s_openapi::api::admissionregistration::v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding};
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client, ResourceExt};

mod real;
use real::{Dark, STREAMING, SYSTEM, Uninstall, bed_env, installed, is_ready, leader, phase, psql, psql_until, redis, redis_until, rest, service_until, token};

/// The admission policy that holds a failover between the promotion and the label.
const HOLD: &str = "firecamp-test-hold-primary-label";

/// Nodes no pod is scheduled on until dropped (`kubectl cordon`).
struct Cordon(Vec<String>);

impl Cordon {
    async fn new(client: &Client, nodes: &[String]) -> Cordon {
        set_unschedulable(client, nodes, true).await;
        Cordon(nodes.to_vec())
    }
}

impl Drop for Cordon {
    fn drop(&mut self) {
        let nodes = std::mem::take(&mut self.0);
        // A client of its own, on a runtime of its own: the test's runtime is blocked here.
        let _ = std::thread::spawn(move || tokio::runtime::Runtime::new().unwrap().block_on(async { set_unschedulable(&client().await, &nodes, false).await }))
            .join();
    }
}

async fn set_unschedulable(client: &Client, nodes: &[String], on: bool) {
    let api: Api<Node> = Api::all(client.clone());
    for n in nodes {
        let patch = serde_json::json!({"spec": {"unschedulable": on}});
        api.patch(n, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap_or_else(|e| panic!("cordon {n} ({on}): {e}"));
    }
}

/// The bed's real nodes of `zone`.
async fn zone_nodes(client: &Client, zone: &str) -> Vec<String> {
    let lp = ListParams::default().labels(&format!("type=real,topology.kubernetes.io/zone={zone}"));
    Api::<Node>::all(client.clone()).list(&lp).await.unwrap().items.iter().map(|n| n.name_any()).collect()
}

async fn zone_of(client: &Client, ns: &str, pod: &str) -> String {
    let p = Api::<Pod>::namespaced(client.clone(), ns).get(pod).await.unwrap();
    let node = Api::<Node>::all(client.clone()).get(p.spec.as_ref().unwrap().node_name.as_deref().unwrap()).await.unwrap();
    node.labels().get("topology.kubernetes.io/zone").cloned().unwrap()
}

/// Moves the manage service's pods out of `nodes` (cordoned): each one there is deleted and the
/// Deployment's replacement lands elsewhere.
async fn manage_out_of(client: &Client, nodes: &[String]) {
    let on = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some_and(|n| nodes.contains(n));
    let pods: Api<Pod> = Api::namespaced(client.clone(), SYSTEM);
    for p in real::manage_pods(client).await.iter().filter(|p| on(p)) {
        pods.delete(&p.name_any(), &DeleteParams::default()).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        let serving = real::manage_pods(client).await;
        if serving.len() == 2 && !serving.iter().any(on) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "both manage pods serve outside {nodes:?} within 240 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A ValidatingAdmissionPolicy that refuses the manage service any pod labelled primary in
/// `ns`; lifted when dropped.
struct Hold;

impl Hold {
    async fn new(client: &Client, ns: &str) -> Hold {
        let policy: ValidatingAdmissionPolicy = serde_json::from_value(serde_json::json!({
            "metadata": {"name": HOLD},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["pods"]}]},
                "matchConditions": [{"name": "manage-service", "expression": format!("request.userInfo.username == 'system:serviceaccount:{SYSTEM}:firecamp-manage'")}],
                "validations": [{
                    "expression": "!('firecamp.dev/role' in object.metadata.labels && object.metadata.labels['firecamp.dev/role'] == 'primary')",
                    "message": "held by the test: no pod is labelled primary"
                }]
            }
        }))
        .unwrap();
        let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(serde_json::json!({
            "metadata": {"name": HOLD},
            "spec": {
                "policyName": HOLD,
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
            }
        }))
        .unwrap();
        Api::<ValidatingAdmissionPolicy>::all(client.clone()).create(&PostParams::default(), &policy).await.unwrap();
        Api::<ValidatingAdmissionPolicyBinding>::all(client.clone()).create(&PostParams::default(), &binding).await.unwrap();
        Hold
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let lift = async {
            let client = client().await;
            let _ = Api::<ValidatingAdmissionPolicyBinding>::all(client.clone()).delete(HOLD, &DeleteParams::default()).await;
            let _ = Api::<ValidatingAdmissionPolicy>::all(client).delete(HOLD, &DeleteParams::default()).await;
        };
        let _ = std::thread::spawn(move || tokio::runtime::Runtime::new().unwrap().block_on(lift)).join();
    }
}

/// When service `name` last reported its primary lost (its `PrimaryLost` event) after `since`.
async fn lost_seen(client: &Client, ns: &str, name: &str, since: f64) -> f64 {
    let lp = ListParams::default().fields(&format!("involvedObject.name={name},reason=PrimaryLost"));
    let events = Api::<Event>::namespaced(client.clone(), ns).list(&lp).await.unwrap().items;
    let when = |e: &Event| {
        // A repeated event is a series: its last time is the latest occurrence.
        let series = e.series.as_ref().and_then(|s| s.last_observed_time.as_ref()).map(|t| t.0);
        let t = series.or(e.event_time.as_ref().map(|t| t.0)).or(e.last_timestamp.as_ref().map(|t| t.0));
        t.map(|t| t.as_millisecond() as f64 / 1000.0)
    };
    events.iter().filter_map(when).filter(|t| *t >= since).fold(f64::NAN, f64::min)
}

/// The service's failover operations.
fn failovers(s: &FireCampService) -> Vec<Operation> {
    s.status.as_ref().map(|st| st.operations.iter().filter(|o| o.kind == OperationKind::Failover).cloned().collect()).unwrap_or_default()
}

fn at(t: &str) -> f64 {
    t.parse::<Timestamp>().unwrap_or_else(|e| panic!("{t}: {e}")).as_millisecond() as f64 / 1000.0
}

fn now() -> f64 {
    Timestamp::now().as_millisecond() as f64 / 1000.0
}

/// A writer's log: `acked <i> <time>` and `failed <i> <time>` lines.
fn acks(log: &str) -> Vec<(u64, f64)> {
    log.lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("acked ")?.split(' ');
            Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
        })
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One failover by a deleted pod, timed from the deletion.
struct Round {
    engine: &'static str,
    deleted: f64,
    /// The `PrimaryLost` event: every witness agreed, the delay began.
    lost: f64,
    recorded: f64,
    done: f64,
}

#[tokio::test]
async fn a_synchronous_postgresql_loses_no_acknowledged_write_in_failovers_while_the_manage_service_restarts() {
    let env = bed_env();
    let client = client().await;
    let _uninstall = Uninstall;
    let server = installed(&client, &env).await;
    let ns = fresh_namespace(&client, "fc-failover").await;
    let tok = token(&client, &ns, "dba", &["get", "list", "watch", "create", "update", "patch", "delete"]).await;
    let zones = format!("--zones={}", real::ZONES.join(","));
    // Redis's primary rd-0 in the second zone: part 1 darkens the first.
    let rd_zones = format!("--zones={},{},{}", real::ZONES[1], real::ZONES[2], real::ZONES[0]);
    let create_rd = {
        let (server, tok, ns) = (server.clone(), tok.clone(), ns.clone());
        tokio::task::spawn_blocking(move || {
            rest(
                &server,
                &tok,
                &ns,
                &[
                    "service",
                    "create",
                    "redis",
                    "rd",
                    "--version=7.0",
                    "--replicas=3",
                    "--option=mode=replication",
                    "--failover-delay=5",
                    &rd_zones,
                    "--wait",
                    "--timeout=420",
                ],
            )
        })
    };
    let create = ["service", "create", "postgresql", "pg", "--version=15", "--replicas=3", "--option=replication=sync", "--failover-delay=5"];
    rest(&server, &tok, &ns, &[&create[..], &[zones.as_str(), "--wait", "--timeout=420"]].concat());
    create_rd.await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let services: Api<FireCampService> = Api::namespaced(client.clone(), &ns);
    psql(&client, &ns, "pg-0", "create table w (i int primary key)").await;
    psql_until(&client, &ns, "pg-0", "select count(*) from pg_stat_replication where state = 'streaming' and sync_state = 'quorum'", "2", 120).await;

    // 1. pg-0's zone: cordoned first, so that the clients and the manage service run elsewhere.
    let zone = zone_of(&client, &ns, "pg-0").await;
    let dark_nodes = zone_nodes(&client, &zone).await;
    let cordon = Cordon::new(&client, &dark_nodes).await;
    manage_out_of(&client, &dark_nodes).await;
    let domain = format!("{ns}.{}-firecamp.com", env.cluster);
    // Each write on a connection of its own, resolving the endpoint again; a connection to a dark
    // address gives up after 5 s (tcp_user_timeout), an unanswered commit counts as failed.
    let pg_writer = format!(
        r#"set -u
export PGPASSWORD="$(cat /secret/superuser-password)"
conn="host=primary.pg.{domain} user=postgres dbname=postgres sslmode=verify-full sslrootcert=/tls/ca.crt connect_timeout=3 tcp_user_timeout=5000 keepalives_idle=2 keepalives_interval=1 keepalives_count=2"
q() {{ psql -v ON_ERROR_STOP=1 -qAt "$conn" -c "$1"; }}
i=0
until [ "$(q 'select count(*) from stop' 2>/dev/null)" = 1 ]; do
  i=$((i + 1))
  if q "insert into w values ($i)" >/dev/null 2>&1; then echo "acked $i $(date +%s.%N)"; else echo "failed $i $(date +%s.%N)"; fi
done
echo "stopped after $i attempts"
"#
    );
    let pg_image = env.image("docker.io/library/postgres:15.10-bookworm");
    let pg_log = real::spawn_client_pod(&client, &ns, "pg-writer", pg_image, &[("pg-credentials", "/secret"), ("pg-tls", "/tls")], pg_writer);
    let rd_writer = format!(
        r#"set -u
export REDISCLI_AUTH="$(cat /secret/password)"
rc() {{ timeout 10 redis-cli --tls --cacert /tls/ca.crt -h "primary.rd.{domain}" "$@" 2>/dev/null | tr -d '\r'; }}
i=0
until [ "$(rc get stop)" = yes ]; do
  i=$((i + 1))
  if [ "$(rc set "k$i" "$i")" = OK ]; then echo "acked $i $(date +%s.%N)"; else echo "failed $i $(date +%s.%N)"; fi
done
echo "stopped after $i attempts"
"#
    );
    let rd_image = env.image("docker.io/library/redis:7.0.15-bookworm");
    let rd_log = real::spawn_client_pod(&client, &ns, "rd-writer", rd_image, &[("rd-credentials", "/secret"), ("rd-tls", "/tls")], rd_writer);
    psql_until(&client, &ns, "pg-0", "select count(*) > 10 from w", "t", 120).await;

    // The hold: the manage service may label no pod of this namespace primary.
    let hold = Hold::new(&client, &ns).await;

    let old_uid = pods.get("pg-0").await.unwrap().uid().unwrap();
    let dark_at = now();
    let darks: Vec<Dark> = dark_nodes.iter().map(|n| Dark::new(real::node_index(n))).collect();
    let fenced = |s: &FireCampService| failovers(s).first().is_some_and(|o| o.steps.first().is_some_and(|f| f.phase == OperationPhase::Succeeded));
    let svc = service_until(&client, &ns, "pg", "the failover fenced", 420, fenced).await;
    let op = failovers(&svc).remove(0);
    let heir = op.steps[1].member.clone();
    eprintln!("part 1: {}; dark → recorded {:.1} s", op.target.as_deref().unwrap_or(""), at(&op.created) - dark_at);
    assert!(op.target.as_deref().is_some_and(|t| t.contains(&format!("{heir} replaces pg-0")) && t.contains("no acknowledged write is lost")), "{op:#?}");
    // Promoted in its engine, its pod not labelled: the manage service is stuck on the label.
    psql_until(&client, &ns, &heir, "select pg_is_in_recovery()", "f", 120).await;
    let label = |p: &Pod| p.labels().get("firecamp.dev/role").cloned().unwrap_or_default();
    assert_ne!(label(&pods.get(&heir).await.unwrap()), "primary", "the hold keeps {heir}'s label");
    let svc = services.get("pg").await.unwrap();
    assert_eq!(failovers(&svc)[0].phase, OperationPhase::Running, "the failover waits on the hold: {:#?}", failovers(&svc));

    // The leader goes; the next one takes the failover up once the hold is lifted.
    let first = leader(&client).await.expect("a manage pod leads");
    Api::<Pod>::namespaced(client.clone(), SYSTEM).delete(&first, &DeleteParams::default()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while leader(&client).await.is_none_or(|l| l == first) {
        assert!(tokio::time::Instant::now() < deadline, "no new leader within 120 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(hold);
    let finished = |s: &FireCampService| failovers(s).first().is_some_and(|o| o.phase.is_terminal());
    let svc = service_until(&client, &ns, "pg", "the failover finished by the new leader", 300, finished).await;
    let op = failovers(&svc).remove(0);
    assert_eq!(op.phase, OperationPhase::Succeeded, "{op:#?}");
    assert_eq!(failovers(&svc).len(), 1, "one failover");
    assert_eq!(svc.status.as_ref().unwrap().primary.as_deref(), Some(heir.as_str()));
    assert_eq!(label(&pods.get(&heir).await.unwrap()), "primary", "{heir} is labelled primary");
    let other = ["pg-1", "pg-2"].into_iter().find(|m| *m != heir).unwrap();
    psql_until(&client, &ns, other, "select status from pg_stat_wal_receiver", "streaming", 120).await;
    assert_eq!(psql(&client, &ns, other, "select pg_is_in_recovery()").await, "t", "{other} is a replica");
    let last = psql(&client, &ns, &heir, "select max(i) from w").await;
    psql_until(&client, &ns, &heir, &format!("select max(i) > {last} from w"), "t", 60).await;
    darks.into_iter().for_each(Dark::light);
    drop(cordon);
    let rejoined = |p: Option<&Pod>| p.is_some_and(|p| p.uid().as_deref() != Some(old_uid.as_str()) && is_ready(p));
    tokio::time::timeout(Duration::from_secs(300), await_condition(pods.clone(), "pg-0", rejoined)).await.expect("pg-0 has a new Ready pod").unwrap();
    assert_eq!(psql(&client, &ns, "pg-0", "select pg_is_in_recovery()").await, "t", "pg-0 rejoined as a replica");
    psql_until(&client, &ns, &heir, STREAMING, "2", 120).await;
    for name in ["pg", "rd"] {
        service_until(&client, &ns, name, "ACTIVE after part 1", 240, |s| phase(s) == Some(Phase::Active)).await;
    }

    // 2. Rounds: the primary's zone cordoned, its pod deleted (its server stops cleanly), the
    //    pod that replaces it cannot be scheduled → failover; the zone open again → it rejoins.
    let rounds: usize = std::env::var("FIRECAMP_FAILOVER_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(1);
    let mut timed = Vec::new();
    for _ in 0..rounds {
        for name in ["pg", "rd"] {
            let svc = services.get(name).await.unwrap();
            let primary = svc.status.as_ref().and_then(|s| s.primary.clone()).unwrap_or_else(|| format!("{name}-0"));
            let before = failovers(&svc).len();
            let nodes = zone_nodes(&client, &zone_of(&client, &ns, &primary).await).await;
            let cordon = Cordon::new(&client, &nodes).await;
            let uid = pods.get(&primary).await.unwrap().uid().unwrap();
            let deleted = now();
            pods.delete(&primary, &DeleteParams::default()).await.unwrap();
            let another = |s: &FireCampService| failovers(s).len() > before && failovers(s).last().is_some_and(|o| o.phase.is_terminal());
            let svc = service_until(&client, &ns, name, "a failover after the pod's deletion", 300, another).await;
            let op = failovers(&svc).pop().unwrap();
            assert_eq!(op.phase, OperationPhase::Succeeded, "{name}: {op:#?}");
            let heir = svc.status.as_ref().and_then(|s| s.primary.clone()).unwrap();
            assert_ne!(heir, primary, "{name}: another member is the primary");
            let lost = lost_seen(&client, &ns, name, deleted).await;
            timed.push(Round { engine: name, deleted, lost, recorded: at(&op.created), done: at(op.finished.as_deref().unwrap()) });
            drop(cordon);
            let back = |p: Option<&Pod>| p.is_some_and(|p| p.uid().as_deref() != Some(uid.as_str()) && is_ready(p));
            tokio::time::timeout(Duration::from_secs(300), await_condition(pods.clone(), &primary, back))
                .await
                .unwrap_or_else(|_| panic!("{primary} has a new Ready pod"))
                .unwrap();
            if name == "pg" {
                psql_until(&client, &ns, &primary, "select pg_is_in_recovery()", "t", 60).await;
                psql_until(&client, &ns, &heir, STREAMING, "2", 120).await;
            } else {
                redis_until(&client, &ns, &primary, "rc info replication | grep '^master_link_status:'", "master_link_status:up", 120).await;
            }
            service_until(&client, &ns, name, "ACTIVE after the round", 240, |s| phase(s) == Some(Phase::Active)).await;
        }
    }

    // The clients stop; every write acknowledged to the PostgreSQL client is on its primary.
    let svc = services.get("pg").await.unwrap();
    let primary = svc.status.as_ref().and_then(|s| s.primary.clone()).unwrap();
    psql(&client, &ns, &primary, "create table stop (x int); insert into stop values (1)").await;
    let rd_primary = services.get("rd").await.unwrap().status.and_then(|s| s.primary).unwrap();
    assert_eq!(redis(&client, &ns, &rd_primary, "rc set stop yes").await, "OK");
    let pg_log = tokio::time::timeout(Duration::from_secs(120), pg_log).await.expect("the PostgreSQL client stops").unwrap();
    let rd_log = tokio::time::timeout(Duration::from_secs(120), rd_log).await.expect("the Redis client stops").unwrap();
    let pg_acks = acks(&pg_log);
    let acked: BTreeSet<u64> = pg_acks.iter().map(|(i, _)| *i).collect();
    let stored: BTreeSet<u64> = psql(&client, &ns, &primary, "select i from w").await.lines().map(|l| l.parse().unwrap()).collect();
    let lost: Vec<&u64> = acked.difference(&stored).collect();
    let refused = pg_log.lines().filter(|l| l.starts_with("failed ")).count();
    eprintln!("PostgreSQL client: {} acknowledged, {refused} refused, {} rows stored", acked.len(), stored.len());
    assert!(lost.is_empty(), "acknowledged writes lost with synchronous replication: {lost:?}");

    // The figures: from the deletion to the failover recorded (detection), to its end
    // (promotion), to the first write the client saw acknowledged after the record.
    let rd_acks = acks(&rd_log);
    for engine in ["pg", "rd"] {
        let writes = if engine == "pg" { &pg_acks } else { &rd_acks };
        let (mut detect, mut promote, mut first) = (Vec::new(), Vec::new(), Vec::new());
        for r in timed.iter().filter(|r| r.engine == engine) {
            let w = writes.iter().map(|(_, t)| *t).find(|t| *t >= r.recorded).unwrap_or(f64::NAN);
            eprintln!(
                "{engine} round: lost seen {:.2} s, detection {:.2} s, promotion {:.2} s, first write {:.2} s after the deletion",
                r.lost - r.deleted,
                r.recorded - r.deleted,
                r.done - r.recorded,
                w - r.deleted
            );
            detect.push(r.recorded - r.deleted);
            promote.push(r.done - r.recorded);
            first.push(w - r.deleted);
        }
        let label = if engine == "pg" { "PostgreSQL (sync)" } else { "Redis (replication)" };
        let n = detect.len();
        println!(
            "BENCH\tKubernetes {label} failover, primary's pod deleted: detection (median of {n}), vs delaySeconds\t{:.2} s\t5 s\t{:.2}\t-",
            median(&mut detect),
            median(&mut detect) / 5.0
        );
        println!("BENCH\tKubernetes {label} failover: promotion (median of {n})\t{:.2} s\t-\t-\t-", median(&mut promote));
        println!(
            "BENCH\tKubernetes {label} failover: pod deleted → first write through the primary endpoint (median of {n})\t{:.2} s\tCloudNativePG's e2e bound 10 s\t{:.2}\t< 10 s",
            median(&mut first),
            median(&mut first) / 10.0
        );
    }
    let server = real::server(&real::manage_pods(&client).await[0]);
    for name in ["pg", "rd"] {
        rest(&server, &tok, &ns, &["service", "delete", name, "--delete-volumes", "--wait", "--timeout=180"]);
    }
    firecamp_testbed::drop_namespace(&client, &ns).await;
}
