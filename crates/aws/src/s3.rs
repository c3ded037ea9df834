//! The S3 backup target (docs/backup.md): one bucket, FireCamp's objects under a prefix. Every
//! object is written whole (one PUT, or a multipart upload completed only once every part is
//! in) and carries the SHA-256 of its bytes, so an object already there is recognised as the
//! same file (a retried WAL push) and never overwritten with other bytes.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};

use crate::call::Caller;
use crate::config::AwsSettings;
use crate::error::{AwsError, CallError};
use crate::retry::Rate;

/// Files above this size go up in parts of this size (S3 allows at most 10 000 parts: 640 GiB).
pub const PART_BYTES: u64 = 64 << 20;
/// The metadata key (`x-amz-meta-sha256`) that carries an object's SHA-256, in hex.
const SHA256: &str = "sha256";

/// `s3://bucket/key`, checked: a bucket name as S3 allows them and a key of plain characters,
/// since keys are built from it and paths are built from keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Without a leading or trailing slash; may be empty (the bucket's root).
    pub key: String,
}

impl S3Url {
    pub fn parse(s: &str) -> Result<S3Url, String> {
        let rest = s.strip_prefix("s3://").ok_or_else(|| format!("{s:?} is not an s3://bucket/prefix URL"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let key = key.trim_end_matches('/');
        if let Some(p) = bucket_problem(bucket) {
            return Err(format!("{s:?}: bucket {bucket:?} {p}"));
        }
        if let Some(p) = key_problem(key) {
            return Err(format!("{s:?}: {p}"));
        }
        Ok(S3Url { bucket: bucket.to_string(), key: key.to_string() })
    }

    /// `key` below this URL's key.
    pub fn join(&self, key: &str) -> S3Url {
        let key = if self.key.is_empty() { key.to_string() } else { format!("{}/{key}", self.key) };
        S3Url { bucket: self.bucket.clone(), key }
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// S3's rules for (new) bucket names: 3–63 lowercase letters, digits, dots and hyphens, starting
/// and ending with a letter or digit.
fn bucket_problem(b: &str) -> Option<&'static str> {
    let edge = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !(3..=63).contains(&b.len()) {
        return Some("must have 3 to 63 characters");
    }
    if !b.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-') || !edge(b.bytes().next()) || !edge(b.bytes().last()) {
        return Some("may hold lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit");
    }
    None
}

/// A prefix of letters, digits and `-_.` segments separated by single slashes, no `.`/`..` segment.
fn key_problem(k: &str) -> Option<String> {
    if k.is_empty() {
        return None;
    }
    if k.len() > 512 {
        return Some("the prefix has over 512 characters".into());
    }
    for seg in k.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." || !seg.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')) {
            return Some(format!("prefix segment {seg:?}: segments are letters, digits, '-', '_' and '.' (not \".\" or \"..\") between single slashes"));
        }
    }
    None
}

/// What a listing or a HEAD says of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub size: u64,
    pub modified: Option<SystemTime>,
    /// The SHA-256 FireCamp wrote with it (HEAD only).
    pub sha256: Option<String>,
}

/// An access key given explicitly (the local runtime's, from its environment); the secret
/// never appears in `Debug` output.
#[derive(Clone)]
pub struct Keys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// One bucket, its calls paced and retried like every other AWS call of FireCamp's.
#[derive(Clone)]
pub struct Bucket {
    client: aws_sdk_s3::Client,
    calls: Arc<Caller>,
    pub name: String,
    /// The region the client talks to.
    pub region: String,
    /// The endpoint, when it is not AWS's.
    pub endpoint: Option<String>,
}

impl Bucket {
    /// A client of `bucket`. An endpoint (moto, MinIO) is addressed path-style, since its host
    /// has no per-bucket names.
    pub async fn new(settings: &AwsSettings, bucket: &str, keys: Option<Keys>) -> Bucket {
        let mut s = settings.clone();
        // Parts of 64 MiB need more than the control-plane bounds.
        s.timeouts.attempt = s.timeouts.attempt.max(Duration::from_secs(300));
        s.timeouts.operation = s.timeouts.operation.max(Duration::from_secs(600));
        let conf = crate::config::load(&s).await;
        let mut b = aws_sdk_s3::config::Builder::from(&conf);
        if conf.endpoint_url().is_some() {
            b = b.force_path_style(true);
        }
        if let Some(k) = keys {
            b = b.credentials_provider(aws_sdk_s3::config::Credentials::new(k.access_key_id, k.secret_access_key, k.session_token, None, "firecamp"));
        }
        Bucket {
            client: aws_sdk_s3::Client::from_conf(b.build()),
            calls: Arc::new(Caller::new("s3", Rate::S3, settings.backoff)),
            name: bucket.to_string(),
            region: conf.region().map(|r| r.to_string()).unwrap_or_default(),
            endpoint: conf.endpoint_url().map(String::from),
        }
    }

