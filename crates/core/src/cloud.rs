//! The seams between FireCamp and the cloud it runs in: member DNS, static IPs and member logs.
//!
//! `firecamp-aws` implements them with Route53, EC2 and CloudWatch Logs; the local runtime with
//! its own resolver, loopback addresses and files. The types are plain (names, zones, IPv4
//! addresses, instance ids) so this crate stays free of any cloud SDK. Futures are boxed so the
//! traits are object-safe (`Arc<dyn MemberDns>`) without an async-trait dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::member::{Member, MemberName};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What went wrong talking to the cloud, in terms a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// A FireCamp safety rule refused the request (cross-zone, an IP owned by another member…).
    #[error("refused: {0}")]
    Refused(String),
    /// Something the request names does not exist (instance, subnet, hosted zone…).
    #[error("not found: {0}")]
    NotFound(String),
    /// The provider kept failing with transient errors until the retries ran out.
    #[error("unavailable after retries: {0}")]
    Unavailable(String),
    /// Any other provider error, with its context.
    #[error("{0}")]
    Provider(String),
}

// ---------------------------------------------------------------------------------------------
// Member DNS

/// One A record: `<member>.<namespace>.<cluster>-firecamp.com` → IPv4, with its TTL (Route53 deletes only
/// on an exact match of value and TTL, so the TTL travels with the record). A name with several
/// addresses (the replicas endpoint) is several of these, one Route53 record set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DnsRecord {
    pub name: String,
    pub ip: Ipv4Addr,
    pub ttl: u32,
}

/// One change of a batch.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RecordChange {
    /// Create the record or point it at a new address (a member that moved).
    Upsert(DnsRecord),
    /// Remove the record exactly as it is now (a member or service that went).
    Delete(DnsRecord),
}

/// Where a member is reached: its static IP, else the address its pod is reached at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAddress {
    pub member: MemberName,
    pub dns_name: String,
    pub ip: Ipv4Addr,
}

/// The changes that turn a service's `current` records into `desired`: UPSERTs for each name
/// that is new, moved or whose TTL changed, DELETEs for each current name no desired address
/// has. A name may hold several addresses (the replicas endpoint): it is one record set, changed
/// whole, so its changes list every address it is to have (or, deleted, has). Sorted, so a
/// batch is deterministic and a name's changes are adjacent. Unchanged names make no change.
pub fn record_changes(current: &[DnsRecord], desired: &[MemberAddress], ttl: u32) -> Vec<RecordChange> {
    let mut want: BTreeMap<String, BTreeSet<Ipv4Addr>> = BTreeMap::new();
    for a in desired {
        want.entry(normalize_name(&a.dns_name)).or_default().insert(a.ip);
    }
    let mut have: BTreeMap<String, (BTreeSet<Ipv4Addr>, u32)> = BTreeMap::new();
    for r in current {
        have.entry(normalize_name(&r.name)).or_insert_with(|| (BTreeSet::new(), r.ttl)).0.insert(r.ip);
    }
    let mut out = Vec::new();
    for (name, ips) in &want {
        if have.get(name).is_none_or(|(h, t)| h != ips || *t != ttl) {
            out.extend(ips.iter().map(|ip| RecordChange::Upsert(DnsRecord { name: name.clone(), ip: *ip, ttl })));
        }
    }
    for (name, (ips, t)) in &have {
        if !want.contains_key(name) {
            out.extend(ips.iter().map(|ip| RecordChange::Delete(DnsRecord { name: name.clone(), ip: *ip, ttl: *t })));
        }
    }
    out.sort();
    out
}

/// DNS names compare without the trailing dot and case-insensitively (Route53 answers `a.b.`).
pub fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The cluster's member DNS: one private zone `<cluster>-firecamp.com`.
pub trait MemberDns: Send + Sync {
    /// The A records of `service`'s members in `domain` (`ClusterConfig::member_domain`: the
    /// zone or one namespace's subdomain of it) as they are now.
    fn service_records<'a>(&'a self, service: &'a str, domain: &'a str) -> BoxFuture<'a, Result<Vec<DnsRecord>, CloudError>>;
    /// The TTL of the records this zone writes.
    fn ttl(&self) -> u32;
    /// Applies every change of one service operation as one batch (all or nothing).
    fn apply<'a>(&'a self, changes: &'a [RecordChange]) -> BoxFuture<'a, Result<(), CloudError>>;
}

