//! Members: the identities a service's replicas keep wherever they run.
//!
//! A member is addressed by its name everywhere. Only the Kubernetes layer knows that today a
//! member is the StatefulSet pod of the same name (`firecamp_kube::names::pod_of`), so that
//! FireCamp could later manage pods itself, as Strimzi and CloudNativePG did.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;

use crate::cluster::ClusterConfig;

/// `<service>-<index>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct MemberName(String);

impl MemberName {
    pub fn new(service: &str, index: u32) -> Self {
        MemberName(format!("{service}-{index}"))
    }
    /// A name read back from a record FireCamp wrote (a status, a DNS record).
    pub fn from_string(s: impl Into<String>) -> Self {
        MemberName(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The service and the index the name is made of; `None` for a name not of that form.
    pub fn parts(&self) -> Option<(&str, u32)> {
        let (service, index) = self.0.rsplit_once('-')?;
        Some((service, index.parse().ok()?))
    }
}

impl fmt::Display for MemberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One member's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub name: MemberName,
    /// Position in the service (0-based); engines derive their ids from it (ZooKeeper `myid`).
    pub index: u32,
    /// Availability zone: `zones[index mod zones.len()]`.
    pub zone: String,
    /// `<member>.<namespace>.<cluster>-firecamp.com` (`ClusterConfig::member_domain`).
    pub dns_name: String,
    /// The namespace that keys the member's cloud records (its static IP), when names carry
    /// one: `pg-0` of two namespaces are two members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Whether the engine needs the member to keep one IP address wherever it runs.
    pub needs_static_ip: bool,
    /// The static IP, once allocated (EC2 secondary IP on AWS, a loopback address locally).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_ip: Option<Ipv4Addr>,
}

/// The zone of member `index`: `zones[index mod n]`. Zones must not be empty.
pub fn zone_of(index: u32, zones: &[String]) -> &str {
    &zones[index as usize % zones.len()]
}

/// The members of a service, in index order. `zones` must not be empty (validation ensures it).
pub fn members(service: &str, replicas: u32, zones: &[String], cluster: &ClusterConfig, needs_static_ip: bool) -> Vec<Member> {
    let domain = cluster.member_domain();
    let namespace = cluster.names_namespace().map(String::from);
    (0..replicas)
        .map(|i| {
            let name = MemberName::new(service, i);
            let zone = zone_of(i, zones).to_string();
            Member { dns_name: format!("{name}.{domain}"), name, namespace: namespace.clone(), index: i, zone, needs_static_ip, static_ip: None }
        })
        .collect()
}

/// Label of the name that follows a service's primary: `primary.<service>.<member domain>`.
pub const PRIMARY_ENDPOINT: &str = "primary";
/// Label of the name that leads to a service's replicas: `replicas.<service>.<member domain>`.
pub const REPLICAS_ENDPOINT: &str = "replicas";

/// The names of a single-writer service's roles (PostgreSQL, Redis in replication mode): the
/// primary endpoint always leads to the current primary, the replicas endpoint to the others.
///
/// They can never equal a member's name, of this or any service, in any namespace: a member's
/// name has one label before the member domain and that label ends in `-<digits>`, while an
/// endpoint's first label is `primary` or `replicas` and it has two labels before the domain.
/// Another namespace's endpoints differ in the namespace label, as members' names do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    pub primary: String,
    pub replicas: String,
}

impl Endpoints {
    pub fn of(service: &str, cluster: &ClusterConfig) -> Self {
        let domain = cluster.member_domain();
        Endpoints { primary: format!("{PRIMARY_ENDPOINT}.{service}.{domain}"), replicas: format!("{REPLICAS_ENDPOINT}.{service}.{domain}") }
    }

    pub fn names(&self) -> [&str; 2] {
        [&self.primary, &self.replicas]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_i_lives_in_zone_i_mod_n() {
        let zones: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let mut cluster = ClusterConfig::new("prod");
        cluster.namespace = "team-a".into();
        let ms = members("pg", 5, &zones, &cluster, false);
        let got: Vec<_> = ms.iter().map(|m| (m.name.as_str(), m.zone.as_str(), m.dns_name.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("pg-0", "a", "pg-0.team-a.prod-firecamp.com"),
                ("pg-1", "b", "pg-1.team-a.prod-firecamp.com"),
                ("pg-2", "c", "pg-2.team-a.prod-firecamp.com"),
                ("pg-3", "a", "pg-3.team-a.prod-firecamp.com"),
                ("pg-4", "b", "pg-4.team-a.prod-firecamp.com"),
            ]
        );
        assert!(ms.iter().all(|m| m.namespace.as_deref() == Some("team-a")));
    }

    #[test]
    fn without_namespaces_members_are_named_in_the_zone() {
        let cluster = ClusterConfig { namespaced_names: false, ..ClusterConfig::new("prod") };
        let ms = members("pg", 1, &["a".to_string()], &cluster, false);
        assert_eq!((ms[0].dns_name.as_str(), ms[0].namespace.as_deref()), ("pg-0.prod-firecamp.com", None));
    }

    #[test]
    fn endpoints_never_equal_a_member_name() {
        let mut cluster = ClusterConfig::new("prod");
        cluster.namespace = "team-a".into();
        let e = Endpoints::of("pg", &cluster);
        assert_eq!(e.names(), ["primary.pg.team-a.prod-firecamp.com", "replicas.pg.team-a.prod-firecamp.com"]);
        // A service named like a member, or like the endpoint labels, in either naming mode.
        let flat = ClusterConfig { namespaced_names: false, ..cluster.clone() };
        for c in [&cluster, &flat] {
            for svc in ["pg", "pg-0", "primary", "replicas", "primary-0"] {
                let members = members(svc, 3, &["a".to_string()], c, false);
                for other in [&cluster, &flat] {
                    for e in ["pg", "pg-0", "primary", "team-a"].map(|s| Endpoints::of(s, other)) {
                        assert!(members.iter().all(|m| !e.names().contains(&m.dns_name.as_str())), "{e:?} vs {svc}");
                    }
                }
            }
        }
    }
}
