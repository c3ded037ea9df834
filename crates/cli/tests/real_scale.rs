//! Issue #16 on the bed's real nodes, through the in-cluster manage service (from its image,
//! under the RBAC `install render` makes): PostgreSQL 2 → 3 → 2 — the new member's slot is made
//! on the primary before the StatefulSet grows, so it clones through it and streams; the
//! removed member's slot and volume go once its pod has — then Redis replication mode 2 → 3 → 2,
//! then a Redis Cluster 3 → 4 → 3 shards with a client writing through the whole scale, then a
//! ZooKeeper ensemble 3 → 5 → 3 reconfigured one member at a time while a client writes.
//! Needs `testbed/bed up --real-nodes 6` and `testbed/bed dns`; fails loudly without.

use firecamp_testbed::{client, fresh_namespace};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::Api;

mod real;
use real::{STREAMING, Uninstall, ZONES, bed_env, installed, psql, psql_until, redis, redis_until, rest, run_client_pod, token};

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

    // Redis Cluster: a shard added (its slots filled from the others) and removed (drained
    // first), keys migrated both ways while a client writes; every key readable at the end.
    // Redis members take a node each: the bed's 6 real nodes hold 4 shards of one member.
    let cluster = |shards: u32| format!("--option=shards={shards}");
    rest(
        &server,
        &tok,
        &ns,
        &["service", "create", "redis", "rc", "--version=7.0", "--replicas=3", "--option=mode=cluster", &cluster(3), &zones, "--wait", "--timeout=420"],
    );
    let domain = format!("{ns}.{}-firecamp.com", env.cluster);
    let image = env.image("docker.io/library/redis:7.0.15-bookworm");
    let secrets = [("rc-credentials", "/secret"), ("rc-tls", "/tls")];
    let cli = r#"export REDISCLI_AUTH="$(cat /secret/password)"
