//! FireCamp's AWS layer against moto (scripts/setup.d/20-moto.sh), through a counting,
//! fault-injecting proxy. Each test builds its own VPC and cluster name, so tests are
//! independent and share one moto. The API-call counts printed here are the ones in docs/aws.md
//! (`cargo test -p firecamp-aws --test moto -- --nocapture` shows them).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::ops::ControlFlow;
use std::time::{Duration, SystemTime};

use common::proxy::{Fault, Proxy, total};
use common::{World, clients, moto_endpoint};
use firecamp_aws::{AwsError, CloudWatchLogs, Ec2StaticIps, Route53Dns};
use firecamp_core::Member;
use firecamp_core::cloud::{DnsRecord, LogEvent, MemberAddress, RecordChange, StaticIpRecord};

fn report(what: &str, counts: &BTreeMap<String, u32>) {
    println!("API calls, {what}: {} {counts:?}", total(counts));
}

fn addresses(members: &[Member], ips: &[Ipv4Addr]) -> Vec<MemberAddress> {
    members.iter().zip(ips).map(|(m, ip)| MemberAddress { member: m.name.clone(), dns_name: m.dns_name.clone(), ip: *ip }).collect()
}

struct Layer {
    dns: Route53Dns,
    ips: Ec2StaticIps,
    logs: CloudWatchLogs,
}

async fn layer(w: &World, proxy: &Proxy) -> Layer {
    let c = clients(&proxy.endpoint).await;
    Layer {
        dns: Route53Dns::new(&c, &w.cluster, &w.vpc),
        ips: Ec2StaticIps::new(&c, &w.cluster, &w.vpc),
        logs: CloudWatchLogs::new(&c, &w.cluster).with_retention(Some(7)),
    }
}

