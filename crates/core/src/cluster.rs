//! The cluster a service is created in: its name (and so its DNS zone), namespace, network and
//! the volume provisioner of its StorageClasses.

use serde::{Deserialize, Serialize};

use crate::error::ValidationErrors;
use crate::names::{DOMAIN_SUFFIX, MAX_CLUSTER_NAME, dns1123_label_problem};

/// The CSI driver of Amazon EBS, FireCamp's volume provisioner on AWS.
pub const EBS_CSI_PROVISIONER: &str = "ebs.csi.aws.com";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConfig {
    /// Cluster name; the members' DNS zone is `<name>-firecamp.com`.
    pub name: String,
    /// Whether the namespace is part of the names a service's members get in the cluster's
    /// cloud records (DNS names `<member>.<namespace>.<name>-firecamp.com`, log streams
    /// `<namespace>/<service>/<member>`), so tenants of one cluster may reuse a service name.
    /// True on Kubernetes; the local runtime, which has no namespaces, turns it off.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub namespaced_names: bool,
    /// Namespace the service's objects live in.
    pub namespace: String,
    /// Networks clients and members connect from (the VPC CIDR); engines admit only these.
    pub networks: Vec<String>,
    /// Provisioner of the per-zone StorageClasses.
    pub volume_provisioner: String,
    /// The registry every image FireCamp names is pulled from instead of its own (an
    /// air-gapped mirror, or the test bed's `firecamp.local`): the repository path and the
    /// pinned tag stay, only the registry changes. See `image()`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_registry: Option<String>,
    /// Namespace of the manage service, whose pods every service's NetworkPolicy admits.
    #[serde(default = "default_manage_namespace")]
    pub manage_namespace: String,
    /// The cluster's availability zones (`install render --zones`): a service may only place
    /// members in these. Empty: not checked (a member in a zone without nodes then leaves its
    /// service DEGRADED with the reason).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// Whether the runtime has somewhere to keep backups (the local runtime's backup
    /// directory); a service may ask for `spec.backup` only then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backups: bool,
    /// Whether cert-manager issues certificates here (its `cert-manager.io/v1` API was found
    /// when the manage service started); a service may name `spec.tls.issuer` only then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cert_manager: bool,
    /// On Kubernetes, the bucket PostgreSQL members archive their WAL into (`manage
    /// --backup-target`); `None` on the local runtime, which keeps its own target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveTarget>,
}

/// A Kubernetes cluster's backup bucket (docs/backup.md): each service archives under
/// `<url>/<namespace>/<service>/<uid>/`, so tenants and incarnations never share a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveTarget {
    /// `s3://bucket/prefix`, checked when the manage service starts.
    pub url: String,
    /// The bucket's region.
    pub region: String,
    /// An endpoint other than AWS's (moto, MinIO); empty for AWS.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    /// A Secret of each service's namespace, kept by its tenant, whose key `credentials` (an AWS
    /// shared-credentials file) members use; without one, the SDK's chain in the pod (IRSA, EKS
    /// Pod Identity, the node's instance role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Where `install render` puts the manage service unless told otherwise.
pub const DEFAULT_MANAGE_NAMESPACE: &str = "firecamp-system";

fn default_manage_namespace() -> String {
    DEFAULT_MANAGE_NAMESPACE.into()
}

/// FireCamp's own image: the manage service, and `member-init` in every member's pod.
pub const FIRECAMP_IMAGE: &str = concat!("docker.io/firecampdev/firecamp:", env!("CARGO_PKG_VERSION"));

impl ClusterConfig {
    pub fn new(name: impl Into<String>) -> Self {
        ClusterConfig {
            name: name.into(),
            namespaced_names: true,
            namespace: "default".into(),
            networks: vec!["10.0.0.0/8".into()],
            volume_provisioner: EBS_CSI_PROVISIONER.into(),
            image_registry: None,
            manage_namespace: DEFAULT_MANAGE_NAMESPACE.into(),
            zones: Vec::new(),
            backups: false,
            cert_manager: false,
            archive: None,
        }
    }

    /// A pinned image (`docker.io/library/postgres:15.10-bookworm`) as this cluster pulls it:
    /// from `image_registry` when one is set (`mirror.example:5000/library/postgres:15.10-bookworm`).
    pub fn image(&self, pinned: &str) -> String {
        match &self.image_registry {
            Some(r) => with_registry(pinned, r),
            None => pinned.to_string(),
        }
    }

    /// FireCamp's own image (member-init, member-ip) as this cluster pulls it.
    pub fn firecamp_image(&self) -> String {
        self.image(FIRECAMP_IMAGE)
    }

    /// The private DNS zone of the cluster: `<cluster>-firecamp.com`.
    pub fn domain(&self) -> String {
        format!("{}{DOMAIN_SUFFIX}", self.name)
    }

    /// The namespace that keys the service's cloud records, when names carry one.
    pub fn names_namespace(&self) -> Option<&str> {
        self.namespaced_names.then_some(self.namespace.as_str())
    }

    /// Where the service's members are named: `<namespace>.<cluster>-firecamp.com` (inside the
    /// cluster's zone), or the zone itself without namespaces.
    pub fn member_domain(&self) -> String {
        member_domain(&self.domain(), self.names_namespace())
    }

