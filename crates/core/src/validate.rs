//! The rules every service obeys whatever its engine. Engine rules live in the catalog.

use std::collections::BTreeSet;

use crate::ClusterConfig;
use crate::error::ValidationErrors;
use crate::labels;
use crate::names::{MAX_MEMBERS, dns1035_label_problem, dns1123_label_problem, max_service_name_len};
use crate::quantity;
use crate::spec::{ServiceSpec, VolumeSpec, VolumeType};

/// Smallest and largest EBS volume sizes FireCamp accepts (GiB).
pub const MIN_VOLUME_GIB: u128 = 1;
pub const MAX_VOLUME_GIB: u128 = 16 * 1024;

/// Checks the service name, replicas, zones, resources, volumes, labels and annotations.
pub fn validate_common(name: &str, spec: &ServiceSpec, cluster: &ClusterConfig, errs: &mut ValidationErrors) {
    validate_name(name, spec.replicas, &cluster.name, errs);
    if spec.replicas == 0 || spec.replicas > MAX_MEMBERS {
        errs.push("spec.replicas", format!("must be 1 to {MAX_MEMBERS}, got {}", spec.replicas));
    }
    validate_zones(&spec.zones, cluster, errs);
    validate_resources(spec, errs);
    validate_volume("spec.volumes.data", &spec.volumes.data, errs);
    if let Some(j) = &spec.volumes.journal {
        validate_volume("spec.volumes.journal", j, errs);
    }
    for (k, v) in &spec.labels {
        if let Some(p) = labels::key_problem(k) {
            errs.push(format!("spec.labels[{k:?}]"), p);
        }
        if let Some(p) = labels::value_problem(v) {
            errs.push(format!("spec.labels[{k:?}]"), format!("value {p}"));
        }
    }
    for k in spec.annotations.keys() {
        if let Some(p) = labels::key_problem(k) {
            errs.push(format!("spec.annotations[{k:?}]"), p);
        }
    }
    validate_clients(spec, errs);
    if let Some(d) = spec.failover.delay_seconds
        && !crate::spec::FailoverSpec::DELAY_RANGE.contains(&d)
    {
        let r = crate::spec::FailoverSpec::DELAY_RANGE;
        errs.push("spec.failover.delaySeconds", format!("must be {} to {} seconds, got {d}", r.start(), r.end()));
    }
    if let Some(i) = &spec.tls.issuer {
        if let Some(p) = crate::names::dns1123_subdomain_problem(&i.name) {
            errs.push("spec.tls.issuer.name", p);
        }
        if !cluster.cert_manager {
            errs.push(
                "spec.tls.issuer",
                "cert-manager does not issue certificates here: the local runtime has none, and on Kubernetes the manage service found no cert-manager.io/v1 API when it started (install cert-manager, then restart the manage service)",
            );
        }
    }
    if let Some(b) = &spec.backup {
        let r = crate::spec::BackupSpec::RETENTION_RANGE;
        if let Some(n) = b.retention.filter(|n| !r.contains(n)) {
            errs.push("spec.backup.retention", format!("must be {} to {} backups, got {n}", r.start(), r.end()));
        }
        if let Some(p) = b.schedule.as_deref().and_then(crate::spec::BackupSpec::schedule_problem) {
            errs.push("spec.backup.schedule", p);
        }
        if spec.engine == crate::EngineKind::Kafka {
            errs.push("spec.backup", "Kafka services have no backups yet (docs/kafka.md)");
        }
        if spec.engine == crate::EngineKind::Mariadb {
            errs.push("spec.backup", "MariaDB services have no backups yet (docs/mariadb.md)");
        }
        if spec.engine == crate::EngineKind::Cassandra {
            errs.push("spec.backup", "Cassandra services have no backups yet (docs/cassandra.md)");
        }
        if !cluster.backups {
            errs.push("spec.backup", "this cluster has no backup target: on Kubernetes, start the manage service with --backup-target (docs/backup.md)");
        }
    }
}

/// A DNS-1035 label, short enough for every name derived from it (see [`crate::names`]).
pub fn validate_name(name: &str, replicas: u32, cluster: &str, errs: &mut ValidationErrors) {
    if let Some(p) = dns1035_label_problem(name) {
        errs.push("name", format!("{p} (a service name is a DNS-1035 label: a-z, 0-9 and '-', starting with a letter)"));
        return;
    }
    let max = max_service_name_len(replicas.clamp(1, MAX_MEMBERS), cluster);
    if name.len() > max {
        errs.push(
            "name",
            format!(
                "must be at most {max} characters, got {}: the StatefulSet's pods carry the label `<name>-<revision hash>`, which must fit in 63 characters",
                name.len()
            ),
        );
    }
}

fn validate_zones(zones: &[String], cluster: &ClusterConfig, errs: &mut ValidationErrors) {
    if zones.is_empty() {
        errs.push("spec.zones", "at least one availability zone is needed, e.g. us-east-1a");
    }
    let mut seen = BTreeSet::new();
    for (i, z) in zones.iter().enumerate() {
        if let Some(p) = dns1123_label_problem(z) {
            errs.push(format!("spec.zones[{i}]"), format!("{z:?} is not a zone name: it {p}"));
        } else if !seen.insert(z) {
            errs.push(format!("spec.zones[{i}]"), format!("zone {z:?} is listed twice; each zone once, in placement order"));
        } else if !cluster.zones.is_empty() && !cluster.zones.contains(z) {
            errs.push(
                format!("spec.zones[{i}]"),
                format!("{z:?} is not a zone of cluster {}: its zones are {} (`install render --zones`)", cluster.name, cluster.zones.join(", ")),
            );
        }
    }
}

