//! The safety rules of static IPs, pure. AWS enforces some of them and moto none (a second ENI
//! may take an IP another holds, a subnet of another zone is accepted), so FireCamp checks them
//! itself before every call that takes or gives back an IP.

use std::net::Ipv4Addr;

use firecamp_core::Member;
use firecamp_core::cloud::StaticIpRecord;

use crate::error::AwsError;
use crate::static_ip::CLUSTER_TAG;

/// A subnet FireCamp may take member IPs from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetInfo {
    pub id: String,
    pub zone: String,
    pub free_ips: i32,
}

/// A network interface and the IPv4 addresses it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EniInfo {
    pub id: String,
    pub subnet: String,
    /// Attachment slot on its instance (0 = primary), `None` when detached.
    pub device_index: Option<i32>,
    pub primary_ip: Option<Ipv4Addr>,
    pub secondary_ips: Vec<Ipv4Addr>,
}

/// `record` is `member`'s, lies in its zone, and no other member's record claims its IP.
pub fn check_ownership(member: &Member, record: &StaticIpRecord, records: &[StaticIpRecord]) -> Result<(), AwsError> {
    // Name and namespace: `rc-0` of another namespace is another member.
    if !record.is_of(member) {
        return Err(AwsError::Refused(format!("IP {} is recorded for member {}, not {}", record.ip, record.owner(), owner(member))));
    }
    check_same_zone("the IP's subnet", &record.zone, member)?;
    if let Some(other) = records.iter().find(|r| r.ip == record.ip && !r.is_of(member)) {
        return Err(AwsError::Refused(format!("IP {} is recorded for member {} too; an IP belongs to one member", record.ip, other.owner())));
    }
    Ok(())
}

fn owner(m: &Member) -> String {
    match &m.namespace {
        Some(ns) => format!("{ns}/{}", m.name),
        None => m.name.to_string(),
    }
}

/// Refuses anything of another zone than the member's: its volume and clients are there.
pub fn check_same_zone(what: &str, zone: &str, member: &Member) -> Result<(), AwsError> {
    if zone != member.zone {
        return Err(AwsError::Refused(format!("{what} is in zone {zone}, but member {} lives in {}", member.name, member.zone)));
    }
    Ok(())
}

/// The subnet of `zone` with the most free addresses (ties: the lowest id, so runs agree).
/// Subnets of other zones are never chosen, whatever a filter let through.
pub fn choose_subnet(subnets: &[SubnetInfo], member: &Member) -> Result<SubnetInfo, AwsError> {
    subnets
        .iter()
        .filter(|s| s.zone == member.zone)
        .max_by(|a, b| a.free_ips.cmp(&b.free_ips).then_with(|| b.id.cmp(&a.id)))
        .cloned()
        .ok_or_else(|| AwsError::NotFound(format!("no subnet tagged for the cluster in zone {} (for member {})", member.zone, member.name)))
}

/// The interface of an instance that can hold an IP of `subnet`: an IP moves only between
/// interfaces of its own subnet. The lowest device index (the primary interface) first.
pub fn choose_eni<'a>(enis: &'a [EniInfo], subnet: &str) -> Option<&'a EniInfo> {
    enis.iter().filter(|e| e.subnet == subnet).min_by_key(|e| (e.device_index.unwrap_or(i32::MAX), e.id.clone()))
}

/// The interface carries `firecamp-cluster=<cluster>`: FireCamp moves static IPs only onto and
/// off interfaces tagged for its cluster (its reserve interfaces, and the nodes' interfaces
/// tagged by their launch template), as the IAM policy's `ec2:ResourceTag` condition does on
/// AWS. `node` names the instance (and node) the interface is attached to, for the error.
pub fn check_cluster_tag(eni: &str, node: Option<&str>, tags: &[(String, String)], cluster: &str) -> Result<(), AwsError> {
    if tags.iter().any(|(k, v)| k == CLUSTER_TAG && v == cluster) {
        return Ok(());
    }
    Err(AwsError::UntaggedInterface { eni: eni.into(), node: node.map(String::from), tag: format!("{CLUSTER_TAG}={cluster}") })
}

