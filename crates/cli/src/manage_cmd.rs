//! `firecamp manage` (the manage service) and `firecamp install` (its deployment manifests).

use clap::{Args, Subcommand};
use firecamp_core::ClusterConfig;
use firecamp_manage::config::{FIELD_MANAGER, ManageConfig};
use firecamp_manage::install::{self, InstallOptions};

use crate::args::ObjectFormat;
use crate::error::CliError;

#[derive(Args)]
pub struct ManageArgs {
    /// Cluster name; the members' DNS zone is `<cluster>-firecamp.com`.
    #[arg(long, env = "FIRECAMP_CLUSTER")]
    pub cluster: String,
    /// Networks (CIDRs) clients connect from (repeatable).
    #[arg(long = "network", value_delimiter = ',', default_value = "10.0.0.0/8")]
    pub networks: Vec<String>,
    /// The cluster's availability zones: services may place members only in these (not
    /// checked when absent).
    #[arg(long, value_delimiter = ',')]
    pub zones: Vec<String>,
    #[arg(long, default_value = firecamp_core::cluster::EBS_CSI_PROVISIONER)]
    pub volume_provisioner: String,
    /// Watch only this namespace (all namespaces by default).
    #[arg(long)]
    pub watch_namespace: Option<String>,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = install::NAMESPACE)]
    pub lease_namespace: String,
    /// This replica's identity in the Lease.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Address of the REST API (served by every replica, leader or not).
    #[arg(long, env = "FIRECAMP_LISTEN", default_value = "0.0.0.0:27040")]
    pub listen: std::net::SocketAddr,
    /// HTTPS with a CA FireCamp makes once and keeps in this Secret of the Lease's namespace
    /// (its certificate is published in the ConfigMap of the same name, for clients); each
    /// replica mints its own serving certificate from it.
    #[arg(long, env = "FIRECAMP_TLS_CA_SECRET", conflicts_with = "tls_cert")]
    pub tls_ca_secret: Option<String>,
    /// This replica's address, put in its minted certificate (the downward API's status.podIP).
    #[arg(long, env = "POD_IP")]
    pub pod_ip: Option<std::net::IpAddr>,
    /// TLS certificate chain (PEM) of the REST API, read again each minute (a mounted
    /// cert-manager Secret); instead of --tls-ca-secret.
    #[arg(long, env = "FIRECAMP_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// TLS private key (PEM) of the REST API.
    #[arg(long, env = "FIRECAMP_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Serve plain HTTP on a non-loopback --listen address (bearer tokens in the clear).
    #[arg(long)]
    pub insecure_http: bool,
    /// Manage the members' Route53 records, EC2 static IPs and CloudWatch log streams.
    #[arg(long, env = "FIRECAMP_AWS", requires = "vpc_id")]
    pub aws: bool,
    /// The cluster's VPC (the private hosted zone is associated with it; static IPs come from its subnets).
    #[arg(long, env = "FIRECAMP_VPC_ID")]
    pub vpc_id: Option<String>,
    /// AWS region; the SDK's default chain (AWS_REGION, profile, instance metadata) when absent.
    #[arg(long, env = "AWS_REGION")]
    pub aws_region: Option<String>,
    /// Endpoint of every AWS service (tests point it at moto).
    #[arg(long, env = "FIRECAMP_AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
    /// TTL of the members' DNS records, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=86400))]
    pub dns_ttl: u32,
    /// Where members' roles come from: `engine` (ask each member over its protocol) or
    /// `labels` (the pods' role labels as set by someone else: test beds whose pods run no server).
    #[arg(long, value_enum, default_value_t = firecamp_manage::config::RoleSource::Engine)]
    pub role_source: firecamp_manage::config::RoleSource,
    /// Retention of the cluster's log group, in days (CloudWatch's allowed values); forever when absent.
    #[arg(long)]
    pub log_retention_days: Option<i32>,
    /// Pull every image (engines, member-init) from this registry instead of its own, keeping
    /// the repository path and pinned tag: an air-gapped mirror, or the test bed's `firecamp.local`.
    #[arg(long, env = "FIRECAMP_IMAGE_REGISTRY")]
    pub image_registry: Option<String>,
    /// The bucket PostgreSQL members with `spec.backup` archive their WAL into
    /// (`s3://bucket/prefix`; each service under `<prefix>/<namespace>/<service>/<uid>/`),
    /// checked at start with a listing; region and endpoint are --aws-region's and
    /// --aws-endpoint-url's (docs/backup.md).
    #[arg(long, env = "FIRECAMP_BACKUP_TARGET")]
    pub backup_target: Option<String>,
    /// With --backup-target: a Secret each tenant keeps in its own namespace, whose key
    /// `credentials` (an AWS shared-credentials file) its members archive with; members without
    /// it use their pod's AWS identity (IRSA, EKS Pod Identity, the node's role).
    #[arg(long, env = "FIRECAMP_BACKUP_CREDENTIALS_SECRET", requires = "backup_target")]
    pub backup_credentials_secret: Option<String>,
}

