//! The node log agent: a Fluent Bit DaemonSet on the cluster's FireCamp workers that sends each
//! member container's lines to the member's CloudWatch stream `<namespace>/<service>/<member>`
//! (`firecamp_core::cloud::log_key`: a service name may be reused in another namespace) in the group
//! `firecamp-<cluster>`, wherever the member runs. Pods of FireCamp services carry
//! `firecamp.dev/service=<service>` and a pod is named after its member, so the stream name comes
//! from the pod's Kubernetes metadata (Fluent Bit's `log_stream_template`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, HTTPGetAction, HostPathVolumeSource, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SecurityContext, ServiceAccount, Volume, VolumeMount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use crate::labels::{CLUSTER, MANAGED_BY, SERVICE, WORKER};

/// Fluent Bit, pinned: its C `cloudwatch_logs` output and `kubernetes` filter are built in.
pub const FLUENT_BIT_IMAGE: &str = "docker.io/fluent/fluent-bit:4.2.0";
const CONFIG_DIR: &str = "/fluent-bit/etc/firecamp";
/// Tail offsets survive agent restarts here, so lines are neither lost nor sent twice.
const STATE_DIR: &str = "/var/lib/firecamp/fluent-bit";
const HTTP_PORT: i32 = 2020;

/// What the agent is rendered for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogAgentParams {
    /// Namespace of the agent's objects (FireCamp's own, e.g. `firecamp-system`).
    pub namespace: String,
    /// Cluster name: the group `firecamp-<cluster>` and the node label `firecamp-worker=<cluster>`.
    pub cluster: String,
    /// AWS region of the log group.
    pub region: String,
    /// IAM role for IRSA (`eks.amazonaws.com/role-arn`); `None` uses the node's instance role.
    pub role_arn: Option<String>,
}

/// Every object of the log agent, in apply order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogAgent {
    pub service_account: ServiceAccount,
    pub cluster_role: ClusterRole,
    pub cluster_role_binding: ClusterRoleBinding,
    pub config_map: ConfigMap,
    pub daemon_set: DaemonSet,
}

impl LogAgent {
    /// The objects as multi-document YAML, ready for `kubectl apply -f -`.
    pub fn to_yaml(&self) -> Result<String, String> {
        let docs = [
            serde_saphyr::to_string(&self.service_account),
            serde_saphyr::to_string(&self.cluster_role),
            serde_saphyr::to_string(&self.cluster_role_binding),
            serde_saphyr::to_string(&self.config_map),
            serde_saphyr::to_string(&self.daemon_set),
        ];
        let mut out = String::new();
        for d in docs {
            out.push_str("---\n");
            out.push_str(&d.map_err(|e| format!("log agent: {e}"))?);
        }
        Ok(out)
    }
}

fn name(p: &LogAgentParams) -> String {
    service_account_name(&p.cluster)
}

/// The name of the log agent's objects, its ServiceAccount among them (an IRSA trust policy
/// names it).
pub fn service_account_name(cluster: &str) -> String {
    format!("firecamp-log-agent-{cluster}")
}

fn labels(p: &LogAgentParams) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "firecamp-log-agent".into()),
        (MANAGED_BY.into(), "firecamp".into()),
        (CLUSTER.into(), p.cluster.clone()),
    ])
}

fn meta(p: &LogAgentParams, namespaced: bool) -> ObjectMeta {
    ObjectMeta { name: Some(name(p)), namespace: namespaced.then(|| p.namespace.clone()), labels: Some(labels(p)), ..Default::default() }
}