/// A secondary IP on FireCamp's reserve interface that no record claims: left by an
/// allocation whose reply was lost, or by a crash before the record was saved. Reusing it keeps
/// a retried allocation from taking a second IP.
pub fn unrecorded_reserve_ip(reserve: &EniInfo, records: &[StaticIpRecord]) -> Option<Ipv4Addr> {
    reserve.secondary_ips.iter().copied().filter(|ip| !records.iter().any(|r| r.ip == *ip)).min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use firecamp_core::MemberName;

    fn member(i: u32, zone: &str) -> Member {
        Member {
            name: MemberName::new("rc", i),
            namespace: Some("a".into()),
            index: i,
            zone: zone.into(),
            dns_name: format!("rc-{i}.prod-firecamp.com"),
            needs_static_ip: true,
            static_ip: None,
        }
    }
    fn record(i: u32, ip: [u8; 4], zone: &str) -> StaticIpRecord {
        StaticIpRecord {
            member: MemberName::new("rc", i),
            namespace: Some("a".into()),
            ip: ip.into(),
            zone: zone.into(),
            subnet: "subnet-a".into(),
            holder: "eni-r".into(),
        }
    }

    #[test]
    fn a_member_may_use_its_own_record_only() {
        let m0 = member(0, "us-east-1a");
        let r0 = record(0, [10, 0, 1, 10], "us-east-1a");
        assert!(check_ownership(&m0, &r0, std::slice::from_ref(&r0)).is_ok());
        let r1 = record(1, [10, 0, 1, 11], "us-east-1a");
        assert!(matches!(check_ownership(&m0, &r1, &[r0.clone(), r1.clone()]), Err(AwsError::Refused(_))));
        // The same IP recorded for two members: refuse, whoever asks.
        let dup = record(1, [10, 0, 1, 10], "us-east-1a");
        let err = check_ownership(&m0, &r0, &[r0.clone(), dup]).unwrap_err();
        assert!(err.to_string().contains("rc-1"), "{err}");
    }

    #[test]
    fn the_same_member_name_in_another_namespace_is_another_member() {
        let m0 = member(0, "us-east-1a");
        let theirs = StaticIpRecord { namespace: Some("b".into()), ..record(0, [10, 0, 1, 10], "us-east-1a") };
        let err = check_ownership(&m0, &theirs, std::slice::from_ref(&theirs)).unwrap_err();
        assert!(err.to_string().contains("b/rc-0"), "{err}");
        // Its IP is taken: a record of ours naming it is refused too.
        let mine = record(0, [10, 0, 1, 10], "us-east-1a");
        assert!(check_ownership(&m0, &mine, &[mine.clone(), theirs]).unwrap_err().to_string().contains("b/rc-0"));
    }

    #[test]
    fn a_record_of_another_zone_is_refused() {
        let m0 = member(0, "us-east-1a");
        let r = record(0, [10, 0, 2, 10], "us-east-1b");
        assert!(matches!(check_ownership(&m0, &r, &[]), Err(AwsError::Refused(_))));
    }

    #[test]
    fn the_subnet_is_the_roomiest_of_the_members_zone() {
        let s = |id: &str, zone: &str, free| SubnetInfo { id: id.into(), zone: zone.into(), free_ips: free };
        let subnets = [s("subnet-1", "us-east-1a", 10), s("subnet-2", "us-east-1a", 50), s("subnet-3", "us-east-1b", 500), s("subnet-0", "us-east-1a", 50)];
        assert_eq!(choose_subnet(&subnets, &member(0, "us-east-1a")).unwrap().id, "subnet-0");
        assert!(matches!(choose_subnet(&subnets, &member(2, "us-east-1c")), Err(AwsError::NotFound(_))));
    }

    #[test]
    fn the_interface_is_the_instances_first_in_the_ips_subnet() {
        let e =
            |id: &str, subnet: &str, idx| EniInfo { id: id.into(), subnet: subnet.into(), device_index: Some(idx), primary_ip: None, secondary_ips: vec![] };
        let enis = [e("eni-2", "subnet-a", 2), e("eni-1", "subnet-b", 0), e("eni-3", "subnet-a", 1)];
        assert_eq!(choose_eni(&enis, "subnet-a").unwrap().id, "eni-3");
        assert!(choose_eni(&enis, "subnet-c").is_none());
    }

    #[test]
    fn only_interfaces_tagged_for_the_cluster_may_hold_its_ips() {
        let t = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert!(check_cluster_tag("eni-1", None, &[t("Name", "n"), t(CLUSTER_TAG, "prod")], "prod").is_ok());
        // Untagged, or tagged for another cluster (the tag's key is not enough).
        for tags in [vec![], vec![t(CLUSTER_TAG, "dev")], vec![t("firecamp-cluster-x", "prod")]] {
            let err = check_cluster_tag("eni-1", Some("instance i-9"), &tags, "prod").unwrap_err();
            assert!(
                matches!(&err, AwsError::UntaggedInterface { eni, node, tag } if eni == "eni-1" && node.as_deref() == Some("instance i-9") && tag == "firecamp-cluster=prod"),
                "{err}"
            );
            let text = err.to_string();
            assert!(text.contains("eni-1") && text.contains("instance i-9") && text.contains("firecamp-cluster=prod"), "{text}");
        }
    }

    #[test]
    fn only_unrecorded_reserve_ips_are_reused() {
        let reserve = EniInfo {
            id: "eni-r".into(),
            subnet: "subnet-a".into(),
            device_index: None,
            primary_ip: Some([10, 0, 1, 4].into()),
            secondary_ips: vec![[10, 0, 1, 12].into(), [10, 0, 1, 10].into()],
        };
        let r0 = record(0, [10, 0, 1, 10], "us-east-1a");
        assert_eq!(unrecorded_reserve_ip(&reserve, std::slice::from_ref(&r0)), Some([10, 0, 1, 12].into()));
        let r1 = record(1, [10, 0, 1, 12], "us-east-1a");
        assert_eq!(unrecorded_reserve_ip(&reserve, &[r0, r1]), None);
    }
}
