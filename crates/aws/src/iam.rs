//! Least-privilege IAM policies of the manage service and of the node log agent, as pure JSON.
//!
//! Every statement names its actions (no `*` action). A statement is unscoped (`Resource: *`)
//! only where AWS offers no resource-level permission for the action; each says why.

use serde_json::{Value, json};

use crate::logs::log_group;
use crate::static_ip::{CLUSTER_TAG, RESERVE_ROLE, ROLE_TAG};

/// What the policies are scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyScope {
    /// `aws`, `aws-cn`, `aws-us-gov`.
    pub partition: String,
    pub account_id: String,
    pub region: String,
    pub cluster: String,
    pub vpc_id: String,
    /// The cluster's hosted zone id (without `/hostedzone/`).
    pub hosted_zone_id: String,
}

impl PolicyScope {
    fn log_group_arns(&self) -> Vec<String> {
        let base = format!("arn:{}:logs:{}:{}:log-group:{}", self.partition, self.region, self.account_id, log_group(&self.cluster));
        // The group itself, and its streams (`…:log-group:<g>:log-stream:<s>`).
        vec![base.clone(), format!("{base}:*")]
    }

    fn vpc_arn(&self) -> String {
        format!("arn:{}:ec2:{}:{}:vpc/{}", self.partition, self.region, self.account_id, self.vpc_id)
    }

    fn ec2_arn(&self, kind: &str) -> String {
        format!("arn:{}:ec2:{}:{}:{kind}/*", self.partition, self.region, self.account_id)
    }
}

/// The manage service's policy: member DNS, static IPs, member log streams.
pub fn manage_service_policy(s: &PolicyScope) -> Value {
    let zone_arn = format!("arn:{}:route53:::hostedzone/{}", s.partition, s.hosted_zone_id.trim_start_matches("/hostedzone/"));
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "MemberRecordsInTheClusterZone",
                "Effect": "Allow",
                "Action": ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets", "route53:GetHostedZone"],
                "Resource": zone_arn,
                "Condition": {
                    "ForAllValues:StringEquals": {
                        "route53:ChangeResourceRecordSetsRecordTypes": ["A"],
                        "route53:ChangeResourceRecordSetsActions": ["UPSERT", "DELETE"]
                    }
                }
            },
            {
                // Finding the zone by name: the zone is what it looks for, so there is no
                // resource to scope to. The zone itself is made at install time by an
                // administrator (`firecamp install aws-zone`): no route53:CreateHostedZone here.
                "Sid": "FindTheClusterZoneCannotBeScoped",
                "Effect": "Allow",
                "Action": ["route53:ListHostedZonesByName"],
                "Resource": "*"
            },
            {
                // EC2 Describe* calls support no resource-level permissions; FireCamp always
                // filters them (VPC, zone, tags, ids).
                "Sid": "Ec2DescribeCannotBeScoped",
                "Effect": "Allow",
                "Action": ["ec2:DescribeSubnets", "ec2:DescribeNetworkInterfaces", "ec2:DescribeInstances"],
                "Resource": "*"
            },
            {
                // Only interfaces tagged for the cluster: FireCamp's reserve interfaces (tagged
                // at creation, below) and the nodes' interfaces (tagged by their launch
                // template). The manage service cannot tag an interface after its creation, so
                // it cannot bring another interface into this statement.
                "Sid": "MoveStaticIpsBetweenClusterTaggedInterfacesOfTheClusterVpc",
                "Effect": "Allow",
                "Action": ["ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"],
                "Resource": s.ec2_arn("network-interface"),
                "Condition": {
                    "ArnEquals": { "ec2:Vpc": s.vpc_arn() },
                    "StringEquals": { format!("ec2:ResourceTag/{CLUSTER_TAG}"): s.cluster }
                }
            },
            {
                "Sid": "CreateReserveInterfacesTaggedForTheCluster",
                "Effect": "Allow",
                "Action": ["ec2:CreateNetworkInterface"],
                "Resource": s.ec2_arn("network-interface"),
                "Condition": {
                    "StringEquals": {
                        format!("aws:RequestTag/{CLUSTER_TAG}"): s.cluster,
                        format!("aws:RequestTag/{ROLE_TAG}"): RESERVE_ROLE
                    }
                }
            },
            {
                "Sid": "ReserveInterfacesInClusterSubnetsOnly",
                "Effect": "Allow",
                "Action": ["ec2:CreateNetworkInterface"],
                "Resource": [s.ec2_arn("subnet"), s.ec2_arn("security-group")],
                "Condition": { "ArnEquals": { "ec2:Vpc": s.vpc_arn() } }
            },
            {
                "Sid": "TagReserveInterfacesAtCreationOnly",
                "Effect": "Allow",
                "Action": ["ec2:CreateTags"],
                "Resource": s.ec2_arn("network-interface"),
                "Condition": { "StringEquals": { "ec2:CreateAction": "CreateNetworkInterface" } }
            },
            {
                "Sid": "MemberLogStreamsOfTheCluster",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogGroup",
                    "logs:PutRetentionPolicy",
                    "logs:CreateLogStream",
                    "logs:DescribeLogStreams",
                    "logs:GetLogEvents",
                    "logs:PutLogEvents"
                ],
                "Resource": s.log_group_arns()
            }
        ]
    })
}

