//! Faults on real pods, one after the other on one PostgreSQL service of three members in three
//! zones: the primary's pod deleted, a PrimaryLast restart (replicas, a switchover, the old
//! primary) under a continuous writer on the primary endpoint while the manage service's leader
//! is deleted mid-operation, a replica's zone going dark (its node's kubelet stopped and its link
//! cut), and the primary's zone going dark (a failover). The members' SQL goes through `kubectl exec` (the API server and
//! the node's kubelet). Needs the bed's real nodes (`testbed/bed up --real-nodes 6`) and CoreDNS;
//! fails, loudly, without them.

use std::collections::BTreeSet;
use std::time::Duration;

use firecamp_api::Phase;
use firecamp_core::operation::OperationPhase;
use firecamp_manage::crd::FireCampService;
use firecamp_testbed::{client, fresh_namespace};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use kube::api::DeleteParams;
use kube::runtime::wait::await_condition;
use kube::{Api, Client, ResourceExt};

mod real;
use real::{SYSTEM, Uninstall, bed_env, installed, psql, rest, token};

const BED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testbed/bed");

fn bed(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BED).args(args).output().expect("testbed/bed runs")
}

/// A real node whose zone went dark. It comes back when dropped, so a failing test leaves the
/// bed whole for the tests after it.
struct Dark(usize);

impl Dark {
    fn new(i: usize) -> Dark {
        let out = bed(&["node", "dark", &i.to_string()]);
        assert!(out.status.success(), "testbed/bed node dark {i}: {}", String::from_utf8_lossy(&out.stderr));
        Dark(i)
    }
    fn light(self) {
        let out = bed(&["node", "light", &self.0.to_string()]);
        assert!(out.status.success(), "testbed/bed node light {}: {}", self.0, String::from_utf8_lossy(&out.stderr));
        std::mem::forget(self);
    }
}

