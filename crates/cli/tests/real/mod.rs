//! Helpers of the real-pod tests: the bed's settings, ServiceAccount tokens, client pods.

use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{LogParams, ObjectMeta, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};

pub const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

/// What `testbed/bed env` exports once the bed has real nodes and CoreDNS.
pub struct BedEnv {
    pub cluster: String,
    pub registry: String,
    pub vpc: String,
    pub aws_endpoint: String,
}

impl BedEnv {
    /// A pinned image as the bed's nodes have it.
    pub fn image(&self, pinned: &str) -> String {
        firecamp_core::cluster::with_registry(pinned, &self.registry)
    }
}

/// The bed's settings; panics naming what is missing (a real-pod test never skips).
pub fn bed_env() -> BedEnv {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: these tests need the bed's real nodes and CoreDNS (testbed/bed up --real-nodes 3; testbed/bed dns --route53 <moto>; eval \"$(testbed/bed env)\"), as scripts/test.sh does")
        })
    };
    BedEnv {
        cluster: var("FIRECAMP_TESTBED_REAL_CLUSTER"),
        registry: var("FIRECAMP_TESTBED_IMAGE_REGISTRY"),
        vpc: var("FIRECAMP_TESTBED_VPC"),
        aws_endpoint: var("FIRECAMP_TESTBED_AWS_ENDPOINT"),
    }
}

/// A ServiceAccount of `ns` allowed `verbs` on FireCampServices, and a token for it.
pub async fn token(client: &Client, ns: &str, sa: &str, verbs: &[&str]) -> String {
    let meta = |name: &str| ObjectMeta { name: Some(name.into()), namespace: Some(ns.into()), ..Default::default() };
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    sas.create(&PostParams::default(), &ServiceAccount { metadata: meta(sa), ..Default::default() }).await.unwrap();
    let role = Role {
        metadata: meta(sa),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["firecamp.dev".into()]),
            resources: Some(vec!["firecampservices".into()]),
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        }]),
    };
    Api::<Role>::namespaced(client.clone(), ns).create(&PostParams::default(), &role).await.unwrap();
    let binding = RoleBinding {
        metadata: meta(sa),
        role_ref: RoleRef { api_group: Some("rbac.authorization.k8s.io".into()), kind: "Role".into(), name: sa.into() },
        subjects: Some(vec![Subject { kind: "ServiceAccount".into(), name: sa.into(), namespace: Some(ns.into()), ..Default::default() }]),
    };
    Api::<RoleBinding>::namespaced(client.clone(), ns).create(&PostParams::default(), &binding).await.unwrap();
    let tr = TokenRequest { spec: Some(TokenRequestSpec { expiration_seconds: Some(3600), ..Default::default() }), ..Default::default() };
    sas.create_token_request(sa, &PostParams::default(), &tr).await.unwrap().status.and_then(|s| s.token).expect("a token")
}

/// Runs `script` with bash in a pod of `image` as `uid`, with `secret` mounted at /secret, on a
/// real node; returns its log, read through the API server, once it has ended.
pub async fn run_client_pod(client: &Client, ns: &str, image: &str, uid: i64, secret: &str, script: &str) -> String {
    let name = "client";
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"type": "real"},
            "automountServiceAccountToken": false,
            "securityContext": {"runAsUser": uid, "runAsGroup": uid, "runAsNonRoot": true},
            "containers": [{
                "name": "client", "image": image, "imagePullPolicy": "Never",
                "command": ["/bin/bash", "-c", script],
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi", "ephemeral-storage": "16Mi"}},
                "volumeMounts": [{"name": "secret", "mountPath": "/secret", "readOnly": true}]
            }],
            "volumes": [{"name": "secret", "secret": {"secretName": secret}}]
        }
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let ended = |p: Option<&Pod>| p.and_then(|p| p.status.as_ref()).and_then(|s| s.phase.as_deref()).is_some_and(|ph| ph == "Succeeded" || ph == "Failed");
    tokio::time::timeout(Duration::from_secs(180), await_condition(pods.clone(), name, ended)).await.expect("the client pod ends").unwrap();
    let logs = pods.logs(name, &LogParams::default()).await.unwrap();
    let phase = pods.get(name).await.unwrap().status.and_then(|s| s.phase).unwrap_or_default();
    assert_eq!(phase, "Succeeded", "the client pod failed; its log:\n{logs}");
    logs
}