/// The Fluent Bit configuration (classic format).
pub fn fluent_bit_conf(p: &LogAgentParams) -> String {
    let group = format!("firecamp-{}", p.cluster);
    format!(
        r#"[SERVICE]
    Flush         5
    Log_Level     info
    HTTP_Server   On
    HTTP_Listen   0.0.0.0
    HTTP_Port     {HTTP_PORT}
    Health_Check  On

# Every container's log on the node; the filters below keep the cluster's FireCamp members.
[INPUT]
    Name              tail
    Tag               kube.*
    Path              /var/log/containers/*.log
    multiline.parser  docker, cri
    DB                {STATE_DIR}/tail.db
    Mem_Buf_Limit     32MB
    Skip_Long_Lines   On
    Refresh_Interval  10

# Adds the pod's name and labels (the tag carries namespace, pod and container).
[FILTER]
    Name             kubernetes
    Match            kube.*
    Kube_Tag_Prefix  kube.var.log.containers.
    Labels           On
    Annotations      Off
    Merge_Log        Off

# Only pods of this cluster's FireCamp services.
[FILTER]
    Name   grep
    Match  kube.*
    Regex  $kubernetes['labels']['{CLUSTER}'] ^{cluster}$
    Regex  $kubernetes['labels']['{SERVICE}'] .

# One stream per member: <namespace>/<service>/<member>, the pod being named after its member.
[OUTPUT]
    Name                 cloudwatch_logs
    Match                kube.*
    region               {region}
    log_group_name       {group}
    log_stream_template  $kubernetes['namespace_name']/$kubernetes['labels']['{SERVICE}']/$kubernetes['pod_name']
    log_stream_name      unknown-member
    log_key              log
    auto_create_group    Off
    retry_limit          5
"#,
        cluster = p.cluster,
        region = p.region,
    )
}

pub fn config_map(p: &LogAgentParams) -> ConfigMap {
    ConfigMap { metadata: meta(p, true), data: Some(BTreeMap::from([("fluent-bit.conf".to_string(), fluent_bit_conf(p))])), ..Default::default() }
}

pub fn service_account(p: &LogAgentParams) -> ServiceAccount {
    let mut m = meta(p, true);
    if let Some(arn) = &p.role_arn {
        m.annotations = Some(BTreeMap::from([("eks.amazonaws.com/role-arn".to_string(), arn.clone())]));
    }
    ServiceAccount { metadata: m, ..Default::default() }
}

/// The kubernetes filter reads each pod once (`get`) to learn its labels; nothing else.
pub fn cluster_role(p: &LogAgentParams) -> ClusterRole {
    ClusterRole {
        metadata: meta(p, false),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["pods".into()]),
            verbs: vec!["get".into()],
            ..Default::default()
        }]),
        ..Default::default()
    }
}

pub fn cluster_role_binding(p: &LogAgentParams) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(p, false),
        role_ref: RoleRef { api_group: Some("rbac.authorization.k8s.io".into()), kind: "ClusterRole".into(), name: name(p) },
        subjects: Some(vec![Subject { kind: "ServiceAccount".into(), name: name(p), namespace: Some(p.namespace.clone()), ..Default::default() }]),
    }
}

fn host_path(volume: &str, path: &str, kind: &str) -> Volume {
    Volume { name: volume.into(), host_path: Some(HostPathVolumeSource { path: path.into(), type_: Some(kind.into()) }), ..Default::default() }
}

fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount { name: volume.into(), mount_path: path.into(), read_only: Some(read_only), ..Default::default() }
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect()
}

pub fn daemon_set(p: &LogAgentParams) -> DaemonSet {
    let health = Probe {
        http_get: Some(HTTPGetAction { path: Some("/api/v1/health".into()), port: IntOrString::Int(HTTP_PORT), ..Default::default() }),
        period_seconds: Some(30),
        ..Default::default()
    };
    let container = Container {
        name: "fluent-bit".into(),
        image: Some(FLUENT_BIT_IMAGE.into()),
        command: Some(vec!["/fluent-bit/bin/fluent-bit".into(), "-c".into(), format!("{CONFIG_DIR}/fluent-bit.conf")]),
        env: Some(vec![EnvVar { name: "AWS_REGION".into(), value: Some(p.region.clone()), ..Default::default() }]),
        ports: Some(vec![ContainerPort { name: Some("http".into()), container_port: HTTP_PORT, ..Default::default() }]),
        liveness_probe: Some(health),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&[("cpu", "50m"), ("memory", "64Mi"), ("ephemeral-storage", "64Mi")])),
            limits: Some(quantities(&[("memory", "256Mi"), ("ephemeral-storage", "256Mi")])),
            ..Default::default()
        }),
        // Root only to read the kubelet's root-owned log files; no capability, read-only image.
        security_context: Some(SecurityContext {
            run_as_user: Some(0),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
            ..Default::default()
        }),
        volume_mounts: Some(vec![
            mount("config", CONFIG_DIR, true),
            mount("varlogcontainers", "/var/log/containers", true),
            // /var/log/containers holds symlinks into /var/log/pods.
            mount("varlogpods", "/var/log/pods", true),
            mount("state", STATE_DIR, false),
        ]),
        ..Default::default()
    };
    let pod_labels = labels(p);
    DaemonSet {
        metadata: meta(p, true),
        spec: Some(DaemonSetSpec {
            selector: LabelSelector { match_labels: Some(pod_labels.clone()), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(pod_labels), ..Default::default() }),
                spec: Some(PodSpec {
                    service_account_name: Some(name(p)),
                    // Only the nodes that may run the cluster's members.
                    node_selector: Some(BTreeMap::from([(WORKER.to_string(), p.cluster.clone())])),
                    containers: vec![container],
                    termination_grace_period_seconds: Some(30),
                    volumes: Some(vec![
                        Volume { name: "config".into(), config_map: Some(ConfigMapVolumeSource { name: name(p), ..Default::default() }), ..Default::default() },
                        host_path("varlogcontainers", "/var/log/containers", "Directory"),
                        host_path("varlogpods", "/var/log/pods", "Directory"),
                        host_path("state", STATE_DIR, "DirectoryOrCreate"),
                    ]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The log agent's objects for `p`.
pub fn log_agent(p: &LogAgentParams) -> LogAgent {
    LogAgent {
        service_account: service_account(p),
        cluster_role: cluster_role(p),
        cluster_role_binding: cluster_role_binding(p),
        config_map: config_map(p),
        daemon_set: daemon_set(p),
    }
}
