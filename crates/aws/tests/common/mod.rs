//! Shared by the moto tests: where moto is, a fresh VPC world per test, FireCamp's clients.
#![allow(dead_code)]

pub mod proxy;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, InstanceType, ResourceType, Tag, TagSpecification};
use firecamp_aws::retry::{Backoff, Rate};
use firecamp_aws::static_ip::{CLUSTER_TAG, WORKER_TAG};
use firecamp_aws::{AwsSettings, Clients};
use firecamp_core::cloud::InstanceId;
use firecamp_core::{ClusterConfig, Member};

pub const REGION: &str = "us-east-1";
pub const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

/// moto's endpoint: `FIRECAMP_MOTO_ENDPOINT` (scripts/setup.d/20-moto.sh), else a moto started
/// from `.venv-moto` for this test binary; else the test fails saying how to get one.
pub fn moto_endpoint() -> String {
    static STARTED: OnceLock<String> = OnceLock::new();
    if let Ok(e) = std::env::var("FIRECAMP_MOTO_ENDPOINT")
        && !e.is_empty()
    {
        return e;
    }
    STARTED.get_or_init(start_moto).clone()
}

fn start_moto() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let server = root.join(".venv-moto/bin/moto_server");
    assert!(
        server.exists(),
        "moto is not running and not installed: run the tests through scripts/test.sh, or `. scripts/setup.d/20-moto.sh` \
         (installs moto into .venv-moto and exports FIRECAMP_MOTO_ENDPOINT)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // moto outlives no test binary: a watcher stops it when this process is gone.
    let script = format!(
        "{} -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; while kill -0 {} 2>/dev/null; do sleep 1; done; kill $m",
        server.display(),
        std::process::id()
    );
    // The watcher lives as long as this process: it is deliberately never waited for.
    #[allow(clippy::zombie_processes)]
    Command::new("bash").args(["-c", &script]).stdin(Stdio::null()).spawn().expect("start moto");
    let endpoint = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return endpoint;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("moto did not start on {endpoint}");
}

