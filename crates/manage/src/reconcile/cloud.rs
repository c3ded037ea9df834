//! The cloud half of a reconcile: static IPs allocated before the plan (the members' configs
//! carry them), moved to the node the member's pod landed on, released when the member goes;
//! one Route53 change batch per reconcile that changes any address; log streams per member.
//!
//! What FireCamp owns is kept in the service's status and written back as soon as it changes,
//! so a manage service killed between two calls never forgets an IP it took.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use firecamp_api::MemberStatus;
use firecamp_catalog::{Role, ServicePlan};
use firecamp_core::cloud::{
    CloudError, DnsRecord, InstanceId, MemberAddress, RecordChange, StaticIpRecord, log_key, normalize_name, parse_provider_id, record_changes,
};
use firecamp_core::member::Endpoints;
use firecamp_core::{Member, MemberName};
use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use kube::runtime::events::EventType;

use super::Context;
use crate::crd::{FireCampService, FireCampServiceStatus, StaticIpStatus};
use crate::error::{Error, Result};

/// FireCamp's cloud records of one service, as in its status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CloudState {
    pub static_ips: Vec<StaticIpStatus>,
    pub dns_records: Vec<DnsRecord>,
    pub log_streams: Vec<String>,
}

impl CloudState {
    pub fn from_status(s: Option<&FireCampServiceStatus>) -> Self {
        s.map(|s| CloudState { static_ips: s.static_ips.clone(), dns_records: s.dns_records.clone(), log_streams: s.log_streams.clone() }).unwrap_or_default()
    }

    pub fn write_into(&self, s: &mut FireCampServiceStatus) {
        s.static_ips = self.static_ips.clone();
        s.dns_records = self.dns_records.clone();
        s.log_streams = self.log_streams.clone();
    }

    /// Records of this service's IPs written before records carried the namespace are its
    /// own (they are in its status): they get its namespace, so the ownership rules hold.
    pub fn own_ips(&mut self, namespace: Option<&str>) {
        for s in self.static_ips.iter_mut().filter(|s| s.record.namespace.is_none()) {
            s.record.namespace = namespace.map(String::from);
        }
    }

    /// Member name → static IP, for the plan.
    pub fn ip_map(&self) -> BTreeMap<String, Ipv4Addr> {
        self.static_ips.iter().map(|s| (s.record.member.to_string(), s.record.ip)).collect()
    }
}

/// The records every member should have: its address now, or, while it has none (a pod being
/// replaced), the record it had, so clients keep a name that resolves. Members gone from the
/// plan have none.
///
/// With endpoints (`primary.<service>.<domain>`, with the member the plan names as the
/// primary), one more record: the address of the one member whose role says it is the primary
/// (the engine's view, kept in its pod's label); while there is not exactly one (a failover under
/// way, a switchover's instant), the record it had, so it never jumps to a member that was not
/// promoted; with no record yet (the service's first batch), the plan's primary. And
/// `replicas.<service>.<domain>`, one record set with the address of every member whose role
/// says replica, ready or not: it changes with the roles (a switchover, a failover), not with
/// every restart, which would cost two batches and, with a 60 s TTL, reach few clients in time
/// (inside the cluster the `<service>-replicas` Service follows readiness); a member whose role
/// is not known (its pod being replaced) keeps its place. With no replica known, the addresses
/// it had; with none yet, the plan's replicas (so a service's first batch has both endpoints).
pub fn desired_addresses(members: &[MemberStatus], previous: &[DnsRecord], endpoints: Option<(&Endpoints, &str)>) -> Vec<MemberAddress> {
    let before: BTreeMap<String, Ipv4Addr> = previous.iter().map(|r| (normalize_name(&r.name), r.ip)).collect();
    let address = |m: &MemberStatus| m.address.as_deref().and_then(|a| a.parse().ok()).or_else(|| before.get(&normalize_name(&m.dns_name)).copied());
    let mut out: Vec<MemberAddress> = members
        .iter()
        .filter_map(|m| Some(MemberAddress { member: MemberName::from_string(m.name.clone()), dns_name: m.dns_name.clone(), ip: address(m)? }))
        .collect();
    if let Some((names, planned)) = endpoints {
        let endpoint = names.primary.as_str();
        let primaries: Vec<&MemberStatus> = members.iter().filter(|m| m.role == firecamp_api::Role::Primary).collect();
        let at = |m: &MemberStatus| address(m).map(|ip| (m.name.clone(), ip));
        let kept = || before.get(&normalize_name(endpoint)).map(|ip| (String::new(), *ip));
        let first = || members.iter().find(|m| m.name == planned).and_then(at);
        let now = match primaries[..] {
            [p] => at(p).or_else(kept),
            _ => kept().or_else(first),
        };
        if let Some((member, ip)) = now {
            out.push(MemberAddress { member: MemberName::from_string(member), dns_name: endpoint.to_string(), ip });
        }
        let name = normalize_name(&names.replicas);
        let kept: Vec<MemberAddress> = previous
            .iter()
            .filter(|r| normalize_name(&r.name) == name)
            .map(|r| MemberAddress { member: MemberName::from_string(String::new()), dns_name: names.replicas.clone(), ip: r.ip })
            .collect();
        // A member whose role is not known (its pod being replaced) keeps its place.
        let was_in = |ip: &Ipv4Addr| kept.iter().any(|k| k.ip == *ip);
        let replicas: Vec<MemberAddress> = members
            .iter()
            .filter_map(|m| Some((m, address(m)?)))
            .filter(|(m, ip)| m.role == firecamp_api::Role::Replica || (m.role == firecamp_api::Role::Unknown && was_in(ip)))
            .map(|(m, ip)| MemberAddress { member: MemberName::from_string(m.name.clone()), dns_name: names.replicas.clone(), ip })
            .collect();
        let planned_replicas = || -> Vec<MemberAddress> {
            members
                .iter()
                .filter(|m| m.name != planned)
                .filter_map(|m| Some(MemberAddress { member: MemberName::from_string(m.name.clone()), dns_name: names.replicas.clone(), ip: address(m)? }))
                .collect()
        };
        out.extend(match (replicas.is_empty(), kept.is_empty()) {
            (false, _) => replicas,
            (true, false) => kept,
            (true, true) => planned_replicas(),
        });
    }
    out
}

