//! `firecamp install aws-zone`: the cluster's private hosted zone, made once at install time by
//! an administrator, so the manage service's IAM policy needs no `route53:CreateHostedZone`.

use clap::Args;

use crate::error::CliError;

#[derive(Args)]
pub struct AwsZoneArgs {
    /// Cluster name; the zone is `<cluster>-firecamp.com`.
    #[arg(long, env = "FIRECAMP_CLUSTER")]
    pub cluster: String,
    /// The cluster's VPC, which the private zone is associated with.
    #[arg(long)]
    pub vpc_id: String,
    /// AWS region of the VPC; the SDK's default chain (AWS_REGION, profile) when absent.
    #[arg(long, env = "AWS_REGION")]
    pub aws_region: Option<String>,
    /// Endpoint of every AWS service (tests point it at moto).
    #[arg(long, env = "FIRECAMP_AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
}

/// Finds or creates the zone; prints its id (without `/hostedzone/`) on stdout, for
/// `install render --iam-policy --hosted-zone-id`, and what it did on stderr.
#[cfg(feature = "aws")]
pub async fn run(a: AwsZoneArgs) -> Result<(), CliError> {
    let cluster = firecamp_core::ClusterConfig::new(a.cluster.clone());
    let mut errs = firecamp_core::ValidationErrors::default();
    cluster.validate(&mut errs);
    errs.into_result()?;
    if !a.vpc_id.starts_with("vpc-") {
        return Err(CliError::Usage(format!("--vpc-id {:?} is not a VPC id (vpc-…)", a.vpc_id)));
    }
    let settings = firecamp_aws::AwsSettings { region: a.aws_region.clone(), endpoint_url: a.aws_endpoint_url.clone(), ..Default::default() };
    let clients = firecamp_aws::Clients::new(&settings).await;
    if clients.region.is_empty() {
        return Err(CliError::Usage("no AWS region: pass --aws-region or set AWS_REGION".into()));
    }
    let dns = firecamp_aws::Route53Dns::new(&clients, &a.cluster, &a.vpc_id);
    let (id, created) = dns.create_zone().await.map_err(|e| CliError::Failed(format!("the hosted zone {}: {e}", dns.domain())))?;
    let id = id.trim_start_matches("/hostedzone/");
    let what = if created { "created" } else { "already there" };
    eprintln!("private hosted zone {} of VPC {}: {what}", dns.domain(), a.vpc_id);
    println!("{id}");
    Ok(())
}

#[cfg(not(feature = "aws"))]
pub async fn run(_: AwsZoneArgs) -> Result<(), CliError> {
    Err(CliError::Usage("install aws-zone: this firecamp was built without AWS support (cargo feature `aws`)".into()))
}
