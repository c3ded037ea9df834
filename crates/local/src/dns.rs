//! The embedded DNS server: answers for the zone `<cluster>-firecamp.com` with each member's
//! loopback address, for tools that can be pointed at a DNS server (`dig @127.0.0.1 -p 27053`,
//! a resolver's per-domain forwarding). It does not recurse: other names get REFUSED.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use hickory_server::Server;
use hickory_server::proto::rr::rdata::{A, SOA};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use tokio::net::UdpSocket;

use crate::error::{LocalError, Result};

const TTL: u32 = 5;

/// The zone's records, changed as services come and go.
pub struct DnsZone {
    origin: Name,
    zone: Arc<InMemoryZoneHandler>,
    serial: std::sync::atomic::AtomicU32,
}

fn name(s: &str) -> Result<Name> {
    Name::from_str(s).map_err(|e| LocalError::Internal(format!("DNS name {s:?}: {e}")))
}

impl DnsZone {
    /// Replaces the zone's A records by `names` (fully qualified names without the final dot).
    pub async fn set(&self, names: &BTreeMap<String, Vec<Ipv4Addr>>) {
        let serial = self.serial.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        {
            let mut records = self.zone.records_mut().await;
            records.retain(|k, _| k.record_type != RecordType::A);
        }
        for (n, ips) in names {
            let Ok(fqdn) = Name::from_str(&format!("{n}.")) else {
                continue;
            };
            if !self.origin.zone_of(&fqdn) {
                continue;
            }
            for ip in ips {
                self.zone.upsert(Record::from_rdata(fqdn.clone(), TTL, RData::A(A(*ip))), serial).await;
            }
        }
    }
}

/// Binds the DNS server's UDP socket and starts answering; returns the zone and the address
/// actually bound (port 0 picks one).
pub async fn serve(addr: SocketAddr, cluster_domain: &str) -> Result<(DnsZone, SocketAddr)> {
    let origin = name(&format!("{cluster_domain}."))?;
    let mut zone = InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
    let soa = SOA::new(name(&format!("ns.{cluster_domain}."))?, name(&format!("hostmaster.{cluster_domain}."))?, 1, 60, 60, 600, TTL);
    zone.upsert_mut(Record::from_rdata(origin.clone(), TTL, RData::SOA(soa)), 1);
    let zone = Arc::new(zone);
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&origin), vec![zone.clone()]);
    let socket = UdpSocket::bind(addr).await.map_err(LocalError::io(format!("binding the DNS server to {addr}")))?;
    let local = socket.local_addr().map_err(LocalError::io("reading the DNS server's address"))?;
    let mut server = Server::new(catalog);
    server.register_socket(socket);
    tokio::spawn(async move {
        if let Err(e) = server.block_until_done().await {
            tracing::error!(error = %e, "the DNS server stopped");
        }
    });
    Ok((DnsZone { origin, zone, serial: 1.into() }, local))
}
