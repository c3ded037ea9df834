//! `firecamp service create`: turns flags into a spec, plans it through the catalog and, with
//! --dry-run, prints the Kubernetes objects FireCamp would create.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use firecamp_catalog::layout::KubernetesLayout;
use firecamp_catalog::plan;
use firecamp_core::spec::{VolumeSpec, VolumeType, Volumes};
use firecamp_core::{ClusterConfig, EngineKind, ServiceSpec};
use firecamp_kube::{Secrets, build, objects};
use rand::distr::{Alphanumeric, SampleString};

use crate::args::{CreateArgs, ObjectFormat, ServerArgs};
use crate::backend::Backend;
use crate::error::CliError;
use crate::options::{engine_options, member_pairs, option_error, pairs};
use crate::wait::{Until, wait};

pub async fn run(client: &Backend, server: &ServerArgs, args: CreateArgs) -> Result<(), CliError> {
    let engine = EngineKind::parse(&args.engine).map_err(CliError::Usage)?;
    let mut args = args;
    // On one machine zones are only labels: a local runtime's services default to `local`.
    if args.zones.is_empty() && !args.dry_run && matches!(client, Backend::Rest(c) if crate::client::local_runtime(c.base()).is_some()) {
        args.zones = vec![LOCAL_ZONE.to_string()];
    }
    let spec = spec_from_args(engine, &args)?;
    let cluster = ClusterConfig {
        name: args.cluster.clone(),
        namespaced_names: true,
        namespace: server.namespace.clone(),
        networks: args.networks.clone(),
        volume_provisioner: args.volume_provisioner.clone(),
        image_registry: args.image_registry.clone(),
        manage_namespace: firecamp_core::cluster::DEFAULT_MANAGE_NAMESPACE.into(),
        // The client does not know the cluster's zones; the manage service checks them.
        zones: Vec::new(),
        // Whether the target runtime keeps backups only it knows (the local runtime does):
        // a created spec is checked there; a dry run renders Kubernetes objects, which have none.
        backups: !args.dry_run,
        // Whether cert-manager runs there too: the manage service knows and checks.
        cert_manager: true,
        // The manage service knows its bucket and checks what it can archive.
        archive: None,
    };
    let static_ips = static_ips(&args.static_ips)?;
    let plan = plan(&args.name, &spec, &cluster, &KubernetesLayout::default(), &static_ips)?;
    if !args.dry_run {
        // The manage service validates again and fills in its cluster's settings.
        let req = firecamp_api::CreateService { name: args.name.clone(), spec };
        let created = client.create(&req).await?;
        println!("created {} ({} members)", created.name, created.spec.replicas);
        if args.wait.wait {
            wait(client, &args.name, Until::Phase(firecamp_api::Phase::Active), args.wait).await?;
        }
        return Ok(());
    }
    let secrets = if args.show_secrets { Secrets::Values(plan.secret_keys.iter().map(|k| (k.to_string(), password())).collect()) } else { Secrets::Redacted };
    let objs = build(&plan, &secrets);
    let text = match args.output {
        ObjectFormat::Yaml => objects::to_yaml(&objs),
        ObjectFormat::Json => objects::to_json(&objs).map(|s| s + "\n"),
    }
    .map_err(CliError::Failed)?;
    print!("{text}");
    Ok(())
}

/// The zone of a local runtime's services when `--zones` is not given.
pub const LOCAL_ZONE: &str = "local";

/// 32 alphanumeric characters (about 190 bits); the start scripts refuse anything else.
fn password() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 32)
}

fn spec_from_args(engine: EngineKind, a: &CreateArgs) -> Result<ServiceSpec, CliError> {
    let volume_type = |flag: &str, v: &str| {
        serde_json::from_value::<VolumeType>(serde_json::Value::from(v))
            .map_err(|_| CliError::Usage(format!("--{flag} {v:?}: allowed types are gp3, gp2, io1, io2, st1, sc1")))
    };
    let data = VolumeSpec {
        size: a.volume_size.clone(),
        volume_type: volume_type("volume-type", &a.volume_type)?,
        iops: a.volume_iops,
        throughput: a.volume_throughput,
        encrypted: !a.no_encryption,
        kms_key_id: a.kms_key_id.clone(),
    };
    let journal = match &a.journal_size {
        None => None,
        Some(size) => Some(VolumeSpec {
            size: size.clone(),
            volume_type: volume_type("journal-type", &a.journal_type)?,
            iops: a.journal_iops,
            throughput: a.journal_throughput,
            ..data.clone()
        }),
    };
    if a.zones.is_empty() {
        return Err(CliError::Usage(
            "--zones is required (except on a local runtime): the availability zones in placement order, e.g. --zones us-east-1a,us-east-1b,us-east-1c (or FIRECAMP_ZONES)".into(),
        ));
    }
    let mut spec = ServiceSpec {
        engine,
        version: a.version.clone(),
        replicas: 0,
        zones: a.zones.clone(),
        resources: a.resources.to_resources(),
        volumes: Volumes { data, journal },
        postgresql: None,
        redis: None,
        zookeeper: None,
        kafka: None,
        mariadb: None,
        cassandra: None,
        update_policy: None,
        config: pairs("set", &a.set)?,
        member_config: member_pairs("member-set", &a.member_set)?,
        stopped: false,
        labels: pairs("label", &a.labels)?,
        annotations: pairs("annotation", &a.annotations)?,
        clients: firecamp_core::spec::Clients { namespaces: a.client_namespaces.clone(), cidrs: a.client_cidrs.clone(), network_policy: !a.no_network_policy },
        tls: firecamp_core::spec::TlsSpec { allow_plaintext: a.allow_plaintext, issuer: a.tls_issuer.clone() },
        failover: firecamp_core::spec::FailoverSpec { delay_seconds: a.failover_delay, disabled: a.no_failover },
        backup: a.backup.then_some(firecamp_core::spec::BackupSpec { retention: a.backup_retention, schedule: a.backup_schedule.clone() }),
    };
    if let Some(opts) = engine_options(&a.options)? {
        match engine {
            EngineKind::Postgresql => spec.postgresql = Some(serde_json::from_value(opts).map_err(|e| option_error(engine, e))?),
            EngineKind::Redis => spec.redis = Some(serde_json::from_value(opts).map_err(|e| option_error(engine, e))?),
            EngineKind::Zookeeper => spec.zookeeper = Some(serde_json::from_value(opts).map_err(|e| option_error(engine, e))?),
            EngineKind::Kafka => spec.kafka = Some(serde_json::from_value(opts).map_err(|e| option_error(engine, e))?),
            EngineKind::Mariadb => spec.mariadb = Some(serde_json::from_value(opts).map_err(|e| option_error(engine, e))?),
            EngineKind::Cassandra => spec.cassandra = Some(serde_json::from_value(opts).map_err(|e| option_error(engine, e))?),
        }
    }
    spec.replicas = a.replicas.unwrap_or_else(|| match spec.redis.as_ref().and_then(|r| r.shards) {
        Some(shards) => shards * 2,
        None => 3,
    });
    Ok(spec)
}

fn static_ips(items: &[String]) -> Result<BTreeMap<String, Ipv4Addr>, CliError> {
    pairs("static-ip", items)?
        .into_iter()
        .map(|(m, ip)| ip.parse().map(|ip| (m.clone(), ip)).map_err(|_| CliError::Usage(format!("--static-ip {m}={ip}: {ip:?} is not an IPv4 address"))))
        .collect()
}
