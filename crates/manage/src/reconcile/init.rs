//! Init tasks run as Jobs. The Job's name is deterministic and its progress is copied into the
//! service's status, so a restarted manage service finds the Job again instead of repeating it.

use std::collections::BTreeMap;

use firecamp_catalog::layout::{K8S_SECRET_DIR, K8S_STAGING_DIR, K8S_TLS_DIR};
use firecamp_catalog::{InitTask, ServicePlan};
use firecamp_kube::{labels, names};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, KeyToPath, PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile, SecretVolumeSource,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::crd::{InitTaskStatus, TaskPhase};

/// `<service>-init`: services have one init task at most, and 52 + 5 characters fit a Job name.
pub fn job_name(service: &str) -> String {
    format!("{service}-init")
}

pub fn job(plan: &ServicePlan, task: &InitTask) -> Job {
    let mut l = labels::common(plan);
    l.insert("firecamp.dev/init-task".into(), task.name.into());
    let c = &plan.container;
    let mut mounts = vec![VolumeMount { name: "secret".into(), mount_path: K8S_SECRET_DIR.into(), read_only: Some(true), ..Default::default() }];
    let mut volumes = vec![Volume {
        name: "secret".into(),
        secret: Some(SecretVolumeSource { secret_name: Some(names::secret(&plan.name)), default_mode: Some(0o440), ..Default::default() }),
        ..Default::default()
    }];
    if plan.tls {
        // The task verifies the members against the service's CA: its certificate only, none of
        // the members' keys.
        mounts.push(VolumeMount { name: "tls".into(), mount_path: K8S_TLS_DIR.into(), read_only: Some(true), ..Default::default() });
        volumes.push(Volume {
            name: "tls".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(names::tls_secret(&plan.name)),
                items: Some(vec![KeyToPath { key: firecamp_catalog::tls::CA_FILE.into(), path: firecamp_catalog::tls::CA_FILE.into(), mode: None }]),
                default_mode: Some(0o440),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let mut job = Job {
        metadata: ObjectMeta {
            name: Some(job_name(&plan.name)),
            namespace: Some(plan.cluster.namespace.clone()),
            labels: Some(l.clone()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            // Retries stay inside one Job; its failure is the task's.
            backoff_limit: Some(task.max_attempts - 1),
            active_deadline_seconds: Some(1800),
            template: PodTemplateSpec {
                // Not the service's selector label: the task's pod is no member. With it, the
                // members' anti-affinity (one per node with the host network) repelled it from
                // every node a member runs on, and the client Service and PDB counted it.
                metadata: Some(ObjectMeta { labels: Some(task_pod_labels(l, &plan.name)), ..Default::default() }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    node_selector: Some(BTreeMap::from([(labels::WORKER.to_string(), plan.cluster.name.clone())])),
                    security_context: Some(PodSecurityContext {
                        run_as_user: Some(c.run_as_user),
                        run_as_group: Some(c.run_as_group),
                        run_as_non_root: Some(true),
                        fs_group: Some(c.run_as_group),
                        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
                        ..Default::default()
                    }),
                    containers: vec![Container {
                        name: task.name.into(),
                        image: Some(plan.cluster.image(c.image)),
                        command: Some(task.command.clone()),
                        // redis-cli and a shell: small, bounded.
                        resources: Some(ResourceRequirements {
                            requests: Some(quantities(&[("cpu", "10m"), ("memory", "32Mi"), ("ephemeral-storage", "16Mi")])),
                            limits: Some(quantities(&[("memory", "128Mi"), ("ephemeral-storage", "64Mi")])),
                            ..Default::default()
                        }),
                        security_context: Some(SecurityContext {
                            allow_privilege_escalation: Some(false),
                            read_only_root_filesystem: Some(true),
                            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
                            ..Default::default()
                        }),
                        volume_mounts: Some(mounts),
                        ..Default::default()
                    }],
                    volumes: Some(volumes),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    if task.reads_bucket {
        // A restore's load: the backup is staged, and served by the engine, one shard at a
        // time; a shard fits a member, so the task may use what a member may.
        let memory = plan.resources.limits.memory.clone().unwrap_or_else(|| "512Mi".into());
        let _ = crate::operations::backup::with_bucket(&mut job, plan, K8S_STAGING_DIR, &memory);
    }
    job
}

/// Where a Job stands: done, given up (with the reason), or still trying.
pub enum JobOutcome {
    Running,
    Complete,
    Failed(String),
}

pub fn job_outcome(job: &Job) -> JobOutcome {
    let st = job.status.clone().unwrap_or_default();
    let cond = |t: &str| st.conditions.iter().flatten().find(|c| c.type_ == t && c.status == "True").cloned();
    if cond("Complete").is_some() || st.succeeded.unwrap_or(0) > 0 {
        JobOutcome::Complete
    } else if let Some(c) = cond("Failed") {
        JobOutcome::Failed(c.message.or(c.reason).unwrap_or_else(|| "the Job failed".into()))
    } else {
        JobOutcome::Running
    }
}

/// The task's status from its Job (or `Pending` before the Job exists).
pub fn task_status(task: &InitTask, job: Option<&Job>, previous: Option<&InitTaskStatus>) -> InitTaskStatus {
    let Some(job) = job else {
        // A task that succeeded keeps its state even when its Job was cleaned up.
        if let Some(p) = previous.filter(|p| p.phase == TaskPhase::Succeeded) {
            return p.clone();
        }
        return InitTaskStatus { name: task.name.into(), phase: TaskPhase::Pending, attempts: 0, job: None, message: None };
    };
    let st = job.status.clone().unwrap_or_default();
    let (phase, message) = match job_outcome(job) {
        JobOutcome::Complete => (TaskPhase::Succeeded, None),
        JobOutcome::Failed(why) => (TaskPhase::Failed, Some(why)),
        JobOutcome::Running => (TaskPhase::Running, None),
    };
    InitTaskStatus {
        name: task.name.into(),
        phase,
        attempts: st.failed.unwrap_or(0) + st.active.unwrap_or(0) + st.succeeded.unwrap_or(0),
        job: job.metadata.name.clone(),
        message,
    }
}

fn task_pod_labels(mut l: BTreeMap<String, String>, service: &str) -> BTreeMap<String, String> {
    l.remove(labels::SERVICE);
    l.insert("firecamp.dev/init-task-of".into(), service.into());
    l
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restored_clusters_task_loads_the_backup_with_the_tenants_bucket_credentials() {
        use firecamp_catalog::layout::RestoreSource;
        use firecamp_core::cluster::ArchiveTarget;
        let mut spec = firecamp_catalog::examples::redis_cluster(3, 3);
        spec.backup = Some(Default::default());
        let archive =
            ArchiveTarget { url: "s3://b/fc".into(), region: "us-east-1".into(), endpoint: "http://s3.test".into(), credentials_secret: Some("keys".into()) };
        let cluster =
            firecamp_core::ClusterConfig { namespace: "team-a".into(), backups: true, archive: Some(archive), ..firecamp_core::ClusterConfig::new("c") };
        let from = RestoreSource { service: "rc".into(), uid: "u0".into(), backup: "rc-1".into(), target_time: None };
        let layout = firecamp_catalog::KubernetesLayout::restoring(&cluster, &spec, "rc2", "u1", Some(&from));
        let plan = firecamp_catalog::plan("rc2", &spec, &cluster, &layout, &BTreeMap::new()).unwrap();
        let task = &plan.init_tasks[0];
        assert!(task.reads_bucket);
        let tail = task.command.iter().position(|a| a == "--").map(|i| &task.command[i + 1..]).expect("the load after --");
        assert_eq!(tail[..3], ["/opt/firecamp/bin/firecamp", "redis-load", "--from=s3://b/fc/team-a/rc/u0/base/rc-1"]);
        assert!(tail.iter().any(|a| a == "--member=rc2-0.team-a.c-firecamp.com=rc2-0.team-a.c-firecamp.com"), "{tail:?}");
        assert!(!tail.iter().any(|a| a.contains("password=")), "no secret on the command line: {tail:?}");
        let pod = job(&plan, task).spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.init_containers.unwrap()[0].name, "firecamp-tool");
        let secret = pod.volumes.as_ref().unwrap().iter().find(|v| v.name == "secret").unwrap().projected.clone().unwrap();
        assert_eq!(secret.sources.unwrap()[1].secret.as_ref().unwrap().name, "keys");
        let c = &pod.containers[0];
        assert!(c.volume_mounts.iter().flatten().any(|m| m.mount_path == K8S_STAGING_DIR));
        let limits = c.resources.clone().unwrap().limits.unwrap();
        assert!(!limits.contains_key("ephemeral-storage"), "the staged backup is as large as the data: {limits:?}");
        // Not restored: the same task without the load.
        let plain =
            firecamp_catalog::plan("rc3", &spec, &cluster, &firecamp_catalog::KubernetesLayout::archiving(&cluster, &spec, "rc3", "u2"), &BTreeMap::new());
        let plain = plain.unwrap();
        assert!(!plain.init_tasks[0].reads_bucket && !plain.init_tasks[0].command.iter().any(|a| a == "--"));
    }

    #[test]
    fn the_redis_cluster_task_gets_the_cas_certificate_and_no_key() {
        let spec = firecamp_catalog::examples::redis_cluster(3, 6);
        let plan =
            firecamp_catalog::plan("rc", &spec, &firecamp_core::ClusterConfig::new("c"), &firecamp_catalog::KubernetesLayout::default(), &BTreeMap::new())
                .unwrap();
        let job = job(&plan, &plan.init_tasks[0]);
        let pod = job.spec.unwrap().template.spec.unwrap();
        let tls = pod.volumes.unwrap().into_iter().find(|v| v.name == "tls").expect("the TLS volume").secret.unwrap();
        assert_eq!(tls.secret_name.as_deref(), Some("rc-tls"));
        let items: Vec<(String, String)> = tls.items.unwrap().into_iter().map(|i| (i.key, i.path)).collect();
        assert_eq!(items, [("ca.crt".to_string(), "ca.crt".to_string())]);
        let mounts = pod.containers[0].volume_mounts.clone().unwrap();
        assert!(mounts.iter().any(|m| m.name == "tls" && m.mount_path == K8S_TLS_DIR && m.read_only == Some(true)), "{mounts:?}");
    }
}
