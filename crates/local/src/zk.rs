//! ZooKeeper sessions of the runtime itself, for what four-letter words cannot do: changing the
//! ensemble's membership (`reconfig`, in a scale), through `firecamp_probe::zookeeper::ensemble`.
//! A session goes to one member's address over TLS (its certificate names that address, verified
//! against the service's CA) as ZooKeeper's superuser.

use std::collections::BTreeSet;

use firecamp_catalog::zookeeper;
use firecamp_probe::Target;
use firecamp_probe::zookeeper::ensemble::{self, Client};

use crate::status;
use crate::store::ServiceRecord;

/// `member`'s address as the superuser, over TLS verified against the service's CA.
fn target(rec: &ServiceRecord, member: &str) -> Result<Target, String> {
    let ip = rec.ips.get(member).ok_or_else(|| format!("{member} has no address"))?.to_string();
    let ca = status::tls_ca(rec).ok_or_else(|| format!("{} has no CA", rec.name))?;
    let password = rec.secrets.get(zookeeper::SUPER_PASSWORD).ok_or_else(|| format!("{} has no {} secret", rec.name, zookeeper::SUPER_PASSWORD))?;
    Ok(Target::new(ip.clone(), zookeeper::CLIENT_PORT).with_password(password.clone()).with_tls(ca, ip))
}

/// A session with `member` as the superuser.
pub(crate) async fn session(rec: &ServiceRecord, member: &str) -> Result<(Target, Client), String> {
    let t = target(rec, member)?;
    let c = ensemble::session(&t, zookeeper::SUPER_USER).await.map_err(|e| format!("a ZooKeeper session with {member}: {e}"))?;
    Ok((t, c))
}

/// The server ids of the ensemble's committed configuration (`/zookeeper/config`).
pub(crate) async fn servers(t: &Target, c: &Client) -> Result<BTreeSet<u32>, String> {
    ensemble::servers(t, c).await.map_err(|e| e.to_string())
}

/// Makes the ensemble exactly `servers` (`server.<id>=…` lines, from
/// [`zookeeper::server_entry`]).
pub(crate) async fn set_ensemble(t: &Target, c: &Client, servers: &[String]) -> Result<(), String> {
    ensemble::set_ensemble(t, c, servers).await.map_err(|e| e.to_string())
}
