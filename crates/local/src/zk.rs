//! ZooKeeper sessions of the runtime itself, for what four-letter words cannot do: changing the
//! ensemble's membership (`reconfig`, in a scale). A session goes to one member over TLS (its
//! certificate verified against the service's CA under its address) and logs in with SASL
//! DIGEST-MD5 as ZooKeeper's superuser, the only identity /zookeeper/config admits for writing.

use std::collections::BTreeSet;
use std::time::Duration;

use firecamp_catalog::zookeeper;
use zookeeper_client::{Client, EnsembleUpdate, SaslOptions, TlsOptions};

use crate::status;
use crate::store::ServiceRecord;

/// A session with `member` as the superuser.
pub(crate) async fn session(rec: &ServiceRecord, member: &str) -> Result<Client, String> {
    let ip = rec.ips.get(member).ok_or_else(|| format!("{member} has no address"))?;
    let ca = status::tls_ca(rec).ok_or_else(|| format!("{} has no CA", rec.name))?;
    let password = rec.secrets.get(zookeeper::SUPER_PASSWORD).ok_or_else(|| format!("{} has no {} secret", rec.name, zookeeper::SUPER_PASSWORD))?;
    // rustls picks the process's provider; the daemon links more than one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = TlsOptions::new().with_pem_ca(&ca).map_err(|e| format!("the CA of {}: {e}", rec.name))?;
    Client::connector()
        .with_tls(tls)
        .with_sasl(SaslOptions::digest_md5(zookeeper::SUPER_USER, password.clone()))
        .with_session_timeout(Duration::from_secs(10))
        .with_connection_timeout(Duration::from_secs(5))
        .with_fail_eagerly()
        .secure_connect(&format!("{ip}:{}", zookeeper::CLIENT_PORT))
        .await
        .map_err(|e| format!("a ZooKeeper session with {member}: {e}"))
}

/// The server ids of the ensemble's committed configuration (`/zookeeper/config`).
pub(crate) async fn servers(c: &Client) -> Result<BTreeSet<u32>, String> {
    let (data, _) = c.get_config().await.map_err(|e| format!("reading the ensemble's configuration: {e}"))?;
    Ok(parse_servers(&String::from_utf8_lossy(&data)))
}

/// `server.<id>=…` lines; anything else (`version=…`) is not a server.
fn parse_servers(config: &str) -> BTreeSet<u32> {
    config.lines().filter_map(|l| l.strip_prefix("server.")?.split_once('=')?.0.parse().ok()).collect()
}

/// Makes the ensemble exactly `servers` (`server.<id>=…` lines, from
/// [`zookeeper::server_entry`]): ZooKeeper's non-incremental `reconfig`, which accepts servers
/// without a plain client port (an incremental one asks for it, and FireCamp's members serve
/// clients on the TLS port only).
pub(crate) async fn set_ensemble(c: &Client, servers: &[String]) -> Result<(), String> {
    let update = EnsembleUpdate::New { ensemble: servers.iter().map(String::as_str) };
    c.update_ensemble(update, None).await.map(|_| ()).map_err(|e| format!("reconfig to {}: {e}", servers.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_server_ids_of_a_dynamic_configuration() {
        let cfg = "server.1=zk-0.a:2888:3888:participant\nserver.3=zk-2.a:2888:3888:participant\nversion=100000000";
        assert_eq!(parse_servers(cfg), BTreeSet::from([1, 3]));
        assert!(parse_servers("").is_empty());
    }
}