/// The records `desired` stands for, sorted like Route53 lists them.
pub fn records(desired: &[MemberAddress], ttl: u32) -> Vec<DnsRecord> {
    let mut out: Vec<DnsRecord> = desired.iter().map(|a| DnsRecord { name: normalize_name(&a.dns_name), ip: a.ip, ttl }).collect();
    out.sort();
    out
}

/// The instance a node runs on, from its providerID.
pub fn instance_of(node: &Node) -> Option<InstanceId> {
    node.spec.as_ref()?.provider_id.as_deref().and_then(|p| parse_provider_id(p).ok()).map(|(id, _)| id)
}

/// Every static-IP record of the cluster: this service's as now, the others' from the cache,
/// each with its namespace (older records have none: the namespace of the service holding it).
fn cluster_records(ctx: &Context, svc: &FireCampService, mine: &[StaticIpStatus]) -> Vec<StaticIpRecord> {
    let me = (svc.namespace(), svc.name_any());
    let mut out: Vec<StaticIpRecord> = mine.iter().map(|s| s.record.clone()).collect();
    for other in ctx.services.state() {
        if (other.namespace(), other.name_any()) != me {
            let ns = other.namespace();
            out.extend(
                other
                    .status
                    .iter()
                    .flat_map(|s| s.static_ips.iter())
                    .map(|x| StaticIpRecord { namespace: x.record.namespace.clone().or_else(|| ns.clone()), ..x.record.clone() }),
            );
        }
    }
    out
}

/// Writes the static-IP records at once.
async fn persist_ips(ctx: &Context, svc: &FireCampService, ips: &[StaticIpStatus]) -> Result<()> {
    super::record_status_field(ctx, svc, "staticIps", serde_json::json!(ips), "record static IPs of").await
}

/// Takes an IP for each member that needs one and has none yet.
pub async fn allocate_ips(ctx: &Context, svc: &FireCampService, members: &[Member], state: &mut CloudState) -> Result<bool> {
    let Some(ips) = &ctx.config.cloud.static_ips else {
        return Ok(false);
    };
    let mut changed = false;
    for m in members.iter().filter(|m| m.needs_static_ip) {
        if state.static_ips.iter().any(|s| s.record.is_of(m)) {
            continue;
        }
        let all = cluster_records(ctx, svc, &state.static_ips);
        let record = ips.allocate(m, &all).await.map_err(Error::cloud("allocate a static IP", svc.name_any()))?;
        tracing::info!(member = %m.name, ip = %record.ip, "static IP allocated");
        state.static_ips.push(StaticIpStatus { record, instance: None });
        persist_ips(ctx, svc, &state.static_ips).await?;
        changed = true;
    }
    Ok(changed)
}

