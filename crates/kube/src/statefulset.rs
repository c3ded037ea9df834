//! The StatefulSet: `Parallel` so a zone outage never blocks the other members, `OnDelete` so
//! FireCamp orders every restart itself (primary-aware), zone pinning through the pre-created
//! PVCs (see `storage`), and `firecamp member-init` before the engine.

use std::collections::BTreeMap;

use firecamp_catalog::layout::{K8S_CONFIG_DIR, K8S_DATA_DIR, K8S_JOURNAL_DIR, K8S_RUN_DIR, K8S_SECRET_DIR, K8S_TLS_DIR, K8S_TOOL_DIR, KubernetesLayout};
use firecamp_catalog::{Probe, ServicePlan};
use firecamp_core::EngineKind;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapProjection, Container, ContainerPort, DownwardAPIProjection, DownwardAPIVolumeFile, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, ExecAction, KeyToPath, Lifecycle, LifecycleHandler, ObjectFieldSelector, PersistentVolumeClaim, PodAffinityTerm, PodAntiAffinity,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe as K8sProbe, ProjectedVolumeSource, ResourceRequirements, SeccompProfile, SecretProjection,
    SecretVolumeSource, SecurityContext, ServiceAccountTokenProjection, Volume, VolumeMount, VolumeProjection, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::labels::{self, HOSTNAME_TOPOLOGY, WORKER};
use crate::names::{self, DATA_VOLUME, JOURNAL_VOLUME};
use crate::{meta, storage};

const CONFIG: &str = "config";
const SECRET: &str = "secret";
const TLS: &str = "tls";
const RUN: &str = "run";
const TMP: &str = "tmp";
const TOKEN: &str = "member-init-token";
/// The `firecamp` executable member-init copies for `wal.sh` (members that archive WAL).
const TOOL: &str = "firecamp-tool";
/// The key of a tenant's backup-credentials Secret, and the file `wal.sh` reads it from.
const CREDENTIALS_KEY: &str = "credentials";
const CREDENTIALS_FILE: &str = "aws-credentials";
/// The exporter sidecar's view of the Secrets: its own password and the CA, nothing else.
const METRICS_SECRET: &str = "metrics-secret";
const METRICS_TLS: &str = "metrics-tls";
const TOKEN_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

