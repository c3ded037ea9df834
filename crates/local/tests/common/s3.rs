//! The S3 backup target of the tests: moto's endpoint (fails loudly when missing), a client of
//! its own to look into the bucket, and the `firecamp` executable members run for `firecamp wal`.

use std::path::PathBuf;

use firecamp_local::config::{S3Target, StaticCredentials};

/// moto's endpoint (scripts/setup.d/20-moto.sh, which scripts/test.sh sources): missing fails loudly.
pub fn moto() -> String {
    std::env::var("FIRECAMP_MOTO_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .expect("FIRECAMP_MOTO_ENDPOINT is not set: the S3 backup tests need moto (`. scripts/setup.d/20-moto.sh` starts it and exports it)")
}

/// The `firecamp` executable members run for `firecamp wal` (built beside this test by `cargo test --workspace`).
pub fn firecamp_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|d| d.parent()).unwrap().join("firecamp");
    assert!(bin.is_file(), "{} is missing: build it first (`cargo build -p firecamp`)", bin.display());
    bin
}

pub const KEY_ID: &str = "AKIAFIRECAMPTEST";

pub fn s3(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(KEY_ID, "testing", None, None, "test"))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

pub async fn new_bucket(c: &aws_sdk_s3::Client, stem: &str) -> String {
    let bucket = format!("{stem}-{}", std::process::id());
    c.create_bucket().bucket(&bucket).send().await.expect("moto creates the bucket");
    bucket
}

pub async fn keys(c: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let out = c.list_objects_v2().bucket(bucket).prefix(prefix).send().await.unwrap();
    out.contents().iter().filter_map(|o| o.key().map(String::from)).collect()
}

pub fn target(bucket: &str, secret: &str) -> S3Target {
    S3Target {
        url: format!("s3://{bucket}/team-a"),
        region: Some("us-east-1".into()),
        endpoint: Some(moto()),
        credentials: Some(StaticCredentials { access_key_id: KEY_ID.into(), secret_access_key: secret.into(), session_token: None }),
    }
}

/// A bed's configuration tweak: backups go to `bucket` (under `team-a`), and members run this
/// build's `firecamp` for `firecamp wal`.
pub fn backing_up_to(bucket: &str) -> impl FnOnce(&mut firecamp_local::config::Config) + use<> {
    let bucket = bucket.to_string();
    move |cfg| {
        cfg.backup_target = Some(target(&bucket, "testing"));
        cfg.firecamp_bin = Some(firecamp_bin());
    }
}