    pub fn validate(&self, errs: &mut ValidationErrors) {
        if let Some(p) = dns1123_label_problem(&self.name) {
            errs.push("cluster", p);
        } else if self.name.len() > MAX_CLUSTER_NAME {
            errs.push("cluster", format!("must be at most {MAX_CLUSTER_NAME} characters so that `<cluster>-firecamp` is one DNS label"));
        }
        if let Some(p) = dns1123_label_problem(&self.namespace) {
            errs.push("namespace", p);
        }
        if let Some(p) = dns1123_label_problem(&self.manage_namespace) {
            errs.push("manageNamespace", p);
        }
        if self.networks.is_empty() {
            errs.push("networks", "at least one CIDR is needed to admit clients");
        }
        for (i, n) in self.networks.iter().enumerate() {
            if let Some(p) = cidr_problem(n) {
                errs.push(format!("networks[{i}]"), p);
            }
        }
        if let Some(p) = self.image_registry.as_deref().and_then(registry_problem) {
            errs.push("imageRegistry", p);
        }
        for (i, z) in self.zones.iter().enumerate() {
            if let Some(p) = dns1123_label_problem(z) {
                errs.push(format!("zones[{i}]"), format!("{z:?} is not a zone name: it {p}"));
            } else if self.zones[..i].contains(z) {
                errs.push(format!("zones[{i}]"), format!("zone {z:?} is listed twice"));
            }
        }
        if self.volume_provisioner.is_empty() {
            errs.push("volumeProvisioner", "must name the CSI driver of the StorageClasses, e.g. ebs.csi.aws.com");
        }
    }
}

/// The members' domain inside the cluster's `zone`: one subdomain per namespace, so a service
/// name reused in another namespace never names the same records.
pub fn member_domain(zone: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{ns}.{zone}"),
        None => zone.to_string(),
    }
}

/// `image` with its registry replaced by `registry`. The first path component is a registry
/// when it has a dot or a port or is `localhost` (Docker's rule); otherwise the image names
/// none and Docker Hub's path (`library/…` for official images) is kept under `registry`.
pub fn with_registry(image: &str, registry: &str) -> String {
    let registry = registry.trim_end_matches('/');
    let path = match image.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => rest.to_string(),
        Some(_) => image.to_string(),
        None => format!("library/{image}"),
    };
    format!("{registry}/{path}")
}

/// Why `r` is not a registry host with an optional port and path (`mirror.example:5000/team`):
/// it reaches every pod spec, so only these characters are allowed.
pub fn registry_problem(r: &str) -> Option<String> {
    let (host, path) = r.split_once('/').unwrap_or((r, ""));
    let (name, port) = host.split_once(':').unwrap_or((host, ""));
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let path_ok = |c: &str| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    let ok = !name.is_empty()
        && name.split('.').all(label_ok)
        && (port.is_empty() || port.parse::<u16>().is_ok_and(|p| p > 0))
        && (path.is_empty() || path.trim_end_matches('/').split('/').all(path_ok));
    (!ok).then(|| format!("{r:?} is not a registry: write host[:port][/path] in lower case, e.g. mirror.example.com:5000/firecamp"))
}

/// Why `s` is not an IPv4 or IPv6 CIDR such as `10.0.0.0/16`.
pub fn cidr_problem(s: &str) -> Option<String> {
    let Some((addr, len)) = s.split_once('/') else {
        return Some(format!("{s:?} is not a CIDR; write it as address/prefix, e.g. 10.0.0.0/16"));
    };
    let max = match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => 32,
        Ok(std::net::IpAddr::V6(_)) => 128,
        Err(_) => return Some(format!("{addr:?} is not an IP address")),
    };
    match len.parse::<u8>() {
        Ok(l) if l <= max => None,
        _ => Some(format!("prefix length {len:?} must be 0 to {max}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_replaces_only_the_registry() {
        assert_eq!(with_registry("docker.io/library/postgres:15.10-bookworm", "firecamp.local"), "firecamp.local/library/postgres:15.10-bookworm");
        assert_eq!(with_registry("docker.io/firecampdev/firecamp:0.1.0", "mirror.example:5000/team/"), "mirror.example:5000/team/firecampdev/firecamp:0.1.0");
        assert_eq!(with_registry("redis:7.0", "firecamp.local"), "firecamp.local/library/redis:7.0");
        assert_eq!(with_registry("firecampdev/firecamp:1", "firecamp.local"), "firecamp.local/firecampdev/firecamp:1");
        let mut c = ClusterConfig::new("prod");
        assert_eq!(c.firecamp_image(), FIRECAMP_IMAGE);
        c.image_registry = Some("localhost:5000".into());
        assert_eq!(c.image("docker.io/library/zookeeper:3.8.4"), "localhost:5000/library/zookeeper:3.8.4");
    }

    #[test]
    fn registries_are_an_allow_list() {
        for ok in ["firecamp.local", "mirror.example.com:5000/firecamp", "localhost:5000", "r/a_b/c.d"] {
            assert_eq!(registry_problem(ok), None, "{ok}");
        }
        for bad in ["", "Mirror.example", "a b", "host:0", "host:99999", "host:x", "-a.example", "a//b", "a/$(id)", "a/b;c", "a\nb"] {
            assert!(registry_problem(bad).is_some(), "{bad:?} accepted");
        }
        let mut c = ClusterConfig::new("prod");
        c.image_registry = Some("evil;rm".into());
        let mut errs = ValidationErrors::default();
        c.validate(&mut errs);
        assert!(errs.into_result().unwrap_err().to_string().contains("imageRegistry"));
    }
}