rc() { redis-cli --tls --cacert /tls/ca.crt "$@" | tr -d '\r'; }"#;
    // As any client must: the member's name resolves once its Route53 record is in sync (the
    // bed's CoreDNS reads the zone every second), and a node reports `cluster_state:ok` once
    // gossip has spread the slots; ACTIVE promises neither at once (CI once saw no write
    // answered right after ACTIVE). Waited for up to 2 minutes, then the writes.
    let before = format!(
        "set -eu\n{cli}\nfor t in $(seq 600); do rc -h rc-0.{domain} cluster info 2>/dev/null | grep -q '^cluster_state:ok' && break; sleep 0.2; done\n\
         for i in $(seq 2000); do echo \"set k$i v$i\"; done | rc -c -h rc-0.{domain} | grep -c OK"
    );
    assert_eq!(run_client_pod(&client, &ns, "rc-before", &image, 999, &secrets, &before).await.trim(), "2000");
    // The writer runs until the test sets `stop`, after both scales; it counts its writes
    // and every answer that is not OK.
    let writer = format!(
        "set -u\n{cli}\nn=0; bad=0\nuntil [ \"$(rc -c -h rc-0.{domain} get stop)\" = yes ]; do n=$((n + 1)); r=$(rc -c -h rc-0.{domain} set w$n $n); [ \"$r\" = OK ] || bad=$((bad + 1)); done\necho \"writes $n bad $bad\""
    );
    let writing = tokio::spawn({
        let (client, ns, image, writer) = (client.clone(), ns.clone(), image.clone(), writer.clone());
        async move { run_client_pod(&client, &ns, "rc-writer", &image, 999, &secrets, &writer).await }
    });
    let scale = |shards: u32| {
        let (server, tok, ns) = (server.clone(), tok.clone(), ns.clone());
        tokio::task::spawn_blocking(move || rest(&server, &tok, &ns, &["service", "scale", "rc", &format!("--shards={shards}"), "--wait", "--timeout=600"]))
    };
    scale(4).await.unwrap();
    let after = format!(
        "set -eu\n{cli}\nfor m in 0 1 2 3; do echo \"rc-$m keys $(rc -h rc-$m.{domain} dbsize) $(rc -h rc-$m.{domain} cluster info | grep -E '^cluster_(state|known_nodes|size):' | tr '\\n' ' ')\"; done"
    );
    let shards4 = run_client_pod(&client, &ns, "rc-four", &image, 999, &secrets, &after).await;
    assert!(shards4.contains("rc-3 keys ") && !shards4.contains("rc-3 keys 0 "), "the new shard holds keys: {shards4}");
    assert_eq!(shards4.matches("cluster_state:ok cluster_known_nodes:4 cluster_size:4").count(), 4, "{shards4}");
    scale(3).await.unwrap();
    assert_eq!(redis(&client, &ns, "rc-0", "rc -c set stop yes").await, "OK");
    let written = writing.await.unwrap();
    let (writes, bad) = written.split_whitespace().collect::<Vec<_>>().chunks(2).fold((0u64, 1u64), |acc, kv| match kv {
        ["writes", n] => (n.parse().unwrap(), acc.1),
        ["bad", n] => (acc.0, n.parse().unwrap()),
        _ => acc,
    });
    eprintln!("writer: {}", written.trim());
    assert!(writes > 0 && bad == 0, "every write through both scales answered OK: {written}");
    let check = format!(
        "set -eu\n{cli}\nfor m in 0 1 2; do echo \"rc-$m $(rc -h rc-$m.{domain} cluster info | grep -E '^cluster_(state|known_nodes|size|slots_assigned):' | tr '\\n' ' ')\"; done\n\
         echo \"k: $(for i in $(seq 2000); do echo \"get k$i\"; done | rc -c -h rc-1.{domain} | grep -c '^v')\"\n\
         echo \"w: $(for i in $(seq {writes}); do echo \"get w$i\"; done | rc -c -h rc-2.{domain} | grep -cE '^[0-9]+$')\""
    );
    let shards3 = run_client_pod(&client, &ns, "rc-three", &image, 999, &secrets, &check).await;
    assert_eq!(shards3.matches("cluster_state:ok cluster_slots_assigned:16384 cluster_known_nodes:3 cluster_size:3").count(), 3, "{shards3}");
    assert!(shards3.contains("k: 2000") && shards3.contains(&format!("w: {writes}")), "no key lost: {shards3}");
    assert!(pvcs.get_opt("data-rc-3").await.unwrap().is_none(), "the removed shard's volume is deleted");
    rest(&server, &tok, &ns, &["service", "delete", "rc", "--delete-volumes", "--wait", "--timeout=180"]);

    // ZooKeeper 3 → 5 → 3: each member joins or leaves the ensemble with `reconfig`, one at a
    // time, while a client writes znodes; every acknowledged znode is there at the end.
    rest(&server, &tok, &ns, &["service", "create", "zookeeper", "zk", "--version=3.8", "--replicas=3", &zones, "--wait", "--timeout=420"]);
    let image = env.image("docker.io/library/zookeeper:3.8.4");
    let secrets = [("zk-credentials", "/secret"), ("zk-tls", "/tls")];
    let zk = zk_client();
    let all = |n: u32| (0..n).map(|i| format!("zk-{i}.{domain}:2181")).collect::<Vec<_>>().join(",");
    let writer = format!(
        // A write counts once the ensemble shows it (the CLI's exit status and answer are no
        // sure sign); one that is not there is tried again.
        "set -u\n{zk}\nn=0; failed=0\nuntil zk {ensemble} stat /stop | grep -q cZxid; do k=$((n + 1)); zk {ensemble} create /w$k x >/dev/null\n\
         if zk {ensemble} stat /w$k | grep -q cZxid; then n=$k; else failed=$((failed + 1)); fi\ndone\necho \"writes $n failed $failed\"",
        ensemble = all(3)
    );
    let writing = tokio::spawn({
        let (client, ns, image, writer) = (client.clone(), ns.clone(), image.clone(), writer.clone());
        async move { run_client_pod(&client, &ns, "zk-writer", &image, 1000, &secrets, &writer).await }
    });
    let scale = |n: u32| {
        let (server, tok, ns) = (server.clone(), tok.clone(), ns.clone());
        tokio::task::spawn_blocking(move || rest(&server, &tok, &ns, &["service", "scale", "zk", &format!("--replicas={n}"), "--wait", "--timeout=600"]))
    };
    scale(5).await.unwrap();
    let five = format!("set -eu\n{zk}\n{modes}\necho \"servers: $(zk {e} config | grep -c '^server\\.')\"", modes = modes(5, &domain), e = all(5));
    let five = run_client_pod(&client, &ns, "zk-five", &image, 1000, &secrets, &five).await;
    assert_eq!((five.matches("Mode: leader").count(), five.matches("Mode: follower").count()), (1, 4), "{five}");
    assert!(five.contains("servers: 5"), "the ensemble has five servers: {five}");
    scale(3).await.unwrap();
    let stop = format!("set -eu\n{zk}\nzk {} create /stop yes >/dev/null", all(3));
    run_client_pod(&client, &ns, "zk-stop", &image, 1000, &secrets, &stop).await;
    let written = writing.await.unwrap();
    eprintln!("zookeeper writer: {}", written.trim());
    let words: Vec<&str> = written.split_whitespace().collect();
    let writes: u32 = words.iter().position(|w| *w == "writes").and_then(|i| words.get(i + 1)?.parse().ok()).expect("the writer's count");
    assert!(writes > 0, "{written}");
    let three = format!(
        "set -eu\n{zk}\n{modes}\necho \"servers: $(zk {e} config | grep -c '^server\\.')\"\necho \"znodes: $(zk {e} ls / | tr ',' '\\n' | grep -c 'w[0-9]')\"",
        modes = modes(3, &domain),
        e = all(3)
    );
    let three = run_client_pod(&client, &ns, "zk-three", &image, 1000, &secrets, &three).await;
    assert_eq!((three.matches("Mode: leader").count(), three.matches("Mode: follower").count()), (1, 2), "{three}");
    assert!(three.contains("servers: 3"), "the ensemble has three servers again: {three}");
    assert!(three.contains(&format!("znodes: {writes}")), "every acknowledged znode is there ({writes}): {three}");
    for claim in ["data-zk-3", "data-zk-4"] {
        assert!(pvcs.get_opt(claim).await.unwrap().is_none(), "{claim}: the removed member's volume is deleted");
    }
    rest(&server, &tok, &ns, &["service", "delete", "zk", "--delete-volumes", "--wait", "--timeout=180"]);
    firecamp_testbed::drop_namespace(&client, &ns).await;
}