/// Creates a 3-member service the way the manage service does: streams, static IPs (if the
/// engine needs them) placed on the first instance of each member's zone, DNS in one batch.
async fn create_service(l: &Layer, w: &World, members: &[Member], records: &mut Vec<StaticIpRecord>) -> Vec<Ipv4Addr> {
    let service = members[0].name.as_str().rsplit_once('-').unwrap().0.to_string();
    let names: Vec<_> = members.iter().map(|m| m.name.clone()).collect();
    l.logs.ensure(&service, &names).await.unwrap();
    let mut ips = Vec::new();
    for m in members {
        let node = &w.instances[&m.zone][0];
        if m.needs_static_ip {
            let r = l.ips.allocate_ip(m, records).await.unwrap();
            let placed = l.ips.assign_ip(m, &r, &[records.clone(), vec![r.clone()]].concat(), node).await.unwrap();
            ips.push(placed.ip);
            records.push(placed);
        } else {
            ips.push(w.primary_ip(node).await);
        }
    }
    let changes = l.dns.sync_service(&service, &w.member_domain(), &addresses(members, &ips)).await.unwrap();
    assert_eq!(changes.len(), members.len());
    assert!(changes.iter().all(|c| matches!(c, RecordChange::Upsert(_))));
    ips
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_created_in_one_batch_and_listed() {
    let w = World::new("dns").await;
    let proxy = Proxy::start(&moto_endpoint()).await;
    let l = layer(&w, &proxy).await;
    w.install_zone().await;
    let members = w.members("pg", 3, false);
    let mut ips = Vec::new();
    for m in &members {
        ips.push(w.primary_ip(&w.instances[&m.zone][0]).await);
    }
    l.dns.sync_service("pg", &w.member_domain(), &addresses(&members, &ips)).await.unwrap();
    let counts = proxy.take_counts();
    assert_eq!(counts.get("route53:ChangeResourceRecordSets"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("route53:CreateHostedZone"), None, "the zone is made at install time: {counts:?}");

    let listed = l.dns.list_service_records("pg", &w.member_domain()).await.unwrap();
    let got: Vec<_> = listed.iter().map(|r| (r.name.clone(), r.ip, r.ttl)).collect();
    let want: Vec<_> = members.iter().zip(&ips).map(|(m, ip)| (m.dns_name.clone(), *ip, 60)).collect();
    assert_eq!(got, want);
    // Records of another service in the same zone are not this service's.
    let other = w.members("pg-x", 1, false);
    l.dns.sync_service("pg-x", &w.member_domain(), &addresses(&other, &ips[..1])).await.unwrap();
    assert_eq!(l.dns.list_service_records("pg", &w.member_domain()).await.unwrap().len(), 3);
    // Nothing changed: nothing is sent.
    proxy.take_counts();
    assert!(l.dns.sync_service("pg", &w.member_domain(), &addresses(&members, &ips)).await.unwrap().is_empty());
    assert_eq!(proxy.take_counts().get("route53:ChangeResourceRecordSets"), None);
}

/// Issue #14: the endpoints are records of the service, written in the members' batch — the
/// primary's one address, the replicas' one record set of several — moved by one batch, listed
/// and deleted with them; services named like a member or like the endpoint label keep their own
/// records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoints_are_records_of_the_service() {
    let w = World::new("endpoint").await;
    let proxy = Proxy::start(&moto_endpoint()).await;
    let l = layer(&w, &proxy).await;
    w.install_zone().await;
    let members = w.members("pg", 3, false);
    let mut ips = Vec::new();
    for m in &members {
        ips.push(w.primary_ip(&w.instances[&m.zone][0]).await);
    }
    let endpoint = format!("primary.pg.{}", w.member_domain());
    let replicas = format!("replicas.pg.{}", w.member_domain());
    let with_primary = |i: usize| {
        let mut a = addresses(&members, &ips);
        a.push(MemberAddress { member: members[i].name.clone(), dns_name: endpoint.clone(), ip: ips[i] });
        for (m, ip) in members.iter().zip(&ips).filter(|(m, _)| m.name != members[i].name) {
            a.push(MemberAddress { member: m.name.clone(), dns_name: replicas.clone(), ip: *ip });
        }
        a
    };
    let replicas_listed = |listed: &[DnsRecord]| -> BTreeSet<Ipv4Addr> { listed.iter().filter(|r| r.name == replicas).map(|r| r.ip).collect() };
    let changes = l.dns.sync_service("pg", &w.member_domain(), &with_primary(0)).await.unwrap();
    assert_eq!(changes.len(), 6, "3 members, the primary endpoint, 2 replicas: {changes:?}");
    assert_eq!(proxy.take_counts().get("route53:ChangeResourceRecordSets"), Some(&1));
    // Neighbours whose names sort next to pg's records: a service named like pg's member, one
    // named like the endpoint label.
    for other in ["pg-0", "primary"] {
        let m = w.members(other, 1, false);
        let mut a = addresses(&m, &ips[2..]);
        a.push(MemberAddress { member: m[0].name.clone(), dns_name: format!("primary.{other}.{}", w.member_domain()), ip: ips[2] });
        l.dns.sync_service(other, &w.member_domain(), &a).await.unwrap();
    }
    let listed = l.dns.list_service_records("pg", &w.member_domain()).await.unwrap();
    let names: BTreeSet<_> = listed.iter().map(|r| r.name.clone()).collect();
    let want: BTreeSet<_> = members.iter().map(|m| m.dns_name.clone()).chain([endpoint.clone(), replicas.clone()]).collect();
    assert_eq!(names, want);
    assert_eq!(listed.iter().find(|r| r.name == endpoint).map(|r| r.ip), Some(ips[0]));
    assert_eq!(replicas_listed(&listed), BTreeSet::from([ips[1], ips[2]]), "one record set, both replicas");
    // A failover: only the endpoints move, in one batch.
    proxy.take_counts();
    let changes = l.dns.sync_service("pg", &w.member_domain(), &with_primary(1)).await.unwrap();
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert!(matches!(&changes[0], RecordChange::Upsert(r) if r.name == endpoint && r.ip == ips[1]));
    assert_eq!(proxy.take_counts().get("route53:ChangeResourceRecordSets"), Some(&1));
    let listed = l.dns.list_service_records("pg", &w.member_domain()).await.unwrap();
    assert_eq!(listed.iter().find(|r| r.name == endpoint).map(|r| r.ip), Some(ips[1]));
    assert_eq!(replicas_listed(&listed), BTreeSet::from([ips[0], ips[2]]), "the old primary is a replica");
    // Deleting the service deletes its endpoints, and only its own.
    let changes = l.dns.sync_service("pg", &w.member_domain(), &[]).await.unwrap();
    assert_eq!(changes.len(), 6);
    assert!(l.dns.list_service_records("pg", &w.member_domain()).await.unwrap().is_empty());
    for other in ["pg-0", "primary"] {
        assert_eq!(l.dns.list_service_records(other, &w.member_domain()).await.unwrap().len(), 2, "{other}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_move_and_delete_keep_ips_and_records_right() {
    let w = World::new("life").await;
    w.install_zone().await;
    let proxy = Proxy::start(&moto_endpoint()).await;
    let l = layer(&w, &proxy).await;
    let mut records = Vec::new();

    // Create: a Redis-like service (static IPs), the first service of the cluster.
    let rc = w.members("rc", 3, true);
    let ips = create_service(&l, &w, &rc, &mut records).await;
    report("service create, 3 members with static IPs (first service of the cluster)", &proxy.take_counts());
    assert_eq!(ips.iter().collect::<BTreeSet<_>>().len(), 3, "one IP per member");
    for (m, r) in rc.iter().zip(&records) {
        assert_eq!(r.subnet, w.subnets[&m.zone], "IP from a cluster subnet of the member's zone");
        assert_eq!(w.holders_of(r.ip).await, vec![w.eni_of(&w.instances[&m.zone][0]).await]);
    }
    // And one without static IPs, once the zone exists.
    let pg = w.members("pg", 3, false);
    let mut none = Vec::new();
    let pg_ips = create_service(&l, &w, &pg, &mut none).await;
    report("service create, 3 members without static IPs", &proxy.take_counts());

    // Move: rc-0 to the other node of its zone; the IP follows, the record stays right.
    let to = &w.instances[&rc[0].zone][1];
    let moved = l.ips.assign_ip(&rc[0], &records[0], &records, to).await.unwrap();
    l.dns.sync_service("rc", &w.member_domain(), &addresses(&rc, &ips)).await.unwrap();
    report("member move, static IP (assign + DNS check)", &proxy.take_counts());
    assert_eq!(w.holders_of(moved.ip).await, vec![w.eni_of(to).await], "the IP is on the new node only");
    records[0] = moved;

    // Move: pg-1 to the other node of its zone; its record is UPSERTed to the new address.
    let to = &w.instances[&pg[1].zone][1];
    let mut new_ips = pg_ips.clone();
    new_ips[1] = w.primary_ip(to).await;
    let changes = l.dns.sync_service("pg", &w.member_domain(), &addresses(&pg, &new_ips)).await.unwrap();
    report("member move, no static IP (DNS)", &proxy.take_counts());
    assert!(matches!(changes.as_slice(), [RecordChange::Upsert(r)] if r.ip == new_ips[1] && r.name == pg[1].dns_name));
    let listed: Vec<_> = l.dns.list_service_records("pg", &w.member_domain()).await.unwrap().into_iter().map(|r| r.ip).collect();
    assert_eq!(listed, new_ips);

    // Delete: the IPs go back, the records go, the other service is untouched.
    proxy.take_counts();
    for (m, r) in rc.iter().zip(&records) {
        l.ips.release_ip(m, r).await.unwrap();
    }
    let changes = l.dns.sync_service("rc", &w.member_domain(), &[]).await.unwrap();
    report("service delete, 3 members with static IPs", &proxy.take_counts());
    assert_eq!(changes.len(), 3);
    assert!(changes.iter().all(|c| matches!(c, RecordChange::Delete(_))));
    for r in &records {
        assert!(w.holders_of(r.ip).await.is_empty(), "{} released", r.ip);
    }
    assert!(l.dns.list_service_records("rc", &w.member_domain()).await.unwrap().is_empty());
    assert_eq!(l.dns.list_service_records("pg", &w.member_domain()).await.unwrap().len(), 3);
    // Releasing again is harmless (a retried delete).
    l.ips.release_ip(&rc[0], &records[0]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_streams_are_created_and_events_read_back() {
    let w = World::new("logs").await;
    let proxy = Proxy::start(&moto_endpoint()).await;
    let l = layer(&w, &proxy).await;
    let zk = w.members("zk", 3, false);
    let names: Vec<_> = zk.iter().map(|m| m.name.clone()).collect();
    l.logs.ensure("zk", &names).await.unwrap();
    l.logs.ensure("zk", &names).await.unwrap(); // idempotent
    let streams = l.logs.streams("zk/").await.unwrap();
    assert_eq!(streams, ["zk/zk-0", "zk/zk-1", "zk/zk-2"].into_iter().map(String::from).collect());

    let t0 = SystemTime::now() - Duration::from_secs(60);
    let ev = |s: u64, m: &str| LogEvent { time: t0 + Duration::from_secs(s), message: m.into() };
    l.logs.put("zk", &names[1], &[ev(0, "starting"), ev(10, "serving as follower"), ev(20, "snapshot taken")]).await.unwrap();

    let page = l.logs.read_page("zk", &names[1], None, None).await.unwrap();
    let msgs: Vec<_> = page.events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(msgs, ["starting", "serving as follower", "snapshot taken"]);
    let since = l.logs.read_page("zk", &names[1], Some(t0 + Duration::from_secs(10)), None).await.unwrap();
    assert_eq!(since.events.len(), 2, "{since:?}");
    assert!(l.logs.read_page("zk", &names[0], None, None).await.unwrap().events.is_empty());

    // Follow: what was there, then what arrives; stops when the caller has enough.
    let mut seen = Vec::new();
    let writer = async {
        l.logs.put("zk", &names[1], &[ev(30, "new leader elected")]).await.unwrap();
    };
    let follower = l.logs.follow("zk", &names[1], None, |e| {
        seen.push(e.message);
        if seen.len() == 4 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    });
    let (res, ()) = tokio::join!(follower, writer);
    res.unwrap();
    assert_eq!(seen.last().map(String::as_str), Some("new leader elected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safety_rules_refuse_cross_zone_and_double_assigned_ips() {
    let w = World::new("safe").await;
    let proxy = Proxy::start(&moto_endpoint()).await;
    let l = layer(&w, &proxy).await;
    let rc = w.members("rc", 3, true);
    let r0 = l.ips.allocate_ip(&rc[0], &[]).await.unwrap();
    assert_ne!(r0.subnet, w.untagged_subnet, "never an untagged subnet");
    let r1 = l.ips.allocate_ip(&rc[1], std::slice::from_ref(&r0)).await.unwrap();
    let records = vec![r0.clone(), r1.clone()];
    proxy.take_counts();

    // rc-0 lives in zone a: a node of zone b is refused before any EC2 change.
    let b_node = &w.instances[&rc[1].zone][0];
    let err = l.ips.assign_ip(&rc[0], &r0, &records, b_node).await.unwrap_err();
    assert!(matches!(err, AwsError::Refused(_)), "{err}");
    // rc-1 may not take rc-0's IP, even with a forged record of its own.
    let forged = StaticIpRecord { member: rc[1].name.clone(), ..r0.clone() };
    let err = l.ips.assign_ip(&rc[1], &forged, &[records.clone(), vec![forged.clone()]].concat(), b_node).await.unwrap_err();
    assert!(matches!(err, AwsError::Refused(_)), "{err}");
    // Nor use or release another member's record.
    let err = l.ips.assign_ip(&rc[1], &r0, &records, b_node).await.unwrap_err();
    assert!(matches!(err, AwsError::Refused(_)), "{err}");
    assert!(matches!(l.ips.release_ip(&rc[1], &r0).await, Err(AwsError::Refused(_))));
    // A record whose zone is not the member's.
    let cross = StaticIpRecord { zone: rc[1].zone.clone(), ..r0.clone() };
    assert!(matches!(l.ips.assign_ip(&rc[0], &cross, &records, b_node).await, Err(AwsError::Refused(_))));
    let counts = proxy.take_counts();
    assert!(!counts.keys().any(|k| k.contains("Assign") || k.contains("Unassign")), "no IP was touched: {counts:?}");
    // rc-0's IP is still only on FireCamp's reserve interface.
    assert_eq!(w.holders_of(r0.ip).await, vec![r0.holder.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_5xx_are_retried_without_duplicates() {
    let w = World::new("flaky").await;
    let proxy = Proxy::start(&moto_endpoint()).await;
    let l = layer(&w, &proxy).await;
    // Install time: the zone is created despite throttled look-ups and a lost reply.
    proxy.fail("route53:ListHostedZonesByName", 2, Fault::Throttle);
    proxy.fail("route53:CreateHostedZone", 1, Fault::LoseReply);
    l.dns.create_zone().await.unwrap();
    report("install aws-zone, with a lost CreateHostedZone reply and 2 throttled look-ups", &proxy.take_counts());
    assert_eq!(w.zones_named(l.dns.domain()).await, 1, "one hosted zone despite a lost CreateHostedZone reply");
    let l = layer(&w, &proxy).await; // the manage service: finds the zone it did not make
    proxy.fail("route53:ListHostedZonesByName", 1, Fault::Throttle);
    proxy.fail("route53:ChangeResourceRecordSets", 1, Fault::PriorRequestNotComplete);
    proxy.fail("route53:ListResourceRecordSets", 1, Fault::ServerError);
    proxy.fail("ec2:DescribeSubnets", 2, Fault::ServerError);
    proxy.fail("ec2:CreateNetworkInterface", 1, Fault::LoseReply);
    proxy.fail("ec2:AssignPrivateIpAddresses", 1, Fault::LoseReply);
    proxy.fail("ec2:DescribeInstances", 1, Fault::Throttle);
    proxy.fail("logs:CreateLogStream", 2, Fault::Throttle);
    proxy.fail("logs:CreateLogGroup", 1, Fault::ServerError);

    let rc = w.members("rc", 3, true);
    let mut records = Vec::new();
    let ips = create_service(&l, &w, &rc, &mut records).await;
    report("service create, 3 members with static IPs, with injected faults", &proxy.take_counts());
    assert!(proxy.injected() >= 13, "faults injected: {}", proxy.injected());

    assert_eq!(w.zones_named(l.dns.domain()).await, 1, "one hosted zone despite a lost CreateHostedZone reply");
    assert_eq!(l.dns.list_service_records("rc", &w.member_domain()).await.unwrap().len(), 3, "one record per member");
    assert_eq!(ips.iter().collect::<BTreeSet<_>>().len(), 3, "distinct IPs");
    for (m, r) in rc.iter().zip(&records) {
        assert_eq!(w.holders_of(r.ip).await, vec![w.eni_of(&w.instances[&m.zone][0]).await], "{} on one interface", r.ip);
    }
    // The lost reply of "assign any free IP" and of the reserve interface's creation left
    // nothing behind: the first zone's reserve holds no IP, and there is one reserve.
    let reserves = w
        .ec2
        .describe_network_interfaces()
        .filters(aws_sdk_ec2::types::Filter::builder().name("subnet-id").values(&w.subnets[&rc[0].zone]).build())
        .filters(aws_sdk_ec2::types::Filter::builder().name("tag:firecamp-role").values("static-ip-reserve").build())
        .send()
        .await
        .unwrap();
    assert_eq!(reserves.network_interfaces().len(), 1, "one reserve interface");
    assert!(reserves.network_interfaces()[0].private_ip_addresses().iter().all(|a| a.primary() == Some(true)), "no leaked IP");

    // A move whose assignment is throttled, and a batch whose reply is lost.
    proxy.fail("ec2:AssignPrivateIpAddresses", 2, Fault::Throttle);
    let to = &w.instances[&rc[0].zone][1];
    let moved = l.ips.assign_ip(&rc[0], &records[0], &records, to).await.unwrap();
    assert_eq!(w.holders_of(moved.ip).await, vec![w.eni_of(to).await]);
    proxy.fail("route53:ChangeResourceRecordSets", 1, Fault::LoseReply);
    // The lost reply's batch was applied: the retry re-reads and finds nothing left to do.
    l.dns.sync_service("rc", &w.member_domain(), &[]).await.unwrap();
    assert!(l.dns.list_service_records("rc", &w.member_domain()).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_bounded() {
    let w = World::new("down").await;
    let proxy = Proxy::start(&moto_endpoint()).await;
    let l = layer(&w, &proxy).await;
    proxy.fail("route53:ListHostedZonesByName", 100, Fault::Throttle);
    let err = l.dns.zone_id().await.unwrap_err();
    assert!(matches!(&err, AwsError::Call(c) if c.attempts == 6 && c.code.as_deref() == Some("Throttling")), "{err}");
    assert_eq!(proxy.take_counts().get("route53:ListHostedZonesByName"), Some(&6));
}

/// The manage service never creates the cluster's zone: without it, DNS fails naming the install
/// command, and nothing is created. The install command's creation is idempotent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_zone_is_named_not_created_and_the_install_step_creates_one() {
    let w = World::new("nozone").await;
    let proxy = Proxy::start(&moto_endpoint()).await;
    let l = layer(&w, &proxy).await;
    let members = w.members("pg", 1, false);
    let ip = w.primary_ip(&w.instances[&members[0].zone][0]).await;
    let err = l.dns.sync_service("pg", &w.member_domain(), &addresses(&members, &[ip])).await.unwrap_err();
    assert!(matches!(&err, AwsError::ZoneMissing { cluster, vpc_id, .. } if *cluster == w.cluster && *vpc_id == w.vpc), "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("firecamp install aws-zone --cluster {} --vpc-id {}", w.cluster, w.vpc)), "{text}");
    let counts = proxy.take_counts();
    assert_eq!(counts.get("route53:CreateHostedZone"), None, "{counts:?}");
    assert!(!counts.keys().any(|k| k.contains("ChangeResourceRecordSets")), "{counts:?}");
    assert_eq!(w.zones_named(l.dns.domain()).await, 0, "nothing created");
    // Still missing on the next reconcile (a miss is not remembered), still nothing created.
    assert!(matches!(l.dns.zone_id().await, Err(AwsError::ZoneMissing { .. })));
    assert_eq!(w.zones_named(l.dns.domain()).await, 0);

    // The install step, twice: one zone, the same id, created once.
    let (id, created) = l.dns.create_zone().await.unwrap();
    assert!(created);
    let again = Route53Dns::new(&clients(&proxy.endpoint).await, &w.cluster, &w.vpc);
    assert_eq!(again.create_zone().await.unwrap(), (id.clone(), false));
    assert_eq!(w.zones_named(l.dns.domain()).await, 1);
    // The manage service now finds it.
    let found = Route53Dns::new(&clients(&proxy.endpoint).await, &w.cluster, &w.vpc);
    assert_eq!(found.zone_id().await.unwrap(), id);
    found.sync_service("pg", &w.member_domain(), &addresses(&members, &[ip])).await.unwrap();
    assert_eq!(found.list_service_records("pg", &w.member_domain()).await.unwrap().len(), 1);
}

/// The attack: a node whose interface does not carry the cluster tag (its launch template does
/// not tag it, or someone removed the tag). FireCamp refuses to move a member's IP onto it or
/// off it, naming the interface, the instance and the tag, and no IP moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ips_never_move_onto_or_off_an_interface_without_the_cluster_tag() {
    let w = World::new("untag").await;
    let proxy = Proxy::start(&moto_endpoint()).await;
    let l = layer(&w, &proxy).await;
    let rc = w.members("rc", 1, true);
    let zone = &rc[0].zone;
    let r0 = l.ips.allocate_ip(&rc[0], &[]).await.unwrap();
    let reserve_tags = w.tags_of(&r0.holder).await;
    assert_eq!(reserve_tags.get("firecamp-cluster"), Some(&w.cluster), "FireCamp's reserve interface carries the tag");

    let rogue = w.untagged_node(zone).await;
    let rogue_eni = w.eni_of(&rogue).await;
    assert!(!w.tags_of(&rogue_eni).await.contains_key("firecamp-cluster"));
    proxy.take_counts();
    let err = l.ips.assign_ip(&rc[0], &r0, std::slice::from_ref(&r0), &rogue).await.unwrap_err();
    let want_tag = format!("firecamp-cluster={}", w.cluster);
    assert!(
        matches!(&err, AwsError::UntaggedInterface { eni, node, tag } if *eni == rogue_eni && node.as_deref() == Some(format!("instance {}", rogue.0).as_str()) && *tag == want_tag),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains(&rogue_eni) && text.contains(&rogue.0) && text.contains(&want_tag), "{text}");
    let counts = proxy.take_counts();
    assert!(!counts.keys().any(|k| k.contains("ssignPrivateIpAddresses")), "no IP was moved: {counts:?}");
    assert_eq!(w.holders_of(r0.ip).await, vec![r0.holder.clone()], "the IP is still on the reserve interface only");
    let rogue_ips = w.ec2.describe_network_interfaces().network_interface_ids(&rogue_eni).send().await.unwrap();
    assert!(rogue_ips.network_interfaces()[0].private_ip_addresses().iter().all(|a| a.primary() == Some(true)), "the rogue node got no IP");
    // Tagged for another cluster is no better.
    w.ec2.create_tags().resources(&rogue_eni).tags(aws_sdk_ec2::types::Tag::builder().key("firecamp-cluster").value("other").build()).send().await.unwrap();
    assert!(matches!(l.ips.assign_ip(&rc[0], &r0, std::slice::from_ref(&r0), &rogue).await, Err(AwsError::UntaggedInterface { .. })));
    assert_eq!(w.holders_of(r0.ip).await, vec![r0.holder.clone()]);

    // Onto a tagged node it goes; once its tag is removed, FireCamp does not take the IP off it.
    let node = &w.instances[zone][0];
    let placed = l.ips.assign_ip(&rc[0], &r0, std::slice::from_ref(&r0), node).await.unwrap();
    let node_eni = w.eni_of(node).await;
    assert_eq!(w.holders_of(r0.ip).await, vec![node_eni.clone()]);
    w.ec2.delete_tags().resources(&node_eni).tags(aws_sdk_ec2::types::Tag::builder().key("firecamp-cluster").build()).send().await.unwrap();
    proxy.take_counts();
    let err = l.ips.release_ip(&rc[0], &placed).await.unwrap_err();
    assert!(matches!(&err, AwsError::UntaggedInterface { eni, .. } if *eni == node_eni), "{err}");
    let counts = proxy.take_counts();
    assert!(!counts.keys().any(|k| k.contains("ssignPrivateIpAddresses")), "nothing unassigned: {counts:?}");
    assert_eq!(w.holders_of(r0.ip).await, vec![node_eni.clone()]);
    // Nor moves it from there to another node (taking it back would unassign it there).
    let other = &w.instances[zone][1];
    let err = l.ips.assign_ip(&rc[0], &placed, std::slice::from_ref(&placed), other).await.unwrap_err();
    assert!(matches!(&err, AwsError::UntaggedInterface { eni, .. } if *eni == node_eni), "{err}");
}

/// moto draws a "free" address at random and may hand out one another interface holds (AWS
/// never does); FireCamp must not give it to a member. The collision is set up by hand: the
/// reserve is made to hold the node's own address, as a lost reply would have left it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_in_use_elsewhere_is_never_given_to_a_member() {
    let w = World::new("taken").await;
    let proxy = Proxy::start(&moto_endpoint()).await;
    let l = layer(&w, &proxy).await;
    let rc = w.members("rc", 1, true);
    let first = l.ips.allocate_ip(&rc[0], &[]).await.unwrap();
    let node_ip = w.primary_ip(&w.instances[&rc[0].zone][0]).await;
    w.ec2.assign_private_ip_addresses().network_interface_id(&first.holder).private_ip_addresses(node_ip.to_string()).send().await.unwrap();
    proxy.take_counts();

    let other = w.members("other", 1, true);
    assert_eq!(other[0].zone, rc[0].zone);
    let second = l.ips.allocate_ip(&other[0], std::slice::from_ref(&first)).await.unwrap();
    report("static IP allocation, the first address drawn in use elsewhere", &proxy.take_counts());
    assert_ne!(second.ip, node_ip, "the node's own address is not a member's");
    assert_ne!(second.ip, first.ip);
    assert_eq!(second.holder, first.holder, "held by the reserve");
    assert_eq!(w.holders_of(second.ip).await, vec![first.holder.clone()]);
    assert!(w.holders_of(node_ip).await.is_empty(), "the address in use was given back by the reserve");
}
