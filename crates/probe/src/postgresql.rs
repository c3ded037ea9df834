//! PostgreSQL: a member in recovery is a replica; the primary lists its streaming replicas.
//!
//! With [`Target::with_tls`] the connection requires TLS (`SslMode::Require`) and verifies the
//! member's certificate against the service's CA for the expected name ([`crate::tls`]): libpq's
//! `verify-full`, whatever address is dialed. tokio-postgres' TLS hooks are implemented here over
//! tokio-rustls, with `tls-server-end-point` channel binding for SCRAM.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, NoTls, Socket};

use crate::tls::{Connector, HandshakeError, tls_server_end_point};
use crate::{ProbeError, Role, Target, within};

/// One row of the primary's `pg_stat_replication`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    pub application_name: String,
    /// `streaming`, `catchup`, `startup`, …
    pub state: String,
}

/// A WAL position (`X/Y`, as PostgreSQL prints it) as a number, so positions compare.
pub fn lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

/// A connection to database `postgres` as `user`, within the target's timeout.
pub async fn connect(t: &Target, user: &str) -> Result<Client, ProbeError> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&t.host).port(t.port).user(user).dbname("postgres").connect_timeout(t.timeout);
    if let Some(p) = &t.password {
        cfg.password(p);
    }
    match &t.tls {
        None => {
            let (client, conn) = cfg.connect(NoTls).await.map_err(|e| error(t, e))?;
            tokio::spawn(async move {
                // The connection ends when the client is dropped; its error then says nothing new.
                let _ = conn.await;
            });
            Ok(client)
        }
        Some(tls) => {
            let connector = Connector::new(tls).map_err(|e| ProbeError::tls_settings(t, e))?;
            cfg.ssl_mode(SslMode::Require);
            let (client, conn) = cfg.connect(MakeRustls(connector)).await.map_err(|e| error(t, e))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(client)
        }
    }
}

/// tokio-postgres' errors print only their kind ("db error"): the whole chain says what the
/// server said, and a refused certificate is a [`ProbeError::Tls`].
fn error(t: &Target, e: tokio_postgres::Error) -> ProbeError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<HandshakeError>() {
            return ProbeError::handshake(t, h);
        }
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    ProbeError::Failed { addr: t.addr(), message }
}

/// tokio-postgres' TLS over tokio-rustls with FireCamp's verification; the host name tokio-postgres
/// passes (the address dialed) is ignored for the expected name.
struct MakeRustls(Connector);

impl MakeTlsConnect<Socket> for MakeRustls {
    type Stream = RustlsStream<Socket>;
    type TlsConnect = Connect;
    type Error = std::convert::Infallible;

    fn make_tls_connect(&mut self, _dialed: &str) -> Result<Connect, Self::Error> {
        Ok(Connect(self.0.clone()))
    }
}

struct Connect(Connector);

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> TlsConnect<S> for Connect {
    type Stream = RustlsStream<S>;
    type Error = HandshakeError;
    type Future = Pin<Box<dyn Future<Output = Result<RustlsStream<S>, HandshakeError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move { self.0.handshake(stream).await.map(RustlsStream) })
    }
}

struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        match session.peer_certificates().and_then(|c| c.first()).and_then(|c| tls_server_end_point(c)) {
            Some(hash) => ChannelBinding::tls_server_end_point(hash),
            None => ChannelBinding::none(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// `primary` or `replica`, from `pg_is_in_recovery()`.
/// Creates the physical replication slot `slot` (reserving WAL from now) unless it exists:
/// made for a member before it clones the primary, and on a new primary for every other member.
pub async fn ensure_slot(c: &Client, slot: &str) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "SELECT pg_create_physical_replication_slot(s, true) FROM (SELECT $1::text AS s) x \
         WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = x.s)",
        &[&slot],
    )
    .await
    .map(|_| ())
}

pub async fn role(t: &Target, user: &str) -> Result<Role, ProbeError> {
    within(t, async {
        let c = connect(t, user).await?;
        let row = c.query_one("SELECT pg_is_in_recovery()", &[]).await.map_err(|e| error(t, e))?;
        let in_recovery: bool = row.get(0);
        Ok(if in_recovery { Role::Replica } else { Role::Primary })
    })
    .await
}

/// The replicas connected to a primary, from `pg_stat_replication`.
pub async fn replicas(t: &Target, user: &str) -> Result<Vec<ReplicaState>, ProbeError> {
    within(t, async {
        let c = connect(t, user).await?;
        let rows = c.query("SELECT application_name, state FROM pg_stat_replication ORDER BY application_name", &[]).await.map_err(|e| error(t, e))?;
        Ok(rows
            .iter()
            .map(|r| ReplicaState {
                application_name: r.get::<_, Option<String>>(0).unwrap_or_default(),
                state: r.get::<_, Option<String>>(1).unwrap_or_default(),
            })
            .collect())
    })
    .await
}

/// Which of `expected` (application names = member names) are not streaming from the primary.
pub fn not_streaming(rows: &[ReplicaState], expected: &[String]) -> Vec<String> {
    expected.iter().filter(|m| !rows.iter().any(|r| &r.application_name == *m && r.state == "streaming")).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_counts_only_when_streaming() {
        let rows = vec![
            ReplicaState { application_name: "pg-1".into(), state: "streaming".into() },
            ReplicaState { application_name: "pg-2".into(), state: "catchup".into() },
        ];
        let expected = vec!["pg-1".to_string(), "pg-2".to_string(), "pg-3".to_string()];
        assert_eq!(not_streaming(&rows, &expected), vec!["pg-2".to_string(), "pg-3".to_string()]);
    }
}