pub fn statefulset(plan: &ServicePlan) -> StatefulSet {
    let ns = &plan.cluster.namespace;
    let templates = storage::volumes(plan)
        .into_iter()
        .map(|(vol, spec)| PersistentVolumeClaim {
            metadata: ObjectMeta { name: Some(vol.into()), ..Default::default() },
            spec: Some(storage::claim_spec(names::unpinned_storage_class(ns, &plan.name, vol), spec)),
            ..Default::default()
        })
        .collect();
    StatefulSet {
        metadata: meta::namespaced(plan, names::statefulset(&plan.name), labels::common(plan)),
        spec: Some(StatefulSetSpec {
            // A stopped service keeps every object and volume, and no pod.
            replicas: Some(if plan.spec.stopped { 0 } else { plan.members.len() as i32 }),
            service_name: Some(names::headless_service(&plan.name)),
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy { type_: Some("OnDelete".into()), rolling_update: None }),
            // Volumes outlive the StatefulSet; only `delete --delete-volumes` removes them.
            persistent_volume_claim_retention_policy: Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some("Retain".into()),
                when_scaled: Some("Retain".into()),
            }),
            selector: LabelSelector { match_labels: Some(labels::selector(plan)), ..Default::default() },
            template: pod_template(plan),
            volume_claim_templates: Some(templates),
            revision_history_limit: Some(10),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod_template(plan: &ServicePlan) -> PodTemplateSpec {
    let host_network = plan.needs_static_ip;
    let c = &plan.container;
    let mut volumes = vec![empty_dir(CONFIG, None), empty_dir(RUN, Some("Memory")), empty_dir(TMP, None), token_volume()];
    let backup_credentials = backs_up(plan).then(|| plan.cluster.archive.as_ref().and_then(|a| a.credentials_secret.clone())).flatten();
    if let Some(creds) = backup_credentials.filter(|_| !plan.secret_keys.is_empty()) {
        // The service's keys and, when its tenant keeps one, the backup bucket's credentials
        // (optional: without it members use the pod's own AWS identity).
        let source = |name: String, items: Option<Vec<KeyToPath>>, optional: Option<bool>| VolumeProjection {
            secret: Some(SecretProjection { name, items, optional }),
            ..Default::default()
        };
        let only = vec![KeyToPath { key: CREDENTIALS_KEY.into(), path: CREDENTIALS_FILE.into(), mode: None }];
        volumes.push(Volume {
            name: SECRET.into(),
            projected: Some(ProjectedVolumeSource {
                default_mode: Some(0o440),
                sources: Some(vec![source(names::secret(&plan.name), None, None), source(creds, Some(only), Some(true))]),
            }),
            ..Default::default()
        });
    } else if !plan.secret_keys.is_empty() {
        volumes.push(Volume {
            name: SECRET.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(names::secret(&plan.name)),
                // Group-readable: files belong to root and the engine reads them through fsGroup.
                default_mode: Some(0o440),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    if archives(plan) {
        volumes.push(empty_dir(TOOL, None));
    }
    if plan.tls {
        volumes.push(Volume {
            name: TLS.into(),
            secret: Some(SecretVolumeSource { secret_name: Some(names::tls_secret(&plan.name)), default_mode: Some(0o440), ..Default::default() }),
            ..Default::default()
        });
    }
    if has_exporter(plan) {
        let only = |secret: String, key: &str| Volume {
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret),
                items: Some(vec![KeyToPath { key: key.into(), path: key.into(), mode: None }]),
                default_mode: Some(0o440),
                ..Default::default()
            }),
            ..Default::default()
        };
        volumes.push(Volume { name: METRICS_SECRET.into(), ..only(names::secret(&plan.name), firecamp_catalog::metrics::MONITOR_PASSWORD) });
        if plan.tls {
            volumes.push(Volume { name: METRICS_TLS.into(), ..only(names::tls_secret(&plan.name), firecamp_catalog::tls::CA_FILE) });
        }
    }
    let selector = labels::selector(plan);
    let anti_affinity_term = PodAffinityTerm {
        label_selector: Some(LabelSelector { match_labels: Some(selector), ..Default::default() }),
        topology_key: HOSTNAME_TOPOLOGY.into(),
        ..Default::default()
    };
    // With the host network two members on one node would share ports: forbid it. Otherwise
    // only prefer distinct nodes, so a zone with one node left still runs all its members.
    let anti_affinity = if host_network {
        PodAntiAffinity { required_during_scheduling_ignored_during_execution: Some(vec![anti_affinity_term]), ..Default::default() }
    } else {
        PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm { weight: 100, pod_affinity_term: anti_affinity_term }]),
            ..Default::default()
        }
    };
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels::common(plan)),
            annotations: (!plan.spec.annotations.is_empty()).then(|| plan.spec.annotations.clone()),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            service_account_name: Some(names::member_account(&plan.name)),
            // Only member-init gets a token, through its own projected volume.
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            host_network: host_network.then_some(true),
            dns_policy: Some(if host_network { "ClusterFirstWithHostNet" } else { "ClusterFirst" }.into()),
            termination_grace_period_seconds: Some(c.termination_grace_seconds),
            node_selector: Some(BTreeMap::from([(WORKER.to_string(), plan.cluster.name.clone())])),
            affinity: Some(Affinity { pod_anti_affinity: Some(anti_affinity), ..Default::default() }),
            security_context: Some(PodSecurityContext {
                run_as_user: Some(c.run_as_user),
                run_as_group: Some(c.run_as_group),
                run_as_non_root: Some(true),
                fs_group: Some(c.run_as_group),
                fs_group_change_policy: Some("OnRootMismatch".into()),
                seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
                ..Default::default()
            }),
            init_containers: Some(if plan.needs_static_ip { vec![member_init(plan), member_ip(plan)] } else { vec![member_init(plan)] }),
            containers: std::iter::once(engine_container(plan)).chain(has_exporter(plan).then(|| exporter_container(plan))).collect(),
            volumes: Some(volumes),
            ..Default::default()
        }),
    }
}

