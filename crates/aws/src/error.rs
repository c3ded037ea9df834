//! Typed errors of the AWS layer, with enough context to act on (service, operation, code).

use firecamp_core::cloud::CloudError;

use crate::retry::Verdict;

/// One AWS call that failed for good (not retryable, or out of attempts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service} {op} failed after {attempts} attempt(s): {}", self.describe())]
pub struct CallError {
    pub service: &'static str,
    pub op: &'static str,
    /// AWS error code (`Throttling`, `InvalidParameterValue`…), when the service sent one.
    pub code: Option<String>,
    pub message: Option<String>,
    pub status: Option<u16>,
    pub verdict: Verdict,
    pub attempts: u32,
}

impl CallError {
    fn describe(&self) -> String {
        let mut s = String::new();
        if let Some(c) = &self.code {
            s.push_str(c);
        }
        if let Some(m) = &self.message {
            if !s.is_empty() {
                s.push_str(": ");
            }
            s.push_str(m);
        }
        if s.is_empty() {
            s = match self.status {
                Some(st) => format!("HTTP {st}"),
                None => "no response (transport error)".into(),
            };
        }
        s
    }

    /// Whether the error code is one of `codes`.
    pub fn is(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| codes.contains(&c))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    #[error(transparent)]
    Call(#[from] CallError),
    /// A FireCamp safety rule refused the request (what AWS or moto would not check for us).
    #[error("refused: {0}")]
    Refused(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// Input FireCamp cannot use (a malformed providerID, a batch over Route53's limits…).
    #[error("invalid: {0}")]
    Invalid(String),
    /// AWS answered, but without a field FireCamp needs.
    #[error("unexpected answer from {0}")]
    Unexpected(String),
    /// A network interface FireCamp was to move a static IP onto or off does not carry the
    /// cluster tag: the IAM policy allows Assign/UnassignPrivateIpAddresses only on tagged
    /// interfaces, and FireCamp refuses before calling (moto does not enforce IAM).
    #[error(
        "refused: network interface {eni}{} does not carry the tag {tag}; FireCamp moves static IPs only onto and off \
         interfaces tagged for its cluster (tag the node group's network interfaces in its launch template, docs/aws.md)",
        node.as_deref().map(|n| format!(" of {n}")).unwrap_or_default()
    )]
    UntaggedInterface {
        eni: String,
        /// The node: its instance (`instance i-…`), and its Kubernetes name where the caller knows it.
        node: Option<String>,
        /// `key=value`, the tag that is missing.
        tag: String,
    },
    /// The cluster's private hosted zone does not exist: it is made at install time, never by
    /// the manage service (whose policy has no route53:CreateHostedZone).
    #[error(
        "not found: the private hosted zone {domain} associated with VPC {vpc_id}; an administrator creates it once with \
         `firecamp install aws-zone --cluster {cluster} --vpc-id {vpc_id}` (docs/aws.md); the manage service does not create it"
    )]
    ZoneMissing { domain: String, cluster: String, vpc_id: String },
}

impl From<AwsError> for CloudError {
    fn from(e: AwsError) -> Self {
        match e {
            AwsError::Refused(m) => CloudError::Refused(m),
            AwsError::NotFound(m) => CloudError::NotFound(m),
            e @ AwsError::UntaggedInterface { .. } => CloudError::Refused(e.to_string().trim_start_matches("refused: ").to_string()),
            e @ AwsError::ZoneMissing { .. } => CloudError::NotFound(e.to_string().trim_start_matches("not found: ").to_string()),
            AwsError::Call(c) if c.verdict == Verdict::Retry => CloudError::Unavailable(c.to_string()),
            other => CloudError::Provider(other.to_string()),
        }
    }
}
