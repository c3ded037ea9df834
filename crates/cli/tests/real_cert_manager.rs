//! Issue #13: members' certificates from a cert-manager issuer, on the bed's real nodes. The
//! manage service runs from its image under the rendered RBAC and finds cert-manager's API when
//! it starts; cert-manager's controller (testbed/cert-manager) signs with a CA Issuer whose CA
//! openssl made. A PostgreSQL service named `--tls-issuer Issuer/bed-ca` becomes ACTIVE with
//! replication over verify-full TLS, and a client verifies every member against the issuer's CA.
//! Refused on the way: a stranger's Secret of an issued Secret's name (neither overwritten nor
//! adopted), a changed issuer (the API server's rule), a certificate rotation. Needs
//! `testbed/bed up --real-nodes 6` and `testbed/bed build` (cert-manager).

use std::collections::BTreeMap;

use firecamp_api::Phase;
use firecamp_manage::crd::FireCampService;
use firecamp_testbed::cert_manager::{ca_issuer, install_crds, start_controller};
use firecamp_testbed::{client, fresh_namespace};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};

mod real;
use real::{Uninstall, bed_env, installed_watching, phase, psql, rest, run_client_pod, service_until, token};

async fn data(client: &Client, ns: &str, name: &str) -> BTreeMap<String, String> {
    let s = Api::<Secret>::namespaced(client.clone(), ns).get(name).await.unwrap_or_else(|e| panic!("Secret {name}: {e}"));
    s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned())).collect()
}

