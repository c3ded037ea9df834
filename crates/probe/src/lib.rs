//! Role detection and membership checks through each engine's own protocol: PostgreSQL over its
//! wire protocol (`pg_is_in_recovery()`, `pg_stat_replication`), Redis over RESP (`ROLE`,
//! `INFO replication`, `CLUSTER INFO`), ZooKeeper's `srvr` four-letter word over TCP. Each takes a
//! member's address, so the local runtime and the Kubernetes manage service both use it.

pub mod postgresql;
pub mod redis;
pub mod zookeeper;

use std::time::Duration;

pub use firecamp_api::Role;

/// How long one probe may take before the member counts as unreachable.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where a member listens and how to log in (engines without auth ignore `password`).
#[derive(Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub password: Option<String>,
    pub timeout: Duration,
}

impl Target {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Target { host: host.into(), port, password: None, timeout: DEFAULT_TIMEOUT }
    }

    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

// The password is never printed.
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.addr())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{addr}: no answer within {secs} s")]
    Timeout { addr: String, secs: u64 },
    #[error("{addr}: {message}")]
    Failed { addr: String, message: String },
    #[error("{addr}: unexpected answer: {answer}")]
    Unexpected { addr: String, answer: String },
}

impl ProbeError {
    fn failed(t: &Target, e: impl std::fmt::Display) -> Self {
        ProbeError::Failed { addr: t.addr(), message: e.to_string() }
    }
    fn unexpected(t: &Target, answer: impl Into<String>) -> Self {
        ProbeError::Unexpected { addr: t.addr(), answer: answer.into() }
    }
}

/// Runs `f` within the target's timeout.
async fn within<T>(t: &Target, f: impl std::future::Future<Output = Result<T, ProbeError>>) -> Result<T, ProbeError> {
    tokio::time::timeout(t.timeout, f).await.unwrap_or_else(|_| Err(ProbeError::Timeout { addr: t.addr(), secs: t.timeout.as_secs() }))
}
