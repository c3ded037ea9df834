//! ZooKeeper's membership, which four-letter words cannot change: a session with one member
//! reads the committed ensemble (`/zookeeper/config`) and changes it with `reconfig` (a scale).
//! The session logs in with SASL DIGEST-MD5 as the target's user and password (FireCamp's
//! superuser: `/zookeeper/config` admits no one else for writing) and, with TLS settings, goes
//! over TLS verified against the service's CA.
//!
//! The client verifies the certificate against the name it dials: a target with TLS must dial
//! the name its certificate carries (a member's DNS name on Kubernetes, its address where the
//! certificate names that, as on the local runtime), else [`session`] refuses it.

use std::collections::BTreeSet;
use std::time::Duration;

pub use zookeeper_client::Client;
use zookeeper_client::{EnsembleUpdate, SaslOptions, TlsOptions};

use crate::{ProbeError, Target, within};

/// A session with the target as `user` (its password from the target).
pub async fn session(t: &Target, user: &str) -> Result<Client, ProbeError> {
    let password = t.password.clone().ok_or_else(|| ProbeError::failed(t, format!("no password for {user}")))?;
    let connector = || {
        Client::connector()
            .with_sasl(SaslOptions::digest_md5(user.to_string(), password.clone()))
            .with_session_timeout(Duration::from_secs(10))
            .with_connection_timeout(t.timeout)
            .with_fail_eagerly()
    };
    within(t, async {
        let result = match &t.tls {
            Some(tls) => {
                if tls.server_name != t.host {
                    let why = format!("a ZooKeeper session verifies the name it dials: dial {} (the certificate's name), not {}", tls.server_name, t.host);
                    return Err(ProbeError::Tls { addr: t.addr(), message: why, verification: false });
                }
                // rustls picks the process's provider; a process may link more than one.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let options = TlsOptions::new().with_pem_ca(&tls.ca_pem).map_err(|e| ProbeError::Tls {
                    addr: t.addr(),
                    message: format!("the CA: {e}"),
                    verification: false,
                })?;
                connector().with_tls(options).secure_connect(&t.addr()).await
            }
            None => connector().connect(&t.addr()).await,
        };
        result.map_err(|e| ProbeError::failed(t, format!("a ZooKeeper session: {e}")))
    })
    .await
}

/// The server ids of the ensemble's committed configuration.
pub async fn servers(t: &Target, c: &Client) -> Result<BTreeSet<u32>, ProbeError> {
    let (data, _) = within(t, async { c.get_config().await.map_err(|e| ProbeError::failed(t, format!("reading the ensemble's configuration: {e}"))) }).await?;
    Ok(parse_servers(&String::from_utf8_lossy(&data)))
}

/// `server.<id>=…` lines; anything else (`version=…`) is not a server.
pub fn parse_servers(config: &str) -> BTreeSet<u32> {
    config.lines().filter_map(|l| l.strip_prefix("server.")?.split_once('=')?.0.parse().ok()).collect()
}

/// Makes the ensemble exactly `servers` (`server.<id>=<host>:<peer>:<election>:participant`
/// lines): ZooKeeper's non-incremental `reconfig`, which accepts servers without a plain client
/// port (an incremental one asks for it, and FireCamp's members serve clients on the TLS port
/// only).
pub async fn set_ensemble(t: &Target, c: &Client, servers: &[String]) -> Result<(), ProbeError> {
    let update = EnsembleUpdate::New { ensemble: servers.iter().map(String::as_str) };
    within(t, async {
        c.update_ensemble(update, None).await.map(|_| ()).map_err(|e| ProbeError::failed(t, format!("reconfig to {}: {e}", servers.join(", "))))
    })
    .await
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

    #[tokio::test]
    async fn a_tls_session_must_dial_the_name_its_certificate_carries() {
        let t = Target::new("10.0.0.7", 2181).with_password("pw").with_tls("-----BEGIN CERTIFICATE-----", "zk-0.a.example.com");
        let e = session(&t, "super").await.unwrap_err().to_string();
        assert!(e.contains("dial zk-0.a.example.com"), "{e}");
    }
}
