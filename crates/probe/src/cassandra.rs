//! Cassandra through its native protocol (the ScyllaDB driver, which speaks Cassandra's CQL v4):
//! a member answers once a login succeeds and `system.local` reads; its view of the ring is
//! `system.peers_v2`. Every session is pinned to the one member it is opened with (a host
//! filter), so a probe never measures another member, and a test's write through one member and
//! read through another really go through each.
//!
//! With [`Target::with_tls`] the connection is TLS before anything is sent, trusting only the
//! service's CA and checking the member's name whatever address is dialed
//! ([`crate::tls::client_config`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use scylla::client::PoolSize;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::host_filter::AllowListHostFilter;
pub use scylla::statement::Consistency;
use scylla::statement::Statement;

use crate::{ProbeError, Role, Target, within};

/// An open session with one member.
pub struct CqlSession {
    inner: Session,
    addr: String,
}

fn failed(addr: &str, e: impl std::fmt::Display) -> ProbeError {
    ProbeError::Failed { addr: addr.to_string(), message: e.to_string() }
}

impl CqlSession {
    fn statement(cql: &str, consistency: Consistency) -> Statement {
        let mut s = Statement::new(cql);
        s.set_consistency(consistency);
        s
    }

    /// Runs `cql` at `consistency`, dropping any result.
    pub async fn exec(&self, cql: &str, consistency: Consistency) -> Result<(), ProbeError> {
        self.inner.query_unpaged(Self::statement(cql, consistency), &[]).await.map_err(|e| failed(&self.addr, e))?;
        Ok(())
    }

    /// The first column of every row of `cql`, read at `consistency`, as text (the column must
    /// be text).
    pub async fn texts(&self, cql: &str, consistency: Consistency) -> Result<Vec<String>, ProbeError> {
        let res = self.inner.query_unpaged(Self::statement(cql, consistency), &[]).await.map_err(|e| failed(&self.addr, e))?;
        let rows = res.into_rows_result().map_err(|e| failed(&self.addr, e))?;
        let out: Result<Vec<(Option<String>,)>, _> = rows.rows::<(Option<String>,)>().map_err(|e| failed(&self.addr, e))?.collect();
        Ok(out.map_err(|e| failed(&self.addr, e))?.into_iter().filter_map(|(v,)| v).collect())
    }

    /// The ring as this member's gossip has it (`system_views.gossip_info`, itself included):
    /// each member's address and gossip status (`NORMAL`, `shutdown`, `BOOT`, …; the token list
    /// after the comma left out).
    pub async fn ring(&self) -> Result<Vec<(IpAddr, String)>, ProbeError> {
        // Members gossip `STATUS_WITH_PORT`; the legacy `STATUS` only where they have no other.
        let cql = "SELECT address, status_with_port, status FROM system_views.gossip_info";
        let res = self.inner.query_unpaged(cql, &[]).await.map_err(|e| failed(&self.addr, e))?;
        let rows = res.into_rows_result().map_err(|e| failed(&self.addr, e))?;
        type Row = (IpAddr, Option<String>, Option<String>);
        let out: Result<Vec<Row>, _> = rows.rows::<Row>().map_err(|e| failed(&self.addr, e))?.collect();
        let status = |s: Option<String>| s.unwrap_or_default().split(',').next().unwrap_or_default().to_string();
        Ok(out
            .map_err(|e| failed(&self.addr, e))?
            .into_iter()
            .map(|(ip, with_port, legacy)| (ip, status(with_port.filter(|s| !s.is_empty()).or(legacy))))
            .collect())
    }
}

/// Opens a session with the member at `t` only, logged in as `user` with the target's password.
/// The member is dialed by address (`t.host` must be an IP).
pub async fn session(t: &Target, user: &str) -> Result<CqlSession, ProbeError> {
    within(t, async {
        let ip: IpAddr = t.host.parse().map_err(|_| failed(&t.addr(), "Cassandra is dialed by address, not by name"))?;
        let addr = SocketAddr::new(ip, t.port);
        let only = AllowListHostFilter::new([addr]).map_err(|e| failed(&t.addr(), e))?;
        let mut b = SessionBuilder::new()
            .known_node_addr(addr)
            .user(user, t.password.clone().unwrap_or_default())
            .host_filter(Arc::new(only))
            .fetch_schema_metadata(false)
            .pool_size(PoolSize::PerHost(std::num::NonZeroUsize::MIN))
            .connection_timeout(t.timeout);
        if let Some(tls) = &t.tls {
            let config = crate::tls::client_config(&tls.ca_pem, &tls.server_name).map_err(|e| ProbeError::tls_settings(t, e))?;
            b = b.tls_context(Some(config));
        }
        let inner = b.build().await.map_err(|e| match crate::tls::HandshakeError::find_in(&e, t.tls.as_ref().map_or("", |s| s.server_name.as_str())) {
            Some(h) if t.tls.is_some() => ProbeError::handshake(t, &h),
            // The driver keeps only the text of a refused certificate (rustls' own words).
            _ if t.tls.is_some() && e.to_string().contains("invalid peer certificate") => {
                ProbeError::Tls { addr: t.addr(), message: format!("TLS verification failed: {e}"), verification: true }
            }
            _ => failed(&t.addr(), e),
        })?;
        Ok(CqlSession { inner, addr: t.addr() })
    })
    .await
}

/// Every Cassandra member is a peer: it answers once `user` can log in and read `system.local`.
pub async fn role(t: &Target, user: &str) -> Result<Role, ProbeError> {
    let s = session(t, user).await?;
    within(t, async {
        s.texts("SELECT release_version FROM system.local", Consistency::One).await?;
        Ok(Role::Peer)
    })
    .await
}

/// The ring as the member at `t` sees it ([`CqlSession::ring`]).
pub async fn ring(t: &Target, user: &str) -> Result<Vec<(IpAddr, String)>, ProbeError> {
    let s = session(t, user).await?;
    within(t, s.ring()).await
}
