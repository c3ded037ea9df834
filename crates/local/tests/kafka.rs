//! A real Kafka 4.4 cluster in KRaft mode (issue #18): three members, each a broker and a voter
//! of the controller quorum, in three zones; clients only over TLS with the service's CA and
//! logged in with SASL SCRAM-SHA-512 as the service's users.

mod common;

use std::collections::BTreeSet;
use std::io::BufRead;
use std::time::Duration;

use common::kafka::text;
use common::{require, spec, with_bed};
use firecamp_api::{Phase, Role};
use firecamp_core::EngineKind;
use firecamp_probe::{Target, kafka};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn three_members_in_three_racks_replicate_a_topic_and_restart_without_losing_a_write() {
    require(EngineKind::Kafka);
    with_bed(
        "t-kf",
        "127.0.210.1/10",
        |_| {},
        |bed| async move {
            let mut s = spec("kafka", 3, "768Mi");
            s["zones"] = json!(["zone-a", "zone-b", "zone-c"]);
            s["kafka"] = json!({ "heap": "320Mi" });
            bed.create(json!({ "name": "kf", "spec": s })).await.expect("created");
            let svc = bed.wait_phase("kf", Phase::Active, Duration::from_secs(240)).await;
            // One active controller, through Kafka's own protocol (DescribeQuorum).
            let roles: Vec<Role> = svc.status.members.iter().map(|m| m.role).collect();
            assert_eq!(roles.iter().filter(|r| **r == Role::Leader).count(), 1, "{roles:?}");
            assert_eq!(roles.iter().filter(|r| **r == Role::Follower).count(), 2, "{roles:?}");

            // Each server runs as the unprivileged user kafka, and no password is on its command
            // line (the JAAS file's path is).
            let secrets = [bed.secret("kf", "kf-0", "client-password"), bed.secret("kf", "kf-0", "admin-password")];
            for m in ["kf-0", "kf-1", "kf-2"] {
                let pid = bed.server_pid("kf", m);
                let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap().replace('\0', " ");
                assert!(cmdline.contains("kafka.Kafka") && cmdline.contains("jaas.conf"), "{m}: {cmdline}");
                assert!(secrets.iter().all(|p| !cmdline.contains(p.as_str())), "{m}: a password on the command line");
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
                let uid: u32 = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap().split_whitespace().next().unwrap().parse().unwrap();
                assert_eq!(Some(uid), nix::unistd::User::from_name("kafka").unwrap().map(|u| u.uid.as_raw()), "{m} runs as kafka");
                // The storage tool's argument file, with the SCRAM passwords, is gone; the JAAS
                // file holds only the broker's own login.
                let run = bed.member_dir("kf", m).join("run");
                assert!(!run.join("format.args").exists(), "{m}: the storage tool's argument file was left behind");
                let jaas = std::fs::read_to_string(run.join("jaas.conf")).unwrap();
                assert!(jaas.contains("ScramLoginModule") && !jaas.contains(&secrets[0]), "{m}: {jaas}");
            }
            let password = bed.secret("kf", "kf-0", "client-password");
            let client = bed.kafka_client("kf", "client", &password);
            let props = client.props().display().to_string();
            let admin_client = bed.kafka_client("kf", "admin", &secrets[1]);
            let at = |m: u32| format!("kf-{m}.t-kf-firecamp.com:9092");

            // A topic with three replicas, two of them needed for a write, created through kf-0.
            let o = client
                .run(
                    "TopicCommand",
                    &[
                        "--bootstrap-server",
                        &at(0),
                        "--command-config",
                        &props,
                        "--create",
                        "--topic",
                        "orders",
                        "--partitions",
                        "3",
                        "--replication-factor",
                        "3",
                        "--config",
                        "min.insync.replicas=2",
                    ],
                    None,
                )
                .await;
            assert!(o.status.success(), "{}", text(&o));
            // Described through kf-1: every partition on three brokers, all in sync.
            let o = client.run("TopicCommand", &["--bootstrap-server", &at(1), "--command-config", &props, "--describe", "--topic", "orders"], None).await;
            let out = text(&o);
            assert!(o.status.success(), "{out}");
            let partitions: Vec<&str> = out.lines().filter(|l| l.contains("Partition: ")).collect();
            assert_eq!(partitions.len(), 3, "{out}");
            for p in &partitions {
                let field = |name: &str| p.split('\t').find_map(|f| f.trim().strip_prefix(name)).unwrap_or("").trim().to_string();
                let ids: BTreeSet<String> = field("Replicas: ").split(',').map(str::to_string).collect();
                let isr: BTreeSet<String> = field("Isr: ").split(',').map(str::to_string).collect();
                assert_eq!(ids, BTreeSet::from(["0".to_string(), "1".into(), "2".into()]), "{p}");
                assert_eq!(isr, ids, "{p}");
            }
            // The brokers' configs are admin's: client's ACLs cover topics, groups and
            // transactional ids only.
            let o = describe_broker(&client, &at(0), 0).await;
            let out = text(&o);
            assert!(!o.status.success() && out.contains("ClusterAuthorizationException"), "client described a broker's configs:\n{out}");
            // Each broker's rack is its member's zone, so the three replicas are in three racks.
            for (m, zone) in [(0, "zone-a"), (1, "zone-b"), (2, "zone-c")] {
                let out = text(&describe_broker(&admin_client, &at(m), m).await);
                assert!(out.contains(&format!("broker.rack={zone}")), "broker {m}:\n{out}");
            }

            // Produced through kf-0 (acks=all), consumed through kf-2.
            let messages: String = (0..100).map(|i| format!("order-{i}\n")).collect();
            let o = client
                .run(
                    "ConsoleProducer",
                    &["--bootstrap-server", &at(0), "--command-config", &props, "--topic", "orders", "--command-property", "acks=all"],
                    Some(messages),
                )
                .await;
            assert!(o.status.success(), "{}", text(&o));
            let consumed = consume(&client, &at(2), &props, 100).await;
            assert_eq!(consumed.len(), 100, "{consumed:?}");
            assert!(consumed.contains("order-0") && consumed.contains("order-99"));

            // A wrong password is refused; so is the admin protocol without TLS.
            let wrong = bed.kafka_client("kf", "client", "Wr0ngPassw0rd");
            let wp = wrong.props().display().to_string();
            let o = wrong.run("TopicCommand", &["--bootstrap-server", &at(1), "--command-config", &wp, "--list"], None).await;
            let out = text(&o);
            assert!(!o.status.success() && out.contains("Authentication failed"), "{out}");
            assert!(!out.contains("orders"), "{out}");
            // PLAIN, which would send the password itself, is not a mechanism the brokers take.
            let plain = bed.kafka_client_with("kf", "PLAIN", "org.apache.kafka.common.security.plain.PlainLoginModule", "client", &password);
            let pp = plain.props().display().to_string();
            let o = plain.run("TopicCommand", &["--bootstrap-server", &at(1), "--command-config", &pp, "--list"], None).await;
            let out = text(&o);
            assert!(!o.status.success() && out.contains("SASL mechanism 'PLAIN' not enabled in the server"), "{out}");
            assert!(!out.contains("orders"), "{out}");
            let ip1 = bed.ip("kf", "kf-1").await;
            let ca = bed.ca("kf", "kf-0");
            let admin = bed.secret("kf", "kf-0", "admin-password");
            let plain = kafka::quorum_leader(&Target::new(ip1.clone(), 9092).with_password(admin.clone()), "admin").await;
            assert!(plain.is_err(), "answered without TLS: {plain:?}");
            let e = kafka::quorum_leader(&Target::new(ip1.clone(), 9092).with_password("Wr0ngPassw0rd").with_tls(ca.clone(), ip1.clone()), "admin")
                .await
                .unwrap_err();
            assert!(e.to_string().contains("login as admin refused"), "{e}");

            // A rolling restart while a producer writes (acks=all): every acknowledged message is
            // still there afterwards, and the active controller was restarted last.
            let leader = svc.status.members.iter().find(|m| m.role == Role::Leader).unwrap().name.clone();
            let mut producer = client.spawn(
                "VerifiableProducer",
                &[
                    "--bootstrap-server",
                    &at(1),
                    "--command-config",
                    &props,
                    "--topic",
                    "orders",
                    "--acks",
                    "-1",
                    "--throughput",
                    "50",
                    "--max-messages",
                    "100000",
                ],
            );
            let stdout = producer.stdout.take().unwrap();
            let reader = std::thread::spawn(move || {
                let mut acked = BTreeSet::new();
                for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                    if line.contains("\"producer_send_success\"")
                        && let Some(v) = line.split("\"value\":\"").nth(1).and_then(|r| r.split('"').next())
                    {
                        acked.insert(v.to_string());
                    }
                }
                acked
            });
            let op = bed.operate("kf", json!({ "kind": "restart" })).await.unwrap();
            assert_eq!(op.steps.last().map(|s| s.member.clone()), Some(leader), "the active controller last");
            bed.wait_operation("kf", &op.id, Duration::from_secs(300)).await;
            // Each step waited for every partition to be in sync again: so did the last one.
            let t0 = Target::new(bed.ip("kf", "kf-0").await, 9092).with_password(admin.clone()).with_tls(ca.clone(), bed.ip("kf", "kf-0").await);
            assert_eq!(kafka::under_replicated(&t0, "admin").await.unwrap(), Vec::<String>::new());
            producer.kill().unwrap();
            producer.wait().unwrap();
            let acked = reader.join().unwrap();
            assert!(acked.len() > 50, "the producer wrote through the restart: {} acknowledged", acked.len());
            // Retried sends may be stored twice: read as many messages as the partitions hold.
            let o = client.run("GetOffsetShell", &["--bootstrap-server", &at(0), "--command-config", &props, "--topic", "orders"], None).await;
            let out = text(&o);
            assert!(o.status.success(), "{out}");
            let stored: usize = out.lines().filter_map(|l| l.rsplit(':').next()?.trim().parse::<usize>().ok()).sum();
            assert!(stored >= 100 + acked.len(), "{out}");
            let consumed = consume(&client, &at(0), &props, stored).await;
            let lost: Vec<&String> = acked.iter().filter(|v| !consumed.contains(*v)).collect();
            assert!(lost.is_empty(), "{} acknowledged messages lost: {:?}", lost.len(), lost.iter().take(10).collect::<Vec<_>>());
            bed.wait_phase("kf", Phase::Active, Duration::from_secs(120)).await;
        },
    )
    .await;
}

/// The first `n` messages of `orders` from the beginning through `at` (distinct values). The
/// consumer ends after `n`; the idle timeout only bounds a consumer that gets nothing (joining
/// its group creates `__consumer_offsets`, 50 partitions, which a busy machine takes a while for).
async fn consume(client: &common::kafka::KafkaClient, at: &str, props: &str, n: usize) -> BTreeSet<String> {
    let max = n.to_string();
    let o = client
        .run(
            "consumer.ConsoleConsumer",
            &["--bootstrap-server", at, "--command-config", props, "--topic", "orders", "--from-beginning", "--max-messages", &max, "--timeout-ms", "120000"],
            None,
        )
        .await;
    String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect()
}

/// `kafka-configs --describe --all` of broker `id` through `at`, logged in as `client`'s user.
async fn describe_broker(client: &common::kafka::KafkaClient, at: &str, id: u32) -> std::process::Output {
    let (props, id) = (client.props().display().to_string(), id.to_string());
    client
        .run(
            "ConfigCommand",
            &["--bootstrap-server", at, "--command-config", &props, "--entity-type", "brokers", "--entity-name", &id, "--describe", "--all"],
            None,
        )
        .await
}