#[derive(Subcommand)]
pub enum InstallCommand {
    /// Print FireCamp's deployment for a cluster: CRD, namespace, RBAC, manage service, log
    /// DaemonSet; with --iam-policy, the IAM policies instead.
    Render(RenderArgs),
    /// Print only the FireCampService CRD.
    Crd,
    /// Create (once, idempotently) the cluster's private hosted zone `<cluster>-firecamp.com`
    /// for the VPC and print its id: an administrator's step, so the manage service's IAM
    /// policy needs no route53:CreateHostedZone.
    AwsZone(crate::aws_zone_cmd::AwsZoneArgs),
}

#[derive(Args)]
pub struct RenderArgs {
    #[arg(long, env = "FIRECAMP_CLUSTER")]
    pub cluster: String,
    /// The cluster's availability zones: the manage service refuses services placed elsewhere.
    #[arg(long, value_delimiter = ',', env = "FIRECAMP_ZONES")]
    pub zones: Vec<String>,
    #[arg(long = "network", value_delimiter = ',', default_value = "10.0.0.0/8")]
    pub networks: Vec<String>,
    #[arg(long, default_value = firecamp_core::cluster::EBS_CSI_PROVISIONER)]
    pub volume_provisioner: String,
    /// The manage service's image; FireCamp's pinned image (from --image-registry when given) by default.
    #[arg(long)]
    pub image: Option<String>,
    /// Pull every image from this registry instead of its own (see `manage --image-registry`).
    #[arg(long)]
    pub image_registry: Option<String>,
    /// A Secret of the firecamp-system namespace whose keys become the manage service's
    /// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) where neither IRSA nor an
    /// instance role gives it credentials.
    #[arg(long)]
    pub aws_credentials_secret: Option<String>,
    /// The bucket PostgreSQL members with `spec.backup` archive WAL into (`s3://bucket/prefix`;
    /// `manage --backup-target`); with --iam-policy, the policy members need for it too.
    #[arg(long)]
    pub backup_target: Option<String>,
    /// With --backup-target: the Secret each tenant keeps in its namespace with the bucket's
    /// credentials for its members (`manage --backup-credentials-secret`).
    #[arg(long, requires = "backup_target")]
    pub backup_credentials_secret: Option<String>,
    /// Endpoint of every AWS service for the manage service (VPC endpoints, or moto in tests).
    #[arg(long)]
    pub aws_endpoint_url: Option<String>,
    /// Run the manage service only on nodes with this label (KEY=VALUE, repeatable).
    #[arg(long = "node-selector", value_parser = parse_label)]
    pub node_selector: Vec<(String, String)>,
    /// Manage the services of this namespace only: a Role there gives the namespaced rights,
    /// the ClusterRole only nodes, StorageClasses and reviews. The namespace must exist.
    #[arg(long)]
    pub watch_namespace: Option<String>,
    /// AWS region of the log group the log DaemonSet writes to.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// IAM role of the log agent for IRSA; the node's instance role when absent.
    #[arg(long)]
    pub log_agent_role_arn: Option<String>,
    /// IAM role of the manage service for IRSA (EKS: its ServiceAccount is annotated
    /// `eks.amazonaws.com/role-arn`); the node's instance role or --aws-credentials-secret
    /// when absent.
    #[arg(long)]
    pub service_account_role_arn: Option<String>,
    /// Print the IRSA trust policies of the manage service's and the log agent's roles instead
    /// of the objects (needs --account-id and --oidc-provider).
    #[arg(long, requires_all = ["account_id", "oidc_provider"], conflicts_with = "iam_policy")]
    pub iam_trust_policy: bool,
    /// The EKS cluster's OIDC issuer (`aws eks describe-cluster --query cluster.identity.oidc.issuer`).
    #[arg(long)]
    pub oidc_provider: Option<String>,
    /// Serve the REST API with this Secret's tls.crt and tls.key (kept by someone else, re-read
    /// each minute) instead of FireCamp's own CA.
    #[arg(long, group = "api_tls")]
    pub tls_secret: Option<String>,
    /// Serve the REST API with a cert-manager Certificate from this issuer:
    /// `Issuer/NAME` (in firecamp-system) or `ClusterIssuer/NAME`.
    #[arg(long, group = "api_tls", value_parser = parse_issuer)]
    pub cert_manager_issuer: Option<(String, String)>,
    /// Serve the REST API on plain HTTP (bearer tokens in the clear).
    #[arg(long, group = "api_tls")]
    pub insecure_http: bool,
    /// Add the Prometheus Operator's objects (docs/monitoring.md): a ServiceMonitor of the
    /// manage service, a PodMonitor of every member's metrics, a PrometheusRule of the alerts.
    #[arg(long)]
    pub prometheus_operator: bool,
    /// Print the least-privilege IAM policies (manage service, log agent) instead of the objects.
    #[arg(long, requires_all = ["account_id", "vpc_id", "hosted_zone_id"])]
    pub iam_policy: bool,
    #[arg(long)]
    pub account_id: Option<String>,
    /// The cluster VPC: with it the manage service runs with `--aws` (Route53, static IPs, logs).
    #[arg(long)]
    pub vpc_id: Option<String>,
    /// The cluster's Route53 private hosted zone id (`<cluster>-firecamp.com`).
    #[arg(long)]
    pub hosted_zone_id: Option<String>,
    #[arg(long, default_value = "aws")]
    pub partition: String,
    #[arg(short, long, value_enum, default_value_t = ObjectFormat::Yaml)]
    pub output: ObjectFormat,
}

