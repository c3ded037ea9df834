//! EC2 static IPs: one secondary private IP per member, from a cluster subnet of its zone, held
//! by FireCamp's reserve interface until the member's pod lands on a node, then moved to that
//! node's interface with AllowReassignment, so it follows the member.
//!
//! Every Describe is filtered (VPC, zone, tags, ids): unfiltered ones have a smaller AWS budget.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use firecamp_core::Member;
use firecamp_core::cloud::{BoxFuture, CloudError, InstanceId, StaticIpRecord, StaticIps};

use crate::call::Caller;
use crate::config::Clients;
use crate::dns::retry_or_fail;
use crate::error::AwsError;
use crate::static_ip_rules::{EniInfo, SubnetInfo, check_cluster_tag, check_ownership, check_same_zone, choose_eni, choose_subnet, unrecorded_reserve_ip};

/// Tag on the subnets FireCamp may take IPs from, and on the interfaces it creates.
pub const CLUSTER_TAG: &str = "firecamp-cluster";
/// Tag telling FireCamp's own interfaces apart.
pub const ROLE_TAG: &str = "firecamp-role";
/// The role of the per-subnet interface that holds IPs of members not placed yet.
pub const RESERVE_ROLE: &str = "static-ip-reserve";
/// Tag (and node label) of the instances that may run the cluster's members.
pub const WORKER_TAG: &str = "firecamp-worker";

pub struct Ec2StaticIps {
    client: aws_sdk_ec2::Client,
    calls: Arc<Caller>,
    cluster: String,
    vpc_id: String,
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn parse_ip(s: Option<&str>) -> Option<Ipv4Addr> {
    s.and_then(|s| s.parse().ok())
}

impl Ec2StaticIps {
    pub fn new(clients: &Clients, cluster: &str, vpc_id: &str) -> Self {
        Ec2StaticIps { client: clients.ec2.clone(), calls: clients.ec2_calls.clone(), cluster: cluster.into(), vpc_id: vpc_id.into() }
    }

    /// The cluster's subnets in `zone`: VPC, zone and cluster tag filtered.
    async fn subnets(&self, zone: &str) -> Result<Vec<SubnetInfo>, AwsError> {
        let out = self
            .calls
            .call("DescribeSubnets", || {
                self.client
                    .describe_subnets()
                    .filters(filter("vpc-id", &self.vpc_id))
                    .filters(filter("availability-zone", zone))
                    .filters(filter(&format!("tag:{CLUSTER_TAG}"), &self.cluster))
                    .send()
            })
            .await?;
        Ok(out
            .subnets()
            .iter()
            .filter_map(|s| {
                Some(SubnetInfo {
                    id: s.subnet_id()?.to_string(),
                    zone: s.availability_zone()?.to_string(),
                    free_ips: s.available_ip_address_count().unwrap_or_default(),
                })
            })
            .collect())
    }

    /// FireCamp's reserve interface in `subnet`, if it exists.
    async fn find_reserve(&self, subnet: &str) -> Result<Option<EniInfo>, AwsError> {
        let out = self
            .calls
            .call("DescribeNetworkInterfaces", || {
                self.client
                    .describe_network_interfaces()
                    .filters(filter("subnet-id", subnet))
                    .filters(filter(&format!("tag:{CLUSTER_TAG}"), &self.cluster))
                    .filters(filter(&format!("tag:{ROLE_TAG}"), RESERVE_ROLE))
                    .send()
            })
            .await?;
        let mut enis: Vec<EniInfo> = out.network_interfaces().iter().filter_map(eni_info).collect();
        enis.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(enis.into_iter().next())
    }

    /// The reserve interface of `subnet`, created (tagged) if missing. A failed creation looks
    /// again before trying again, so a lost reply does not leave two.
    async fn ensure_reserve(&self, subnet: &str) -> Result<EniInfo, AwsError> {
        let mut attempt = 1;
        loop {
            if let Some(e) = self.find_reserve(subnet).await? {
                return Ok(e);
            }
            let tags = TagSpecification::builder()
                .resource_type(ResourceType::NetworkInterface)
                .tags(Tag::builder().key(CLUSTER_TAG).value(&self.cluster).build())
                .tags(Tag::builder().key(ROLE_TAG).value(RESERVE_ROLE).build())
                .build();
            let res = self
                .calls
                .once("CreateNetworkInterface", || {
                    self.client
                        .create_network_interface()
                        .subnet_id(subnet)
                        .description(format!("FireCamp {}: static IPs of members not placed yet", self.cluster))
                        .tag_specifications(tags)
                        .send()
                })
                .await;
            match res {
                Ok(out) => {
                    if let Some(e) = out.network_interface().and_then(eni_info) {
                        return Ok(e);
                    }
                }
                Err(e) => retry_or_fail(&self.calls, e, attempt).await?,
            }
            attempt += 1;
        }
    }

