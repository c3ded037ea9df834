//! MariaDB through its own protocol (mysql_async): the role from `@@read_only` (FireCamp's
//! replicas are read-only, its primary is not), a replica's link from `SHOW SLAVE STATUS`, GTID
//! positions, and sessions for the statements of a switchover.
//!
//! With [`Target::with_tls`] the connection is TLS before the login (MariaDB's SSL request),
//! trusting only the service's CA and checking the member's name whatever address is dialed
//! (mysql_async's `resolved_ips`: the name is verified, the address is connected to).

use std::net::IpAddr;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, SslOpts};

use crate::{ProbeError, Role, Target, within};

/// A replica's view of its primary (`SHOW SLAVE STATUS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub master_host: String,
    pub io_running: bool,
    pub sql_running: bool,
    /// The last I/O or SQL error, empty when none.
    pub last_error: String,
    /// The GTID position the replica has received (`Gtid_IO_Pos`).
    pub gtid_io_pos: String,
}

impl ReplicaStatus {
    /// Both replication threads run: the replica receives and applies the primary's changes.
    pub fn linked(&self) -> bool {
        self.io_running && self.sql_running
    }
}

/// An open session with a member, for statements that must share one (a read lock held while
/// a switchover waits for the replica).
pub struct Session {
    conn: Conn,
    addr: String,
}

fn failed(addr: &str, e: impl std::fmt::Display) -> ProbeError {
    ProbeError::Failed { addr: addr.to_string(), message: e.to_string() }
}

impl Session {
    /// Runs `sql`, dropping any result.
    pub async fn exec(&mut self, sql: &str) -> Result<(), ProbeError> {
        self.conn.query_drop(sql).await.map_err(|e| failed(&self.addr, e))
    }

    /// The first column of the first row of `sql` as text (`None` for no row or NULL).
    pub async fn text(&mut self, sql: &str) -> Result<Option<String>, ProbeError> {
        let row: Option<Option<String>> = self.conn.query_first(sql).await.map_err(|e| failed(&self.addr, e))?;
        Ok(row.flatten())
    }

    pub async fn close(self) {
        let _ = self.conn.disconnect().await;
    }
}

/// Opens a session as `user` (with the target's password).
pub async fn session(t: &Target, user: &str) -> Result<Session, ProbeError> {
    within(t, async {
        let mut opts = OptsBuilder::default().tcp_port(t.port).user(Some(user)).pass(t.password.clone()).prefer_socket(false);
        opts = match &t.tls {
            Some(tls) => {
                // Checked by rustls itself too; refused here with the probe's own words.
                crate::tls::client_config(&tls.ca_pem, &tls.server_name).map_err(|e| ProbeError::tls_settings(t, e))?;
                let ip: IpAddr = t.host.parse().map_err(|_| failed(&t.addr(), "MariaDB over TLS is dialed by address, not by name"))?;
                // mysql_async builds its rustls client with the process's provider: ring, as ours.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let ssl = SslOpts::default().with_root_certs(vec![tls.ca_pem.as_bytes().to_vec().into()]).with_disable_built_in_roots(true);
                opts.ip_or_hostname(tls.server_name.clone()).resolved_ips(Some(vec![ip])).ssl_opts(ssl)
            }
            None => opts.ip_or_hostname(t.host.clone()),
        };
        let conn = Conn::new(opts).await.map_err(|e| {
            match (&t.tls, crate::tls::HandshakeError::find_in(&e, t.tls.as_ref().map_or("", |s| s.server_name.as_str()))) {
                (Some(_), Some(h)) => ProbeError::handshake(t, &h),
                _ => ProbeError::failed(t, e),
            }
        })?;
        Ok(Session { conn, addr: t.addr() })
    })
    .await
}

/// Runs one statement in a session of its own.
pub async fn execute(t: &Target, user: &str, sql: &str) -> Result<(), ProbeError> {
    let mut s = session(t, user).await?;
    let r = within(t, s.exec(sql)).await;
    s.close().await;
    r
}

/// The member's role: a read-only member is a replica, a writable one the primary.
pub async fn role(t: &Target, user: &str) -> Result<Role, ProbeError> {
    let mut s = session(t, user).await?;
    let r = within(t, s.text("SELECT @@read_only")).await;
    s.close().await;
    match r?.as_deref() {
        Some("0") => Ok(Role::Primary),
        Some("1") => Ok(Role::Replica),
        other => Err(ProbeError::unexpected(t, format!("@@read_only = {other:?}"))),
    }
}

/// The GTID position of everything the member has written to its binary log.
pub async fn gtid_binlog_pos(t: &Target, user: &str) -> Result<String, ProbeError> {
    let mut s = session(t, user).await?;
    let r = within(t, s.text("SELECT @@gtid_binlog_pos")).await;
    s.close().await;
    Ok(r?.unwrap_or_default())
}

/// The member's replication status; `None` when it replicates from nobody.
pub async fn replica_status(t: &Target, user: &str) -> Result<Option<ReplicaStatus>, ProbeError> {
    let mut s = session(t, user).await?;
    let r: Result<Option<Row>, ProbeError> = within(t, async { s.conn.query_first("SHOW SLAVE STATUS").await.map_err(|e| ProbeError::failed(t, e)) }).await;
    s.close().await;
    let Some(row) = r? else { return Ok(None) };
    let col = |name: &str| -> String { row.get_opt::<Option<String>, _>(name).and_then(Result::ok).flatten().unwrap_or_default() };
    let last_error = [col("Last_IO_Error"), col("Last_SQL_Error")].into_iter().filter(|e| !e.is_empty()).collect::<Vec<_>>().join("; ");
    Ok(Some(ReplicaStatus {
        master_host: col("Master_Host"),
        io_running: col("Slave_IO_Running") == "Yes",
        sql_running: col("Slave_SQL_Running") == "Yes",
        last_error,
        gtid_io_pos: col("Gtid_IO_Pos"),
    }))
}
