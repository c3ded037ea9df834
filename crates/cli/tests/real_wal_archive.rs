//! Issue #15 on Kubernetes: PostgreSQL members archive their WAL into the cluster's bucket. The
//! manage service runs from its image under the rendered RBAC with `--backup-target` (moto's
//! bucket, checked with a listing when it starts); the tenant keeps the bucket's credentials in
//! its own Secret. A service created with `--backup` archives each WAL file its primary fills
//! under `<prefix>/<namespace>/<service>/<uid>/wal/`, whole (its size and SHA-256 in S3); the
//! credentials appear in no ConfigMap and no StatefulSet. `service backup` runs a Job that takes
//! a base backup from the replica into the bucket (files, then the record with their sizes and
//! sums); with a retention of 1 a second backup removes the first and the WAL only it needed.
//! The API lists it; a restore to a moment T makes a new service holding exactly the rows
//! committed before T; a delete removes the backup; a schedule takes backups by itself. A Redis
//! service's snapshot, taken by the same Job from its replica, restores into a new service
//! holding every key of the snapshot and none written after it. A ZooKeeper member's database
//! files, read by the Job from its volume, restore into a new ensemble with every znode of the
//! copy. A Redis Cluster's shards are each snapshotted by the Job, and its restore's init task
//! loads every key into the new cluster.
//! Refused on the way, naming the field: a schedule that is not a cron expression, a restore
//! to a time before the backup, a time for a snapshot. Needs
//! `testbed/bed up --real-nodes 6` with moto as its AWS.

use firecamp_api::Phase;
use firecamp_core::operation::{OperationKind, OperationPhase};
use firecamp_manage::crd::FireCampService;
use firecamp_testbed::{client, fresh_namespace};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

mod real;
use real::{Uninstall, bed_env, installed_with, phase, psql, psql_until, redis, redis_until, rest, service_until, token};

/// A secret key only the tenant's Secret holds, searched for everywhere else.
const SECRET_KEY: &str = "tenant-a-backup-secret-5f2c";

fn s3(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test"))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// The CLI against the REST API, expected to fail with a usage error (exit 2): its stderr.
fn refused(server: &str, tok: &str, ns: &str, args: &[&str]) -> String {
    let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    a.extend([format!("--server={server}"), format!("--token={tok}"), format!("--namespace={ns}"), format!("--ca-cert={}", real::ca_file().display())]);
    let out = real::cli(&a);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?} should be refused: {err}");
    err
}

