//! Issue #16 on the bed's real nodes, through the in-cluster manage service (from its image,
//! under the RBAC `install render` makes): PostgreSQL 2 → 3 → 2 — the new member's slot is made
//! on the primary before the StatefulSet grows, so it clones through it and streams; the
//! removed member's slot and volume go once its pod has — then Redis replication mode 2 → 3 → 2.
//! Needs `testbed/bed up --real-nodes 6` and `testbed/bed dns`; fails loudly without.

use firecamp_testbed::{client, fresh_namespace};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::Api;

mod real;
use real::{STREAMING, Uninstall, ZONES, bed_env, installed, psql, psql_until, redis, redis_until, rest, token};

const SLOTS: &str = "select coalesce(string_agg(slot_name, ',' order by slot_name), '') from pg_replication_slots";

const ONLINE_REPLICAS: &str = "rc info replication | grep -c '^slave[0-9]*:.*state=online' || true";

#[tokio::test]
async fn postgresql_and_redis_scale_on_real_pods_new_members_prepared_before_they_exist() {
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

    // Redis replication mode: nothing to prepare; the new replica syncs from the primary.
    rest(&server, &tok, &ns, &["service", "create", "redis", "rr", "--version=7.0", "--replicas=2", &zones, "--wait", "--timeout=420"]);
    assert_eq!(redis(&client, &ns, "rr-0", "rc set k before-the-scale").await, "OK");
    rest(&server, &tok, &ns, &["service", "scale", "rr", "--replicas=3", "--wait", "--timeout=420"]);
    redis_until(&client, &ns, "rr-2", "rc get k", "before-the-scale", 60).await;
    redis_until(&client, &ns, "rr-0", ONLINE_REPLICAS, "2", 60).await;
    rest(&server, &tok, &ns, &["service", "scale", "rr", "--replicas=2", "--wait", "--timeout=420"]);
    redis_until(&client, &ns, "rr-0", ONLINE_REPLICAS, "1", 60).await;
    assert!(pvcs.get_opt("data-rr-2").await.unwrap().is_none(), "the removed member's volume is deleted");
    rest(&server, &tok, &ns, &["service", "delete", "rr", "--delete-volumes", "--wait", "--timeout=180"]);
    firecamp_testbed::drop_namespace(&client, &ns).await;
}
