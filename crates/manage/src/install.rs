//! `firecamp install render`: everything that runs FireCamp in a cluster, as typed objects.
//! Least privilege: no cluster-admin, no wildcard verbs or resources.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvFromSource, EnvVar, EnvVarSource, HTTPGetAction, Namespace, ObjectFieldSelector, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretEnvSource, SecretVolumeSource, SecurityContext, Service, ServiceAccount, ServicePort,
    ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPort, NetworkPolicySpec};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

pub const NAMESPACE: &str = "firecamp-system";
pub const NAME: &str = "firecamp-manage";
pub const PORT: u16 = 27040;
/// The Secret (CA key and certificate) and ConfigMap (certificate only) of FireCamp's own CA.
pub const CA_SECRET: &str = "firecamp-manage-ca";
/// The Secret a cert-manager Certificate fills.
pub const TLS_SECRET: &str = "firecamp-manage-tls";
const TLS_DIR: &str = "/etc/firecamp/tls";

/// How the REST API serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ApiTls {
    /// HTTPS from FireCamp's own CA, made by the first replica in [`CA_SECRET`].
    #[default]
    OwnCa,
    /// HTTPS from a Secret someone else keeps (`tls.crt`, `tls.key`), mounted and re-read.
    Secret(String),
    /// HTTPS from a cert-manager Certificate of this issuer (`Issuer` or `ClusterIssuer`, name),
    /// into [`TLS_SECRET`].
    CertManager { kind: String, name: String },
    /// Plain HTTP (`--insecure-http`): bearer tokens in the clear.
    InsecureHttp,
}

/// What `firecamp install render` is given.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    pub cluster: String,
    /// The cluster's zones: the manage service refuses services placed elsewhere.
    pub zones: Vec<String>,
    pub networks: Vec<String>,
    pub volume_provisioner: String,
    pub image: String,
    /// The registry every image is pulled from instead of its own (`manage --image-registry`).
    pub image_registry: Option<String>,
    /// The cluster VPC: the manage service then runs with `--aws` (Route53, static IPs, logs).
    pub aws_vpc_id: Option<String>,
    pub aws_region: Option<String>,
    pub aws_endpoint_url: Option<String>,
    /// A Secret whose keys become the manage service's environment (AWS credentials).
    pub aws_credentials_secret: Option<String>,
    /// The bucket PostgreSQL members archive WAL into (`manage --backup-target`).
    pub backup_target: Option<String>,
    /// The tenants' Secret of the bucket's credentials (`manage --backup-credentials-secret`).
    pub backup_credentials_secret: Option<String>,
    /// The IAM role of the manage service's ServiceAccount for IRSA (EKS).
    pub service_account_role_arn: Option<String>,
    /// Nodes the manage service may run on (e.g. a system node group), by label.
    pub node_selector: BTreeMap<String, String>,
    /// Manage services of this namespace only: its rights there come from a Role, and the
    /// ClusterRole keeps only what is cluster-wide (nodes, StorageClasses, reviews).
    pub watch_namespace: Option<String>,
    pub tls: ApiTls,
}

fn meta(name: &str, namespaced: bool) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), namespace: namespaced.then(|| NAMESPACE.to_string()), labels: Some(selector_labels()), ..Default::default() }
}

fn selector_labels() -> BTreeMap<String, String> {
    // The services' NetworkPolicies admit the manage service's pods by this label.
    let (k, v) = firecamp_kube::network::MANAGE_POD_LABEL;
    debug_assert_eq!(v, NAME);
    BTreeMap::from([(k.to_string(), v.to_string())])
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    PolicyRule { api_groups: Some(s(groups)), resources: Some(s(resources)), verbs: s(verbs), ..Default::default() }
}

const READ: &[&str] = &["get", "list", "watch"];
const MANAGE: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete"];

/// What the controller and the REST API need, each rule for a reason: everything when they
/// serve every namespace.
pub fn cluster_role() -> ClusterRole {
    let mut rules = namespaced_rules();
    rules.extend(cluster_rules());
    ClusterRole { metadata: meta(NAME, false), rules: Some(rules), ..Default::default() }
}

/// The rights a manage service of one namespace holds cluster-wide.
pub fn cluster_role_for_one_namespace() -> ClusterRole {
    ClusterRole { metadata: meta(NAME, false), rules: Some(cluster_rules()), ..Default::default() }
}

/// The ClusterRole a scraper (Prometheus's ServiceAccount) is bound to, to read the manage
/// service's `/metrics` (docs/monitoring.md). As for the API server's own `/metrics`, RBAC has no
/// finer grain for a non-resource URL: the binding is the cluster administrator's choice.
pub const METRICS_READER: &str = "firecamp-metrics-reader";

