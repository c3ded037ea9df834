//! The manage service's AWS parts, built from its flags (only in builds with the `aws` feature).

use crate::error::CliError;
use crate::manage_cmd::ManageArgs;
use firecamp_manage::cloud::Cloud;

#[cfg(feature = "aws")]
pub async fn cloud(a: &ManageArgs) -> Result<Cloud, CliError> {
    use std::sync::Arc;
    if !a.aws {
        return Ok(Cloud::default());
    }
    let vpc = a.vpc_id.clone().ok_or_else(|| CliError::Usage("--vpc-id is required with --aws".into()))?;
    if !vpc.starts_with("vpc-") {
        return Err(CliError::Usage(format!("--vpc-id {vpc:?} is not a VPC id (vpc-…)")));
    }
    let settings = firecamp_aws::AwsSettings { region: a.aws_region.clone(), endpoint_url: a.aws_endpoint_url.clone(), ..Default::default() };
    let clients = firecamp_aws::Clients::new(&settings).await;
    if clients.region.is_empty() {
        return Err(CliError::Usage("no AWS region: pass --aws-region or set AWS_REGION".into()));
    }
    // The cluster's zone is made at install time (`firecamp install aws-zone`), never here: a
    // missing one stops the manage service at start, saying so. Other errors (AWS unreachable)
    // are left to the reconciles, which retry.
    let dns = firecamp_aws::Route53Dns::new(&clients, &a.cluster, &vpc).with_ttl(a.dns_ttl);
    match dns.zone_id().await {
        Ok(id) => tracing::info!(zone = %id, domain = dns.domain(), "the cluster's hosted zone"),
        Err(e @ firecamp_aws::AwsError::ZoneMissing { .. }) => return Err(CliError::Failed(e.to_string())),
        Err(e) => tracing::warn!(error = %e, "looking up the cluster's hosted zone; the reconciles will try again"),
    }
    Ok(Cloud {
        dns: Some(Arc::new(dns)),
        static_ips: Some(Arc::new(firecamp_aws::Ec2StaticIps::new(&clients, &a.cluster, &vpc))),
        logs: Some(Arc::new(firecamp_aws::CloudWatchLogs::new(&clients, &a.cluster).with_retention(a.log_retention_days))),
    })
}

#[cfg(not(feature = "aws"))]
pub async fn cloud(a: &ManageArgs) -> Result<Cloud, CliError> {
    if a.aws {
        return Err(CliError::Usage("--aws: this firecamp was built without AWS support (cargo feature `aws`)".into()));
    }
    Ok(Cloud::default())
}

/// The cluster's backup bucket (`--backup-target`), checked: its URL, and that it answers a
/// listing of the prefix with the manage service's credentials.
#[cfg(feature = "aws")]
pub async fn archive(a: &ManageArgs) -> Result<Option<firecamp_core::cluster::ArchiveTarget>, CliError> {
    let Some(target) = &a.backup_target else { return Ok(None) };
    let url = firecamp_aws::s3::S3Url::parse(target).map_err(|e| CliError::Usage(format!("--backup-target: {e}")))?;
    let settings = firecamp_aws::AwsSettings { region: a.aws_region.clone(), endpoint_url: a.aws_endpoint_url.clone(), ..Default::default() };
    let bucket = firecamp_aws::s3::Bucket::new(&settings, &url.bucket, None).await;
    if bucket.region.is_empty() {
        return Err(CliError::Usage("--backup-target: no AWS region: pass --aws-region or set AWS_REGION".into()));
    }
    let listed = if url.key.is_empty() { String::new() } else { format!("{}/", url.key) };
    bucket.check(&listed).await.map_err(|e| CliError::Failed(format!("the backup target {url}: {e}")))?;
    tracing::info!(target = %url, region = %bucket.region, "PostgreSQL members archive WAL into S3");
    Ok(Some(firecamp_core::cluster::ArchiveTarget {
        url: url.to_string().trim_end_matches('/').to_string(),
        region: bucket.region.clone(),
        endpoint: bucket.endpoint.clone().unwrap_or_default(),
        credentials_secret: a.backup_credentials_secret.clone(),
    }))
}

#[cfg(not(feature = "aws"))]
pub async fn archive(a: &ManageArgs) -> Result<Option<firecamp_core::cluster::ArchiveTarget>, CliError> {
    match a.backup_target {
        Some(_) => Err(CliError::Usage("--backup-target: this firecamp was built without AWS support (cargo feature `aws`)".into())),
        None => Ok(None),
    }
}
