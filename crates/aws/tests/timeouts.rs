//! An AWS endpoint that accepts connections and never answers fails the call instead of holding
//! the reconcile (and every service queued behind it) forever.

use std::time::Duration;

use firecamp_aws::config::{AwsSettings, Clients, Timeouts};

#[tokio::test]
async fn a_silent_endpoint_fails_the_call_instead_of_hanging() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept every connection and hold it without a byte in reply.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let settings = AwsSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(format!("http://{addr}")),
        test_credentials: true,
        timeouts: Timeouts { connect: Duration::from_secs(1), attempt: Duration::from_millis(300), operation: Duration::from_millis(500) },
        ..Default::default()
    };
    let clients = Clients::new(&settings).await;
    // The outer bound only turns a hang into a failure; the SDK's own timeout must fire first.
    let outcome = tokio::time::timeout(Duration::from_secs(60), clients.ec2.describe_vpcs().send()).await.expect("the call gave up by itself");
    let err = outcome.expect_err("nothing answered, so the call cannot succeed");
    let text = format!("{err:?}").to_lowercase();
    assert!(text.contains("timeout") || text.contains("timed out"), "{text}");
}