pub async fn manage(a: ManageArgs) -> Result<(), CliError> {
    let tls = rest_tls(&a);
    firecamp_manage::rest::check_listen(a.listen, tls.is_some(), a.insecure_http).map_err(CliError::Usage)?;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let mut cluster = ClusterConfig::new(a.cluster.clone());
    cluster.networks = a.networks.clone();
    cluster.volume_provisioner = a.volume_provisioner.clone();
    cluster.image_registry = a.image_registry.clone();
    cluster.zones = a.zones.clone();
    // The manage service runs in the Lease's namespace: the services' NetworkPolicies admit it.
    cluster.manage_namespace = a.lease_namespace.clone();
    if let Some(p) = a.backup_credentials_secret.as_deref().and_then(firecamp_core::names::dns1123_label_problem) {
        return Err(CliError::Usage(format!("--backup-credentials-secret: {p}")));
    }
    let mut errs = firecamp_core::ValidationErrors::default();
    cluster.validate(&mut errs);
    errs.into_result()?;
    let archive = crate::aws_cloud::archive(&a).await?;
    if let Some(archive) = &archive {
        cluster.backups = true;
        cluster.archive = Some(archive.clone());
    }
    let identity = a.identity.clone().unwrap_or_else(|| format!("firecamp-manage-{}", std::process::id()));
    let mut cloud = crate::aws_cloud::cloud(&a).await?;
    if let Some(archive) = &archive {
        cloud.backups = Some(crate::aws_cloud::backups(archive).await?);
    }
    if !cloud.is_empty() {
        tracing::info!(?cloud, "AWS parts enabled");
    }
    let config =
        ManageConfig { cluster, watch_namespace: a.watch_namespace.clone(), field_manager: FIELD_MANAGER.into(), identity, cloud, role_source: a.role_source };
    let client = counted_client().await?;
    let mut config = config;
    config.cluster.cert_manager = firecamp_manage::reconcile::issued::cert_manager_served(&client).await;
    let rest = firecamp_manage::rest::RestConfig {
        listen: a.listen,
        tls,
        cluster: config.cluster.clone(),
        watch_namespace: config.watch_namespace.clone(),
        cloud: config.cloud.clone(),
    };
    let elector = firecamp_manage::leader::Elector::new(client.clone(), &a.lease_namespace, &config.identity);
    // The REST API serves on every replica; the controller runs on the leader. SIGTERM (a pod
    // deleted, a rolling update) stops both at once and hands the Lease over, so the other
    // replica leads within its 2 s poll rather than after the lease's 15 s.
    let result = tokio::select! {
        r = firecamp_manage::rest::serve(client.clone(), rest) => r,
        r = firecamp_manage::run::run(client, config, &a.lease_namespace) => r,
        _ = stop_signal() => {
            tracing::info!("stopping on a signal");
            Ok(())
        }
    };
    if let Err(e) = elector.release().await {
        tracing::warn!(error = %e, "releasing the lease");
    }
    result.map_err(|e| CliError::Failed(format!("{e:#}")))
}

