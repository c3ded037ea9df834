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
    Ok(Cloud {
        dns: Some(Arc::new(firecamp_aws::Route53Dns::new(&clients, &a.cluster, &vpc).with_ttl(a.dns_ttl))),
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