    /// Reserves one IP for `member` from a cluster subnet of its zone.
    pub async fn allocate_ip(&self, member: &Member, records: &[StaticIpRecord]) -> Result<StaticIpRecord, AwsError> {
        // Idempotent: a member that has its record keeps it.
        if let Some(r) = records.iter().find(|r| r.is_of(member)) {
            check_ownership(member, r, records)?;
            return Ok(r.clone());
        }
        let subnet = choose_subnet(&self.subnets(&member.zone).await?, member)?;
        check_same_zone(&format!("subnet {}", subnet.id), &subnet.zone, member)?;
        let mut attempt = 1;
        let mut collisions = 0;
        loop {
            let reserve = self.ensure_reserve(&subnet.id).await?;
            let record = |ip| StaticIpRecord {
                member: member.name.clone(),
                namespace: member.namespace.clone(),
                ip,
                zone: subnet.zone.clone(),
                subnet: subnet.id.clone(),
                holder: reserve.id.clone(),
            };
            if let Some(ip) = unrecorded_reserve_ip(&reserve, records) {
                if self.held_elsewhere(&subnet.id, &reserve.id, ip).await? {
                    collisions = self.give_back_drawn(&reserve.id, ip, collisions).await?;
                    continue;
                }
                return Ok(record(ip));
            }
            // "Any free IP" is not idempotent: not retried as such. A retry reads the reserve
            // again and adopts the IP a lost reply had assigned.
            let res = self
                .calls
                .once("AssignPrivateIpAddresses", || {
                    self.client.assign_private_ip_addresses().network_interface_id(&reserve.id).secondary_private_ip_address_count(1).send()
                })
                .await;
            match res {
                Ok(out) => {
                    // The new IP is the one the reserve did not hold before (moto lists every
                    // IP of the interface here, its primary included).
                    let new = out
                        .assigned_private_ip_addresses()
                        .iter()
                        .filter_map(|a| parse_ip(a.private_ip_address()))
                        .find(|ip| Some(*ip) != reserve.primary_ip && !reserve.secondary_ips.contains(ip));
                    if let Some(ip) = new {
                        if self.held_elsewhere(&subnet.id, &reserve.id, ip).await? {
                            collisions = self.give_back_drawn(&reserve.id, ip, collisions).await?;
                            continue;
                        }
                        let rec = record(ip);
                        check_ownership(member, &rec, records)?;
                        return Ok(rec);
                    }
                    // Not named in the reply: the next round reads the reserve and adopts it.
                }
                Err(e) => retry_or_fail(&self.calls, e, attempt).await?,
            }
            attempt += 1;
        }
    }

    /// Whether an interface other than the reserve holds `ip`. AWS never hands out an address
    /// in use, but an emulator may (moto draws at random from the subnet), and a member given
    /// its node's own address would be unreachable: one filtered Describe, once in a member's
    /// life. (moto matches this filter against primary addresses only.)
    async fn held_elsewhere(&self, subnet: &str, reserve: &str, ip: Ipv4Addr) -> Result<bool, AwsError> {
        let ip_s = ip.to_string();
        let out = self
            .calls
            .call("DescribeNetworkInterfaces", || {
                self.client.describe_network_interfaces().filters(filter("subnet-id", subnet)).filters(filter("addresses.private-ip-address", &ip_s)).send()
            })
            .await?;
        Ok(out
            .network_interfaces()
            .iter()
            .filter(|n| n.network_interface_id() != Some(reserve))
            .any(|n| n.private_ip_addresses().iter().any(|a| a.private_ip_address() == Some(ip_s.as_str()))))
    }

    /// Takes an address drawn in use off the reserve again, so the next round draws another;
    /// gives up after a few, naming the subnet.
    async fn give_back_drawn(&self, reserve: &str, ip: Ipv4Addr, collisions: u32) -> Result<u32, AwsError> {
        tracing::warn!(%ip, reserve, "the subnet handed out an address another interface holds; drawing another");
        if collisions >= 3 {
            return Err(AwsError::Unexpected(format!("the subnet of interface {reserve} handed out addresses other interfaces hold 4 times (last {ip})")));
        }
        self.unassign(reserve, ip).await?;
        Ok(collisions + 1)
    }

