//! The attack of a tenant who names a FireCampService after objects that already exist in the
//! namespace: the controller must neither adopt, change, mount nor garbage-collect them. On the
//! real test bed (kwok nodes), with a `firecamp manage` of the test's own namespace.

use std::collections::BTreeMap;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use firecamp_api::Phase;
use firecamp_manage::crd::FireCampService;
use firecamp_testbed::{PROVISIONER, client, fresh_namespace, kubeconfig_path};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Event, PersistentVolumeClaim, Secret, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};

const ZONES: &str = "--zones=us-east-1a,us-east-1b,us-east-1c";

struct Manage(Child);

impl Drop for Manage {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_manage(ns: &str) -> Manage {
    let log = std::fs::File::create(std::env::temp_dir().join(format!("firecamp-manage-{ns}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_firecamp"))
        .args(["manage", "--cluster=bed", &format!("--volume-provisioner={PROVISIONER}")])
        .args([format!("--watch-namespace={ns}"), format!("--lease-namespace={ns}"), format!("--identity=test-{ns}")])
        .arg("--listen=127.0.0.1:0")
        .env("KUBECONFIG", kubeconfig_path())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Manage(child)
}

fn cli(ns: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firecamp")).args(args).args(["--kube", "-n", ns]).env("KUBECONFIG", kubeconfig_path()).output().unwrap()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "firecamp failed ({:?}): {}{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

async fn setup(client: &Client) -> String {
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(client.clone());
    crds.patch("firecampservices.firecamp.dev", &PatchParams::apply("firecamp-test").force(), &Patch::Apply(&firecamp_manage::crd::crd())).await.unwrap();
    let cond = kube::runtime::conditions::is_crd_established();
    tokio::time::timeout(Duration::from_secs(30), await_condition(crds, "firecampservices.firecamp.dev", cond)).await.unwrap().unwrap();
    fresh_namespace(client, "fc-own").await
}

fn meta(name: &str, labels: &[(&str, &str)]) -> ObjectMeta {
    let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    ObjectMeta { name: Some(name.into()), labels: (!labels.is_empty()).then_some(labels), ..Default::default() }
}

/// What must not change: the data and the (absent) owner references of each victim.
async fn snapshot(client: &Client, ns: &str) -> Vec<String> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let mut out = Vec::new();
    for name in ["pg-0-config", "pg-9-config"] {
        let cm = cms.get(name).await.unwrap_or_else(|e| panic!("ConfigMap {name} is gone: {e}"));
        out.push(format!("ConfigMap {name} {:?} {:?} {:?}", cm.data, cm.metadata.owner_references, cm.metadata.labels));
    }
    let s = secrets.get("pg-credentials").await.expect("the Secret is still there");
    out.push(format!("Secret {:?} {:?} {:?}", s.data.map(|d| d.keys().cloned().collect::<Vec<_>>()), s.metadata.owner_references, s.metadata.labels));
    let svc = services.get("pg").await.expect("the Service is still there");
    let spec = svc.spec.unwrap();
    out.push(format!("Service {:?} {:?} {:?} {:?}", spec.selector, spec.ports, svc.metadata.owner_references, svc.metadata.labels));
    out
}

async fn wait_for(api: &Api<FireCampService>, what: &str, cond: impl Fn(&FireCampService) -> bool) -> FireCampService {
    let check = |s: Option<&FireCampService>| s.is_some_and(&cond);
    match tokio::time::timeout(Duration::from_secs(120), await_condition(api.clone(), "pg", check)).await {
        Ok(Ok(Some(s))) => s,
        other => panic!("waiting for {what}: {other:?}; now: {:#?}", api.get_opt("pg").await.ok().flatten().and_then(|s| s.status)),
    }
}

#[tokio::test]
async fn a_service_named_after_existing_objects_fails_and_leaves_them_alone() {
    let client = client().await;
    let ns = setup(&client).await;
    let _manage = start_manage(&ns);
    let pp = PostParams::default();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let data = |k: &str, v: &str| Some(BTreeMap::from([(k.to_string(), v.to_string())]));
    cms.create(&pp, &ConfigMap { metadata: meta("pg-0-config", &[]), data: data("app.conf", "mine"), ..Default::default() }).await.unwrap();
    // FireCamp's labels on a ConfigMap it would never build: labels alone prove nothing, so
    // the service's pruning of its old members' ConfigMaps must leave it.
    let decoy = [("firecamp.dev/service", "pg"), ("app.kubernetes.io/managed-by", "firecamp"), ("firecamp.dev/member", "pg-9")];
    cms.create(&pp, &ConfigMap { metadata: meta("pg-9-config", &decoy), data: data("keep", "me"), ..Default::default() }).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret = Secret { metadata: meta("pg-credentials", &[]), string_data: data("aws-key", "not for pods"), ..Default::default() };
    secrets.create(&pp, &secret).await.unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let spec = ServiceSpec {
        selector: Some(BTreeMap::from([("app".into(), "billing".into())])),
        ports: Some(vec![ServicePort { port: 8080, ..Default::default() }]),
        ..Default::default()
    };
    services.create(&pp, &Service { metadata: meta("pg", &[]), spec: Some(spec), ..Default::default() }).await.unwrap();
    let before = snapshot(&client, &ns).await;

    ok(cli(&ns, &["service", "create", "postgresql", "pg", "--replicas=1", ZONES]));
    let api: Api<FireCampService> = Api::namespaced(client.clone(), &ns);
    let failed = wait_for(&api, "FAILED", |s| s.status.as_ref().is_some_and(|st| st.phase == Phase::Failed)).await;
    let message = failed.status.unwrap().message.unwrap_or_default();
    for named in ["ConfigMap pg-0-config", "Secret pg-credentials", "Service pg:"] {
        assert!(message.contains(named), "{named} in {message}");
    }
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let warned = events.list(&ListParams::default()).await.unwrap().items.into_iter().any(|e| e.reason.as_deref() == Some("ObjectNotOwned"));
    assert!(warned, "a Warning event names the refusal");
    // Nothing was applied: no half-created service.
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    assert!(sts.get_opt("pg").await.unwrap().is_none());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    assert!(pvcs.list(&ListParams::default()).await.unwrap().items.is_empty());
    assert!(cms.get_opt("pg-1-config").await.unwrap().is_none() && cms.get_opt("pg-0-config").await.unwrap().unwrap().data == data("app.conf", "mine"));
    assert_eq!(snapshot(&client, &ns).await, before, "the existing objects are untouched");

    // Deleting the service garbage-collects nothing it never owned.
    ok(cli(&ns, &["service", "delete", "pg", "--wait", "--timeout=60"]));
    assert!(api.get_opt("pg").await.unwrap().is_none());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(snapshot(&client, &ns).await, before, "the existing objects outlive the service");

    // Once the names are free the service comes up; the labelled decoy still stays.
    let dp = DeleteParams::default();
    cms.delete("pg-0-config", &dp).await.unwrap();
    secrets.delete("pg-credentials", &dp).await.unwrap();
    services.delete("pg", &dp).await.unwrap();
    ok(cli(&ns, &["service", "create", "postgresql", "pg", "--replicas=1", ZONES, "--wait", "--timeout=120"]));
    let active = api.get("pg").await.unwrap();
    assert_eq!(active.status.as_ref().map(|s| s.phase), Some(Phase::Active), "{:?}", active.status);
    let own = cms.get("pg-0-config").await.unwrap();
    assert_eq!(own.metadata.owner_references.unwrap()[0].uid, active.metadata.uid.unwrap());
    assert_eq!(cms.get("pg-9-config").await.unwrap().data, data("keep", "me"));
    ok(cli(&ns, &["service", "delete", "pg", "--delete-volumes", "--wait", "--timeout=60"]));
    assert_eq!(cms.get("pg-9-config").await.unwrap().data, data("keep", "me"), "cleanup deletes only what the service owns");
}
