//! The `backup` operation on Kubernetes (docs/backup.md): one step, a backup of a member (a
//! replica that is up, else the primary) taken by a Job on the engine's image running `firecamp
//! backup-job` — PostgreSQL's base backup (`pg_basebackup`) or Redis's snapshot (`redis-cli
//! --rdb`; a cluster's, one per shard) over verify-full TLS, or a ZooKeeper member's database
//! files from its volume — the files and their record uploaded into the cluster's bucket
//! (beside the WAL PostgreSQL's members archive), then the retention.
//! One Job per step, found again after a restart of the manage service; its failure is the
//! step's. The Job's credentials are the tenant's Secret (or its pod's identity), as the
//! members'.

use std::collections::BTreeMap;

use firecamp_catalog::ServicePlan;
use firecamp_catalog::layout::{K8S_SECRET_DIR, K8S_TLS_DIR, K8S_TOOL_DIR, KubernetesLayout};
use firecamp_catalog::{postgresql, redis, zookeeper};
use firecamp_core::EngineKind;
use firecamp_core::operation::{Operation, StepAction};
use firecamp_kube::names::{self, DATA_VOLUME, JOURNAL_VOLUME};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, KeyToPath, PersistentVolumeClaimVolumeSource, Pod, ProjectedVolumeSource, ResourceRequirements, SecretProjection,
    Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{Api, Resource, ResourceExt};

use super::decide::MemberView;
use crate::crd::FireCampService;
use crate::error::Result;
use crate::reconcile::Context;
use crate::reconcile::init::{JobOutcome, job_outcome};

const STAGING: &str = "/backup";
/// Where a ZooKeeper member's volumes are mounted (read-only) in its backup Job.
const SOURCE_DATA: &str = "/source/data";
const SOURCE_JOURNAL: &str = "/source/journal";
/// The system's CA bundle in FireCamp's image (Debian's ca-certificates).
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// `<service>-backup`: one at a time per service, like its operations.
pub fn job_name(service: &str) -> String {
    format!("{service}-backup")
}

fn jobs(ctx: &Context, svc: &FireCampService) -> Api<Job> {
    Api::namespaced(ctx.client.clone(), &svc.namespace().unwrap_or_default())
}

/// Fills the current step's member's `backup` view from its Job.
pub async fn observe(ctx: &Context, svc: &FireCampService, op: &Operation, views: &mut BTreeMap<String, MemberView>) -> Result<()> {
    let Some(i) = op.current_step() else { return Ok(()) };
    let step = &op.steps[i];
    if step.action != StepAction::Backup {
        return Ok(());
    }
    let key = format!("{}/{i}", op.id);
    let name = job_name(&svc.name_any());
    let state = match super::step_job::of_step(&jobs(ctx, svc), &name, &key).await? {
        None => Err(format!("the Job {name} that takes the backup is not started yet")),
        Some(job) => match job_outcome(&job) {
            JobOutcome::Complete => Ok(()),
            JobOutcome::Failed(why) => Err(format!("the Job {name} failed: {why}")),
            JobOutcome::Running => Err(format!("taking the backup (Job {name})")),
        },
    };
    if let Some(v) = views.get_mut(&step.member) {
        v.backup = Some(state);
    }
    Ok(())
}

/// Starts the step's Job unless it runs; a Job of an earlier step is deleted first (when
/// FireCamp made it). `Ok(Err(why))`: the Job failed, and with it the step.
pub async fn take(ctx: &Context, svc: &FireCampService, plan: &ServicePlan, member: &str, key: &str) -> Result<std::result::Result<(), String>> {
    let api = jobs(ctx, svc);
    if let Some(answer) = super::step_job::existing(&api, &job_name(&plan.name), &plan.name, key).await? {
        return Ok(answer);
    }
    let (Some(uid), Some(op)) = (svc.metadata.uid.as_deref(), key.split('/').next()) else {
        return Ok(Err("the service has no uid yet".into()));
    };
    // ZooKeeper's files are read from the member's volumes, on the node its pod runs on.
    let node = if plan.engine == EngineKind::Zookeeper {
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &svc.namespace().unwrap_or_default());
        let pod = names::pod_of(&firecamp_core::MemberName::from_string(member.to_string()));
        let found = pods.get_opt(&pod).await.map_err(crate::error::Error::kube("get", "Pod", &pod))?;
        match found.and_then(|p| p.spec?.node_name) {
            Some(n) => Some(n),
            None => return Ok(Err(format!("{member} runs on no node now: its volumes cannot be read"))),
        }
    } else {
        None
    };
    // A cluster's shards are each copied from a replica where one is up (roles as last seen).
    let replicas: Vec<String> =
        svc.status.iter().flat_map(|s| &s.members).filter(|m| m.role == firecamp_api::Role::Replica && m.ready).map(|m| m.name.clone()).collect();
    let Some(job) = backup_job(plan, member, uid, op, node.as_deref(), &replicas) else {
        return Ok(Err(format!("{member} is not a member of {}, or the cluster has no backup bucket", plan.name)));
    };
    super::step_job::create(&api, job, key, svc.controller_owner_ref(&())).await?;
    Ok(Ok(()))
}