    /// The instance's zone and interfaces (one filtered Describe by id).
    async fn instance(&self, instance: &InstanceId) -> Result<(String, Vec<EniInfo>), AwsError> {
        let out = self.calls.call("DescribeInstances", || self.client.describe_instances().instance_ids(&instance.0).send()).await;
        let out = match out {
            Err(e) if e.is(&["InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"]) => {
                return Err(AwsError::NotFound(format!("instance {}", instance.0)));
            }
            other => other?,
        };
        let inst = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(instance.0.as_str()))
            .ok_or_else(|| AwsError::NotFound(format!("instance {}", instance.0)))?;
        let zone = inst
            .placement()
            .and_then(|p| p.availability_zone())
            .ok_or_else(|| AwsError::Unexpected(format!("instance {} without a zone", instance.0)))?
            .to_string();
        let enis = inst
            .network_interfaces()
            .iter()
            .filter_map(|n| {
                let primary = n.private_ip_addresses().iter().find(|a| a.primary() == Some(true));
                Some(EniInfo {
                    id: n.network_interface_id()?.to_string(),
                    subnet: n.subnet_id()?.to_string(),
                    device_index: n.attachment().and_then(|a| a.device_index()),
                    primary_ip: parse_ip(primary.and_then(|a| a.private_ip_address())),
                    secondary_ips: n
                        .private_ip_addresses()
                        .iter()
                        .filter(|a| a.primary() != Some(true))
                        .filter_map(|a| parse_ip(a.private_ip_address()))
                        .collect(),
                })
            })
            .collect();
        Ok((zone, enis))
    }

    /// Moves the member's IP to the interface of `instance` in the IP's subnet.
    pub async fn assign_ip(
        &self,
        member: &Member,
        record: &StaticIpRecord,
        records: &[StaticIpRecord],
        instance: &InstanceId,
    ) -> Result<StaticIpRecord, AwsError> {
        check_ownership(member, record, records)?;
        let (zone, enis) = self.instance(instance).await?;
        check_same_zone(&format!("instance {}", instance.0), &zone, member)?;
        let eni = choose_eni(&enis, &record.subnet)
            .ok_or_else(|| AwsError::Refused(format!("instance {} has no interface in subnet {} of IP {}", instance.0, record.subnet, record.ip)))?;
        let moved = StaticIpRecord { holder: eni.id.clone(), ..record.clone() };
        if eni.id == record.holder && eni.secondary_ips.contains(&record.ip) {
            return Ok(moved);
        }
        // Only onto, and off, interfaces tagged for the cluster: the IAM policy's condition,
        // which moto does not enforce, so FireCamp checks it itself before any change. The
        // reassignment takes the IP off its old holder too, so that one is checked as well.
        let node = format!("instance {}", instance.0);
        let found = self.describe_enis(&[&eni.id, &record.holder]).await?;
        let target = found.get(&eni.id).ok_or_else(|| AwsError::NotFound(format!("network interface {} of {node}", eni.id)))?;
        check_cluster_tag(&eni.id, Some(&node), &target.tags, &self.cluster)?;
        if let Some(old) = found.get(&record.holder).filter(|o| o.info.id != eni.id && o.info.secondary_ips.contains(&record.ip)) {
            check_cluster_tag(&old.info.id, old.node().as_deref(), &old.tags, &self.cluster)?;
        }
        let ip = record.ip.to_string();
        // Naming the IP makes this idempotent, so it is retried as is.
        self.calls
            .call("AssignPrivateIpAddresses", || {
                self.client.assign_private_ip_addresses().network_interface_id(&eni.id).private_ip_addresses(&ip).allow_reassignment(true).send()
            })
            .await?;
        if record.holder != eni.id {
            self.take_back_from(&record.holder, record.ip).await?;
        }
        Ok(moved)
    }

    /// After a reassignment the old interface must no longer hold the IP. AWS moves it; an
    /// emulator may leave it on both, so look and remove it from the old holder if it is there.
    async fn take_back_from(&self, old: &str, ip: Ipv4Addr) -> Result<(), AwsError> {
        self.unassign_if_held(old, ip).await
    }