pub fn metrics_reader() -> ClusterRole {
    let rule = PolicyRule { non_resource_urls: Some(vec![crate::rest::METRICS_PATH.into()]), verbs: vec!["get".into()], ..Default::default() };
    ClusterRole { metadata: meta(METRICS_READER, false), rules: Some(vec![rule]), ..Default::default() }
}

/// The Role (and RoleBinding) of a one-namespace manage service in that namespace; not
/// `firecamp-manage`, the Lease's Role, should that namespace be FireCamp's own.
pub const SERVICES_ROLE: &str = "firecamp-manage-services";

/// Its rights in the namespace it manages.
pub fn role_in(namespace: &str) -> Role {
    let mut metadata = meta(SERVICES_ROLE, true);
    metadata.namespace = Some(namespace.into());
    Role { metadata, rules: Some(namespaced_rules()) }
}

/// Nodes are read for their zones, StorageClasses are cluster-scoped, reviews ask the cluster.
fn cluster_rules() -> Vec<PolicyRule> {
    vec![
        rule(&[""], &["nodes"], READ),
        rule(&["storage.k8s.io"], &["storageclasses"], &["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]),
        // The REST API lets the cluster's RBAC decide who may do what.
        rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
        rule(&["authorization.k8s.io"], &["subjectaccessreviews"], &["create"]),
    ]
}

fn namespaced_rules() -> Vec<PolicyRule> {
    vec![
        rule(&["firecamp.dev"], &["firecampservices"], MANAGE),
        rule(&["firecamp.dev"], &["firecampservices/status", "firecampservices/finalizers"], &["get", "update", "patch"]),
        rule(&["apps"], &["statefulsets"], MANAGE),
        rule(&[""], &["services", "configmaps", "serviceaccounts"], MANAGE),
        // Passwords are generated once and read by name; never listed. Patched: the TLS
        // Secrets, when a member's certificate is issued or renewed.
        rule(&[""], &["secrets"], &["get", "create", "patch"]),
        rule(&[""], &["persistentvolumeclaims"], &["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]),
        // Pods: read for status, labelled with member and role, deleted for ordered restarts.
        rule(&[""], &["pods"], &["get", "list", "watch", "patch", "delete"]),
        rule(&["", "events.k8s.io"], &["events"], &["create", "patch"]),
        rule(&["policy"], &["poddisruptionbudgets"], MANAGE),
        rule(&["networking.k8s.io"], &["networkpolicies"], MANAGE),
        // The members' Role grants `get` on their ConfigMaps, which this role holds.
        rule(&["rbac.authorization.k8s.io"], &["roles", "rolebindings"], MANAGE),
        rule(&["batch"], &["jobs"], &["get", "list", "watch", "create", "delete"]),
        // Members' certificates from a cert-manager issuer (`spec.tls.issuer`).
        rule(&["cert-manager.io"], &["certificates"], MANAGE),
    ]
}

fn subject() -> Subject {
    Subject { kind: "ServiceAccount".into(), name: NAME.into(), namespace: Some(NAMESPACE.into()), ..Default::default() }
}

fn role_ref(kind: &str) -> RoleRef {
    RoleRef { api_group: Some("rbac.authorization.k8s.io".into()), kind: kind.into(), name: NAME.into() }
}

fn env_field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource { field_ref: Some(ObjectFieldSelector { field_path: path.into(), ..Default::default() }), ..Default::default() }),
        ..Default::default()
    }
}

pub fn deployment(o: &InstallOptions) -> Deployment {
    let mut args = vec!["manage".to_string(), format!("--cluster={}", o.cluster), format!("--volume-provisioner={}", o.volume_provisioner)];
    args.extend(o.networks.iter().map(|n| format!("--network={n}")));
    args.push(format!("--zones={}", o.zones.join(",")));
    if let Some(vpc) = &o.aws_vpc_id {
        args.extend(["--aws".to_string(), format!("--vpc-id={vpc}")]);
        args.extend(o.aws_region.iter().map(|r| format!("--aws-region={r}")));
        args.extend(o.aws_endpoint_url.iter().map(|u| format!("--aws-endpoint-url={u}")));
    }
    args.extend(o.image_registry.iter().map(|r| format!("--image-registry={r}")));
    args.extend(o.backup_target.iter().map(|t| format!("--backup-target={t}")));
    args.extend(o.backup_credentials_secret.iter().map(|s| format!("--backup-credentials-secret={s}")));
    args.extend(o.watch_namespace.iter().map(|n| format!("--watch-namespace={n}")));
    let mounted = match &o.tls {
        ApiTls::OwnCa => {
            args.push(format!("--tls-ca-secret={CA_SECRET}"));
            None
        }
        ApiTls::Secret(name) => Some(name.clone()),
        ApiTls::CertManager { .. } => Some(TLS_SECRET.to_string()),
        ApiTls::InsecureHttp => {
            args.push("--insecure-http".into());
            None
        }
    };
    if mounted.is_some() {
        args.extend([format!("--tls-cert={TLS_DIR}/tls.crt"), format!("--tls-key={TLS_DIR}/tls.key")]);
    }
    // The kubelet does not verify the certificate of an HTTPS probe.
    let scheme = (o.tls != ApiTls::InsecureHttp).then(|| "HTTPS".to_string());
    let http = |path: &str| Probe {
        http_get: Some(HTTPGetAction { path: Some(path.into()), port: IntOrString::Int(PORT.into()), scheme: scheme.clone(), ..Default::default() }),
        period_seconds: Some(10),
        ..Default::default()
    };
    Deployment {
        metadata: meta(NAME, true),
        spec: Some(DeploymentSpec {
            // Two replicas; the Lease lets one act at a time, the other takes over in seconds.
            replicas: Some(2),
            selector: LabelSelector { match_labels: Some(selector_labels()), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(selector_labels()), ..Default::default() }),
                spec: Some(PodSpec {
                    service_account_name: Some(NAME.into()),
                    node_selector: (!o.node_selector.is_empty()).then(|| o.node_selector.clone()),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(65532),
                        run_as_group: Some(65532),
                        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
                        ..Default::default()
                    }),
                    // Never both replicas on one node; over zones where the cluster has them.
                    topology_spread_constraints: Some(
                        [("kubernetes.io/hostname", "DoNotSchedule"), ("topology.kubernetes.io/zone", "ScheduleAnyway")]
                            .map(|(key, when)| k8s_openapi::api::core::v1::TopologySpreadConstraint {
                                max_skew: 1,
                                topology_key: key.into(),
                                when_unsatisfiable: when.into(),
                                label_selector: Some(LabelSelector { match_labels: Some(selector_labels()), ..Default::default() }),
                                ..Default::default()
                            })
                            .to_vec(),
                    ),
                    containers: vec![Container {
                        name: "manage".into(),
                        image: Some(o.image.clone()),
                        command: Some(vec!["firecamp".into()]),
                        args: Some(args),
                        env: Some(vec![
                            env_field("POD_NAME", "metadata.name"),
                            env_field("POD_NAMESPACE", "metadata.namespace"),
                            // In the replica's minted certificate, for clients that reach it by address.
                            env_field("POD_IP", "status.podIP"),
                        ]),
                        volume_mounts: mounted
                            .as_ref()
                            .map(|_| vec![VolumeMount { name: "tls".into(), mount_path: TLS_DIR.into(), read_only: Some(true), ..Default::default() }]),
                        env_from: o.aws_credentials_secret.as_ref().map(|s| {
                            vec![EnvFromSource { secret_ref: Some(SecretEnvSource { name: s.clone(), optional: Some(false) }), ..Default::default() }]
                        }),
                        ports: Some(vec![ContainerPort { name: Some("api".into()), container_port: PORT.into(), ..Default::default() }]),
                        // Ready asks the API server (every 30 s: the API budget); alive is the process.
                        readiness_probe: Some(Probe { period_seconds: Some(30), ..http(firecamp_api::paths::READY) }),
                        // Readiness is checked first as soon as the server listens, not 30 s later.
                        startup_probe: Some(Probe { period_seconds: Some(1), failure_threshold: Some(60), ..http(firecamp_api::paths::HEALTH) }),
                        liveness_probe: Some(http(firecamp_api::paths::HEALTH)),
                        resources: Some(ResourceRequirements {
                            requests: Some(BTreeMap::from([
                                ("cpu".to_string(), Quantity("100m".into())),
                                ("memory".to_string(), Quantity("128Mi".into())),
                                ("ephemeral-storage".to_string(), Quantity("64Mi".into())),
                            ])),
                            limits: Some(BTreeMap::from([
                                ("memory".to_string(), Quantity("512Mi".into())),
                                ("ephemeral-storage".to_string(), Quantity("256Mi".into())),
                            ])),
                            ..Default::default()
                        }),
                        security_context: Some(SecurityContext {
                            allow_privilege_escalation: Some(false),
                            read_only_root_filesystem: Some(true),
                            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    volumes: mounted.map(|name| {
                        vec![Volume {
                            name: "tls".into(),
                            secret: Some(SecretVolumeSource { secret_name: Some(name), default_mode: Some(0o400), ..Default::default() }),
                            ..Default::default()
                        }]
                    }),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Its rights in FireCamp's own namespace: leader election, and its CA when it keeps one.
pub fn own_role(o: &InstallOptions) -> Role {
    let mut rules = vec![rule(&["coordination.k8s.io"], &["leases"], &["get", "create", "update"])];
    if o.tls == ApiTls::OwnCa {
        let named = |resources: &[&str], verbs: &[&str]| PolicyRule { resource_names: Some(vec![CA_SECRET.into()]), ..rule(&[""], resources, verbs) };
        // `create` cannot be limited to a name (RBAC); it is limited to this namespace.
        rules.push(rule(&[""], &["secrets", "configmaps"], &["create"]));
        rules.push(named(&["secrets"], &["get"]));
        rules.push(named(&["configmaps"], &["get", "update"]));
    }
    Role { metadata: meta(NAME, true), rules: Some(rules) }
}

/// The cert-manager Certificate of the REST API (`cert-manager.io/v1`, not a typed object here).
pub fn certificate(kind: &str, issuer: &str) -> Value {
    serde_json::json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": { "name": TLS_SECRET, "namespace": NAMESPACE, "labels": selector_labels() },
        "spec": {
            "secretName": TLS_SECRET,
            "dnsNames": crate::rest::ca::serving_names(NAME, NAMESPACE),
            "ipAddresses": ["127.0.0.1"],
            "duration": "2160h",
            "renewBefore": "360h",
            "privateKey": { "algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always" },
            "usages": ["server auth", "digital signature"],
            "issuerRef": { "group": "cert-manager.io", "kind": kind, "name": issuer }
        }
    })
}

/// Every object, in apply order, as JSON values.
/// The manage service's ServiceAccount; with a role ARN, annotated for IRSA (EKS gives its pods
/// that role's credentials; the trust policy: `install render --iam-trust-policy`).
fn service_account(o: &InstallOptions) -> ServiceAccount {
    let mut metadata = meta(NAME, true);
    if let Some(arn) = &o.service_account_role_arn {
        metadata.annotations = Some(BTreeMap::from([("eks.amazonaws.com/role-arn".to_string(), arn.clone())]));
    }
    ServiceAccount { metadata, ..Default::default() }
}

pub fn render(o: &InstallOptions) -> Vec<Value> {
    let v = |x: serde_json::Result<Value>| x.unwrap_or(Value::Null);
    let mut out = vec![
        v(serde_json::to_value(crate::crd::crd())),
        v(serde_json::to_value(Namespace { metadata: meta(NAMESPACE, false), ..Default::default() })),
        v(serde_json::to_value(service_account(o))),
        v(serde_json::to_value(match &o.watch_namespace {
            Some(_) => cluster_role_for_one_namespace(),
            None => cluster_role(),
        })),
        v(serde_json::to_value(ClusterRoleBinding { metadata: meta(NAME, false), role_ref: role_ref("ClusterRole"), subjects: Some(vec![subject()]) })),
        // Bound by nobody until an administrator binds their scraper to it.
        v(serde_json::to_value(metrics_reader())),
        // Leader election only in FireCamp's own namespace.
        v(serde_json::to_value(own_role(o))),
        v(serde_json::to_value(RoleBinding { metadata: meta(NAME, true), role_ref: role_ref("Role"), subjects: Some(vec![subject()]) })),
        v(serde_json::to_value(deployment(o))),
        v(serde_json::to_value(Service {
            metadata: meta(NAME, true),
            spec: Some(ServiceSpec {
                selector: Some(selector_labels()),
                ports: Some(vec![ServicePort { name: Some("api".into()), port: PORT.into(), ..Default::default() }]),
                ..Default::default()
            }),
            ..Default::default()
        })),
        v(serde_json::to_value(PodDisruptionBudget {
            metadata: meta(NAME, true),
            spec: Some(PodDisruptionBudgetSpec {
                min_available: Some(IntOrString::Int(1)),
                selector: Some(LabelSelector { match_labels: Some(selector_labels()), ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        })),
        // Only the REST API's port is reachable (it authenticates every caller); the manage
        // service's other traffic is its own, outbound.
        v(serde_json::to_value(NetworkPolicy {
            metadata: meta(NAME, true),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector { match_labels: Some(selector_labels()), ..Default::default() }),
                policy_types: Some(vec!["Ingress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: None,
                    ports: Some(vec![NetworkPolicyPort { port: Some(IntOrString::Int(PORT.into())), protocol: Some("TCP".into()), end_port: None }]),
                }]),
                egress: None,
            }),
        })),
    ];
    if let ApiTls::CertManager { kind, name } = &o.tls {
        // Before the Deployment, so the Secret it mounts is on its way.
        let at = out.iter().position(|x| x["kind"] == "Deployment").unwrap_or(out.len());
        out.insert(at, certificate(kind, name));
    }
    if let Some(ns) = &o.watch_namespace {
        // The namespace is the tenant's: it must exist before this is applied.
        let mut binding = RoleBinding { metadata: role_in(ns).metadata, role_ref: role_ref("Role"), subjects: Some(vec![subject()]) };
        binding.role_ref.name = SERVICES_ROLE.into();
        out.push(v(serde_json::to_value(role_in(ns))));
        out.push(v(serde_json::to_value(binding)));
    }
    out
}
