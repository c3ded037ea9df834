//! AWS configuration: the SDK's default chain (environment, profile, IRSA web identity, ECS,
//! instance role), an optional region and endpoint override, and FireCamp's own pacing.

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::call::Caller;
use crate::retry::{Backoff, Rate};

/// How FireCamp reaches AWS.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsSettings {
    /// Region; `None` takes the default chain's (AWS_REGION, profile, IMDS).
    pub region: Option<String>,
    /// Endpoint of every service (tests point it at moto); `AWS_ENDPOINT_URL` works too.
    pub endpoint_url: Option<String>,
    /// Use the fixed fake credentials moto accepts instead of the default chain. Tests only.
    pub test_credentials: bool,
    pub backoff: Backoff,
    pub route53_rate: Rate,
    pub ec2_rate: Rate,
    pub logs_rate: Rate,
    /// Bounds of every call: an endpoint that accepts and never answers must not hold a
    /// reconcile (and the services queued behind it) forever.
    pub timeouts: Timeouts,
}

/// How long one connection, one attempt and one operation may take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    pub connect: Duration,
    /// One HTTP attempt, response read included.
    pub attempt: Duration,
    /// The whole operation; the SDK does not retry ([`Caller`] does), so this bounds one call.
    pub operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { connect: Duration::from_secs(5), attempt: Duration::from_secs(20), operation: Duration::from_secs(30) }
    }
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            region: None,
            endpoint_url: None,
            test_credentials: false,
            backoff: Backoff::default(),
            route53_rate: Rate::ROUTE53,
            ec2_rate: Rate::EC2,
            logs_rate: Rate::LOGS,
            timeouts: Timeouts::default(),
        }
    }
}

/// The shared SDK configuration. The SDK's own retries are off: [`Caller`] retries, so each
/// attempt is paced and counted once.
pub async fn load(settings: &AwsSettings) -> SdkConfig {
    let t = settings.timeouts;
    let timeouts = TimeoutConfig::builder().connect_timeout(t.connect).operation_attempt_timeout(t.attempt).operation_timeout(t.operation).build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(RetryConfig::disabled()).timeout_config(timeouts);
    if let Some(r) = &settings.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(e) = &settings.endpoint_url {
        loader = loader.endpoint_url(e.clone());
    }
    if settings.test_credentials {
        loader = loader.credentials_provider(aws_sdk_ec2::config::Credentials::new("testing", "testing", None, None, "firecamp-test"));
    }
    loader.load().await
}

/// The three clients FireCamp uses, each with its own pacing.
#[derive(Clone)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub route53: aws_sdk_route53::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub ec2_calls: Arc<Caller>,
    pub route53_calls: Arc<Caller>,
    pub logs_calls: Arc<Caller>,
    /// The region the clients talk to (for ARNs and the hosted zone's VPC association).
    pub region: String,
}

impl Clients {
    pub async fn new(settings: &AwsSettings) -> Clients {
        let conf = load(settings).await;
        Clients::from_config(&conf, settings)
    }

    pub fn from_config(conf: &SdkConfig, settings: &AwsSettings) -> Clients {
        Clients {
            ec2: aws_sdk_ec2::Client::new(conf),
            route53: aws_sdk_route53::Client::new(conf),
            logs: aws_sdk_cloudwatchlogs::Client::new(conf),
            ec2_calls: Arc::new(Caller::new("ec2", settings.ec2_rate, settings.backoff)),
            route53_calls: Arc::new(Caller::new("route53", settings.route53_rate, settings.backoff)),
            logs_calls: Arc::new(Caller::new("logs", settings.logs_rate, settings.backoff)),
            region: conf.region().map(|r| r.to_string()).unwrap_or_default(),
        }
    }
}
