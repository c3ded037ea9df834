//! ZooKeeper and Redis on the bed's real nodes, each service created through the REST API of
//! the in-cluster manage service and checked from inside another pod through the members' DNS
//! names. Needs `testbed/bed up --real-nodes 6` and `testbed/bed dns`; fails loudly without.

use firecamp_testbed::{client, fresh_namespace};

mod real;
use real::{Uninstall, ZONES, bed_env, installed_watching, rest, run_client_pod, token};

const ALL: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete"];

#[tokio::test]
async fn zookeeper_and_redis_run_on_real_pods() {
    let env = bed_env();
    let client = client().await;
    let _uninstall = Uninstall;
    // A manage service of this namespace only: its rights here come from a Role, and its
    // ClusterRole holds nothing namespaced (install render --watch-namespace).
    let ns = fresh_namespace(&client, "fc-engines").await;
    let server = installed_watching(&client, &env, Some(&ns)).await;
    let tok = token(&client, &ns, "dba", ALL).await;
    let zones = format!("--zones={}", ZONES.join(","));
    // Members are named in their namespace's subdomain of the cluster's zone.
    let domain = format!("{ns}.{}-firecamp.com", env.cluster);

    // ZooKeeper 3: one leader, two followers; a znode written through one member is read
    // through another.
    rest(&server, &tok, &ns, &["service", "create", "zookeeper", "zk", "--version=3.8", "--replicas=3", &zones, "--wait", "--timeout=420"]);
    // Over TLS verified against the service's CA, logged in with SASL as `client` (issue #13).
    let script = format!(
        r#"set -eu
cp=/usr/share/java/zookeeper.jar
for j in slf4j-simple netty-codec netty-resolver netty-transport-native-unix-common; do [ -e /usr/share/java/$j.jar ] && cp="$cp:/usr/share/java/$j.jar"; done
umask 077
printf 'Client {{\n org.apache.zookeeper.server.auth.DigestLoginModule required\n username="client"\n password="%s";\n}};\n' "$(cat /secret/client-password)" > /tmp/jaas.conf
printf 'zookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty\nzookeeper.client.secure=true\nzookeeper.ssl.trustStore.location=/tls/ca.crt\nzookeeper.ssl.trustStore.type=PEM\n' > /tmp/client.properties
zk() {{ java -Djava.security.auth.login.config=/tmp/jaas.conf -cp "$cp" org.apache.zookeeper.ZooKeeperMain -client-configuration /tmp/client.properties -server "$1.{domain}:2181" "${{@:2}}" 2>/dev/null; }}
for m in zk-0 zk-1 zk-2; do echo "$m $(printf srvr | openssl s_client -quiet -connect $m.{domain}:2181 -CAfile /tls/ca.crt -verify_return_error -verify_hostname $m.{domain} 2>/dev/null | grep '^Mode:')"; done
zk zk-0 create /firecamp-real written-on-zk-0 >/dev/null
echo "read on zk-2: $(zk zk-2 get /firecamp-real | grep written)"
exec 3<>"/dev/tcp/zk-1.{domain}/2181"; printf srvr >&3; echo "plain srvr: [$(timeout 5 cat <&3 | grep -c Mode || true)]"
# The members' metrics (docs/monitoring.md), over plain HTTP from bash alone.
metrics() {{ exec 4<>"/dev/tcp/$1.{domain}/$2"; printf 'GET /metrics HTTP/1.0\r\n\r\n' >&4; timeout 5 cat <&4 | tr -d '\r'; exec 4<&-; }}
for m in zk-0 zk-1 zk-2; do echo "$m metrics: $(metrics $m 7000 | grep -E '^(quorum_size|znode_count) ' | sort | tr '\n' ' ')"; done
"#
    );
    let logs = run_client_pod(
        &client,
        &ns,
        "zk-client",
        &env.image("docker.io/library/zookeeper:3.8.4"),
        1000,
        &[("zk-credentials", "/secret"), ("zk-tls", "/tls")],
        &script,
    )
    .await;
    assert_eq!(logs.matches("Mode: leader").count(), 1, "one leader: {logs}");
    assert_eq!(logs.matches("Mode: follower").count(), 2, "two followers: {logs}");
    assert!(logs.contains("read on zk-2: written-on-zk-0"), "{logs}");
    assert!(logs.contains("plain srvr: [0]"), "a plain four-letter word on the TLS port: {logs}");
    // Each server's own Prometheus provider (issue #17).
    for m in ["zk-0", "zk-1", "zk-2"] {
        assert!(logs.contains(&format!("{m} metrics: quorum_size 3.0 znode_count ")), "{m}: {logs}");
    }
    rest(&server, &tok, &ns, &["service", "delete", "zk", "--delete-volumes", "--wait", "--timeout=180"]);

    // Redis members use the host network, one per node: the bed's 6 real nodes (two per zone)
    // hold a Redis Cluster of 3 shards with a replica each, then a replication group of 3.
    rest(
        &server,
        &tok,
        &ns,
        &["service", "create", "redis", "rc", "--version=7.0", "--replicas=6", "--option=mode=cluster", "--option=shards=3", &zones, "--wait", "--timeout=420"],
    );
    let script = format!(
        r#"set -eu
export REDISCLI_AUTH="$(cat /secret/password)"
# Over TLS verified against the service's CA (issue #13); the plain port is off.
redis-cli() {{ command redis-cli --tls --cacert /tls/ca.crt "$@"; }}
echo "plain: $(command redis-cli -h rc-0.{domain} ping 2>&1 | grep -c PONG || true)"
for i in $(seq 300); do s=$(redis-cli -h rc-2.{domain} cluster info | grep -o 'cluster_state:ok' || true); [ -n "$s" ] && break; sleep 0.2; done
echo "rc-2 $s"
for k in a b c d e f g h; do redis-cli -c -h rc-0.{domain} set "key-$k" "value-$k" >/dev/null; done
# The last replicas attach (CLUSTER REPLICATE) and gossip reaches rc-1 a moment after ACTIVE.
for i in $(seq 300); do nodes=$(redis-cli -h rc-1.{domain} cluster nodes); [ "$(grep -c slave <<<"$nodes")" = 3 ] && break; sleep 0.2; done
echo "masters: $(grep -c master <<<"$nodes"), replicas: $(grep -c slave <<<"$nodes"), connected: $(grep -c connected <<<"$nodes")"
echo "rc-4 role: $(redis-cli -h rc-4.{domain} role | head -1)"
echo "read through rc-1: $(for k in a b c d e f g h; do redis-cli -c -h rc-1.{domain} get "key-$k"; done | tr '\n' ' ')"
"#
    );
    let logs = run_client_pod(
        &client,
        &ns,
        "rc-client",
        &env.image("docker.io/library/redis:7.0.15-bookworm"),
        999,
        &[("rc-credentials", "/secret"), ("rc-tls", "/tls")],
        &script,
    )
    .await;
    assert!(logs.contains("rc-2 cluster_state:ok"), "{logs}");
    assert!(logs.contains("plain: 0"), "a plain client got an answer: {logs}");
    assert!(logs.contains("masters: 3, replicas: 3, connected: 6"), "{logs}");
    assert!(logs.contains("read through rc-1: value-a value-b value-c value-d value-e value-f value-g value-h"), "{logs}");
    rest(&server, &tok, &ns, &["service", "delete", "rc", "--delete-volumes", "--wait", "--timeout=180"]);

    rest(
        &server,
        &tok,
        &ns,
        &["service", "create", "redis", "rd", "--version=7.0", "--replicas=3", "--option=mode=replication", &zones, "--wait", "--timeout=420"],
    );
    let script = format!(
        r#"set -eu
export REDISCLI_AUTH="$(cat /secret/password)"
redis-cli() {{ command redis-cli --tls --cacert /tls/ca.crt "$@"; }}
for i in $(seq 300); do n=$(redis-cli -h rd-0.{domain} info replication | tr -d '\r' | sed -n 's/^connected_slaves://p'); [ "$n" = 2 ] && break; sleep 0.2; done
echo "connected replicas: $n"
redis-cli -h rd-0.{domain} set greeting written-on-rd-0 >/dev/null
for i in $(seq 300); do v=$(redis-cli -h rd-2.{domain} get greeting); [ -n "$v" ] && break; sleep 0.2; done
echo "read on rd-2: $v ($(redis-cli -h rd-2.{domain} info replication | tr -d '\r' | grep '^role:'))"
# The members' metrics (docs/monitoring.md), over plain HTTP from bash alone.
metrics() {{ exec 4<>"/dev/tcp/$1.{domain}/$2"; printf 'GET /metrics HTTP/1.0\r\n\r\n' >&4; timeout 5 cat <&4 | tr -d '\r'; exec 4<&-; }}
echo "rd-0 metrics: $(metrics rd-0 9121 | grep -E '^(redis_up|redis_connected_slaves) ' | sort | tr '\n' ' ')"
"#
    );
    let logs = run_client_pod(
        &client,
        &ns,
        "rd-client",
        &env.image("docker.io/library/redis:7.0.15-bookworm"),
        999,
        &[("rd-credentials", "/secret"), ("rd-tls", "/tls")],
        &script,
    )
    .await;
    assert!(logs.contains("connected replicas: 2"), "{logs}");
    assert!(logs.contains("read on rd-2: written-on-rd-0 (role:slave)"), "{logs}");
    // The metrics sidecar (issue #17), on the member's static IP (host network).
    assert!(logs.contains("rd-0 metrics: redis_connected_slaves 2 redis_up 1 "), "{logs}");
    rest(&server, &tok, &ns, &["service", "delete", "rd", "--delete-volumes", "--wait", "--timeout=180"]);
    firecamp_testbed::drop_namespace(&client, &ns).await;
}