/// The node log agent's policy: write to the member streams of the cluster's group only.
pub fn log_agent_policy(s: &PolicyScope) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteMemberLogStreamsOfTheCluster",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                "Resource": s.log_group_arns()
            }
        ]
    })
}

/// The trust policy of an IRSA role (EKS): only the ServiceAccount `namespace/service_account`
/// of the cluster whose OIDC provider is `oidc_provider` (its issuer URL without `https://`,
/// e.g. `oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE`) may assume it, with the STS audience.
pub fn irsa_trust_policy(partition: &str, account_id: &str, oidc_provider: &str, namespace: &str, service_account: &str) -> Value {
    let provider = oidc_provider.trim_start_matches("https://").trim_end_matches('/');
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AssumedOnlyByOneServiceAccountOfTheCluster",
                "Effect": "Allow",
                "Principal": { "Federated": format!("arn:{partition}:iam::{account_id}:oidc-provider/{provider}") },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        format!("{provider}:sub"): format!("system:serviceaccount:{namespace}:{service_account}"),
                        format!("{provider}:aud"): "sts.amazonaws.com"
                    }
                }
            }
        ]
    })
}

/// Why `provider` is not an EKS OIDC provider as `aws eks describe-cluster` gives its issuer
/// (`https://oidc.eks.<region>.amazonaws.com/id/<ID>`, the scheme optional), if it is not.
pub fn oidc_provider_problem(provider: &str) -> Option<String> {
    let p = provider.trim_start_matches("https://").trim_end_matches('/');
    let ok =
        !p.is_empty() && p.len() <= 256 && p.split('/').all(|seg| !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
    (!ok).then(|| {
        format!("{provider:?} is not an OIDC issuer such as https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE (letters, digits, '.', '-' between '/')")
    })
}

/// The backup target's policy (`firecamp local backup-policy`): objects under exactly the
/// target's prefix of its bucket, the listing of that prefix only. Not `s3:DeleteBucket`, not
/// any other prefix, no bucket configuration. The daemon and the members' `firecamp wal` share it.
pub fn s3_backup_policy(partition: &str, target: &crate::s3::S3Url) -> Value {
    let bucket = format!("arn:{partition}:s3:::{}", target.bucket);
    let (objects, listed) =
        if target.key.is_empty() { (format!("{bucket}/*"), "*".to_string()) } else { (format!("{bucket}/{}/*", target.key), format!("{}/*", target.key)) };
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "BackupObjectsUnderThePrefix",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                "Resource": objects
            },
            {
                // Listings of the prefix only (the check at start lists it too).
                "Sid": "ListingThePrefix",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": bucket,
                "Condition": { "StringLike": { "s3:prefix": [listed] } }
            }
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> PolicyScope {
        PolicyScope {
            partition: "aws".into(),
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            cluster: "prod".into(),
            vpc_id: "vpc-0abc".into(),
            hosted_zone_id: "/hostedzone/Z0123456789".into(),
        }
    }

    /// Golden files: `UPDATE_GOLDEN=1 cargo test -p firecamp-aws iam` accepts a change.
    fn golden(name: &str, v: &Value) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
        let text = serde_json::to_string_pretty(v).unwrap() + "\n";
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(text, want, "{} differs; review and run with UPDATE_GOLDEN=1 to accept", path.display());
    }

    #[test]
    fn policies_match_the_golden_files() {
        golden("iam-manage-service.json", &manage_service_policy(&scope()));
        golden("iam-log-agent.json", &log_agent_policy(&scope()));
        let oidc = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
        golden("iam-trust-manage-service.json", &irsa_trust_policy("aws", "123456789012", oidc, "firecamp-system", "firecamp-manage"));
        golden("iam-s3-backups.json", &s3_backup_policy("aws", &crate::s3::S3Url::parse("s3://firecamp-backups/prod").unwrap()));
    }

    #[test]
    fn backups_reach_only_their_prefix() {
        let p = s3_backup_policy("aws", &crate::s3::S3Url::parse("s3://bkt/team-a/pg").unwrap());
        let sts = p["Statement"].as_array().unwrap();
        assert_eq!(sts[0]["Resource"], "arn:aws:s3:::bkt/team-a/pg/*");
        assert_eq!(sts[1]["Condition"]["StringLike"]["s3:prefix"][0], "team-a/pg/*");
        for st in sts {
            for a in st["Action"].as_array().unwrap() {
                assert!(!a.as_str().unwrap().contains('*') && a != "s3:DeleteBucket", "{a}");
            }
        }
    }

    #[test]
    fn oidc_providers_are_checked() {
        assert_eq!(oidc_provider_problem("https://oidc.eks.us-east-1.amazonaws.com/id/ABC123"), None);
        assert_eq!(oidc_provider_problem("oidc.eks.us-east-1.amazonaws.com/id/ABC123"), None);
        for bad in ["", "https://", "oidc.eks/id/a b", "oidc\"x", "a//b", "oidc.eks.amazonaws.com/id/$(id)"] {
            assert!(oidc_provider_problem(bad).is_some(), "{bad:?}");
        }
    }

    /// Every statement of the manage service's policy that allows `action`.
    fn statements_with(action: &str) -> Vec<Value> {
        let p = manage_service_policy(&scope());
        p["Statement"].as_array().unwrap().iter().filter(|st| st["Action"].as_array().unwrap().iter().any(|a| a == action)).cloned().collect()
    }

    #[test]
    fn the_manage_service_may_not_create_hosted_zones() {
        assert!(statements_with("route53:CreateHostedZone").is_empty());
        assert!(statements_with("ec2:DescribeVpcs").is_empty(), "only creating a private zone needed it");
        assert_eq!(statements_with("route53:ListHostedZonesByName").len(), 1, "it still finds the zone");
    }

    #[test]
    fn ips_move_only_between_interfaces_tagged_for_the_cluster_in_its_vpc() {
        for action in ["ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"] {
            let sts = statements_with(action);
            assert_eq!(sts.len(), 1, "{action}");
            let st = &sts[0];
            assert_eq!(st["Resource"], "arn:aws:ec2:us-east-1:123456789012:network-interface/*");
            assert_eq!(st["Condition"]["StringEquals"]["ec2:ResourceTag/firecamp-cluster"], "prod", "{action}: {st}");
            assert_eq!(st["Condition"]["ArnEquals"]["ec2:Vpc"], "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0abc", "{action}: {st}");
        }
        // The tag cannot be put on an interface afterwards: CreateTags only with the creation.
        let tagging = statements_with("ec2:CreateTags");
        assert_eq!(tagging.len(), 1);
        assert_eq!(tagging[0]["Condition"]["StringEquals"]["ec2:CreateAction"], "CreateNetworkInterface");
    }

    #[test]
    fn no_statement_allows_every_action_and_unscoped_ones_are_only_lookups() {
        for p in [manage_service_policy(&scope()), log_agent_policy(&scope())] {
            for st in p["Statement"].as_array().unwrap() {
                for a in st["Action"].as_array().unwrap() {
                    assert!(!a.as_str().unwrap().contains('*'), "{a}");
                }
                if st["Resource"] == "*" {
                    let sid = st["Sid"].as_str().unwrap();
                    assert!(sid.ends_with("CannotBeScoped"), "{sid} is unscoped without saying why");
                    for a in st["Action"].as_array().unwrap() {
                        let a = a.as_str().unwrap();
                        assert!(a.contains(":Describe") || a.contains(":List"), "{a} must be scoped");
                    }
                }
            }
        }
    }
}
