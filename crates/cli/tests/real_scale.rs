//! Issue #16 on the bed's real nodes: PostgreSQL 2 → 3 → 2 through the in-cluster manage
//! service (from its image, under the RBAC `install render` makes). The new member's slot is
//! made on the primary before the StatefulSet grows, so it clones through it and streams; the
//! removed member's slot and volume go once its pod has. Needs `testbed/bed up --real-nodes 6`
//! and `testbed/bed dns`; fails loudly without.

use std::time::Duration;

use firecamp_testbed::{client, fresh_namespace};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::Api;

mod real;
use real::{Uninstall, ZONES, bed_env, installed, psql, rest, token};

const STREAMING: &str = "select count(*) from pg_stat_replication where state = 'streaming'";
const SLOTS: &str = "select coalesce(string_agg(slot_name, ',' order by slot_name), '') from pg_replication_slots";

async fn psql_until(client: &kube::Client, ns: &str, pod: &str, sql: &str, want: &str, secs: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let got = psql(client, ns, pod, sql).await;
        if got == want {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{pod}: {sql} gives {got:?}, not {want:?}, after {secs} s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn postgresql_scales_on_real_pods_through_a_slot_made_before_the_new_member() {
    let env = bed_env();
    let client = client().await;
    let _uninstall = Uninstall;
    let server = installed(&client, &env).await;
    let ns = fresh_namespace(&client, "fc-scale").await;
    let tok = token(&client, &ns, "dba", &["get", "list", "watch", "create", "update", "patch", "delete"]).await;
    let zones = format!("--zones={}", ZONES.join(","));
    rest(&server, &tok, &ns, &["service", "create", "postgresql", "pg", "--version=15", "--replicas=2", &zones, "--wait", "--timeout=420"]);
    psql(&client, &ns, "pg-0", "create table t (i int primary key); insert into t select generate_series(1, 1000)").await;
    psql_until(&client, &ns, "pg-0", STREAMING, "1", 120).await;

    let out = rest(&server, &tok, &ns, &["service", "scale", "pg", "--replicas=3", "--wait", "--timeout=420"]);
    assert!(out.contains("accepted"), "{out}");
    psql_until(&client, &ns, "pg-0", STREAMING, "2", 120).await;
    assert_eq!(psql(&client, &ns, "pg-0", SLOTS).await, "pg_1,pg_2", "a slot for each replica, pg-2's made by the scale");
    psql_until(&client, &ns, "pg-2", "select count(*) from t", "1000", 120).await;
    psql(&client, &ns, "pg-0", "insert into t values (1001)").await;
    psql_until(&client, &ns, "pg-2", "select count(*) from t", "1001", 120).await;

    rest(&server, &tok, &ns, &["service", "scale", "pg", "--replicas=2", "--wait", "--timeout=420"]);
    assert_eq!(psql(&client, &ns, "pg-0", SLOTS).await, "pg_1", "the removed member's slot is gone");
    assert_eq!(psql(&client, &ns, "pg-0", STREAMING).await, "1");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    assert!(pvcs.get_opt("data-pg-2").await.unwrap().is_none(), "the removed member's volume is deleted");
    rest(&server, &tok, &ns, &["service", "delete", "pg", "--delete-volumes", "--wait", "--timeout=180"]);
    firecamp_testbed::drop_namespace(&client, &ns).await;
}
