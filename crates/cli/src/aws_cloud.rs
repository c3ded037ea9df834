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
        backups: None,
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

/// The REST API's view of the cluster's bucket (`--backup-target`): firecamp-local's
/// `backup::cluster` behind the manage service's trait.
#[cfg(feature = "aws")]
pub async fn backups(archive: &firecamp_core::cluster::ArchiveTarget) -> Result<std::sync::Arc<dyn firecamp_manage::backups::BackupStore>, CliError> {
    let endpoint = (!archive.endpoint.is_empty()).then(|| archive.endpoint.clone());
    let store = firecamp_local::backup::cluster::ClusterBackups::new(&archive.url, Some(archive.region.clone()), endpoint)
        .await
        .map_err(|e| CliError::Usage(format!("--backup-target: {e}")))?;
    Ok(std::sync::Arc::new(Backups(store)))
}

#[cfg(not(feature = "aws"))]
pub async fn backups(_: &firecamp_core::cluster::ArchiveTarget) -> Result<std::sync::Arc<dyn firecamp_manage::backups::BackupStore>, CliError> {
    Err(CliError::Usage("--backup-target: this firecamp was built without AWS support (cargo feature `aws`)".into()))
}

#[cfg(feature = "aws")]
struct Backups(firecamp_local::backup::cluster::ClusterBackups);

#[cfg(feature = "aws")]
fn backup_error(e: firecamp_local::LocalError) -> firecamp_manage::backups::BackupError {
    use firecamp_local::LocalError as L;
    use firecamp_manage::backups::BackupError as B;
    match e {
        L::Invalid(errs) => {
            let first = errs.0.first().cloned();
            B::Invalid {
                field: first.as_ref().map(|f| f.field.clone()).unwrap_or_else(|| "backup".into()),
                message: first.map(|f| f.message).unwrap_or_default(),
            }
        }
        L::BadRequest(m) => B::Invalid { field: "backup".into(), message: m },
        L::NotFound(s) => B::NotFound(format!("service {s:?} has no backups")),
        L::Missing(m) => B::NotFound(m),
        other => B::Unavailable(other.to_string()),
    }
}

#[cfg(feature = "aws")]
impl firecamp_manage::backups::BackupStore for Backups {
    fn list<'a>(
        &'a self,
        namespace: &'a str,
        service: &'a str,
    ) -> firecamp_core::cloud::BoxFuture<'a, Result<Vec<firecamp_api::Backup>, firecamp_manage::backups::BackupError>> {
        Box::pin(async move { self.0.list(namespace, service).await.map_err(backup_error) })
    }

    fn delete<'a>(
        &'a self,
        namespace: &'a str,
        service: &'a str,
        id: &'a str,
        current: Option<&'a str>,
    ) -> firecamp_core::cloud::BoxFuture<'a, Result<firecamp_api::Backup, firecamp_manage::backups::BackupError>> {
        Box::pin(async move { self.0.delete(namespace, service, id, current).await.map_err(backup_error) })
    }

    fn restore_source<'a>(
        &'a self,
        namespace: &'a str,
        service: &'a str,
        id: &'a str,
        to_time: Option<&'a str>,
    ) -> firecamp_core::cloud::BoxFuture<'a, Result<(firecamp_catalog::layout::RestoreSource, firecamp_core::ServiceSpec), firecamp_manage::backups::BackupError>>
    {
        Box::pin(async move { self.0.restore_source(namespace, service, id, to_time).await.map_err(backup_error) })
    }
}