// ---------------------------------------------------------------------------------------------
// Static IPs

/// A provider's instance id (EC2: `i-0123…`), as read from the Node's `spec.providerID`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstanceId(pub String);

/// The instance id and, when present, the zone of an AWS providerID (`aws:///<zone>/i-…`, as
/// the AWS cloud provider writes it; also `aws:///i-…` and the legacy `aws://<zone>/i-…`).
pub fn parse_provider_id(provider_id: &str) -> Result<(InstanceId, Option<String>), String> {
    let bad = |why: &str| format!("providerID {provider_id:?} {why}; expected aws:///<zone>/i-<hex>");
    let rest = provider_id.strip_prefix("aws://").ok_or_else(|| bad("is not an AWS providerID"))?;
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let (zone, id) = match parts.as_slice() {
        [id] => (None, *id),
        [zone, id] => (Some(zone.to_string()), *id),
        _ => return Err(bad("has an unexpected shape")),
    };
    let hex = id.strip_prefix("i-").ok_or_else(|| bad("does not name an instance"))?;
    if !(hex.len() == 8 || hex.len() == 17) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("has a malformed instance id"));
    }
    Ok((InstanceId(id.to_string()), zone))
}

/// FireCamp's record of one static IP: which member owns it, where it may live, who holds it
/// now. The manage service keeps it in the member's status; it is the only proof that FireCamp
/// owns the IP, so no code takes or releases an IP without one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticIpRecord {
    pub member: MemberName,
    /// The member's namespace (`Member::namespace`): the record is the member's only with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub ip: Ipv4Addr,
    /// The member's zone; the subnet lies in it.
    pub zone: String,
    /// The subnet the IP comes from (EC2 `subnet-…`); an IP can only move between ENIs of it.
    pub subnet: String,
    /// The network interface that holds the IP now (EC2 `eni-…`).
    pub holder: String,
}

impl StaticIpRecord {
    /// Whether this is `member`'s record: its name in its namespace.
    pub fn is_of(&self, member: &Member) -> bool {
        self.member == member.name && self.namespace == member.namespace
    }

    /// `<namespace>/<member>`, or the member alone without namespaces: for messages.
    pub fn owner(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.member),
            None => self.member.to_string(),
        }
    }
}

/// Static IPs for members of engines that need one.
pub trait StaticIps: Send + Sync {
    /// Reserves one IP for `member` in a subnet of its zone. `records` are every static-IP
    /// record of the cluster (to avoid handing out an IP that is already someone's).
    fn allocate<'a>(&'a self, member: &'a Member, records: &'a [StaticIpRecord]) -> BoxFuture<'a, Result<StaticIpRecord, CloudError>>;
    /// Moves the member's IP to `instance` (where its pod now runs); returns the updated record.
    fn assign<'a>(
        &'a self,
        member: &'a Member,
        record: &'a StaticIpRecord,
        records: &'a [StaticIpRecord],
        instance: &'a InstanceId,
    ) -> BoxFuture<'a, Result<StaticIpRecord, CloudError>>;
    /// Gives the member's IP back to its subnet.
    fn release<'a>(&'a self, member: &'a Member, record: &'a StaticIpRecord) -> BoxFuture<'a, Result<(), CloudError>>;
}

// ---------------------------------------------------------------------------------------------
// Member logs

/// One log line of a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEvent {
    pub time: SystemTime,
    pub message: String,
}

/// A page of events and where to continue (pass it back to read the next page / follow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    pub events: Vec<LogEvent>,
    pub next: Option<String>,
}

/// What keys a service's log streams: `<namespace>/<service>` (a service name may be reused in
/// another namespace), or `<service>` without namespaces (the local runtime).
pub fn log_key(namespace: Option<&str>, service: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{service}"),
        None => service.to_string(),
    }
}

