//! Role detection and membership checks through each engine's own protocol: PostgreSQL over its
//! wire protocol (`pg_is_in_recovery()`, `pg_stat_replication`), Redis over RESP (`ROLE`,
//! `INFO replication`, `CLUSTER INFO`), ZooKeeper's `srvr` four-letter word over TCP. Each takes a
//! member's address, so the local runtime and the Kubernetes manage service both use it.
//!
//! # TLS
//!
//! A member that serves TLS only (PostgreSQL `hostssl`, Redis `tls-port` with the plain port off)
//! is reached with [`Target::with_tls`]: the service's CA certificate (PEM; several during a CA
//! rotation) and the name the member's certificate carries, usually its DNS name
//! (`pg-0.db.prod-firecamp.com`). The address dialed (`host`, a pod IP or a static IP) plays no
//! part in verification: the chain must lead to that CA and the certificate must name that name
//! (verify-full), and nothing else is trusted (no system roots).
//!
//! ```no_run
//! # async fn f(ca_pem: String, password: String) -> Result<(), firecamp_probe::ProbeError> {
//! use firecamp_probe::{Target, postgresql, redis};
//! let pg = Target::new("10.0.3.17", 5432).with_password(password.clone()).with_tls(ca_pem.clone(), "pg-0.db.prod-firecamp.com");
//! let role = postgresql::role(&pg, "postgres").await?;
//! let rd = Target::new("10.0.3.40", 6379).with_password(password).with_tls(ca_pem, "rd-1.prod-firecamp.com");
//! redis::failover_to(&rd, "10.0.3.41", 6379, 10_000).await?;
//! # let _ = role; Ok(()) }
//! ```
//!
//! - PostgreSQL: `SslMode::Require` with the verification above (libpq's `verify-full`), SCRAM
//!   with channel binding (`tls-server-end-point`) when the server offers it.
//! - Redis: every function of [`redis`] (`ROLE`, `INFO`, `CLUSTER …`, `FAILOVER`, `REPLICAOF`, raw
//!   commands) opens its connection over TLS; the password is sent only inside it.
//! - ZooKeeper: four-letter words; whether they follow the TLS setting is said in [`zookeeper`].
//!
//! A certificate that fails verification is [`ProbeError::Tls`], whose message says which check
//! failed (`not signed by the service's CA`, `wrong server name`, expired …); unusable settings (a
//! CA that is not a PEM certificate, a name that is not a DNS name or an IP) are
//! [`ProbeError::Tls`] too, before anything is sent. [`tls::client_config`] gives the same rustls
//! configuration to other clients. Without TLS settings every probe connects in clear as before.

pub mod cassandra;
pub mod kafka;
pub mod mariadb;
pub mod postgresql;
pub mod redis;
pub mod scram;
pub mod tls;
pub mod zookeeper;

use std::time::Duration;

pub use firecamp_api::Role;
pub use tls::TlsSettings;

/// How long one probe may take before the member counts as unreachable.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where a member listens, how to log in (engines without auth ignore `password`) and, with
/// `tls`, how to verify it.
#[derive(Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub password: Option<String>,
    pub timeout: Duration,
    pub tls: Option<TlsSettings>,
}

impl Target {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Target { host: host.into(), port, password: None, timeout: DEFAULT_TIMEOUT, tls: None }
    }

    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Connect over TLS, trusting only `ca_pem` (the service's CA certificate, PEM) and accepting
    /// only a certificate valid for `server_name` (the member's DNS name), whatever `host` is.
    pub fn with_tls(mut self, ca_pem: impl Into<String>, server_name: impl Into<String>) -> Self {
        self.tls = Some(TlsSettings { ca_pem: ca_pem.into(), server_name: server_name.into() });
        self
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

// Neither the password nor the TLS settings are printed.
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
    /// The TLS settings are unusable or the handshake failed; `verification` when the member's
    /// certificate was refused (another CA, another name, expired).
    #[error("{addr}: {message}")]
    Tls { addr: String, message: String, verification: bool },
}

impl ProbeError {
    fn failed(t: &Target, e: impl std::fmt::Display) -> Self {
        ProbeError::Failed { addr: t.addr(), message: e.to_string() }
    }
    fn unexpected(t: &Target, answer: impl Into<String>) -> Self {
        ProbeError::Unexpected { addr: t.addr(), answer: answer.into() }
    }
    fn tls_settings(t: &Target, e: tls::TlsError) -> Self {
        ProbeError::Tls { addr: t.addr(), message: e.to_string(), verification: false }
    }
    fn handshake(t: &Target, e: &tls::HandshakeError) -> Self {
        ProbeError::Tls { addr: t.addr(), message: e.message.clone(), verification: e.verification }
    }

    /// Whether the member's certificate was refused (not signed by the CA, not for the name, …).
    pub fn is_tls_verification(&self) -> bool {
        matches!(self, ProbeError::Tls { verification: true, .. })
    }
}

/// Runs `f` within the target's timeout.
async fn within<T>(t: &Target, f: impl std::future::Future<Output = Result<T, ProbeError>>) -> Result<T, ProbeError> {
    tokio::time::timeout(t.timeout, f).await.unwrap_or_else(|_| Err(ProbeError::Timeout { addr: t.addr(), secs: t.timeout.as_secs() }))
}