#[tokio::test]
async fn postgresql_members_serve_certificates_from_a_cert_manager_issuer_on_real_pods() {
    let env = bed_env();
    let client = client().await;
    let _uninstall = Uninstall;
    // cert-manager's API before the manage service starts: it looks once.
    install_crds(&client).await;
    let ns = fresh_namespace(&client, "fc-issuer").await;
    let dir = std::env::temp_dir().join(format!("firecamp-real-issuer-{ns}"));
    std::fs::create_dir_all(&dir).unwrap();
    let controller = start_controller(&dir.join("cert-manager.log"), &ns);
    let issuer_ca = ca_issuer(&client, &ns, "bed-ca", &dir).await;
    let server = installed_watching(&client, &env, Some(&ns)).await;
    let tok = token(&client, &ns, "dba", &["get", "list", "watch", "create", "update", "patch", "delete"]).await;
    let zones = format!("--zones={}", real::ZONES.join(","));
    let domain = format!("{ns}.{}-firecamp.com", env.cluster);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let services: Api<FireCampService> = Api::namespaced(client.clone(), &ns);

    // A stranger's Secret where cert-manager would issue pg-1's certificate: the service is
    // refused, naming it, and the Secret is neither overwritten nor adopted.
    let stranger = Secret {
        metadata: ObjectMeta { name: Some("pg-1-certificate".into()), ..Default::default() },
        data: Some([("note".to_string(), ByteString(b"not FireCamp's".to_vec()))].into()),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &stranger).await.unwrap();
    rest(&server, &tok, &ns, &["service", "create", "postgresql", "pg", "--version=15", "--replicas=2", &zones, "--tls-issuer=Issuer/bed-ca"]);
    let refused = service_until(&client, &ns, "pg", "refused for the stranger's Secret", 120, |s| phase(s) == Some(Phase::Failed)).await;
    let message = refused.status.and_then(|s| s.message).unwrap_or_default();
    assert!(message.contains("Secret pg-1-certificate"), "{message}");
    let left = secrets.get("pg-1-certificate").await.unwrap();
    assert_eq!(left.data.unwrap_or_default().keys().collect::<Vec<_>>(), ["note"], "the stranger's Secret is untouched");
    assert!(left.metadata.owner_references.unwrap_or_default().is_empty(), "and not adopted");
    secrets.delete("pg-1-certificate", &DeleteParams::default()).await.unwrap();

    // With the name free, cert-manager issues both members' certificates and the service runs.
    let active = service_until(&client, &ns, "pg", "ACTIVE", 480, |s| phase(s) == Some(Phase::Active)).await;
    let uid = active.metadata.uid.clone().unwrap();
    let tls = data(&client, &ns, "pg-tls").await;
    assert_eq!(tls["ca.crt"], issuer_ca, "the members trust the issuer's CA");
    assert!(secrets.get_opt("pg-ca").await.unwrap().is_none(), "FireCamp keeps no CA of its own with an issuer");
    for m in ["pg-0", "pg-1"] {
        // The issued Secret is its Certificate's, which is the service's.
        let issued = secrets.get(&format!("{m}-certificate")).await.unwrap();
        let owners = issued.metadata.owner_references.clone().unwrap_or_default();
        assert!(owners.iter().any(|r| r.kind == "Certificate" && r.name == format!("{m}-certificate")), "{m}'s issued Secret: {owners:?}");
        let certs: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), &ns, &firecamp_testbed::cert_manager::resource("Certificate"));
        let cert = certs.get(&format!("{m}-certificate")).await.unwrap();
        assert!(cert.metadata.owner_references.unwrap_or_default().iter().any(|r| r.uid == uid), "{m}'s Certificate is the service's");
        let issued = data(&client, &ns, &format!("{m}-certificate")).await;
        assert_eq!(tls[&format!("{m}.crt")], issued["tls.crt"]);
        assert!(issued["tls.key"].contains("BEGIN PRIVATE KEY"), "PKCS#8");
    }

    // Replication over verify-full against the issuer's CA, and clients verify every member.
    let mut streaming = String::new();
    for _ in 0..60 {
        streaming = psql(&client, &ns, "pg-0", "select count(*) from pg_stat_replication where state = 'streaming'").await;
        if streaming == "1" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    assert_eq!(streaming, "1", "pg-1 streams from pg-0");
    let script = format!(
        r#"set -u
export PGPASSWORD="$(cat /secret/superuser-password)"
for m in pg-0 pg-1; do
  r=$(psql "host=$m.{domain} user=postgres dbname=postgres sslmode=verify-full sslrootcert=/tls/ca.crt connect_timeout=10" -XAtc 'select ssl from pg_stat_ssl where pid = pg_backend_pid()' 2>&1 | head -1)
  echo "$m: $r"
done
"#
    );
    let image = env.image("docker.io/library/postgres:15.10-bookworm");
    let seen = run_client_pod(&client, &ns, "verify", &image, 999, &[("pg-credentials", "/secret"), ("pg-tls", "/tls")], &script).await;
    assert!(seen.contains("pg-0: t") && seen.contains("pg-1: t"), "every member verified against the issuer's CA: {seen}");

    // The issuer stays as created: the API server refuses a change.
    let change = serde_json::json!({"spec": {"tls": {"issuer": {"kind": "Issuer", "name": "other"}}}});
    let err = services.patch("pg", &PatchParams::default(), &Patch::Merge(&change)).await.expect_err("a changed issuer is refused");
    assert!(err.to_string().contains("spec.tls.issuer cannot change"), "{err}");
    // Certificates are cert-manager's to renew: a rotation is refused with what to do instead.
    let out = real::cli(&[
        "service".into(),
        "rotate-certs".into(),
        "pg".into(),
        format!("--server={server}"),
        format!("--token={tok}"),
        format!("--namespace={ns}"),
        format!("--ca-cert={}", real::ca_file().display()),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cmctl renew"), "{}", String::from_utf8_lossy(&out.stderr));

    // Deleted with the service: the Certificates and the Secrets cert-manager issued.
    rest(&server, &tok, &ns, &["service", "delete", "pg"]);
    for _ in 0..120 {
        let left: Vec<String> = secrets
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|s| s.metadata.name)
            .filter(|n| n.ends_with("-certificate"))
            .collect();
        if left.is_empty() {
            drop(controller);
            return;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    panic!("the issued Secrets outlived the service; cert-manager's log ends:\n{}", controller.tail(20));
}
