//! FireCamp's AWS layer: member DNS in Route53, static IPs on EC2, member logs in CloudWatch
//! Logs, backups in S3, and the least-privilege IAM policies these need. It implements the seams of
//! `firecamp_core::cloud`; only the thin client modules talk to AWS, everything they decide is a
//! pure, unit-tested function (`dns_batch`, `static_ip_rules`, `provider_id`, `retry`, `iam`).
//!
//! Its own crate because aws-sdk-ec2 alone takes minutes to compile.

pub mod call;
pub mod config;
pub mod dns;
pub mod dns_batch;
pub mod error;
pub mod iam;
pub mod logs;
pub mod metrics;
pub mod provider_id;
pub mod retry;
pub mod s3;
pub mod static_ip;
pub mod static_ip_rules;

pub use config::{AwsSettings, Clients};
pub use dns::Route53Dns;
pub use error::{AwsError, CallError};
pub use logs::CloudWatchLogs;
pub use static_ip::Ec2StaticIps;
