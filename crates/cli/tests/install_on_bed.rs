//! `firecamp install render` applied unchanged to the real test bed: every object is accepted
//! (strict field validation) and the manage service's Deployment becomes available. With
//! `--prometheus-operator`, its ServiceMonitor, PodMonitor and PrometheusRule are checked against
//! the Prometheus Operator's CRDs (made from its API module by `testbed/bed build`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use firecamp_testbed::client;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};

/// Installs the Prometheus Operator's CRDs for the objects FireCamp renders (no operator runs:
/// the API server validates the objects against their schemas).
async fn install_prometheus_operator_crds(client: &kube::Client) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testbed/bin/prometheus-operator-crds");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for plural in ["servicemonitors", "podmonitors", "prometheusrules"] {
        let file = dir.join(format!("monitoring.coreos.com_{plural}.yaml"));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e} (testbed/bed build makes it)", file.display()));
        let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).unwrap();
        let name = format!("{plural}.monitoring.coreos.com");
        crds.patch(&name, &PatchParams::apply("firecamp-test").force(), &Patch::Apply(&crd)).await.unwrap();
        tokio::time::timeout(
            Duration::from_secs(30),
            kube::runtime::wait::await_condition(crds.clone(), &name, kube::runtime::conditions::is_crd_established()),
        )
        .await
        .expect("CRD established")
        .unwrap();
    }
}

#[tokio::test]
async fn install_render_applies_to_the_bed_and_the_manage_service_becomes_available() {
    let out = Command::new(env!("CARGO_BIN_EXE_firecamp"))
        // On kwok nodes: the bed's real nodes hold only the images it built (real_pods.rs installs there).
        .args([
            "install",
            "render",
            "--cluster=bed",
            "--zones=us-east-1a,us-east-1b,us-east-1c",
            "--node-selector=type=kwok",
            "--prometheus-operator",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let client = client().await;
    install_prometheus_operator_crds(&client).await;
    let kinds: Vec<String> = list["items"].as_array().unwrap().iter().map(|o| o["kind"].as_str().unwrap().to_string()).collect();
    for want in [
        "CustomResourceDefinition",
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "DaemonSet",
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
    ] {
        assert!(kinds.iter().any(|k| k == want), "no {want} in {kinds:?}");
    }
    for o in list["items"].as_array().unwrap() {
        let (group, version) = o["apiVersion"].as_str().unwrap().rsplit_once('/').unwrap_or(("", o["apiVersion"].as_str().unwrap()));
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, o["kind"].as_str().unwrap()));
        let name = o["metadata"]["name"].as_str().unwrap();
        let api: Api<DynamicObject> = match o["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        let obj: DynamicObject = serde_json::from_value(o.clone()).unwrap();
        api.patch(name, &PatchParams::apply("firecamp-test").force().validation_strict(), &Patch::Apply(&obj))
            .await
            .unwrap_or_else(|e| panic!("the API server refused {} {name}: {e}", o["kind"]));
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "firecamp-system");
    let available = |d: Option<&Deployment>| d.and_then(|d| d.status.as_ref()).and_then(|s| s.available_replicas) == Some(2);
    tokio::time::timeout(Duration::from_secs(60), kube::runtime::wait::await_condition(deployments, "firecamp-manage", available))
        .await
        .expect("the manage service's 2 replicas become available")
        .unwrap();
}