/// The Job that backs up `member` for operation `op` of the service (incarnation `uid`), or
/// `None` when the cluster has no bucket or `member` is not the service's. PostgreSQL and
/// Redis are copied over the network; ZooKeeper's database files are read from the member's
/// volumes (mounted read-only, which a ReadWriteOnce volume allows on its `node`).
/// A Redis Cluster's Job copies every shard, each from the first of its members that gives a
/// snapshot: `replicas` (members seen as ready replicas) first.
pub fn backup_job(plan: &ServicePlan, member: &str, uid: &str, op: &str, node: Option<&str>, replicas: &[String]) -> Option<Job> {
    let archive = plan.cluster.archive.as_ref().filter(|_| KubernetesLayout::backs_up(&plan.cluster, &plan.spec))?;
    let m = plan.member(member)?;
    let network = match plan.engine {
        EngineKind::Postgresql => Some((postgresql::PORT, postgresql::REPLICATION_PASSWORD)),
        EngineKind::Redis => Some((redis::PORT, redis::PASSWORD)),
        EngineKind::Zookeeper => None,
        // Refused by validation (no backups yet): no Job.
        EngineKind::Kafka | EngineKind::Mariadb | EngineKind::Cassandra => return None,
    };
    let node = if network.is_none() { Some(node?) } else { None };
    let task =
        firecamp_catalog::InitTask { name: "backup", command: vec!["/bin/bash".into(), "-c".into(), SCRIPT.into()], max_attempts: 2, reads_bucket: false };
    let mut job = crate::reconcile::init::job(plan, &task);
    job.metadata.name = Some(job_name(&plan.name));
    // `bash -c SCRIPT $0 ARGS…`: the first is the script's name.
    let mut args = vec![
        "backup-job".to_string(),
        format!("--root={}/{}", archive.url.trim_end_matches('/'), plan.cluster.namespace),
        format!("--region={}", archive.region),
        format!("--service={}", plan.name),
        format!("--uid={uid}"),
        format!("--operation={op}"),
        format!("--host={}", m.member.dns_name),
        format!("--member={member}"),
        format!("--staging={STAGING}"),
        format!("--server-version={}", plan.version.version),
    ];
    let mut shards: BTreeMap<u32, Vec<&firecamp_catalog::MemberPlan>> = BTreeMap::new();
    for p in &plan.members {
        if let Some(k) = p.shard {
            shards.entry(k).or_default().push(p);
        }
    }
    for (k, mut members) in shards {
        members.sort_by_key(|p| !replicas.iter().any(|r| r == p.member.name.as_str()));
        args.push(format!("--shard={k}:{}", members.iter().map(|p| p.member.dns_name.as_str()).collect::<Vec<_>>().join(",")));
    }
    if let Some((port, password)) = network {
        args.push(format!("--port={port}"));
        args.push(format!("--password-file={K8S_SECRET_DIR}/{password}"));
    } else {
        let logs = if plan.spec.volumes.journal.is_some() { SOURCE_JOURNAL } else { SOURCE_DATA };
        args.push(format!("--snapshots={SOURCE_DATA}/{}", zookeeper::DATABASE_DIR));
        args.push(format!("--logs={logs}/{}", zookeeper::DATABASE_DIR));
    }
    if !archive.endpoint.is_empty() {
        args.push(format!("--endpoint={}", archive.endpoint));
    }
    if plan.tls {
        args.push(format!("--ca-file={K8S_TLS_DIR}/{}", firecamp_catalog::tls::CA_FILE));
    }
    let spec = serde_json::to_string(&plan.spec).ok()?;
    with_bucket(&mut job, plan, STAGING, "512Mi")?;
    let pod = job.spec.as_mut()?.template.spec.as_mut()?;
    let c = pod.containers.first_mut()?;
    c.args = Some(args);
    c.env.get_or_insert_with(Vec::new).push(EnvVar { name: "FIRECAMP_SERVICE_SPEC".into(), value: Some(spec), ..Default::default() });
    let claims: Vec<(&str, &str)> = match node {
        None => Vec::new(),
        Some(_) if plan.spec.volumes.journal.is_some() => vec![(DATA_VOLUME, SOURCE_DATA), (JOURNAL_VOLUME, SOURCE_JOURNAL)],
        Some(_) => vec![(DATA_VOLUME, SOURCE_DATA)],
    };
    let mounts = c.volume_mounts.get_or_insert_with(Vec::new);
    for (volume, path) in &claims {
        mounts.push(VolumeMount { name: format!("source-{volume}"), mount_path: path.to_string(), read_only: Some(true), ..Default::default() });
    }
    let volumes = pod.volumes.get_or_insert_with(Vec::new);
    for (volume, _) in &claims {
        volumes.push(Volume {
            name: format!("source-{volume}"),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: names::pvc(volume, &m.member.name), read_only: Some(true) }),
            ..Default::default()
        });
    }
    pod.node_name = node.map(String::from);
    Some(job)
}

