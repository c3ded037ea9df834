//! The EC2 instance behind a Kubernetes Node, from its `spec.providerID`.
//!
//! FireCamp never asks IMDS: the manage service runs anywhere, and the Node object already says
//! where its pod landed. The AWS cloud provider writes `aws:///<zone>/<instance-id>`; some
//! installers write `aws:///<instance-id>` or the legacy `aws://<zone>/<instance-id>`.

use firecamp_core::cloud::InstanceId;

use crate::error::AwsError;

/// The instance id and, when present, the zone of an AWS providerID.
pub fn parse_provider_id(provider_id: &str) -> Result<(InstanceId, Option<String>), AwsError> {
    firecamp_core::cloud::parse_provider_id(provider_id).map_err(AwsError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_the_aws_cloud_provider_writes() {
        let (id, zone) = parse_provider_id("aws:///us-east-1a/i-0123456789abcdef0").unwrap();
        assert_eq!((id.0.as_str(), zone.as_deref()), ("i-0123456789abcdef0", Some("us-east-1a")));
        let (id, zone) = parse_provider_id("aws:///i-0123456789abcdef0").unwrap();
        assert_eq!((id.0.as_str(), zone), ("i-0123456789abcdef0", None));
        let (id, zone) = parse_provider_id("aws://eu-west-1b/i-1234abcd").unwrap();
        assert_eq!((id.0.as_str(), zone.as_deref()), ("i-1234abcd", Some("eu-west-1b")));
    }

    #[test]
    fn refuses_other_providers_and_malformed_ids() {
        for bad in [
            "",
            "gce://project/zone/name",
            "kind://docker/kind/node",
            "aws:///us-east-1a/",
            "aws:///us-east-1a/vol-0123456789abcdef0",
            "aws:///us-east-1a/i-xyz",
            "aws:///us-east-1a/i-0123456789abcdef0/extra",
        ] {
            assert!(parse_provider_id(bad).is_err(), "{bad:?}");
        }
    }
}