/// HTTPS from files, or from FireCamp's CA for the Service's names, loopback and the pod's IP.
fn rest_tls(a: &ManageArgs) -> Option<firecamp_manage::rest::Tls> {
    use firecamp_manage::rest::{Tls, TlsFiles, ca};
    if let (Some(cert), Some(key)) = (&a.tls_cert, &a.tls_key) {
        return Some(Tls::Files(TlsFiles { cert: cert.clone(), key: key.clone() }));
    }
    let secret = a.tls_ca_secret.clone()?;
    let mut ips: Vec<std::net::IpAddr> = vec![std::net::Ipv4Addr::LOCALHOST.into(), std::net::Ipv6Addr::LOCALHOST.into()];
    ips.extend(a.pod_ip);
    if !a.listen.ip().is_unspecified() && !ips.contains(&a.listen.ip()) {
        ips.push(a.listen.ip());
    }
    Some(Tls::OwnCa { namespace: a.lease_namespace.clone(), secret, names: ca::serving_names(install::NAME, &a.lease_namespace), ips })
}

/// An `s3://bucket/prefix` URL as S3 allows it (it reaches the manage service's arguments).
#[cfg(feature = "aws")]
fn backup_target_ok(t: &str) -> Result<(), CliError> {
    firecamp_aws::s3::S3Url::parse(t).map(|_| ()).map_err(|e| CliError::Usage(format!("--backup-target: {e}")))
}

#[cfg(not(feature = "aws"))]
fn backup_target_ok(_: &str) -> Result<(), CliError> {
    Err(CliError::Usage("--backup-target: this firecamp was built without AWS support (cargo feature `aws`)".into()))
}

/// `Issuer/NAME` or `ClusterIssuer/NAME`.
fn parse_issuer(s: &str) -> Result<(String, String), String> {
    firecamp_core::spec::CertIssuer::parse(s).map(|i| (i.kind.as_str().to_string(), i.name))
}

/// SIGTERM or SIGINT.
async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