/// What a Job of the service's (made by `reconcile::init::job`) needs to read or write the
/// cluster's bucket: FireCamp's tool and CA bundle copied beside the engine's image by an init
/// container, an emptyDir at `staging` for what it moves (as large as the data: no
/// ephemeral-storage limit of its own), `memory` for its work, and the tenant's bucket
/// credentials beside the service's keys. `None` when the cluster has no bucket.
pub(crate) fn with_bucket(job: &mut Job, plan: &ServicePlan, staging: &str, memory: &str) -> Option<()> {
    let archive = plan.cluster.archive.as_ref()?;
    let pod = job.spec.as_mut()?.template.spec.as_mut()?;
    let c = pod.containers.first_mut()?;
    // The S3 client trusts the system's roots, which an engine's image may lack (Redis's).
    c.env.get_or_insert_with(Vec::new).push(EnvVar {
        name: "SSL_CERT_FILE".into(),
        value: Some(format!("{K8S_TOOL_DIR}/ca-certificates.crt")),
        ..Default::default()
    });
    let q = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect::<BTreeMap<_, _>>();
    c.resources =
        Some(ResourceRequirements { requests: Some(q(&[("cpu", "50m"), ("memory", "64Mi")])), limits: Some(q(&[("memory", memory)])), ..Default::default() });
    let mounts = c.volume_mounts.get_or_insert_with(Vec::new);
    mounts.push(VolumeMount { name: "firecamp-tool".into(), mount_path: K8S_TOOL_DIR.into(), read_only: Some(true), ..Default::default() });
    mounts.push(VolumeMount { name: "staging".into(), mount_path: staging.into(), ..Default::default() });
    pod.init_containers = Some(vec![Container {
        name: "firecamp-tool".into(),
        image: Some(plan.cluster.firecamp_image()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec!["/bin/cp".into(), "/usr/local/bin/firecamp".into(), CA_BUNDLE.into(), format!("{K8S_TOOL_DIR}/")]),
        security_context: c.security_context.clone(),
        resources: Some(ResourceRequirements {
            requests: Some(q(&[("cpu", "10m"), ("memory", "16Mi")])),
            limits: Some(q(&[("memory", "64Mi")])),
            ..Default::default()
        }),
        volume_mounts: Some(vec![VolumeMount { name: "firecamp-tool".into(), mount_path: K8S_TOOL_DIR.into(), ..Default::default() }]),
        ..Default::default()
    }]);
    let volumes = pod.volumes.get_or_insert_with(Vec::new);
    let empty = |name: &str| Volume { name: name.into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() };
    volumes.push(empty("firecamp-tool"));
    volumes.push(empty("staging"));
    if let (Some(creds), Some(v)) = (&archive.credentials_secret, volumes.iter_mut().find(|v| v.name == "secret")) {
        // The service's keys and the tenant's bucket credentials, as the members see them.
        let source = |name: String, items: Option<Vec<KeyToPath>>, optional: Option<bool>| VolumeProjection {
            secret: Some(SecretProjection { name, items, optional }),
            ..Default::default()
        };
        let only = vec![KeyToPath { key: "credentials".into(), path: "aws-credentials".into(), mode: None }];
        *v = Volume {
            name: "secret".into(),
            projected: Some(ProjectedVolumeSource {
                default_mode: Some(0o440),
                sources: Some(vec![source(names::secret(&plan.name), None, None), source(creds.clone(), Some(only), Some(true))]),
            }),
            ..Default::default()
        };
    }
    Some(())
}