/// Moves each member's IP to the instance its pod runs on, and releases the IPs of members
/// that are no longer in the plan.
pub async fn place_ips(ctx: &Context, svc: &FireCampService, plan: &ServicePlan, pod_nodes: &BTreeMap<String, String>, state: &mut CloudState) -> Result<()> {
    let Some(ips) = &ctx.config.cloud.static_ips else {
        return Ok(());
    };
    let nodes: BTreeMap<String, Node> = ctx.nodes.state().iter().map(|n| (n.name_any(), (**n).clone())).collect();
    for i in 0..state.static_ips.len() {
        let entry = state.static_ips[i].clone();
        let Some(mp) = plan.members.iter().find(|m| m.member.name == entry.record.member) else {
            continue;
        };
        let Some((node, instance)) = pod_nodes.get(mp.member.name.as_str()).and_then(|n| Some((n, nodes.get(n).and_then(instance_of)?))) else {
            continue;
        };
        if entry.instance.as_deref() == Some(instance.0.as_str()) {
            continue;
        }
        let all = cluster_records(ctx, svc, &state.static_ips);
        let record = ips
            .assign(&mp.member, &entry.record, &all, &instance)
            .await
            .map_err(|e| on_node(e, &mp.member.name, node))
            .map_err(Error::cloud("move a static IP", svc.name_any()))?;
        tracing::info!(member = %mp.member.name, ip = %record.ip, instance = %instance.0, "static IP moved");
        state.static_ips[i] = StaticIpStatus { record, instance: Some(instance.0) };
        persist_ips(ctx, svc, &state.static_ips).await?;
    }
    let wanted: BTreeSet<&MemberName> = plan.members.iter().map(|m| &m.member.name).collect();
    let gone: Vec<StaticIpStatus> = state.static_ips.iter().filter(|s| !wanted.contains(&s.record.member)).cloned().collect();
    for g in gone {
        release(ctx, svc, &g).await?;
        state.static_ips.retain(|s| s.record.member != g.record.member);
        persist_ips(ctx, svc, &state.static_ips).await?;
    }
    Ok(())
}

/// A refusal to move a member's IP names the Kubernetes node too (the cloud layer knows only
/// the instance), so the operator knows which node group's interfaces to fix.
fn on_node(e: CloudError, member: &MemberName, node: &str) -> CloudError {
    match e {
        CloudError::Refused(m) => CloudError::Refused(format!("{m} (member {member} on node {node})")),
        other => other,
    }
}

async fn release(ctx: &Context, svc: &FireCampService, s: &StaticIpStatus) -> Result<()> {
    let Some(ips) = &ctx.config.cloud.static_ips else {
        return Ok(());
    };
    // The member as it was: only its name, zone and IP matter to a release.
    let member = Member {
        name: s.record.member.clone(),
        namespace: s.record.namespace.clone(),
        index: 0,
        zone: s.record.zone.clone(),
        dns_name: String::new(),
        needs_static_ip: true,
        static_ip: Some(s.record.ip),
    };
    ips.release(&member, &s.record).await.map_err(Error::cloud("release a static IP", svc.name_any()))?;
    tracing::info!(member = %s.record.member, ip = %s.record.ip, "static IP released");
    Ok(())
}

/// Records in the service's status outside its member `domain`: written before names carried
/// the namespace (`<member>.<cluster>-firecamp.com`).
pub fn legacy_records(recorded: &[DnsRecord], domain: &str) -> Vec<DnsRecord> {
    let suffix = format!(".{}", normalize_name(domain));
    recorded.iter().filter(|r| !normalize_name(&r.name).ends_with(&suffix)).cloned().collect()
}