#[tokio::test]
async fn postgresql_members_archive_their_wal_into_the_clusters_bucket_on_real_pods() {
    let env = bed_env();
    let client = client().await;
    let _uninstall = Uninstall;
    let bucket = format!("fc-wal-{}", std::process::id());
    let store = s3(&env.aws_endpoint);
    store.create_bucket().bucket(&bucket).send().await.expect("moto creates the bucket");
    let ns = fresh_namespace(&client, "fc-archive").await;
    // The tenant's own Secret of the bucket's credentials (moto takes any key).
    let creds = format!("[default]\naws_access_key_id = tenant-a\naws_secret_access_key = {SECRET_KEY}\n");
    let secret = Secret {
        metadata: ObjectMeta { name: Some("backup-keys".into()), ..Default::default() },
        string_data: Some([("credentials".to_string(), creds)].into()),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), &ns).create(&PostParams::default(), &secret).await.unwrap();
    let extra = [format!("--backup-target=s3://{bucket}/fc"), "--backup-credentials-secret=backup-keys".to_string()];
    let server = installed_with(&client, &env, Some(&ns), &extra).await;
    let tok = token(&client, &ns, "dba", &["get", "list", "watch", "create", "update", "patch", "delete"]).await;
    let zones = format!("--zones={}", real::ZONES.join(","));

    // A schedule that is not a cron expression is refused at once, naming the field.
    let err = refused(&server, &tok, &ns, &["service", "create", "postgresql", "pgs", "--replicas=1", &zones, "--backup", "--backup-schedule=0 3 * * 9"]);
    assert!(err.contains("spec.backup.schedule"), "{err}");

    rest(&server, &tok, &ns, &["service", "create", "postgresql", "pg", "--version=15", "--replicas=2", &zones, "--backup", "--backup-retention=1"]);
    // Started now, used after PostgreSQL's part.
    rest(&server, &tok, &ns, &["service", "create", "redis", "cache", "--version=7.0", "--replicas=2", &zones, "--backup", "--backup-retention=1"]);
    rest(&server, &tok, &ns, &["service", "create", "zookeeper", "zk", "--version=3.8", "--replicas=1", &zones, "--backup"]);
    let active = service_until(&client, &ns, "pg", "ACTIVE", 480, |s| phase(s) == Some(Phase::Active)).await;
    let uid = active.metadata.uid.clone().unwrap();

    // Rows, then a WAL switch: the primary archives the file it filled.
    psql(&client, &ns, "pg-0", "create table t (i int primary key); insert into t select generate_series(1, 1000);").await;
    let file = psql(&client, &ns, "pg-0", "select pg_walfile_name(pg_switch_wal())").await;
    assert_eq!(file.len(), 24, "a WAL file name: {file:?}");
    let archived = format!("select coalesce(last_archived_wal, '') >= '{file}' from pg_stat_archiver");
    psql_until(&client, &ns, "pg-0", &archived, "t", 120).await;
    let key = format!("fc/{ns}/pg/{uid}/wal/{file}");
    let head = store.head_object().bucket(&bucket).key(&key).send().await.unwrap_or_else(|e| panic!("{key} is not in the bucket: {e:?}"));
    assert_eq!(head.content_length(), Some(16 << 20), "the whole 16 MiB segment");
    let sha = head.metadata().and_then(|m| m.get("sha256")).cloned().unwrap_or_default();
    assert_eq!(sha.len(), 64, "its SHA-256 beside it: {:?}", head.metadata());
    let listed = store.list_objects_v2().bucket(&bucket).prefix("fc/").send().await.unwrap();
    for o in listed.contents() {
        let k = o.key().unwrap_or_default();
        assert!(k.starts_with(&format!("fc/{ns}/pg/{uid}/wal/")), "only under the tenant's namespace and the service's incarnation: {k}");
    }

    // The tenant's credentials reach members as a file only: no ConfigMap, no StatefulSet has them.
    for cm in Api::<ConfigMap>::namespaced(client.clone(), &ns).list(&Default::default()).await.unwrap() {
        let text = serde_json::to_string(&cm.data).unwrap();
        assert!(!text.contains(SECRET_KEY), "ConfigMap {:?} holds the secret key", cm.metadata.name);
    }
    let seen = real::exec(&client, &ns, "pg-0", "postgresql", "grep -c aws_secret_access_key /etc/firecamp/secret/aws-credentials").await;
    assert_eq!(seen.trim(), "1", "the member reads the tenant's credentials from its secret files");
    let sts = Api::<StatefulSet>::namespaced(client.clone(), &ns).get("pg").await.unwrap();
    assert!(!serde_json::to_string(&sts).unwrap().contains(SECRET_KEY));

    // Base backups: a Job copies the replica into the bucket, its record last; with a retention
    // of 1 the second backup replaces the first, and the WAL only the first needed goes.
    psql(&client, &ns, "pg-0", "insert into t select generate_series(1001, 2000);").await;
    let base = format!("fc/{ns}/pg/{uid}/base/");
    let first = backed_up(&server, &tok, &ns, &store, &bucket, &base).await;
    assert_eq!(first["member"], "pg-1", "taken from the replica: {first}");
    assert_eq!(first["spec"]["engine"], "postgresql");
    psql(&client, &ns, "pg-0", "insert into t select generate_series(2001, 3000); select pg_switch_wal();").await;
    let second = backed_up(&server, &tok, &ns, &store, &bucket, &base).await;
    assert_ne!(first["id"], second["id"], "the older backup went by the retention");
    let start_wal = second["startWal"].as_str().unwrap().to_string();
    let wal = keys(&store, &bucket, &format!("fc/{ns}/pg/{uid}/wal/")).await;
    assert!(!wal.is_empty() && wal.iter().all(|k| k.rsplit('/').next().unwrap() >= start_wal.as_str()), "no WAL before {start_wal} is kept: {wal:?}");

    // Listed through the API as in the bucket; deleted with the WAL only it needed; restores
    // are the local runtime's for now.
    let listed: serde_json::Value = serde_json::from_str(&rest(&server, &tok, &ns, &["service", "backups", "pg", "-o", "json"])).unwrap();
    let listed = listed["items"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!((&listed[0]["id"], &listed[0]["member"]), (&second["id"], &second["member"]));
    assert!(listed[0]["recoverableUntil"].is_string(), "the archive's newest moment: {listed:?}");
    // A restore to a moment T between two batches holds exactly the rows committed before T:
    // its first member fetched the base backup and recovered from pg's archive, its replica
    // copied it, and the restore's mark is gone once it is ACTIVE.
    psql(&client, &ns, "pg-0", "insert into t select generate_series(3001, 4000);").await;
    let t = psql(&client, &ns, "pg-0", r#"select to_char(clock_timestamp() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#).await;
    // No WAL switch here: the restore has the running source archive its latest WAL first, so
    // T, seconds ago, is reachable (archive_timeout alone would take up to 60 s).
    psql(&client, &ns, "pg-0", "insert into t select generate_series(4001, 5000);").await;
    let err = refused(&server, &tok, &ns, &["service", "restore", "pg", "--from=latest", "--to-time=2020-01-01T00:00:00Z", "--as=pg3"]);
    assert!(err.contains("toTime"), "{err}");
    rest(&server, &tok, &ns, &["service", "restore", "pg", "--from=latest", &format!("--to-time={t}"), "--as=pg2", "--wait", "--timeout=480"]);
    for m in ["pg2-0", "pg2-1"] {
        psql_until(&client, &ns, m, "select count(*), max(i) from t", "4000|4000", 120).await;
    }
    let restored = service_until(&client, &ns, "pg2", "the restore's mark removed", 60, |s| !s.annotations().contains_key("firecamp.dev/restore-from")).await;
    assert!(restored.status.is_some());
    assert!(Api::<FireCampService>::namespaced(client.clone(), &ns).get_opt("pg3").await.unwrap().is_none(), "a refused restore makes nothing");
    rest(&server, &tok, &ns, &["service", "delete", "pg2", "--delete-volumes", "--wait", "--timeout=180"]);

    let id = second["id"].as_str().unwrap();
    rest(&server, &tok, &ns, &["service", "delete-backup", "pg", id]);
    assert!(keys(&store, &bucket, &base).await.is_empty(), "the backup's objects are gone");
    let listed: serde_json::Value = serde_json::from_str(&rest(&server, &tok, &ns, &["service", "backups", "pg", "-o", "json"])).unwrap();
    assert_eq!(listed["items"], serde_json::json!([]));
    let err = refused(&server, &tok, &ns, &["service", "delete-backup", "pg", "pg-not-an-id"]);
    assert!(err.contains("backup"), "{err}");

    // A schedule (every 5 s here; set as `kubectl patch` would) takes backups by itself: the
    // controller records the moment in the status and asks for the backup operation.
    let fcs = Api::<FireCampService>::namespaced(client.clone(), &ns);
    let backups_done = |s: &FireCampService| {
        s.status.iter().flat_map(|st| &st.operations).filter(|o| o.kind == OperationKind::Backup && o.phase == OperationPhase::Succeeded).count()
    };
    let asked = backups_done(&fcs.get("pg").await.unwrap());
    let schedule = |v: serde_json::Value| serde_json::json!({"spec": {"backup": {"retention": 1, "schedule": v}}});
    fcs.patch("pg", &PatchParams::default(), &Patch::Merge(schedule("*/5 * * * * *".into()))).await.unwrap();
    let s = service_until(&client, &ns, "pg", "a scheduled backup taken", 180, |s| backups_done(s) > asked).await;
    assert!(s.status.unwrap().last_scheduled_backup.is_some());
    fcs.patch("pg", &PatchParams::default(), &Patch::Merge(schedule(serde_json::Value::Null))).await.unwrap();
    let listed: serde_json::Value = serde_json::from_str(&rest(&server, &tok, &ns, &["service", "backups", "pg", "-o", "json"])).unwrap();
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1), "the scheduled backup, kept by the retention of 1: {listed}");
    let events = Api::<Event>::namespaced(client.clone(), &ns).list(&Default::default()).await.unwrap();
    assert!(
        events.items.iter().any(|e| e.reason.as_deref() == Some("BackupScheduled") && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("pg")),
        "an Event tells of the scheduled backup"
    );

    rest(&server, &tok, &ns, &["service", "delete", "pg", "--delete-volumes", "--wait", "--timeout=180"]);

    // Redis in replication mode: the backup Job takes the replica's snapshot (the RDB a full
    // sync sends) into the bucket; a restore makes a new service whose every member holds the
    // snapshot's keys, and none written after it.
    let cache = service_until(&client, &ns, "cache", "ACTIVE", 300, |s| phase(s) == Some(Phase::Active)).await;
    let ruid = cache.metadata.uid.clone().unwrap();
    let fill = r#"for i in $(seq 1 500); do echo "set key-$i value-$i"; done | rc >/dev/null; rc wait 1 5000"#;
    assert_eq!(redis(&client, &ns, "cache-0", fill).await, "1", "the replica has the keys");
    rest(&server, &tok, &ns, &["service", "backup", "cache", "--wait"]);
    assert_eq!(redis(&client, &ns, "cache-0", "rc set after-the-snapshot yes").await, "OK");
    let rbase = format!("fc/{ns}/cache/{ruid}/base/");
    let objects = keys(&store, &bucket, &rbase).await;
    assert_eq!(objects.len(), 2, "dump.rdb and its record: {objects:?}");
    let listed: serde_json::Value = serde_json::from_str(&rest(&server, &tok, &ns, &["service", "backups", "cache", "-o", "json"])).unwrap();
    assert_eq!(listed["items"][0]["member"], "cache-1", "taken from the replica: {listed}");
    let err = refused(&server, &tok, &ns, &["service", "restore", "cache", "--from=latest", &format!("--to-time={t}"), "--as=cache3"]);
    assert!(err.contains("toTime") && err.contains("as it was taken"), "{err}");
    rest(&server, &tok, &ns, &["service", "restore", "cache", "--from=latest", "--as=cache2", "--wait", "--timeout=300"]);
    for m in ["cache2-0", "cache2-1"] {
        redis_until(&client, &ns, m, "rc dbsize", "500", 120).await;
        assert_eq!(redis(&client, &ns, m, "rc get key-250; rc exists after-the-snapshot").await, "value-250\n0", "{m}");
    }
    service_until(&client, &ns, "cache2", "the restore's mark removed", 60, |s| !s.annotations().contains_key("firecamp.dev/restore-from")).await;
    rest(&server, &tok, &ns, &["service", "delete", "cache2", "--delete-volumes", "--wait", "--timeout=180"]);
    rest(&server, &tok, &ns, &["service", "delete", "cache", "--delete-volumes", "--wait", "--timeout=180"]);
    // A Redis Cluster of three shards (a member each: Redis members take a node each, and the
    // bed's 6 real nodes hold it and its restore), forming while ZooKeeper's part runs.
    let cluster_mode = ["--option=mode=cluster", "--option=shards=3"];
    rest(&server, &tok, &ns, &[&["service", "create", "redis", "rc", "--version=7.0", "--replicas=3", &zones, "--backup"][..], &cluster_mode].concat());

    // ZooKeeper: the Job reads the member's snapshots and transaction logs from its volume
    // (mounted read-only on the member's node); the restored ensemble holds every znode of the
    // copy and none written after it.
    let zk = service_until(&client, &ns, "zk", "ACTIVE", 300, |s| phase(s) == Some(Phase::Active)).await;
    let zuid = zk.metadata.uid.clone().unwrap();
    let domain = format!("{ns}.{}-firecamp.com", env.cluster);
    zkcli(&client, &ns, "zk-0", &domain, "zk create /fc-backup root; zk create /fc-backup/a 1; zk create /fc-backup/b 2").await;
    rest(&server, &tok, &ns, &["service", "backup", "zk", "--wait"]);
    let objects = keys(&store, &bucket, &format!("fc/{ns}/zk/{zuid}/base/")).await;
    assert!(objects.iter().any(|k| k.rsplit('/').next().unwrap().starts_with("snapshot.")), "a snapshot: {objects:?}");
    assert!(objects.iter().any(|k| k.ends_with("/backup.json")), "its record: {objects:?}");
    zkcli(&client, &ns, "zk-0", &domain, "zk create /fc-backup/later 3").await;
    rest(&server, &tok, &ns, &["service", "restore", "zk", "--from=latest", "--as=zk2", "--wait", "--timeout=300"]);
    let listed = zkcli(&client, &ns, "zk2-0", &domain, "zk ls /fc-backup | grep '^\\['").await;
    assert_eq!(listed, "[a, b]", "the copy's znodes, not the later one");
    rest(&server, &tok, &ns, &["service", "delete", "zk2", "--delete-volumes", "--wait", "--timeout=180"]);
    rest(&server, &tok, &ns, &["service", "delete", "zk", "--delete-volumes", "--wait", "--timeout=180"]);

    // The Redis Cluster: the Job takes each shard's snapshot; the restored cluster's init task
    // loads every key into the new cluster by slot before it is ACTIVE, and none written after
    // the snapshots.
    let rc = service_until(&client, &ns, "rc", "ACTIVE", 420, |s| phase(s) == Some(Phase::Active)).await;
    let cuid = rc.metadata.uid.clone().unwrap();
    // ACTIVE does not promise that gossip has spread every slot to every member yet.
    redis_until(&client, &ns, "rc-0", "rc cluster info | grep -c '^cluster_state:ok' || true", "1", 120).await;
    let fill = r#"for i in $(seq 1 300); do echo "set key-$i value-$i"; done | rc -c | grep -c OK"#;
    assert_eq!(redis(&client, &ns, "rc-0", fill).await, "300");
    rest(&server, &tok, &ns, &["service", "backup", "rc", "--wait"]);
    assert_eq!(redis(&client, &ns, "rc-0", "rc -c set after-the-snapshot yes").await, "OK");
    let objects = keys(&store, &bucket, &format!("fc/{ns}/rc/{cuid}/base/")).await;
    let names: Vec<&str> = objects.iter().map(|k| k.rsplit('/').next().unwrap()).collect();
    assert_eq!(names, ["backup.json", "shard-0.rdb", "shard-1.rdb", "shard-2.rdb"], "a snapshot per shard and the record");
    let listed: serde_json::Value = serde_json::from_str(&rest(&server, &tok, &ns, &["service", "backups", "rc", "-o", "json"])).unwrap();
    assert_eq!(listed["items"][0]["member"], "rc-0,rc-1,rc-2", "each shard's from its member: {listed}");
    rest(&server, &tok, &ns, &["service", "restore", "rc", "--from=latest", "--as=rc2", "--wait", "--timeout=420"]);
    let mut sizes = Vec::new();
    for m in ["rc2-0", "rc2-1", "rc2-2"] {
        sizes.push(redis(&client, &ns, m, "rc dbsize").await.parse::<u64>().unwrap_or_default());
    }
    assert_eq!(sizes.iter().sum::<u64>(), 300, "every key of the snapshots, in the new cluster's shards: {sizes:?}");
    assert!(sizes.iter().all(|n| *n > 0), "spread by slot: {sizes:?}");
    assert_eq!(redis(&client, &ns, "rc2-0", "rc -c get key-150; rc -c exists after-the-snapshot").await, "value-150\n0");
    service_until(&client, &ns, "rc2", "the restore's mark removed", 60, |s| !s.annotations().contains_key("firecamp.dev/restore-from")).await;
    rest(&server, &tok, &ns, &["service", "delete", "rc2", "--delete-volumes", "--wait", "--timeout=180"]);
    rest(&server, &tok, &ns, &["service", "delete", "rc", "--delete-volumes", "--wait", "--timeout=180"]);
}