/// Whether the members archive WAL into the cluster's bucket (docs/backup.md).
fn archives(plan: &ServicePlan) -> bool {
    KubernetesLayout::archives(&plan.cluster, &plan.spec)
}

/// Whether the service is backed up into the cluster's bucket (its members see the tenant's
/// credentials; a restored one fetches its backup).
fn backs_up(plan: &ServicePlan) -> bool {
    KubernetesLayout::backs_up(&plan.cluster, &plan.spec)
}

fn empty_dir(name: &str, medium: Option<&str>) -> Volume {
    Volume { name: name.into(), empty_dir: Some(EmptyDirVolumeSource { medium: medium.map(String::from), ..Default::default() }), ..Default::default() }
}

/// The standard service-account files, mounted in member-init only.
fn token_volume() -> Volume {
    Volume {
        name: TOKEN.into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(0o444),
            sources: Some(vec![
                VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection { path: "token".into(), expiration_seconds: Some(3600), ..Default::default() }),
                    ..Default::default()
                },
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: "kube-root-ca.crt".into(),
                        items: Some(vec![KeyToPath { key: "ca.crt".into(), path: "ca.crt".into(), ..Default::default() }]),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    downward_api: Some(DownwardAPIProjection {
                        items: Some(vec![DownwardAPIVolumeFile {
                            path: "namespace".into(),
                            field_ref: Some(field("metadata.namespace")),
                            ..Default::default()
                        }]),
                    }),
                    ..Default::default()
                },
            ]),
        }),
        ..Default::default()
    }
}

fn field(path: &str) -> ObjectFieldSelector {
    ObjectFieldSelector { field_path: path.into(), ..Default::default() }
}

fn env_field(name: &str, path: &str) -> EnvVar {
    EnvVar { name: name.into(), value_from: Some(EnvVarSource { field_ref: Some(field(path)), ..Default::default() }), ..Default::default() }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount { name: name.into(), mount_path: path.into(), read_only: read_only.then_some(true), ..Default::default() }
}

fn data_mounts(plan: &ServicePlan) -> Vec<VolumeMount> {
    let mut m = vec![mount(DATA_VOLUME, K8S_DATA_DIR, false)];
    if plan.spec.volumes.journal.is_some() {
        m.push(mount(JOURNAL_VOLUME, K8S_JOURNAL_DIR, false));
    }
    m
}

/// Ephemeral storage (request, limit): the engine writes only its run files, /tmp and logs
/// outside its volumes; member-init and member-ip only the member's config files.
const EPHEMERAL_ENGINE: (&str, &str) = ("128Mi", "1Gi");
const EPHEMERAL_INIT: (&str, &str) = ("16Mi", "64Mi");

fn quantities(pairs: &[(&str, &Option<String>)]) -> Option<BTreeMap<String, Quantity>> {
    let m: BTreeMap<String, Quantity> = pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), Quantity(v.clone())))).collect();
    (!m.is_empty()).then_some(m)
}