/// Of `legacy` records, the deletions of those still exactly as this service wrote them, and
/// the ones left: a name without the namespace may have been rewritten since by a service of
/// the same name in another namespace, whose record is not ours to delete.
pub fn legacy_changes(legacy: &[DnsRecord], current: &[DnsRecord]) -> (Vec<RecordChange>, Vec<DnsRecord>) {
    let now: BTreeMap<String, &DnsRecord> = current.iter().map(|r| (normalize_name(&r.name), r)).collect();
    let (mut deletes, mut left) = (Vec::new(), Vec::new());
    for r in legacy {
        match now.get(&normalize_name(&r.name)) {
            Some(c) if c.ip == r.ip && c.ttl == r.ttl => deletes.push(RecordChange::Delete((*c).clone())),
            Some(_) => left.push(r.clone()),
            None => {}
        }
    }
    (deletes, left)
}

/// The deletions of the service's legacy records still as it wrote them; a Warning event names
/// those it leaves.
async fn legacy_deletions(ctx: &Context, svc: &FireCampService, recorded: &[DnsRecord], domain: &str) -> Result<Vec<RecordChange>> {
    let (Some(dns), legacy) = (&ctx.config.cloud.dns, legacy_records(recorded, domain)) else {
        return Ok(Vec::new());
    };
    if legacy.is_empty() {
        return Ok(Vec::new());
    }
    let name = svc.name_any();
    let current = dns.service_records(&name, &ctx.config.cluster.domain()).await.map_err(Error::cloud("read DNS records", &name))?;
    let (deletes, left) = legacy_changes(&legacy, &current);
    if !left.is_empty() {
        let names: Vec<String> = left.iter().map(|r| format!("{} ({})", r.name, r.ip)).collect();
        let note = format!("left DNS records of the naming without namespaces that now hold another address: {}", names.join(", "));
        super::event(ctx, svc, EventType::Warning, "LegacyDnsRecordsLeft", note).await;
    }
    Ok(deletes)
}

/// Brings the service's records to the members' addresses: nothing when unchanged since the
/// last write, else one read and one change batch. Returns the number of changes made.
pub async fn sync_dns(ctx: &Context, svc: &FireCampService, plan: &ServicePlan, members: &[MemberStatus], state: &mut CloudState) -> Result<usize> {
    let Some(dns) = &ctx.config.cloud.dns else {
        return Ok(0);
    };
    let domain = &plan.cluster.member_domain();
    let planned = plan.members.iter().find(|m| m.role == Role::Primary).map(|m| m.member.name.as_str()).unwrap_or_default();
    let desired = desired_addresses(members, &state.dns_records, plan.endpoints.as_ref().map(|e| (e, planned)));
    let want = records(&desired, dns.ttl());
    if want == state.dns_records {
        return Ok(0);
    }
    let name = svc.name_any();
    let current = dns.service_records(&name, domain).await.map_err(Error::cloud("read DNS records", &name))?;
    let mut changes = record_changes(&current, &desired, dns.ttl());
    changes.extend(legacy_deletions(ctx, svc, &state.dns_records, domain).await?);
    if !changes.is_empty() {
        dns.apply(&changes).await.map_err(Error::cloud("change DNS records", &name))?;
        tracing::info!(service = %name, changes = changes.len(), "DNS records changed in one batch");
    }
    state.dns_records = want;
    Ok(changes.len())
}

/// Creates the log streams of members that have none yet; the status records the streams'
/// names (`<namespace>/<service>/<member>`).
pub async fn ensure_log_streams(ctx: &Context, plan: &ServicePlan, state: &mut CloudState) -> Result<()> {
    let Some(logs) = &ctx.config.cloud.logs else {
        return Ok(());
    };
    let key = log_key(plan.cluster.names_namespace(), &plan.name);
    let want: Vec<String> = plan.members.iter().map(|m| format!("{key}/{}", m.member.name)).collect();
    // Fewer members (a scale-in) need no call: their streams exist; the gone ones' stay, like
    // a deleted service's, until the group's retention ages them out.
    if want.iter().all(|w| state.log_streams.contains(w)) {
        state.log_streams = want;
        return Ok(());
    }
    let names: Vec<MemberName> = plan.members.iter().map(|m| m.member.name.clone()).collect();
    logs.ensure_streams(&key, &names).await.map_err(Error::cloud("create log streams", &plan.name))?;
    state.log_streams = want;
    Ok(())
}