    /// Whether the bucket exists and these credentials may list `prefix` in it (a listing, not
    /// HeadBucket, which would need the right to list the whole bucket).
    pub async fn check(&self, prefix: &str) -> Result<(), AwsError> {
        let listed = self.calls.call("ListObjectsV2", || self.client.list_objects_v2().bucket(&self.name).prefix(prefix).max_keys(1).send()).await;
        listed.map(|_| ()).map_err(|e| {
            if e.status == Some(404) || e.is(&["NoSuchBucket"]) {
                AwsError::NotFound(format!("the bucket {}; create it first (FireCamp does not create buckets)", self.name))
            } else {
                e.into()
            }
        })
    }

    /// The object at `key`, or `None`.
    pub async fn head(&self, key: &str) -> Result<Option<Object>, AwsError> {
        match self.calls.call("HeadObject", || self.client.head_object().bucket(&self.name).key(key).send()).await {
            Ok(o) => Ok(Some(Object {
                key: key.to_string(),
                size: o.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or_default(),
                modified: o.last_modified().and_then(|t| SystemTime::try_from(*t).ok()),
                sha256: o.metadata().and_then(|m| m.get(SHA256)).cloned(),
            })),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Uploads the file at `path` whose SHA-256 is `sha256` to `key`: in one PUT up to
    /// [`PART_BYTES`], else in parts. An object already at `key` with the same size and checksum
    /// is left as it is (`false`); one with other bytes is refused, never overwritten.
    pub async fn put_file(&self, key: &str, path: &Path, sha256: &str) -> Result<bool, AwsError> {
        let size = std::fs::metadata(path).map_err(|e| AwsError::Invalid(format!("{}: {e}", path.display())))?.len();
        if let Some(there) = self.head(key).await? {
            if there.size == size && there.sha256.as_deref() == Some(sha256) {
                return Ok(false);
            }
            return Err(AwsError::Refused(format!("s3://{}/{key} exists with other content; FireCamp does not overwrite it", self.name)));
        }
        if size <= PART_BYTES {
            self.calls
                .call("PutObject", || async {
                    // A body that cannot be read from disk fails the call without a retry.
                    let body = ByteStream::from_path(path).await.map_err(SdkError::construction_failure)?;
                    self.client.put_object().bucket(&self.name).key(key).metadata(SHA256, sha256).body(body).send().await
                })
                .await?;
        } else {
            self.put_parts(key, path, size, sha256).await?;
        }
        Ok(true)
    }

    async fn put_parts(&self, key: &str, path: &Path, size: u64, sha256: &str) -> Result<(), AwsError> {
        let created = self
            .calls
            .call("CreateMultipartUpload", || self.client.create_multipart_upload().bucket(&self.name).key(key).metadata(SHA256, sha256).send())
            .await?;
        let upload = created.upload_id().ok_or_else(|| AwsError::Unexpected("CreateMultipartUpload without an upload id".into()))?.to_string();
        let parts = async {
            let mut done = Vec::new();
            for (i, offset) in (0..size).step_by(PART_BYTES as usize).enumerate() {
                let number = i32::try_from(i + 1).map_err(|_| AwsError::Invalid(format!("{} has too many parts", path.display())))?;
                let len = PART_BYTES.min(size - offset);
                let part = self
                    .calls
                    .call("UploadPart", || async {
                        let body = ByteStream::read_from()
                            .path(path)
                            .offset(offset)
                            .length(Length::Exact(len))
                            .build()
                            .await
                            .map_err(SdkError::construction_failure)?;
                        self.client.upload_part().bucket(&self.name).key(key).upload_id(&upload).part_number(number).body(body).send().await
                    })
                    .await?;
                done.push(CompletedPart::builder().part_number(number).set_e_tag(part.e_tag().map(String::from)).build());
            }
            Ok::<_, AwsError>(done)
        }
        .await;
        let result = match parts {
            Ok(parts) => {
                let whole = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
                self.calls
                    .call("CompleteMultipartUpload", || {
                        self.client.complete_multipart_upload().bucket(&self.name).key(key).upload_id(&upload).multipart_upload(whole.clone()).send()
                    })
                    .await
                    .map(|_| ())
                    .map_err(AwsError::from)
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            // Parts of an upload never completed cost storage until aborted.
            let _ = self.client.abort_multipart_upload().bucket(&self.name).key(key).upload_id(&upload).send().await;
        }
        result
    }

    /// Writes `bytes` to `key` (small records), replacing what is there.
    pub async fn put_bytes(&self, key: &str, bytes: &[u8]) -> Result<(), AwsError> {
        self.calls
            .call("PutObject", || self.client.put_object().bucket(&self.name).key(key).body(ByteStream::from(bytes.to_vec())).send())
            .await
            .map(|_| ())
            .map_err(AwsError::from)
    }

    /// The object at `key`, or `None` when there is none.
    pub async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, AwsError> {
        let got = match self.calls.call("GetObject", || self.client.get_object().bucket(&self.name).key(key).send()).await {
            Ok(o) => o,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let bytes = got.body.collect().await.map_err(|e| AwsError::Unexpected(format!("reading s3://{}/{key}: {e}", self.name)))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    /// Downloads `key` into `path` (created, synced to disk); `false` when there is no such object.
    pub async fn get_file(&self, key: &str, path: &Path) -> Result<bool, AwsError> {
        use tokio::io::AsyncWriteExt;
        let got = match self.calls.call("GetObject", || self.client.get_object().bucket(&self.name).key(key).send()).await {
            Ok(o) => o,
            Err(e) if not_found(&e) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let write = |e: std::io::Error| AwsError::Unexpected(format!("writing {}: {e}", path.display()));
        let mut file = tokio::fs::File::create(path).await.map_err(write)?;
        let mut body = got.body;
        while let Some(chunk) = body.try_next().await.map_err(|e| AwsError::Unexpected(format!("reading s3://{}/{key}: {e}", self.name)))? {
            file.write_all(&chunk).await.map_err(write)?;
        }
        file.sync_all().await.map_err(write)?;
        Ok(true)
    }

    /// Every object under `prefix`, in key order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Object>, AwsError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .calls
                .call("ListObjectsV2", || self.client.list_objects_v2().bucket(&self.name).prefix(prefix).set_continuation_token(token.clone()).send())
                .await?;
            for o in page.contents() {
                out.push(Object {
                    key: o.key().unwrap_or_default().to_string(),
                    size: o.size().and_then(|n| u64::try_from(n).ok()).unwrap_or_default(),
                    modified: o.last_modified().and_then(|t| SystemTime::try_from(*t).ok()),
                    sha256: None,
                });
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// Deletes `keys`, a thousand per request (S3's limit).
    pub async fn delete(&self, keys: &[String]) -> Result<(), AwsError> {
        for batch in keys.chunks(1000) {
            let ids: Vec<ObjectIdentifier> =
                batch.iter().map(|k| ObjectIdentifier::builder().key(k).build()).collect::<Result<_, _>>().map_err(|e| AwsError::Invalid(e.to_string()))?;
            let delete = Delete::builder().set_objects(Some(ids)).quiet(true).build().map_err(|e| AwsError::Invalid(e.to_string()))?;
            let out = self.calls.call("DeleteObjects", || self.client.delete_objects().bucket(&self.name).delete(delete.clone()).send()).await?;
            if let Some(e) = out.errors().first() {
                return Err(AwsError::Refused(format!(
                    "deleting s3://{}/{}: {}",
                    self.name,
                    e.key().unwrap_or_default(),
                    e.message().or(e.code()).unwrap_or("refused")
                )));
            }
        }
        Ok(())
    }
}

fn not_found(e: &CallError) -> bool {
    e.status == Some(404) || e.is(&["NoSuchKey", "NotFound"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_before_keys_are_made_of_them() {
        let u = S3Url::parse("s3://firecamp-backups/prod/east/").unwrap();
        assert_eq!(u, S3Url { bucket: "firecamp-backups".into(), key: "prod/east".into() });
        assert_eq!(u.join("pg/abc/wal").to_string(), "s3://firecamp-backups/prod/east/pg/abc/wal");
        assert_eq!(S3Url::parse("s3://bkt").unwrap().join("pg").key, "pg");
        for bad in ["bkt/x", "s3://", "s3://B/x", "s3://ab/x", "s3://-ab/x", "s3://bkt/../x", "s3://bkt/a//b", "s3://bkt/a b", "s3://bkt/./x", "s3://bkt/a%2F"]
        {
            assert!(S3Url::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