pub async fn install(c: InstallCommand) -> Result<(), CliError> {
    match c {
        InstallCommand::Crd => {
            print!("{}", firecamp_manage::crd::crd_yaml());
            Ok(())
        }
        InstallCommand::AwsZone(a) => crate::aws_zone_cmd::run(a).await,
        InstallCommand::Render(a) => {
            #[cfg(not(feature = "aws"))]
            if a.iam_policy {
                return Err(CliError::Usage("this firecamp was built without AWS support (cargo feature `aws`)".into()));
            }
            #[cfg(not(feature = "aws"))]
            if a.iam_trust_policy {
                return Err(CliError::Usage("this firecamp was built without AWS support (cargo feature `aws`)".into()));
            }
            #[cfg(feature = "aws")]
            if a.iam_trust_policy {
                let account = a.account_id.clone().unwrap_or_default();
                if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
                    return Err(CliError::Usage(format!("--account-id: {account:?} is not a 12-digit AWS account id")));
                }
                let oidc = a.oidc_provider.clone().unwrap_or_default();
                if let Some(p) = firecamp_aws::iam::oidc_provider_problem(&oidc) {
                    return Err(CliError::Usage(format!("--oidc-provider: {p}")));
                }
                let trust = |sa: &str| firecamp_aws::iam::irsa_trust_policy(&a.partition, &account, &oidc, install::NAMESPACE, sa);
                let doc = serde_json::json!({
                    "manageService": trust(install::NAME),
                    "logAgent": trust(&firecamp_kube::logging::service_account_name(&a.cluster)),
                });
                println!("{}", crate::output::json(&doc)?);
                return Ok(());
            }
            #[cfg(feature = "aws")]
            if a.iam_policy {
                let scope = firecamp_aws::iam::PolicyScope {
                    partition: a.partition,
                    account_id: a.account_id.unwrap_or_default(),
                    region: a.region,
                    cluster: a.cluster,
                    vpc_id: a.vpc_id.unwrap_or_default(),
                    hosted_zone_id: a.hosted_zone_id.unwrap_or_default().trim_start_matches("/hostedzone/").to_string(),
                };
                let mut doc = serde_json::json!({
                    "manageService": firecamp_aws::iam::manage_service_policy(&scope),
                    "logAgent": firecamp_aws::iam::log_agent_policy(&scope),
                });
                if let Some(t) = &a.backup_target {
                    let url = firecamp_aws::s3::S3Url::parse(t).map_err(|e| CliError::Usage(format!("--backup-target: {e}")))?;
                    // Members' identity (and the manage service's, which lists the prefix).
                    doc["backups"] = firecamp_aws::iam::s3_backup_policy(&scope.partition, &url);
                }
                println!("{}", crate::output::json(&doc)?);
                return Ok(());
            }
            if let Some(p) = a.image_registry.as_deref().and_then(firecamp_core::cluster::registry_problem) {
                return Err(CliError::Usage(format!("--image-registry: {p}")));
            }
            // Both reach the manage service's Deployment (a Secret reference, an argument).
            // Role ARNs become ServiceAccount annotations.
            for (flag, arn) in [("--service-account-role-arn", &a.service_account_role_arn), ("--log-agent-role-arn", &a.log_agent_role_arn)] {
                if let Some(p) = arn.as_deref().and_then(role_arn_problem) {
                    return Err(CliError::Usage(format!("{flag}: {p}")));
                }
            }
            if let Some(p) = a.aws_credentials_secret.as_deref().and_then(firecamp_core::names::dns1123_label_problem) {
                return Err(CliError::Usage(format!("--aws-credentials-secret: {p}")));
            }
            if let Some(p) = a.backup_credentials_secret.as_deref().and_then(firecamp_core::names::dns1123_label_problem) {
                return Err(CliError::Usage(format!("--backup-credentials-secret: {p}")));
            }
            if let Some(t) = &a.backup_target {
                backup_target_ok(t)?;
            }
            if let Some(p) = a.tls_secret.as_deref().and_then(firecamp_core::names::dns1123_subdomain_problem) {
                return Err(CliError::Usage(format!("--tls-secret: {p}")));
            }
            if let Some(u) = a.aws_endpoint_url.as_deref().filter(|u| !endpoint_url_ok(u)) {
                return Err(CliError::Usage(format!("--aws-endpoint-url: {u:?} is not an http(s) URL of letters, digits and .-:/_")));
            }
            if let Some(p) = a.watch_namespace.as_deref().and_then(firecamp_core::names::dns1123_label_problem) {
                return Err(CliError::Usage(format!("--watch-namespace: {p}")));
            }
            if a.zones.is_empty() {
                return Err(CliError::Usage("--zones is required: the cluster's availability zones, e.g. us-east-1a,us-east-1b,us-east-1c".into()));
            }
            // They reach the manage service's arguments: each a zone name, each once.
            let mut errs = firecamp_core::ValidationErrors::default();
            ClusterConfig { zones: a.zones.clone(), ..ClusterConfig::new(a.cluster.clone()) }.validate(&mut errs);
            if let Some(e) = errs.0.iter().find(|e| e.field.starts_with("zones")) {
                return Err(CliError::Usage(format!("--zones: {}", e.message)));
            }
            let agent = firecamp_kube::logging::log_agent(&firecamp_kube::logging::LogAgentParams {
                namespace: install::NAMESPACE.into(),
                cluster: a.cluster.clone(),
                region: a.region.clone(),
                role_arn: a.log_agent_role_arn.clone(),
            });
            let options = InstallOptions {
                cluster: a.cluster,
                zones: a.zones,
                networks: a.networks,
                volume_provisioner: a.volume_provisioner,
                image: a.image.unwrap_or_else(|| {
                    let mut c = ClusterConfig::new(String::new());
                    c.image_registry = a.image_registry.clone();
                    c.firecamp_image()
                }),
                image_registry: a.image_registry,
                aws_vpc_id: a.vpc_id.clone(),
                aws_region: Some(a.region.clone()),
                aws_endpoint_url: a.aws_endpoint_url,
                aws_credentials_secret: a.aws_credentials_secret,
                backup_target: a.backup_target,
                backup_credentials_secret: a.backup_credentials_secret,
                service_account_role_arn: a.service_account_role_arn,
                node_selector: a.node_selector.into_iter().collect(),
                watch_namespace: a.watch_namespace,
                tls: match (a.tls_secret, a.cert_manager_issuer) {
                    (Some(name), _) => install::ApiTls::Secret(name),
                    (_, Some((kind, name))) => install::ApiTls::CertManager { kind, name },
                    _ if a.insecure_http => install::ApiTls::InsecureHttp,
                    _ => install::ApiTls::OwnCa,
                },
            };
            let mut objs = install::render(&options);
            if a.prometheus_operator {
                objs.extend(firecamp_manage::monitoring::render(&options).map_err(|e| CliError::Failed(format!("deploy/monitoring/alerts.yaml: {e}")))?);
            }
            let value = |v: serde_json::Result<serde_json::Value>| v.map_err(|e| CliError::Failed(e.to_string()));
            objs.push(value(serde_json::to_value(&agent.service_account))?);
            objs.push(value(serde_json::to_value(&agent.cluster_role))?);
            objs.push(value(serde_json::to_value(&agent.cluster_role_binding))?);
            objs.push(value(serde_json::to_value(&agent.config_map))?);
            objs.push(value(serde_json::to_value(&agent.daemon_set))?);
            let text = match a.output {
                ObjectFormat::Json => crate::output::json(&serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objs}))? + "\n",
                ObjectFormat::Yaml => {
                    let mut out = String::new();
                    for o in &objs {
                        out.push_str("---\n");
                        out.push_str(&crate::output::yaml(o)?);
                    }
                    out
                }
            };
            print!("{text}");
            Ok(())
        }
    }
}