fn validate_resources(spec: &ServiceSpec, errs: &mut ValidationErrors) {
    let r = &spec.resources;
    let parse =
        |field: &str, v: &Option<String>, errs: &mut ValidationErrors| v.as_deref().and_then(|s| quantity::parse(s).map_err(|e| errs.push(field, e)).ok());
    let req_cpu = parse("spec.resources.requests.cpu", &r.requests.cpu, errs);
    let lim_cpu = parse("spec.resources.limits.cpu", &r.limits.cpu, errs);
    let req_mem = parse("spec.resources.requests.memory", &r.requests.memory, errs);
    let lim_mem = parse("spec.resources.limits.memory", &r.limits.memory, errs);
    if let (Some(req), Some(lim)) = (req_cpu, lim_cpu)
        && req > lim
    {
        errs.push("spec.resources.requests.cpu", "must not exceed spec.resources.limits.cpu");
    }
    if let (Some(req), Some(lim)) = (req_mem, lim_mem)
        && req > lim
    {
        errs.push("spec.resources.requests.memory", "must not exceed spec.resources.limits.memory");
    }
    if let Some(m) = req_mem.or(lim_mem)
        && m.mebibytes() < 64
    {
        errs.push("spec.resources", "memory must be at least 64Mi for any engine");
    }
}

/// EBS rules: sizes, and which types take IOPS and throughput, within the ranges AWS allows.
pub fn validate_volume(field: &str, v: &VolumeSpec, errs: &mut ValidationErrors) {
    match quantity::parse(&v.size) {
        Err(e) => errs.push(format!("{field}.size"), e),
        Ok(q) => {
            let gib = q.units() / (1 << 30);
            if q.units() % (1 << 30) != 0 || !(MIN_VOLUME_GIB..=MAX_VOLUME_GIB).contains(&gib) {
                errs.push(format!("{field}.size"), format!("must be a whole number of Gi from {MIN_VOLUME_GIB}Gi to {MAX_VOLUME_GIB}Gi, got {}", v.size));
            }
        }
    }
    let (iops_range, throughput_ok) = match v.volume_type {
        VolumeType::Gp3 => (Some(3000..=16000), true),
        VolumeType::Io1 => (Some(100..=64000), false),
        VolumeType::Io2 => (Some(100..=256000), false),
        VolumeType::Gp2 | VolumeType::St1 | VolumeType::Sc1 => (None, false),
    };
    let t = v.volume_type.as_str();
    match (v.iops, iops_range) {
        (Some(iops), Some(range)) if !range.contains(&iops) => {
            errs.push(format!("{field}.iops"), format!("{t} allows {} to {} IOPS, got {iops}", range.start(), range.end()))
        }
        (Some(_), None) => errs.push(format!("{field}.iops"), format!("{t} volumes take no provisioned IOPS; use gp3, io1 or io2")),
        (None, Some(_)) if matches!(v.volume_type, VolumeType::Io1 | VolumeType::Io2) => {
            errs.push(format!("{field}.iops"), format!("{t} volumes need provisioned IOPS"))
        }
        _ => {}
    }
    match v.throughput {
        Some(tp) if throughput_ok && !(125..=1000).contains(&tp) => errs.push(format!("{field}.throughput"), format!("gp3 allows 125 to 1000 MiB/s, got {tp}")),
        Some(_) if !throughput_ok => errs.push(format!("{field}.throughput"), format!("only gp3 volumes take a throughput, not {t}")),
        _ => {}
    }
    if v.kms_key_id.is_some() && !v.encrypted {
        errs.push(format!("{field}.kmsKeyId"), "a KMS key needs encrypted: true");
    }
}

/// Most namespaces and CIDRs one service admits: each becomes a peer of its NetworkPolicy.
pub const MAX_CLIENT_PEERS: usize = 32;

fn validate_clients(spec: &ServiceSpec, errs: &mut ValidationErrors) {
    let c = &spec.clients;
    if c.namespaces.len() > MAX_CLIENT_PEERS {
        errs.push("spec.clients.namespaces", format!("at most {MAX_CLIENT_PEERS} namespaces, got {}", c.namespaces.len()));
    }
    if c.cidrs.len() > MAX_CLIENT_PEERS {
        errs.push("spec.clients.cidrs", format!("at most {MAX_CLIENT_PEERS} CIDRs, got {}", c.cidrs.len()));
    }
    for (i, ns) in c.namespaces.iter().enumerate() {
        if let Some(p) = dns1123_label_problem(ns) {
            errs.push(format!("spec.clients.namespaces[{i}]"), format!("not a namespace name: {p}"));
        }
    }
    for (i, cidr) in c.cidrs.iter().enumerate() {
        if let Some(p) = crate::cluster::cidr_problem(cidr) {
            errs.push(format!("spec.clients.cidrs[{i}]"), p);
        }
    }
    if !c.network_policy && (!c.namespaces.is_empty() || !c.cidrs.is_empty()) {
        errs.push(
            "spec.clients.networkPolicy",
            "is false, so nothing would enforce spec.clients.namespaces or spec.clients.cidrs; remove them or keep the policy",
        );
    }
}
