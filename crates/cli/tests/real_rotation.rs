//! Issue #13's rotation on the bed's real nodes: a PostgreSQL service created through the
//! in-cluster manage service gets new member certificates, then a new CA in its three stages
//! (`rotate-certs --ca add|switch|drop`), each an operation that rotates the Secrets and restarts
//! the pods in order; after each, replication streams over verify-full TLS and a client pod
//! verifies every member against the published bundle. Needs `testbed/bed up --real-nodes 6`.

use firecamp_api::OperationPhase;
use firecamp_manage::crd::FireCampService;
use firecamp_pki::bundle::pem_certs;
use firecamp_testbed::{client, fresh_namespace};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

mod real;
use real::{Uninstall, bed_env, installed_watching, psql, rest, run_client_pod, token};

async fn secret(client: &Client, ns: &str, name: &str) -> std::collections::BTreeMap<String, String> {
    let s = Api::<Secret>::namespaced(client.clone(), ns).get(name).await.unwrap_or_else(|e| panic!("Secret {name}: {e}"));
    s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned())).collect()
}

/// psql from a client pod to every member over verify-full with the bundle mounted from the
/// Secret, and with `other_ca` (PEM) alone; one line per member and CA.
async fn clients(client: &Client, ns: &str, pod: &str, domain: &str, other_ca: &str) -> String {
    let script = format!(
        r#"set -u
printf '%s' '{other_ca}' > /tmp/other.crt
export PGPASSWORD="$(cat /secret/superuser-password)"
for m in pg-0 pg-1; do
  for ca in /tls/ca.crt /tmp/other.crt; do
    r=$(psql "host=$m.{domain} user=postgres dbname=postgres sslmode=verify-full sslrootcert=$ca connect_timeout=10" -XAtc 'select ssl from pg_stat_ssl where pid = pg_backend_pid()' 2>&1 | head -1)
    echo "$m $ca: $r"
  done
done
"#
    );
    run_client_pod(
        client,
        ns,
        pod,
        &bed_env().image("docker.io/library/postgres:15.10-bookworm"),
        999,
        &[("pg-credentials", "/secret"), ("pg-tls", "/tls")],
        &script,
    )
    .await
}

#[tokio::test]
async fn postgresql_certificates_and_its_ca_rotate_on_real_pods() {
    let env = bed_env();
    let client = client().await;
    let _uninstall = Uninstall;
    let ns = fresh_namespace(&client, "fc-rotate").await;
    let server = installed_watching(&client, &env, Some(&ns)).await;
    let tok = token(&client, &ns, "dba", &["get", "list", "watch", "create", "update", "patch", "delete"]).await;
    let zones = format!("--zones={}", real::ZONES.join(","));
    let domain = format!("{ns}.{}-firecamp.com", env.cluster);
    rest(&server, &tok, &ns, &["service", "create", "postgresql", "pg", "--version=15", "--replicas=2", &zones, "--wait", "--timeout=420"]);
    psql(&client, &ns, "pg-0", "create table t (v int); insert into t values (1)").await;
    let first = secret(&client, &ns, "pg-tls").await;
    let old_ca = first["ca.crt"].clone();

    let run = |args: &[&str]| {
        let mut all = vec!["service", "rotate-certs", "pg"];
        all.extend_from_slice(args);
        all.extend(["--wait", "--timeout=600"]);
        rest(&server, &tok, &ns, &all)
    };
    let last_op = || async {
        let svc = Api::<FireCampService>::namespaced(client.clone(), &ns).get("pg").await.unwrap();
        svc.status.unwrap().operations.into_iter().max_by(|a, b| a.id.cmp(&b.id)).unwrap()
    };
    // Each stage restarts the members PrimaryLast, with a switchover: the primary moves.
    let primary = || async {
        let svc = Api::<FireCampService>::namespaced(client.clone(), &ns).get("pg").await.unwrap();
        svc.status.and_then(|s| s.primary).unwrap_or_else(|| "pg-0".into())
    };
    let streaming = || async { psql(&client, &ns, &primary().await, "select count(*) from pg_stat_replication where state = 'streaming'").await };

    // New member certificates, same CA.
    run(&[]);
    let op = last_op().await;
    assert_eq!((op.phase, op.target.as_deref()), (OperationPhase::Succeeded, Some("member certificates")), "{op:#?}");
    let now = secret(&client, &ns, "pg-tls").await;
    assert_eq!(now["ca.crt"], old_ca);
    assert_ne!(now["pg-0.crt"], first["pg-0.crt"]);
    assert_ne!(now["pg-1.key"], first["pg-1.key"]);
    psql(&client, &ns, &primary().await, "insert into t values (2)").await;

    // add: both trusted, the old one signs; the CA's Secret holds the new one's key, the
    // members' Secret never does.
    run(&["--ca", "add"]);
    let ca = secret(&client, &ns, "pg-ca").await;
    assert!(ca.contains_key("ca-next.key") && ca.contains_key("ca-next.crt"), "{:?}", ca.keys());
    let tls = secret(&client, &ns, "pg-tls").await;
    assert!(!tls.keys().any(|k| k.starts_with("ca-next") || k == "ca.key"), "{:?}", tls.keys());
    let bundle = pem_certs(&tls["ca.crt"]);
    assert_eq!(bundle.len(), 2);
    let new_ca = bundle[1].clone();
    let seen = clients(&client, &ns, "after-add", &domain, &old_ca).await;
    assert_eq!(seen.matches(": t").count(), 4, "the bundle and the old CA alone verify every member: {seen}");

    // switch, then drop: the new CA signs, then alone is trusted.
    run(&["--ca", "switch"]);
    let seen = clients(&client, &ns, "after-switch", &domain, &old_ca).await;
    assert!(seen.contains("pg-0 /tls/ca.crt: t") && seen.contains("pg-1 /tls/ca.crt: t"), "{seen}");
    assert!(!seen.contains("/tmp/other.crt: t"), "the old CA alone verifies nobody now: {seen}");
    run(&["--ca", "drop"]);
    let tls = secret(&client, &ns, "pg-tls").await;
    assert_eq!(pem_certs(&tls["ca.crt"]), vec![new_ca.clone()]);
    assert!(!secret(&client, &ns, "pg-ca").await.contains_key("ca-next.key"));
    let seen = clients(&client, &ns, "after-drop", &domain, &new_ca).await;
    assert_eq!(seen.matches(": t").count(), 4, "{seen}");
    // The replica streams over verify-full against the new CA alone, and every row is there.
    let mut rows = String::new();
    for _ in 0..60 {
        if streaming().await == "1" {
            let replica = if primary().await == "pg-0" { "pg-1" } else { "pg-0" };
            rows = psql(&client, &ns, replica, "select string_agg(v::text, ',' order by v) from t").await;
            if rows == "1,2" {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    assert_eq!(rows, "1,2", "the replica streams and has every row");
    // A stage out of order is refused with the reason, nothing recorded.
    let out = real::cli(&[
        "service".into(),
        "rotate-certs".into(),
        "pg".into(),
        "--ca=switch".into(),
        format!("--server={server}"),
        format!("--token={tok}"),
        format!("--namespace={ns}"),
        format!("--ca-cert={}", real::ca_file().display()),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("add"), "{}", String::from_utf8_lossy(&out.stderr));
}