/// `firecamp member-init`: writes the member's files from its ConfigMap and, for engines with
/// static IPs, puts the member's IP on the node's interface (hence root with NET_ADMIN only).
fn member_init(plan: &ServicePlan) -> Container {
    let mut args =
        vec!["member-init".to_string(), "--member=$(POD_NAME)".into(), "--namespace=$(POD_NAMESPACE)".into(), format!("--config-dir={K8S_CONFIG_DIR}")];
    let mut security = SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
        ..Default::default()
    };
    if plan.needs_static_ip {
        args.push("--static-ip".into());
        security.run_as_user = Some(0);
        security.run_as_non_root = Some(false);
        security.capabilities = Some(Capabilities { add: Some(vec!["NET_ADMIN".into()]), drop: Some(vec!["ALL".into()]) });
    }
    let mut mounts = vec![mount(CONFIG, K8S_CONFIG_DIR, false), mount(TOKEN, TOKEN_DIR, true)];
    mounts.extend(data_mounts(plan));
    if archives(plan) {
        args.push(format!("--install-tool={K8S_TOOL_DIR}/firecamp"));
        mounts.push(mount(TOOL, K8S_TOOL_DIR, false));
    }
    // A restored first member's backup is fetched with the bucket's credentials.
    if backs_up(plan) && !plan.secret_keys.is_empty() {
        mounts.push(mount(SECRET, K8S_SECRET_DIR, true));
    }
    Container {
        name: "member-init".into(),
        image: Some(plan.cluster.firecamp_image()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec!["firecamp".into()]),
        args: Some(args),
        env: Some(vec![env_field("POD_NAME", "metadata.name"), env_field("POD_NAMESPACE", "metadata.namespace"), env_field("NODE_NAME", "spec.nodeName")]),
        // Members that are backed up may fetch a restored backup through the S3 client.
        resources: Some(helper_resources(if backs_up(plan) { "256Mi" } else { "64Mi" })),
        security_context: Some(security),
        volume_mounts: Some(mounts),
        ..Default::default()
    }
}

/// `firecamp member-ip`: a native sidecar (restartable init container) that holds the static
/// IP while the pod lives and, being stopped after the engine, takes it off the host last.
fn member_ip(plan: &ServicePlan) -> Container {
    let base = member_init(plan);
    Container {
        name: "member-ip".into(),
        args: Some(vec!["member-ip".into(), format!("--config-dir={K8S_CONFIG_DIR}")]),
        restart_policy: Some("Always".into()),
        env: None,
        // It only holds the IP (member-init's larger limit is for a restore's download).
        resources: Some(helper_resources("64Mi")),
        volume_mounts: Some(vec![mount(CONFIG, K8S_CONFIG_DIR, true)]),
        ..base
    }
}

/// FireCamp's small containers beside the engine (member-init, member-ip, the exporter): a
/// little CPU and scratch space, and `memory` at most.
fn helper_resources(memory: &str) -> ResourceRequirements {
    ResourceRequirements {
        requests: quantities(&[("cpu", &Some("10m".into())), ("memory", &Some("32Mi".into())), ("ephemeral-storage", &Some(EPHEMERAL_INIT.0.into()))]),
        limits: quantities(&[("memory", &Some(memory.into())), ("ephemeral-storage", &Some(EPHEMERAL_INIT.1.into()))]),
        ..Default::default()
    }
}

fn probe(p: &Probe) -> K8sProbe {
    K8sProbe {
        exec: Some(ExecAction { command: Some(p.command.clone()) }),
        period_seconds: Some(p.period_seconds),
        timeout_seconds: Some(p.timeout_seconds),
        failure_threshold: Some(p.failure_threshold),
        ..Default::default()
    }
}