/// ZooKeeper's own client in member `pod`'s container as `zk` (TLS against the service's CA,
/// SASL as `client`), running `script`; its output.
async fn zkcli(client: &kube::Client, ns: &str, pod: &str, domain: &str, script: &str) -> String {
    let setup = format!(
        r#"cp=/usr/share/java/zookeeper.jar
for j in slf4j-simple netty-codec netty-resolver netty-transport-native-unix-common; do [ -e /usr/share/java/$j.jar ] && cp="$cp:/usr/share/java/$j.jar"; done
umask 077
printf 'Client {{\n org.apache.zookeeper.server.auth.DigestLoginModule required\n username="client"\n password="%s";\n}};\n' "$(cat /etc/firecamp/secret/client-password)" > /tmp/jaas.conf
printf 'zookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty\nzookeeper.client.secure=true\nzookeeper.ssl.trustStore.location=/etc/firecamp/tls/ca.crt\nzookeeper.ssl.trustStore.type=PEM\n' > /tmp/client.properties
zk() {{ java -Djava.security.auth.login.config=/tmp/jaas.conf -cp "$cp" org.apache.zookeeper.ZooKeeperMain -client-configuration /tmp/client.properties -server "{pod}.{domain}:2181" "$@" 2>/dev/null; }}
"#
    );
    real::exec(client, ns, pod, "zookeeper", &format!("{setup}{script}")).await.trim().to_string()
}