/// A shell function `zk <servers> <command…>`: ZooKeeper's CLI over TLS verified against the
/// service's CA, logged in with SASL as `client`.
fn zk_client() -> String {
    r#"cp=/usr/share/java/zookeeper.jar
for j in slf4j-simple netty-codec netty-resolver netty-transport-native-unix-common; do [ -e /usr/share/java/$j.jar ] && cp="$cp:/usr/share/java/$j.jar"; done
umask 077
printf 'Client {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n username="client"\n password="%s";\n};\n' "$(cat /secret/client-password)" > /tmp/jaas.conf
printf 'zookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty\nzookeeper.client.secure=true\nzookeeper.ssl.trustStore.location=/tls/ca.crt\nzookeeper.ssl.trustStore.type=PEM\n' > /tmp/client.properties
zk() { java -Djava.security.auth.login.config=/tmp/jaas.conf -cp "$cp" org.apache.zookeeper.ZooKeeperMain -client-configuration /tmp/client.properties -server "$1" "${@:2}" 2>/dev/null; }"#
        .to_string()
}

/// Prints `zk-i Mode: …` for the first `n` members (`srvr` over TLS).
fn modes(n: u32, domain: &str) -> String {
    format!(
        "for i in $(seq 0 {}); do m=zk-$i.{domain}; echo \"zk-$i $(printf srvr | openssl s_client -quiet -connect $m:2181 -CAfile /tls/ca.crt -verify_return_error 2>/dev/null | grep '^Mode:')\"; done",
        n - 1
    )
}