/// On delete: every record of the service in one batch (and of its legacy records, only those
/// still as it wrote them), then its IPs. Log streams stay (the group's retention ages them
/// out), so the logs of a deleted service can still be read.
pub async fn cleanup(ctx: &Context, svc: &FireCampService, domain: &str) -> Result<()> {
    let name = svc.name_any();
    if let Some(dns) = &ctx.config.cloud.dns {
        let current = dns.service_records(&name, domain).await.map_err(Error::cloud("read DNS records", &name))?;
        let mut changes = record_changes(&current, &[], dns.ttl());
        let recorded = svc.status.as_ref().map(|s| s.dns_records.clone()).unwrap_or_default();
        changes.extend(legacy_deletions(ctx, svc, &recorded, domain).await?);
        if !changes.is_empty() {
            dns.apply(&changes).await.map_err(Error::cloud("delete DNS records", &name))?;
        }
    }
    let mut left = CloudState::from_status(svc.status.as_ref()).static_ips;
    while let Some(s) = left.first().cloned() {
        release(ctx, svc, &s).await?;
        left.remove(0);
        persist_ips(ctx, svc, &left).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Endpoints {
        Endpoints { primary: "primary.pg.prod-firecamp.com".into(), replicas: "replicas.pg.prod-firecamp.com".into() }
    }

    fn member(name: &str, address: Option<&str>) -> MemberStatus {
        MemberStatus { name: name.into(), dns_name: format!("{name}.prod-firecamp.com"), address: address.map(String::from), ..Default::default() }
    }

    #[test]
    fn a_member_without_an_address_keeps_its_record_and_a_gone_member_loses_it() {
        let previous = [
            DnsRecord { name: "pg-0.prod-firecamp.com".into(), ip: [10, 0, 1, 5].into(), ttl: 60 },
            DnsRecord { name: "pg-1.prod-firecamp.com".into(), ip: [10, 0, 2, 5].into(), ttl: 60 },
            DnsRecord { name: "pg-9.prod-firecamp.com".into(), ip: [10, 0, 3, 5].into(), ttl: 60 },
        ];
        let members = [member("pg-0", Some("10.0.1.7")), member("pg-1", None), member("pg-2", None)];
        let got = records(&desired_addresses(&members, &previous, None), 60);
        let got: Vec<(String, String)> = got.iter().map(|r| (r.name.clone(), r.ip.to_string())).collect();
        assert_eq!(got, [("pg-0.prod-firecamp.com".to_string(), "10.0.1.7".to_string()), ("pg-1.prod-firecamp.com".into(), "10.0.2.5".into())]);
    }

    #[test]
    fn the_primary_endpoint_follows_the_one_primary_and_else_stays() {
        let endpoint = "primary.pg.prod-firecamp.com";
        let primary = |name: &str, address: &str| MemberStatus { role: firecamp_api::Role::Primary, ..member(name, Some(address)) };
        let replica = |name: &str, address: &str| MemberStatus { role: firecamp_api::Role::Replica, ..member(name, Some(address)) };
        let at = |members: &[MemberStatus], previous: &[DnsRecord]| {
            records(&desired_addresses(members, previous, Some((&names(), "pg-0"))), 60).into_iter().find(|r| r.name == endpoint).map(|r| r.ip.to_string())
        };
        let promoted = [replica("pg-0", "10.0.1.7"), primary("pg-1", "10.0.2.7")];
        assert_eq!(at(&promoted, &[]).as_deref(), Some("10.0.2.7"));
        let before = [DnsRecord { name: endpoint.into(), ip: [10, 0, 1, 7].into(), ttl: 60 }];
        assert_eq!(at(&promoted, &before).as_deref(), Some("10.0.2.7"), "a failover moves it");
        // No primary (it died, nothing promoted yet) or two (a switchover's instant): kept.
        let none = [replica("pg-0", "10.0.1.7"), replica("pg-1", "10.0.2.7")];
        assert_eq!(at(&none, &before).as_deref(), Some("10.0.1.7"));
        let two = [primary("pg-0", "10.0.1.7"), primary("pg-1", "10.0.2.7")];
        assert_eq!(at(&two, &before).as_deref(), Some("10.0.1.7"));
        // The first batch, before any pod says its role: the plan's primary.
        let unknown = [member("pg-0", Some("10.0.1.7")), member("pg-1", Some("10.0.2.7"))];
        assert_eq!(at(&unknown, &[]).as_deref(), Some("10.0.1.7"));
        // An engine without endpoints gets none.
        assert!(records(&desired_addresses(&promoted, &[], None), 60).iter().all(|r| r.name != endpoint));
    }

    #[test]
    fn the_replicas_endpoint_holds_every_replica_and_else_stays() {
        let endpoint = "replicas.pg.prod-firecamp.com";
        let m = |name: &str, address: &str, role, ready| MemberStatus { role, ready, ..member(name, Some(address)) };
        use firecamp_api::Role::{Primary, Replica};
        let at = |members: &[MemberStatus], previous: &[DnsRecord]| -> Vec<String> {
            records(&desired_addresses(members, previous, Some((&names(), "pg-0"))), 60)
                .into_iter()
                .filter(|r| r.name == endpoint)
                .map(|r| r.ip.to_string())
                .collect()
        };
        let all = [m("pg-0", "10.0.1.7", Primary, true), m("pg-1", "10.0.2.7", Replica, true), m("pg-2", "10.0.3.7", Replica, true)];
        assert_eq!(at(&all, &[]), ["10.0.2.7", "10.0.3.7"]);
        // A replica restarting stays (no batch per restart); the primary never is in it.
        let one = [m("pg-0", "10.0.1.7", Primary, true), m("pg-1", "10.0.2.7", Replica, false), m("pg-2", "10.0.3.7", Replica, true)];
        assert_eq!(at(&one, &[]), ["10.0.2.7", "10.0.3.7"]);
        // A failover: the old primary, labelled a replica, joins it and the heir leaves it.
        let after = [m("pg-0", "10.0.1.7", Replica, false), m("pg-1", "10.0.2.7", Primary, true), m("pg-2", "10.0.3.7", Replica, true)];
        assert_eq!(at(&after, &[]), ["10.0.1.7", "10.0.3.7"]);
        // Roles not known (pods being replaced): a member keeps its place while its address does;
        // with no replica known at all, the addresses it had stay.
        let before: Vec<DnsRecord> = at(&all, &[]).iter().map(|ip| DnsRecord { name: endpoint.into(), ip: ip.parse().unwrap(), ttl: 60 }).collect();
        let none = [m("pg-0", "10.0.1.7", Primary, true), member("pg-1", Some("10.0.2.7")), member("pg-2", Some("10.0.9.7"))];
        assert_eq!(at(&none, &before), ["10.0.2.7"]);
        let moved = [m("pg-0", "10.0.1.7", Primary, true), member("pg-1", Some("10.0.8.7")), member("pg-2", Some("10.0.9.7"))];
        assert_eq!(at(&moved, &before), ["10.0.2.7", "10.0.3.7"]);
        // The first batch, before any pod says its role: the plan's replicas.
        assert_eq!(at(&moved, &[]), ["10.0.8.7", "10.0.9.7"]);
    }

    #[test]
    fn legacy_records_are_deleted_only_while_they_hold_what_this_service_wrote() {
        let rec = |name: &str, ip: [u8; 4]| DnsRecord { name: name.into(), ip: ip.into(), ttl: 60 };
        let recorded = [
            rec("pg-0.prod-firecamp.com", [10, 0, 1, 5]),
            rec("pg-1.prod-firecamp.com", [10, 0, 2, 5]),
            rec("pg-2.prod-firecamp.com", [10, 0, 3, 5]),
            rec("pg-0.a.prod-firecamp.com", [10, 0, 1, 5]),
        ];
        let legacy = legacy_records(&recorded, "a.prod-firecamp.com");
        assert_eq!(legacy, recorded[..3]);
        // pg-0 is still ours; pg-1 now points at another namespace's pg-1; pg-2 is gone.
        let current = [rec("pg-0.prod-firecamp.com.", [10, 0, 1, 5]), rec("pg-1.prod-firecamp.com.", [10, 9, 9, 9])];
        let (deletes, left) = legacy_changes(&legacy, &current);
        assert_eq!(deletes, [RecordChange::Delete(current[0].clone())]);
        assert_eq!(left, [recorded[1].clone()]);
        assert!(legacy_records(&recorded[3..], "a.prod-firecamp.com").is_empty());
    }

    #[test]
    fn instances_come_from_the_node_provider_id() {
        let mut node = Node::default();
        assert_eq!(instance_of(&node), None);
        node.spec = Some(k8s_openapi::api::core::v1::NodeSpec { provider_id: Some("aws:///us-east-1a/i-0123456789abcdef0".into()), ..Default::default() });
        assert_eq!(instance_of(&node), Some(InstanceId("i-0123456789abcdef0".into())));
    }
}