async fn keys(store: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let out = store.list_objects_v2().bucket(bucket).prefix(prefix).send().await.unwrap();
    out.contents().iter().filter_map(|o| o.key().map(String::from)).collect()
}

/// `service backup --wait`; then the only backup under `base`: its files and its record, whose
/// sizes match the objects'.
async fn backed_up(server: &str, tok: &str, ns: &str, store: &aws_sdk_s3::Client, bucket: &str, base: &str) -> serde_json::Value {
    rest(server, tok, ns, &["service", "backup", "pg", "--wait"]);
    let all = keys(store, bucket, base).await;
    let records: Vec<&String> = all.iter().filter(|k| k.ends_with("/backup.json")).collect();
    assert_eq!(records.len(), 1, "one backup kept: {all:?}");
    let got = store.get_object().bucket(bucket).key(records[0]).send().await.unwrap();
    let record: serde_json::Value = serde_json::from_slice(&got.body.collect().await.unwrap().into_bytes()).unwrap();
    let dir = records[0].trim_end_matches("backup.json");
    for (name, sum) in record["files"].as_object().unwrap() {
        let head = store.head_object().bucket(bucket).key(format!("{dir}{name}")).send().await.unwrap_or_else(|e| panic!("{dir}{name}: {e:?}"));
        assert_eq!(head.content_length().map(|n| n as u64), sum["size"].as_u64(), "{name}");
    }
    let names: Vec<&String> = record["files"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["backup_manifest", "base.tar", "pg_wal.tar"], "{record}");
    record
}