/// An endpoint URL: http or https, and only characters a host, port and path need.
fn endpoint_url_ok(u: &str) -> bool {
    let rest = u.strip_prefix("https://").or_else(|| u.strip_prefix("http://")).unwrap_or("");
    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:/_".contains(&b))
}

/// `KEY=VALUE` of a node label; both parts must be valid label syntax.
fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("{s:?} is not KEY=VALUE"))?;
    if let Some(p) = firecamp_core::labels::key_problem(k).or_else(|| firecamp_core::labels::value_problem(v)) {
        return Err(format!("{s:?}: {p}"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// A Kubernetes client that counts its requests for `/metrics` (the API budget) and bounds those
/// in flight (`kube_in_flight.rs`: the pool's connections are most of the service's memory).
async fn counted_client() -> Result<kube::Client, CliError> {
    let config = kube::Config::infer().await.map_err(|e| CliError::Failed(format!("no Kubernetes configuration: {e}")))?;
    #[cfg(feature = "aws")]
    firecamp_manage::rest::metrics::METRICS.count_aws(firecamp_aws::metrics::snapshot);
    firecamp_manage::kube_in_flight::client(config).map_err(|e| CliError::Failed(format!("cannot reach Kubernetes: {e}")))
}

/// Why `arn` is not an IAM role ARN (`arn:<partition>:iam::<12 digits>:role/<path and name>`),
/// if it is not: it becomes an annotation, so only the characters IAM allows in role names.
fn role_arn_problem(arn: &str) -> Option<String> {
    let ok = (|| {
        let rest = arn.strip_prefix("arn:")?;
        let (partition, rest) = rest.split_once(":iam::")?;
        let (account, name) = rest.split_once(":role/")?;
        let partition_ok = ["aws", "aws-cn", "aws-us-gov"].contains(&partition);
        let account_ok = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
        let name_ok = !name.is_empty() && name.len() <= 512 && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c));
        (partition_ok && account_ok && name_ok).then_some(())
    })();
    ok.is_none().then(|| format!("{arn:?} is not an IAM role ARN such as arn:aws:iam::123456789012:role/firecamp-manage"))
}