/// Each member's logs, in one stream `<key>/<member>` wherever the member ran; `service` in
/// these methods is the service's [`log_key`].
pub trait MemberLogs: Send + Sync {
    /// Creates the cluster's log group and the members' streams if missing (idempotent).
    fn ensure_streams<'a>(&'a self, service: &'a str, members: &'a [MemberName]) -> BoxFuture<'a, Result<(), CloudError>>;
    /// One page of `member`'s events at or after `since`, or after the cursor `next`.
    fn read<'a>(
        &'a self,
        service: &'a str,
        member: &'a MemberName,
        since: Option<SystemTime>,
        next: Option<String>,
    ) -> BoxFuture<'a, Result<LogPage, CloudError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(m: &str, ip: [u8; 4]) -> MemberAddress {
        MemberAddress { member: MemberName::new(m.rsplit_once('-').unwrap().0, 0), dns_name: format!("{m}.prod-firecamp.com"), ip: ip.into() }
    }
    fn rec(m: &str, ip: [u8; 4], ttl: u32) -> DnsRecord {
        DnsRecord { name: format!("{m}.prod-firecamp.com."), ip: ip.into(), ttl }
    }

    #[test]
    fn new_moved_and_gone_members_become_upserts_and_deletes() {
        let current = [rec("pg-0", [10, 0, 1, 5], 60), rec("pg-1", [10, 0, 2, 5], 60), rec("pg-2", [10, 0, 3, 5], 60)];
        let desired = [addr("pg-0", [10, 0, 1, 5]), addr("pg-1", [10, 0, 2, 9]), addr("pg-3", [10, 0, 1, 7])];
        let got = record_changes(&current, &desired, 60);
        assert_eq!(
            got,
            vec![
                RecordChange::Upsert(DnsRecord { name: "pg-1.prod-firecamp.com".into(), ip: [10, 0, 2, 9].into(), ttl: 60 }),
                RecordChange::Upsert(DnsRecord { name: "pg-3.prod-firecamp.com".into(), ip: [10, 0, 1, 7].into(), ttl: 60 }),
                RecordChange::Delete(DnsRecord { name: "pg-2.prod-firecamp.com".into(), ip: [10, 0, 3, 5].into(), ttl: 60 }),
            ]
        );
    }

    #[test]
    fn unchanged_records_make_no_change_and_a_new_ttl_is_an_upsert() {
        let current = [rec("pg-0", [10, 0, 1, 5], 60)];
        assert!(record_changes(&current, &[addr("pg-0", [10, 0, 1, 5])], 60).is_empty());
        assert_eq!(record_changes(&current, &[addr("pg-0", [10, 0, 1, 5])], 30).len(), 1);
    }

    #[test]
    fn a_deleted_service_deletes_every_record() {
        let current = [rec("pg-0", [10, 0, 1, 5], 60), rec("pg-1", [10, 0, 2, 5], 300)];
        let got = record_changes(&current, &[], 60);
        assert!(got.iter().all(|c| matches!(c, RecordChange::Delete(_))));
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn a_name_with_several_addresses_is_changed_whole() {
        let replicas = |ips: &[[u8; 4]]| -> Vec<MemberAddress> {
            ips.iter().map(|ip| MemberAddress { dns_name: "replicas.pg.prod-firecamp.com".into(), ..addr("pg-1", *ip) }).collect()
        };
        let current: Vec<DnsRecord> = [[10, 0, 2, 5], [10, 0, 3, 5]].iter().map(|ip| rec("replicas.pg", *ip, 60)).collect();
        assert!(record_changes(&current, &replicas(&[[10, 0, 3, 5], [10, 0, 2, 5]]), 60).is_empty(), "the same set in another order");
        // One address changed: the whole set is upserted, the one that went with it.
        let got = record_changes(&current, &replicas(&[[10, 0, 2, 5], [10, 0, 1, 5]]), 60);
        let upserted: Vec<String> = got
            .iter()
            .map(|c| match c {
                RecordChange::Upsert(r) if r.name == "replicas.pg.prod-firecamp.com" => r.ip.to_string(),
                other => panic!("only upserts of the name: {other:?}"),
            })
            .collect();
        assert_eq!(upserted, ["10.0.1.5", "10.0.2.5"]);
        // Gone: every address it has is deleted, exactly as it is.
        let got = record_changes(&current, &[], 60);
        assert_eq!(got, current.iter().map(|r| RecordChange::Delete(DnsRecord { name: normalize_name(&r.name), ..r.clone() })).collect::<Vec<_>>());
    }
}