    /// Interfaces by id (one call, filtered by id: one that is gone is simply not in the
    /// answer), with their tags.
    async fn describe_enis(&self, ids: &[&str]) -> Result<BTreeMap<String, TaggedEni>, AwsError> {
        let mut ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        ids.sort();
        ids.dedup();
        let out = self
            .calls
            .call("DescribeNetworkInterfaces", || {
                self.client.describe_network_interfaces().filters(Filter::builder().name("network-interface-id").set_values(Some(ids.clone())).build()).send()
            })
            .await?;
        Ok(out
            .network_interfaces()
            .iter()
            .filter(|n| n.network_interface_id().is_some_and(|id| ids.iter().any(|i| i == id)))
            .filter_map(|n| {
                let info = eni_info(n)?;
                let tags = n.tag_set().iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect();
                let instance = n.attachment().and_then(|a| a.instance_id()).map(String::from);
                Some((info.id.clone(), TaggedEni { info, tags, instance }))
            })
            .collect())
    }

    /// Takes `ip` off interface `eni` if it holds it there; an interface that is gone or does
    /// not hold it has nothing of ours to give back. Refuses (before any change) an interface
    /// that does not carry the cluster tag.
    async fn unassign_if_held(&self, eni: &str, ip: Ipv4Addr) -> Result<(), AwsError> {
        let Some(found) = self.describe_enis(&[eni]).await?.remove(eni) else {
            tracing::warn!(%ip, eni, "the interface FireCamp recorded for a static IP is gone");
            return Ok(());
        };
        if !found.info.secondary_ips.contains(&ip) {
            tracing::warn!(%ip, eni, "static IP was not on the interface FireCamp recorded");
            return Ok(());
        }
        check_cluster_tag(eni, found.node().as_deref(), &found.tags, &self.cluster)?;
        self.unassign(eni, ip).await
    }

    async fn unassign(&self, eni: &str, ip: Ipv4Addr) -> Result<(), AwsError> {
        let ip_s = ip.to_string();
        let res = self
            .calls
            .call("UnassignPrivateIpAddresses", || self.client.unassign_private_ip_addresses().network_interface_id(eni).private_ip_addresses(&ip_s).send())
            .await;
        match res {
            Ok(_) => Ok(()),
            // Not (or no longer) on that interface: nothing of ours to give back there. Never go
            // looking for the IP elsewhere: another holder is not FireCamp's to touch.
            Err(e) if e.is(&["InvalidParameterValue", "InvalidNetworkInterfaceID.NotFound", "InvalidNetworkInterfaceId.NotFound"]) => {
                tracing::warn!(%ip, eni, code = ?e.code, "static IP was not on the interface FireCamp recorded");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the member's IP back to its subnet, from the interface the record names.
    pub async fn release_ip(&self, member: &Member, record: &StaticIpRecord) -> Result<(), AwsError> {
        check_ownership(member, record, &[])?;
        self.unassign_if_held(&record.holder, record.ip).await
    }
}

/// An interface as DescribeNetworkInterfaces shows it: its addresses and its tags.
struct TaggedEni {
    info: EniInfo,
    tags: Vec<(String, String)>,
    /// The instance it is attached to, if any.
    instance: Option<String>,
}

impl TaggedEni {
    /// What the interface is attached to, for an error (`instance i-…`).
    fn node(&self) -> Option<String> {
        self.instance.as_ref().map(|i| format!("instance {i}"))
    }
}

fn eni_info(n: &aws_sdk_ec2::types::NetworkInterface) -> Option<EniInfo> {
    let primary = n.private_ip_addresses().iter().find(|a| a.primary() == Some(true));
    Some(EniInfo {
        id: n.network_interface_id()?.to_string(),
        subnet: n.subnet_id()?.to_string(),
        device_index: n.attachment().and_then(|a| a.device_index()),
        primary_ip: parse_ip(primary.and_then(|a| a.private_ip_address())),
        secondary_ips: n.private_ip_addresses().iter().filter(|a| a.primary() != Some(true)).filter_map(|a| parse_ip(a.private_ip_address())).collect(),
    })
}

impl StaticIps for Ec2StaticIps {
    fn allocate<'a>(&'a self, member: &'a Member, records: &'a [StaticIpRecord]) -> BoxFuture<'a, Result<StaticIpRecord, CloudError>> {
        Box::pin(async move { Ok(self.allocate_ip(member, records).await?) })
    }

    fn assign<'a>(
        &'a self,
        member: &'a Member,
        record: &'a StaticIpRecord,
        records: &'a [StaticIpRecord],
        instance: &'a InstanceId,
    ) -> BoxFuture<'a, Result<StaticIpRecord, CloudError>> {
        Box::pin(async move { Ok(self.assign_ip(member, record, records, instance).await?) })
    }

    fn release<'a>(&'a self, member: &'a Member, record: &'a StaticIpRecord) -> BoxFuture<'a, Result<(), CloudError>> {
        Box::pin(async move { Ok(self.release_ip(member, record).await?) })
    }
}