fn engine_container(plan: &ServicePlan) -> Container {
    let c = &plan.container;
    let r = &plan.resources;
    let mut mounts = vec![mount(CONFIG, K8S_CONFIG_DIR, true), mount(RUN, K8S_RUN_DIR, false), mount(TMP, "/tmp", false)];
    if !plan.secret_keys.is_empty() {
        mounts.push(mount(SECRET, K8S_SECRET_DIR, true));
    }
    if plan.tls {
        mounts.push(mount(TLS, K8S_TLS_DIR, true));
    }
    mounts.extend(data_mounts(plan));
    if archives(plan) {
        mounts.push(mount(TOOL, K8S_TOOL_DIR, true));
    }
    Container {
        name: plan.engine.to_string(),
        image: Some(plan.cluster.image(c.image)),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(c.command.clone()),
        // The metrics port is the exporter sidecar's where there is one.
        ports: Some(
            plan.ports
                .iter()
                .filter(|p| !(has_exporter(plan) && p.name == firecamp_catalog::metrics::PORT_NAME))
                .map(|p| ContainerPort { name: Some(p.name.into()), container_port: p.port.into(), protocol: Some("TCP".into()), ..Default::default() })
                .collect(),
        ),
        env: Some(vec![env_field("POD_NAME", "metadata.name"), env_field("POD_NAMESPACE", "metadata.namespace")]),
        resources: Some(ResourceRequirements {
            requests: quantities(&[("cpu", &r.requests.cpu), ("memory", &r.requests.memory), ("ephemeral-storage", &Some(EPHEMERAL_ENGINE.0.into()))]),
            limits: quantities(&[("cpu", &r.limits.cpu), ("memory", &r.limits.memory), ("ephemeral-storage", &Some(EPHEMERAL_ENGINE.1.into()))]),
            ..Default::default()
        }),
        readiness_probe: Some(probe(&c.readiness)),
        liveness_probe: Some(probe(&c.liveness)),
        startup_probe: Some(probe(&c.startup)),
        lifecycle: pre_stop(plan.engine),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
            ..Default::default()
        }),
        volume_mounts: Some(mounts),
        ..Default::default()
    }
}

/// Whether members run a metrics exporter beside the engine (PostgreSQL, Redis; ZooKeeper
/// serves its metrics itself).
fn has_exporter(plan: &ServicePlan) -> bool {
    plan.members.first().is_some_and(|m| m.files.iter().any(|f| f.name == firecamp_catalog::metrics::SCRIPT))
}

/// The exporter sidecar: the member's `metrics.sh` in the engine's image, with the member's
/// files and run directory (PostgreSQL's socket), its own password and the CA only.
fn exporter_container(plan: &ServicePlan) -> Container {
    let mut mounts = vec![mount(CONFIG, K8S_CONFIG_DIR, true), mount(RUN, K8S_RUN_DIR, false), mount(METRICS_SECRET, K8S_SECRET_DIR, true)];
    if plan.tls {
        mounts.push(mount(METRICS_TLS, K8S_TLS_DIR, true));
    }
    let port = plan.metrics.unwrap_or_default();
    Container {
        name: "metrics".into(),
        image: Some(plan.cluster.image(plan.container.image)),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec!["/bin/bash".into(), format!("{K8S_CONFIG_DIR}/{}", firecamp_catalog::metrics::SCRIPT)]),
        ports: Some(vec![ContainerPort {
            name: Some(firecamp_catalog::metrics::PORT_NAME.into()),
            container_port: port.into(),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        resources: Some(helper_resources("128Mi")),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
            ..Default::default()
        }),
        volume_mounts: Some(mounts),
        ..Default::default()
    }
}

/// PostgreSQL's SIGTERM is a "smart" shutdown that waits for every client to leave; stop it
/// "fast" instead (abort sessions, checkpoint, exit) within the grace period.
fn pre_stop(engine: EngineKind) -> Option<Lifecycle> {
    match engine {
        EngineKind::Postgresql => Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(["pg_ctl", "stop", "-D", &format!("{K8S_DATA_DIR}/pgdata"), "-m", "fast", "-w", "-t", "110"].map(String::from).to_vec()),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        // MariaDB's SIGTERM is already a clean shutdown (InnoDB flushed, clients disconnected).
        // Cassandra's SIGTERM runs its own drain (a shutdown hook: stop taking writes, flush
        // the memtables), so a restart replays no commit log.
        EngineKind::Redis | EngineKind::Zookeeper | EngineKind::Kafka | EngineKind::Mariadb | EngineKind::Cassandra => None,
    }
}