/// A cluster name no other test uses, so tests share one moto and run in parallel.
pub fn unique_cluster(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}{}x{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Settings for tests: fake credentials, a fast backoff, rates that do not slow the suite.
pub fn settings(endpoint: &str) -> AwsSettings {
    AwsSettings {
        region: Some(REGION.into()),
        endpoint_url: Some(endpoint.into()),
        test_credentials: true,
        backoff: Backoff { base: Duration::from_millis(5), cap: Duration::from_millis(50), max_attempts: 6 },
        route53_rate: Rate { per_second: 1000.0, burst: 1000 },
        ec2_rate: Rate { per_second: 1000.0, burst: 1000 },
        logs_rate: Rate { per_second: 1000.0, burst: 1000 },
        timeouts: Default::default(),
    }
}

pub async fn clients(endpoint: &str) -> Clients {
    Clients::new(&settings(endpoint)).await
}

/// A VPC with a cluster-tagged subnet in each of three zones (and an untagged one in the first,
/// which FireCamp must never use), two worker instances per zone.
pub struct World {
    pub cluster: String,
    pub vpc: String,
    pub subnets: BTreeMap<String, String>,
    pub untagged_subnet: String,
    pub instances: BTreeMap<String, Vec<InstanceId>>,
    /// Direct to moto, not through FireCamp's code or the proxy: the test's own eyes.
    pub ec2: aws_sdk_ec2::Client,
    pub route53: aws_sdk_route53::Client,
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

/// moto 5.2.5 ignores RunInstances' `network-interface` tag specification (AWS applies it to
/// the instance's interfaces): tag them afterwards, as AWS would have.
async fn tag_interfaces_of(ec2: &aws_sdk_ec2::Client, instances: &[aws_sdk_ec2::types::Instance], cluster: &str) {
    let enis: Vec<String> = instances.iter().flat_map(|i| i.network_interfaces()).filter_map(|n| n.network_interface_id()).map(String::from).collect();
    ec2.create_tags().set_resources(Some(enis)).tags(tag(CLUSTER_TAG, cluster)).send().await.unwrap();
}

/// The second octet of a new world's VPC: distinct for the worlds of one test process (and
/// likely across processes), never 250 and above (the bed's own networks).
fn next_net() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    20 + (std::process::id() * 7 + n) % 200
}

impl World {
    pub async fn new(prefix: &str) -> World {
        let cluster = unique_cluster(prefix);
        let c = clients(&moto_endpoint()).await;
        let ec2 = c.ec2.clone();
        // Worlds share one moto and run side by side: each its own addresses, so no two
        // worlds ever hold the same private IP.
        let net = next_net();
        let vpc = ec2.create_vpc().cidr_block(format!("10.{net}.0.0/16")).send().await.unwrap().vpc().unwrap().vpc_id().unwrap().to_string();
        let mut subnets = BTreeMap::new();
        let mut instances = BTreeMap::new();
        let image = "ami-12c6146b";
        for (i, zone) in ZONES.iter().enumerate() {
            let s = ec2
                .create_subnet()
                .vpc_id(&vpc)
                .availability_zone(*zone)
                .cidr_block(format!("10.{net}.{}.0/24", i + 1))
                .tag_specifications(TagSpecification::builder().resource_type(ResourceType::Subnet).tags(tag(CLUSTER_TAG, &cluster)).build())
                .send()
                .await
                .unwrap();
            let subnet = s.subnet().unwrap().subnet_id().unwrap().to_string();
            let run = ec2
                .run_instances()
                .image_id(image)
                .instance_type(InstanceType::T3Medium)
                .min_count(2)
                .max_count(2)
                .subnet_id(&subnet)
                .tag_specifications(TagSpecification::builder().resource_type(ResourceType::Instance).tags(tag(WORKER_TAG, &cluster)).build())
                // As the node group's launch template tags its nodes' interfaces (docs/aws.md):
                // FireCamp moves static IPs only onto interfaces tagged for its cluster.
                .tag_specifications(TagSpecification::builder().resource_type(ResourceType::NetworkInterface).tags(tag(CLUSTER_TAG, &cluster)).build())
                .send()
                .await
                .unwrap();
            tag_interfaces_of(&ec2, run.instances(), &cluster).await;
            let mut ids: Vec<InstanceId> = run.instances().iter().map(|i| InstanceId(i.instance_id().unwrap().to_string())).collect();
            ids.sort();
            instances.insert(zone.to_string(), ids);
            subnets.insert(zone.to_string(), subnet);
        }
        let untagged_subnet = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .availability_zone(ZONES[0])
            .cidr_block(format!("10.{net}.9.0/24"))
            .send()
            .await
            .unwrap()
            .subnet()
            .unwrap()
            .subnet_id()
            .unwrap()
            .to_string();
        World { cluster, vpc, subnets, untagged_subnet, instances, ec2, route53: c.route53.clone() }
    }

    pub fn members(&self, service: &str, replicas: u32, static_ip: bool) -> Vec<Member> {
        let zones: Vec<String> = ZONES.iter().map(|z| z.to_string()).collect();
        firecamp_core::member::members(service, replicas, &zones, &ClusterConfig::new(self.cluster.clone()), static_ip)
    }

    /// Where `members` are named: the namespace `default`'s subdomain of the cluster's zone.
    pub fn member_domain(&self) -> String {
        ClusterConfig::new(self.cluster.clone()).member_domain()
    }

    /// The primary private IP of an instance (the address a host-network pod is reached at).
    pub async fn primary_ip(&self, id: &InstanceId) -> Ipv4Addr {
        let out = self.ec2.describe_instances().instance_ids(&id.0).send().await.unwrap();
        out.reservations()[0].instances()[0].private_ip_address().unwrap().parse().unwrap()
    }

    /// Every interface of the VPC that holds `ip` as a secondary address.
    pub async fn holders_of(&self, ip: Ipv4Addr) -> Vec<String> {
        // By subnet: moto's vpc-id filter misses interfaces made by CreateNetworkInterface.
        let subnets: Vec<String> = self.subnets.values().chain([&self.untagged_subnet]).cloned().collect();
        let out = self.ec2.describe_network_interfaces().filters(Filter::builder().name("subnet-id").set_values(Some(subnets)).build()).send().await.unwrap();
        let ip = ip.to_string();
        out.network_interfaces()
            .iter()
            .filter(|n| n.private_ip_addresses().iter().any(|a| a.primary() != Some(true) && a.private_ip_address() == Some(ip.as_str())))
            .map(|n| n.network_interface_id().unwrap().to_string())
            .collect()
    }

    /// The primary interface of an instance.
    pub async fn eni_of(&self, id: &InstanceId) -> String {
        let out = self.ec2.describe_instances().instance_ids(&id.0).send().await.unwrap();
        let inst = &out.reservations()[0].instances()[0];
        inst.network_interfaces().iter().min_by_key(|n| n.attachment().and_then(|a| a.device_index())).unwrap().network_interface_id().unwrap().to_string()
    }

    /// What `firecamp install aws-zone` does at install time: the cluster's private zone, made
    /// straight at moto (not through a test's proxy). Returns its id.
    pub async fn install_zone(&self) -> String {
        let c = clients(&moto_endpoint()).await;
        firecamp_aws::Route53Dns::new(&c, &self.cluster, &self.vpc).create_zone().await.unwrap().0
    }

    /// A worker of `zone` launched without the launch template's interface tag: its primary
    /// interface does not carry `firecamp-cluster`.
    pub async fn untagged_node(&self, zone: &str) -> InstanceId {
        let run = self
            .ec2
            .run_instances()
            .image_id("ami-12c6146b")
            .instance_type(InstanceType::T3Medium)
            .min_count(1)
            .max_count(1)
            .subnet_id(&self.subnets[zone])
            .tag_specifications(TagSpecification::builder().resource_type(ResourceType::Instance).tags(tag(WORKER_TAG, &self.cluster)).build())
            .send()
            .await
            .unwrap();
        InstanceId(run.instances()[0].instance_id().unwrap().to_string())
    }

    /// The tags of a network interface.
    pub async fn tags_of(&self, eni: &str) -> BTreeMap<String, String> {
        let out = self.ec2.describe_network_interfaces().network_interface_ids(eni).send().await.unwrap();
        out.network_interfaces()[0].tag_set().iter().map(|t| (t.key().unwrap().to_string(), t.value().unwrap_or_default().to_string())).collect()
    }

    /// Hosted zones named like the cluster's (to check none was created twice).
    pub async fn zones_named(&self, domain: &str) -> usize {
        let out = self.route53.list_hosted_zones_by_name().dns_name(domain).send().await.unwrap();
        out.hosted_zones().iter().filter(|z| z.name().trim_end_matches('.') == domain).count()
    }
}