impl Drop for Dark {
    fn drop(&mut self) {
        let out = bed(&["node", "light", &self.0.to_string()]);
        if !out.status.success() {
            eprintln!("testbed/bed node light {}: {}", self.0, String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// The bed's node index from its name (`ip-10-250-<16+zone>-<11+i>.ec2.internal`).
fn node_index(name: &str) -> usize {
    let last = name.split('.').next().and_then(|h| h.rsplit('-').next()).and_then(|o| o.parse::<usize>().ok());
    last.and_then(|o| o.checked_sub(11)).unwrap_or_else(|| panic!("{name} is not a name of the bed's real nodes"))
}

fn is_ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn leader(client: &Client) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), SYSTEM).get_opt("firecamp-manage").await.unwrap()?.spec?.holder_identity
}

/// Waits until the service's status satisfies `ok`; panics with the last status after `secs`.
async fn service_until(client: &Client, ns: &str, what: &str, secs: u64, ok: impl Fn(&FireCampService) -> bool) -> FireCampService {
    let api: Api<FireCampService> = Api::namespaced(client.clone(), ns);
    let cond = |s: Option<&FireCampService>| s.is_some_and(&ok);
    match tokio::time::timeout(Duration::from_secs(secs), await_condition(api.clone(), "pg", cond)).await {
        Ok(Ok(Some(s))) => s,
        _ => panic!("{what}: not within {secs} s; the service's status: {:#?}", api.get("pg").await.ok().and_then(|s| s.status)),
    }
}

fn phase(s: &FireCampService) -> Option<Phase> {
    s.status.as_ref().map(|st| st.phase)
}

/// Polls `sql` on `pod` until it returns `want`, for up to `secs`.
async fn psql_until(client: &Client, ns: &str, pod: &str, sql: &str, want: &str, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let got = psql(client, ns, pod, sql).await;
        if got == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{pod}: {sql} gave {got:?}, not {want:?}, for {secs} s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

const STREAMING: &str = "select count(*) from pg_stat_replication where state = 'streaming'";

#[tokio::test]
async fn postgresql_on_real_pods_survives_a_lost_primary_pod_a_restart_under_writes_and_a_dark_zone() {
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
    service_until(&client, &ns, "ACTIVE after pg-0 came back", 120, |s| phase(s) == Some(Phase::Active)).await;

    // 2. A PrimaryLast restart while a client writes through the primary endpoint, and the
    //    manage service's leader deleted while the operation runs: the other replica carries
    //    it on to the end; the replicas restart, one of them takes over in a switchover (no
    //    pods/exec: the manage service speaks SQL, the old primary's pod stops cleanly), the
    //    old primary comes back as its replica, and every acknowledged write is there.
    psql(&client, &ns, "pg-0", "create table w (i int primary key)").await;
    // Members are named in their namespace's subdomain of the cluster's zone.
    let domain = format!("{ns}.{}-firecamp.com", env.cluster);
    let writer_script = format!(
        r#"set -u
export PGPASSWORD="$(cat /secret/superuser-password)" PGCONNECT_TIMEOUT=3
q() {{ psql -v ON_ERROR_STOP=1 -qAt -U postgres -d postgres -h "primary.pg.{domain}" -c "$1"; }}
i=0
until [ "$(q 'select count(*) from stop' 2>/dev/null)" = 1 ]; do
  i=$((i + 1))
  if r=$(q "insert into w values ($i) returning pg_postmaster_start_time()" 2>/dev/null); then echo "acked $i ${{r%%$'\n'*}}"; else echo "failed $i $(date +%s.%N)"; fi
done
echo "stopped after $i attempts"
"#
    );
    let writer = {
        let (client, ns, image) = (client.clone(), ns.clone(), env.image("docker.io/library/postgres:15.10-bookworm"));
        tokio::spawn(async move {
            real::run_client_pod(&client, &ns, "writer", &image, 999, &[("pg-credentials", "/secret"), ("pg-tls", "/tls")], &writer_script).await
        })
    };
    psql_until(&client, &ns, "pg-0", "select count(*) > 0 from w", "t", 120).await;
    let first_leader = leader(&client).await.expect("a manage pod leads");
    let manage = real::manage_pods(&client).await;
    let server = real::server(&manage[0]);
    rest(&server, &tok, &ns, &["service", "restart", "pg", "--policy=PrimaryLast"]);
    let running = |s: &FireCampService| s.status.as_ref().and_then(|st| st.operations.last()).is_some_and(|o| o.phase == OperationPhase::Running);
    let svc = service_until(&client, &ns, "the restart running", 120, running).await;
    let op = svc.status.unwrap().operations.last().unwrap().id.clone();
    Api::<Pod>::namespaced(client.clone(), SYSTEM).delete(&first_leader, &DeleteParams::default()).await.unwrap();
    let finished = |s: &FireCampService| s.status.as_ref().and_then(|st| st.operations.iter().find(|o| o.id == op)).is_some_and(|o| o.phase.is_terminal());
    let svc = service_until(&client, &ns, "the restart finished under the new leader", 600, finished).await;
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
    service_until(&client, &ns, "ACTIVE after the restart", 120, |s| phase(s) == Some(Phase::Active)).await;

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
    let svc = service_until(&client, &ns, "DEGRADED naming the dark member's node", 240, degraded).await;
    eprintln!("dark zone: {}", svc.status.unwrap().message.unwrap());
    psql(&client, &ns, &primary, "insert into t values ('written in the dark')").await;
    psql_until(&client, &ns, other, "select count(*) from t where v = 'written in the dark'", "1", 60).await;
    dark.light();
    service_until(&client, &ns, "ACTIVE once the zone is back", 240, |s| phase(s) == Some(Phase::Active)).await;
    psql_until(&client, &ns, dark_member, "select count(*) from t where v = 'written in the dark'", "1", 120).await;
    psql_until(&client, &ns, &primary, STREAMING, "2", 120).await;

    // 4. The primary's zone goes dark: once its node is NotReady, its engine silent and no replica
    //    hears it for the failover delay, the most advanced replica is promoted (no pods/exec),
    //    writes through the primary endpoint reach it; when the zone comes back, the old primary
    //    (its server stopped by its own kubelet first) rejoins the new one as a replica.
    let old_primary = primary.clone();
    psql(&client, &ns, &old_primary, "insert into t values ('before the failover')").await;
    let lost_pod = pods.get(&old_primary).await.unwrap();
    let (lost_uid, node) = (lost_pod.uid().unwrap(), lost_pod.spec.unwrap().node_name.unwrap());
    let dark = Dark::new(node_index(&node));
    let failed_over = |s: &FireCampService| {
        s.status.as_ref().is_some_and(|st| st.operations.iter().any(|o| o.kind == firecamp_core::operation::OperationKind::Failover && o.phase.is_terminal()))
    };
    let svc = service_until(&client, &ns, "a failover", 420, failed_over).await;
    let st = svc.status.unwrap();
    let op = st.operations.iter().find(|o| o.kind == firecamp_core::operation::OperationKind::Failover).unwrap();
    assert_eq!(op.phase, OperationPhase::Succeeded, "the failover: {op:#?}");
    let primary = st.primary.clone().expect("the new primary is recorded");
    assert_ne!(primary, old_primary, "another member is the primary");
    eprintln!("failover: {} ({:?} → {:?})", op.target.as_deref().unwrap_or(""), op.created, op.finished);
    assert!(op.target.as_deref().is_some_and(|t| t.contains(&format!("{primary} replaces {old_primary}"))), "{op:#?}");
    assert_eq!(psql(&client, &ns, &primary, "select pg_is_in_recovery()").await, "f", "{primary} was promoted");
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
    dark.light();
    // Its kubelet back, the fenced pod goes (its server stopped first) and a new one starts.
    let rejoined = |p: Option<&Pod>| p.is_some_and(|p| p.uid().as_deref() != Some(lost_uid.as_str()) && is_ready(p));
    tokio::time::timeout(Duration::from_secs(300), await_condition(pods.clone(), &old_primary, rejoined))
        .await
        .expect("the old primary has a new Ready pod within 300 s")
        .unwrap();
    psql_until(&client, &ns, &old_primary, "select count(*) from t where v = 'after the failover'", "1", 120).await;
    assert_eq!(psql(&client, &ns, &old_primary, "select pg_is_in_recovery()").await, "t", "{old_primary} rejoined as a replica");
    psql_until(&client, &ns, &primary, STREAMING, "2", 120).await;
    service_until(&client, &ns, "ACTIVE after the failover", 240, |s| phase(s) == Some(Phase::Active)).await;

    let manage = real::manage_pods(&client).await;
    let server = real::server(&manage[0]);
    rest(&server, &tok, &ns, &["service", "delete", "pg", "--delete-volumes", "--wait", "--timeout=180"]);
    firecamp_testbed::drop_namespace(&client, &ns).await;
}