/// The Job's command: the bucket's credentials file when the tenant keeps one, else the pod's
/// AWS identity; then the backup.
const SCRIPT: &str = r#"creds=/etc/firecamp/secret/aws-credentials
if [ -f "$creds" ]; then export AWS_SHARED_CREDENTIALS_FILE="$creds"; fi
exec /opt/firecamp/bin/firecamp backup-job "$@""#;

#[cfg(test)]
mod tests {
    use super::*;
    use firecamp_core::cluster::ArchiveTarget;
    use firecamp_core::{ClusterConfig, EngineKind};

    fn plan(archive: Option<ArchiveTarget>) -> ServicePlan {
        let mut spec = firecamp_catalog::examples::spec(EngineKind::Postgresql, 2);
        spec.backup = Some(Default::default());
        let cluster = ClusterConfig { namespace: "team-a".into(), backups: true, archive, ..ClusterConfig::new("prod") };
        let layout = firecamp_catalog::KubernetesLayout::archiving(&cluster, &spec, "pg", "u1");
        firecamp_catalog::plan("pg", &spec, &cluster, &layout, &BTreeMap::new()).unwrap()
    }

    #[test]
    fn the_backup_job_copies_a_member_into_the_namespaces_tree_with_files_not_arguments_for_secrets() {
        let archive = ArchiveTarget { url: "s3://b/fc".into(), region: "us-east-1".into(), endpoint: String::new(), credentials_secret: Some("keys".into()) };
        let job = backup_job(&plan(Some(archive)), "pg-1", "u1", "op-7", None, &[]).unwrap();
        assert_eq!(job.metadata.name.as_deref(), Some("pg-backup"));
        let pod = job.spec.unwrap().template.spec.unwrap();
        let c = &pod.containers[0];
        let args = c.args.clone().unwrap();
        for want in [
            "--root=s3://b/fc/team-a",
            "--uid=u1",
            "--operation=op-7",
            "--member=pg-1",
            "--host=pg-1.team-a.prod-firecamp.com",
            "--password-file=/etc/firecamp/secret/replication-password",
        ] {
            assert!(args.iter().any(|a| a == want), "{want}: {args:?}");
        }
        assert!(!args.iter().any(|a| a.starts_with("--endpoint")), "AWS's own endpoint: {args:?}");
        let env = serde_json::to_string(&c.env).unwrap();
        assert!(!env.contains("password\\\":\\\"") && env.contains("FIRECAMP_SERVICE_SPEC"), "{env}");
        // The tool and FireCamp's CA bundle, which the S3 client is pointed at.
        assert_eq!(pod.init_containers.unwrap()[0].command.clone().unwrap()[1..], ["/usr/local/bin/firecamp", CA_BUNDLE, "/opt/firecamp/bin/"]);
        assert!(env.contains(r#""name":"SSL_CERT_FILE","value":"/opt/firecamp/bin/ca-certificates.crt""#), "{env}");
        let secret = pod.volumes.as_ref().unwrap().iter().find(|v| v.name == "secret").unwrap();
        let sources = secret.projected.as_ref().unwrap().sources.clone().unwrap();
        let keys = sources[1].secret.as_ref().unwrap();
        assert_eq!((keys.name.as_str(), keys.optional), ("keys", Some(true)), "the tenant's credentials, optional");
        assert!(pod.volumes.unwrap().iter().any(|v| v.name == "staging" && v.empty_dir.is_some()));
    }

    #[test]
    fn a_redis_snapshot_is_taken_with_its_password_file_over_tls() {
        let archive = ArchiveTarget { url: "s3://b/fc".into(), region: "us-east-1".into(), endpoint: String::new(), credentials_secret: None };
        let mut spec = firecamp_catalog::examples::spec(EngineKind::Redis, 2);
        spec.backup = Some(Default::default());
        let cluster = ClusterConfig { namespace: "team-a".into(), backups: true, archive: Some(archive), ..ClusterConfig::new("prod") };
        let layout = firecamp_catalog::KubernetesLayout::archiving(&cluster, &spec, "cache", "u1");
        let plan = firecamp_catalog::plan("cache", &spec, &cluster, &layout, &BTreeMap::new()).unwrap();
        let job = backup_job(&plan, "cache-1", "u1", "op-7", None, &[]).unwrap();
        let args = job.spec.unwrap().template.spec.unwrap().containers[0].args.clone().unwrap();
        for want in ["--port=6379", "--password-file=/etc/firecamp/secret/password", "--ca-file=/etc/firecamp/tls/ca.crt", "--member=cache-1"] {
            assert!(args.iter().any(|a| a == want), "{want}: {args:?}");
        }
    }

    #[test]
    fn a_redis_clusters_job_copies_every_shard_from_a_replica_first() {
        let archive = ArchiveTarget { url: "s3://b/fc".into(), region: "us-east-1".into(), endpoint: String::new(), credentials_secret: None };
        let mut spec = firecamp_catalog::examples::redis_cluster(3, 6);
        spec.backup = Some(Default::default());
        let cluster = ClusterConfig { namespace: "team-a".into(), backups: true, archive: Some(archive), ..ClusterConfig::new("prod") };
        let layout = firecamp_catalog::KubernetesLayout::archiving(&cluster, &spec, "rc", "u1");
        let plan = firecamp_catalog::plan("rc", &spec, &cluster, &layout, &BTreeMap::new()).unwrap();
        // rc-2 took over shard 1 (a failover): rc-3 is its replica now.
        let job = backup_job(&plan, "rc-1", "u1", "op-7", None, &["rc-1".into(), "rc-3".into(), "rc-5".into()]).unwrap();
        let args = job.spec.unwrap().template.spec.unwrap().containers[0].args.clone().unwrap();
        let shards: Vec<&String> = args.iter().filter(|a| a.starts_with("--shard=")).collect();
        let d = "team-a.prod-firecamp.com";
        assert_eq!(
            shards,
            [&format!("--shard=0:rc-1.{d},rc-0.{d}"), &format!("--shard=1:rc-3.{d},rc-2.{d}"), &format!("--shard=2:rc-5.{d},rc-4.{d}")],
            "{args:?}"
        );
    }

    #[test]
    fn a_zookeeper_copy_reads_the_members_volumes_on_its_node() {
        let archive = ArchiveTarget { url: "s3://b/fc".into(), region: "us-east-1".into(), endpoint: String::new(), credentials_secret: None };
        let mut spec = firecamp_catalog::examples::spec(EngineKind::Zookeeper, 3);
        spec.backup = Some(Default::default());
        spec.volumes.journal = Some(firecamp_core::spec::VolumeSpec::new("2Gi"));
        let cluster = ClusterConfig { namespace: "team-a".into(), backups: true, archive: Some(archive), ..ClusterConfig::new("prod") };
        let layout = firecamp_catalog::KubernetesLayout::archiving(&cluster, &spec, "zk", "u1");
        let plan = firecamp_catalog::plan("zk", &spec, &cluster, &layout, &BTreeMap::new()).unwrap();
        assert!(backup_job(&plan, "zk-1", "u1", "op-7", None, &[]).is_none(), "not without the member's node");
        let pod = backup_job(&plan, "zk-1", "u1", "op-7", Some("node-b"), &[]).unwrap().spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.node_name.as_deref(), Some("node-b"));
        let args = pod.containers[0].args.clone().unwrap();
        for want in ["--snapshots=/source/data/zookeeper/version-2", "--logs=/source/journal/zookeeper/version-2"] {
            assert!(args.iter().any(|a| a == want), "{want}: {args:?}");
        }
        assert!(!args.iter().any(|a| a.starts_with("--password-file")), "{args:?}");
        let claims: Vec<(String, Option<bool>)> =
            pod.volumes.unwrap().into_iter().filter_map(|v| v.persistent_volume_claim.map(|c| (c.claim_name, c.read_only))).collect();
        assert_eq!(claims, [("data-zk-1".to_string(), Some(true)), ("journal-zk-1".to_string(), Some(true))]);
        let mounts = pod.containers[0].volume_mounts.clone().unwrap();
        assert!(mounts.iter().filter(|m| m.mount_path.starts_with("/source/")).all(|m| m.read_only == Some(true)));
    }

    #[test]
    fn no_job_without_a_bucket_or_for_a_stranger() {
        assert!(backup_job(&plan(None), "pg-1", "u1", "op-7", None, &[]).is_none());
        let archive = ArchiveTarget { url: "s3://b/fc".into(), region: "us-east-1".into(), endpoint: String::new(), credentials_secret: None };
        assert!(backup_job(&plan(Some(archive)), "other-0", "u1", "op-7", None, &[]).is_none());
    }
}
