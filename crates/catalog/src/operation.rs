//! Turning an operation request into the service's next spec and the ordered steps that get
//! the members there. Pure: the Kubernetes manage service and the local runtime both call it.

use std::collections::BTreeMap;

use firecamp_core::operation::{
    CaStage, MemberRole, OperationKind, OperationRequest, OperationStep, StepAction, UpdatePolicy, restart_steps, scale_steps, shard_scale_steps,
    stop_start_steps,
};
use firecamp_core::{MemberName, ServiceSpec, ValidationErrors};

use crate::engine::engine;

/// What a request changes: the spec to apply and a short description of the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: OperationKind,
    pub spec: ServiceSpec,
    pub target: Option<String>,
    pub policy: UpdatePolicy,
    /// Parameters whose value changed (config operations).
    pub changed_keys: Vec<String>,
    /// `certificates`: the CA rotation stage.
    pub ca: Option<CaStage>,
}

/// Checks the request against its kind and the service's current spec, and returns the next
/// spec. Every mistake is reported with the field's name; the result still has to pass
/// [`crate::plan`] (which knows, for example, the versions the catalog allows).
pub fn change(current: &ServiceSpec, req: &OperationRequest) -> Result<Change, ValidationErrors> {
    let mut errs = ValidationErrors::default();
    let Some(kind) = req.kind else {
        let all: Vec<_> = OperationKind::ALL.iter().filter(|k| **k != OperationKind::Failover).map(|k| k.as_str()).collect();
        errs.push("kind", format!("is required; allowed: {}", all.join(", ")));
        return Err(errs);
    };
    let mut spec = current.clone();
    let mut target = None;
    let mut changed_keys = Vec::new();
    let only = |field: &str, present: bool, errs: &mut ValidationErrors, wanted: OperationKind| {
        if present && kind != wanted {
            errs.push(field, format!("belongs to kind {wanted}, not {kind}"));
        }
    };
    only("version", req.version.is_some(), &mut errs, OperationKind::Upgrade);
    only("config", !req.config.is_empty(), &mut errs, OperationKind::Config);
    only("memberConfig", !req.member_config.is_empty(), &mut errs, OperationKind::Config);
    only("resources", req.resources.is_some(), &mut errs, OperationKind::Resources);
    only("ca", req.ca.is_some(), &mut errs, OperationKind::Certificates);
    only("replicas", req.replicas.is_some(), &mut errs, OperationKind::Scale);
    only("shards", req.shards.is_some(), &mut errs, OperationKind::Scale);
    only("volume", req.volume.is_some(), &mut errs, OperationKind::Volume);
    only("size", req.size.is_some(), &mut errs, OperationKind::Volume);
    if req.step_timeout_seconds == Some(0) {
        errs.push("stepTimeoutSeconds", "must be at least 1");
    }
    match kind {
        OperationKind::Upgrade => match &req.version {
            None => errs.push("version", "is required for an upgrade"),
            Some(v) if current.engine == firecamp_core::EngineKind::Postgresql && running_version(current) != Some(v.as_str()) => errs.push(
                "version",
                format!(
                    "PostgreSQL {} to {v} is a major upgrade: its data directory must be converted with pg_upgrade, which FireCamp does not run yet; a restart on the new binaries would not start",
                    running_version(current).unwrap_or("?")
                ),
            ),
            Some(v) => {
                spec.version = Some(v.clone());
                target = Some(format!("version {v}"));
            }
        },
        OperationKind::Config => {
            if req.config.is_empty() && req.member_config.is_empty() {
                errs.push("config", "set at least one parameter in config or memberConfig");
            }
            for (k, v) in &req.config {
                changed_keys.push(k.clone());
                set_or_remove(&mut spec.config, k, v);
            }
            for (member, params) in &req.member_config {
                let entry = spec.member_config.entry(member.clone()).or_default();
                for (k, v) in params {
                    changed_keys.push(k.clone());
                    set_or_remove(entry, k, v);
                }
                if entry.is_empty() {
                    spec.member_config.remove(member);
                }
            }
            changed_keys.sort();
            changed_keys.dedup();
            target = Some(changed_keys.join(", "));
        }
        OperationKind::Resources => match &req.resources {
            None => errs.push("resources", "is required for a resources change"),
            Some(r) => {
                spec.resources = r.clone();
                target = Some("resources".into());
            }
        },
        OperationKind::Stop => {
            if current.stopped {
                errs.push("kind", "the service is already stopped");
            }
            spec.stopped = true;
        }
        OperationKind::Start => {
            if !current.stopped {
                errs.push("kind", "the service is not stopped");
            }
            spec.stopped = false;
        }
        OperationKind::Restart => {
            if current.stopped {
                errs.push("kind", "the service is stopped; start it instead");
            }
        }
        OperationKind::Scale if is_redis_cluster(current) => {
            let per = crate::redis::members_per_shard(current);
            let now = current.redis.as_ref().and_then(|r| r.shards).unwrap_or(1);
            if req.replicas.is_some() {
                errs.push("replicas", format!("a Redis Cluster scales by shards: give shards (each new shard gets {per} members like the others)"));
            }
            match req.shards {
                None => errs.push("shards", "is required for a Redis Cluster scale"),
                Some(n) if n == now => errs.push("shards", format!("the service already has {n} shards")),
                // At least MIN_SHARDS, and the member limit: `plan` checks them on the next spec.
                Some(n) => {
                    target = Some(format!("shards {now} → {n}"));
                    spec.replicas = n.saturating_mul(per);
                    if let Some(r) = spec.redis.as_mut() {
                        r.shards = Some(n);
                    }
                    let members = spec.replicas;
                    spec.member_config.retain(|m, _| MemberName::from_string(m.as_str()).parts().is_some_and(|(_, i)| i < members));
                }
            }
        }
        OperationKind::Scale if req.shards.is_some() => errs.push("shards", "applies to a Redis Cluster only; give replicas"),
        OperationKind::Scale => match req.replicas {
            None => errs.push("replicas", "is required for a scale"),
            Some(n) if n == current.replicas => errs.push("replicas", format!("the service already has {n} members")),
            // One member runs standalone, where ZooKeeper has no `reconfig`.
            Some(n) if current.engine == firecamp_core::EngineKind::Zookeeper && (n < 3 || current.replicas < 3) => errs.push(
                "replicas",
                "a ZooKeeper ensemble scales between 3 and 9 members: a single member runs standalone, which cannot change its membership",
            ),
            // KRaft's voters are static (`controller.quorum.voters`): changing them is Kafka's
            // dynamic quorum, which FireCamp does not drive yet.
            Some(_) if current.engine == firecamp_core::EngineKind::Kafka => {
                errs.push("replicas", "scaling a Kafka service is not supported yet: its members are the controller quorum's static voters")
            }
            // A new replica would need a copy of the primary (mariabackup), which FireCamp does
            // not take yet.
            Some(_) if current.engine == firecamp_core::EngineKind::Mariadb => {
                errs.push("replicas", "scaling a MariaDB service is not supported yet: a new replica needs a copy of the primary (docs/mariadb.md)")
            }
            // A member added later joins by bootstrap (streaming its ranges) and leaves by
            // decommission; the seeds, the first member of each zone, never come or go: a new
            // first member of a zone would be a seed, and a seed does not bootstrap.
            Some(n) if current.engine == firecamp_core::EngineKind::Cassandra && cassandra_scale_refused(current, n).is_some() => {
                errs.push("replicas", cassandra_scale_refused(current, n).unwrap_or_default())
            }
            // The range and the engine's own rules (synchronous replication needs 2) are
            // checked by `plan` on the next spec.
            Some(n) => {
                target = Some(format!("replicas {} → {n}", current.replicas));
                spec.replicas = n;
                // Members are `<service>-<index>`: the parameters of removed ones go with them.
                spec.member_config.retain(|m, _| MemberName::from_string(m.as_str()).parts().is_some_and(|(_, i)| i < n));
            }
        },
        OperationKind::Volume => {
            let name = req.volume.as_deref().unwrap_or("data");
            let volume = match name {
                "data" => Some(&mut spec.volumes.data),
                "journal" => match spec.volumes.journal.as_mut() {
                    Some(j) => Some(j),
                    None => {
                        errs.push("volume", "the service has no journal volume");
                        None
                    }
                },
                other => {
                    errs.push("volume", format!("{other:?} is not a volume; allowed: data, journal"));
                    None
                }
            };
            match (volume, req.size.as_deref()) {
                (_, None) => errs.push("size", "is required for a volume resize (e.g. 20Gi)"),
                (None, Some(_)) => {}
                (Some(v), Some(size)) => match (firecamp_core::quantity::parse(size), firecamp_core::quantity::parse(&v.size)) {
                    (Err(e), _) => errs.push("size", e),
                    (Ok(new), Ok(now)) if new <= now => errs.push(
                        "size",
                        format!("{size} is not larger than the {name} volume's {}: volumes only grow (a shrunk file system would lose data)", v.size),
                    ),
                    _ => {
                        target = Some(format!("{name} volume {} → {size}", v.size));
                        v.size = size.to_string();
                    }
                },
            }
        }
        OperationKind::Backup => {
            // Which engines may have spec.backup is the spec's own rule (validate.rs).
            if current.backup.is_none() {
                errs.push("kind", "the service has no spec.backup: create it with --backup (docs/backup.md)");
            }
            target = Some(if current.engine == firecamp_core::EngineKind::Postgresql { "base backup" } else { "snapshot" }.into());
        }
        OperationKind::Failover => errs.push("kind", "a failover is FireCamp's own decision (spec.failover); ask for a switchover with a restart instead"),
        OperationKind::Certificates => {
            if !engine(current.engine).supports_tls() {
                errs.push("kind", format!("{} serves no TLS: it has no certificates to rotate", current.engine));
            }
            target = Some(match req.ca {
                None => "member certificates".to_string(),
                Some(stage) => format!("CA {stage}"),
            });
        }
    }
    if current.stopped
        && matches!(
            kind,
            OperationKind::Upgrade
                | OperationKind::Config
                | OperationKind::Resources
                | OperationKind::Certificates
                | OperationKind::Scale
                | OperationKind::Volume
                | OperationKind::Backup
        )
    {
        errs.push("kind", "the service is stopped: start it first");
    }
    errs.into_result()?;
    let policy = req.policy.or(current.update_policy).unwrap_or_else(|| engine(current.engine).default_update_policy());
    Ok(Change { kind, spec, target, policy, changed_keys, ca: req.ca.filter(|_| kind == OperationKind::Certificates) })
}

fn is_redis_cluster(spec: &ServiceSpec) -> bool {
    spec.redis.as_ref().is_some_and(|r| r.mode == firecamp_core::spec::RedisMode::Cluster)
}

/// The catalog version a spec runs: its own, else the catalog's newest (what `plan` resolves).
fn running_version(spec: &ServiceSpec) -> Option<&str> {
    spec.version.as_deref().or_else(|| engine(spec.engine).versions().last().map(|v| v.version))
}

fn set_or_remove(map: &mut BTreeMap<String, String>, k: &str, v: &str) {
    if v.is_empty() {
        map.remove(k);
    } else {
        map.insert(k.to_string(), v.to_string());
    }
}

/// The ordered steps of a change, given the members' roles now (index order).
pub fn steps(change: &Change, members: &[MemberRole]) -> Vec<OperationStep> {
    let eng = engine(change.spec.engine);
    match change.kind {
        OperationKind::Stop => stop_start_steps(members, StepAction::Stop),
        OperationKind::Start => stop_start_steps(members, StepAction::Start),
        OperationKind::Scale => {
            let first = members.first().map(|m| MemberName::from_string(m.member.as_str()));
            let service = first.as_ref().and_then(|m| m.parts()).map(|(s, _)| s).unwrap_or_default();
            // A ZooKeeper leader leaves through `reconfig` like any member: no switchover first.
            let members: Vec<MemberRole> =
                if eng.supports_switchover() { members.to_vec() } else { members.iter().map(|m| MemberRole { primary: false, ..m.clone() }).collect() };
            if is_redis_cluster(&change.spec) {
                let shards = change.spec.redis.as_ref().and_then(|r| r.shards).unwrap_or(1) as usize;
                return shard_scale_steps(service, &members, crate::redis::members_per_shard(&change.spec) as usize, shards);
            }
            scale_steps(service, &members, change.spec.replicas as usize)
        }
        OperationKind::Volume => members.iter().map(|m| OperationStep::new(StepAction::Resize, &m.member)).collect(),
        // From a replica, so the primary is not loaded; the executor takes the primary when no
        // replica streams at the time.
        OperationKind::Backup => {
            members.iter().find(|m| !m.primary).or(members.first()).map(|m| OperationStep::new(StepAction::Backup, &m.member)).into_iter().collect()
        }
        OperationKind::Config if change.changed_keys.iter().all(|k| eng.reloadable(k)) => {
            members.iter().map(|m| OperationStep::new(StepAction::Reload, &m.member)).collect()
        }
        _ => restart_steps(members, change.policy, eng.supports_switchover(), StepAction::Restart),
    }
}

/// Why a Cassandra service of `current` cannot have `n` members, if it cannot.
fn cassandra_scale_refused(current: &ServiceSpec, n: u32) -> Option<String> {
    let zones = current.zones.len().max(1) as u32;
    if n < zones {
        return Some(format!("a Cassandra service keeps at least one member per zone ({zones}): the first member of each zone is a seed, which never leaves"));
    }
    (n > current.replicas && current.replicas < zones).then(|| {
        format!(
            "a Cassandra service scales out once every zone has a member ({} of {zones} have one): the first member of a zone is a seed, and a seed joins without its data (it does not bootstrap)",
            current.replicas
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::examples::spec;
    use firecamp_core::EngineKind;

    fn req(kind: OperationKind) -> OperationRequest {
        OperationRequest { kind: Some(kind), ..Default::default() }
    }

    #[test]
    fn an_upgrade_sets_the_version_and_takes_the_engine_default_policy() {
        let mut r = req(OperationKind::Upgrade);
        r.version = Some("17".into());
        let c = change(&spec(EngineKind::Postgresql, 3), &r).unwrap();
        assert_eq!(c.spec.version.as_deref(), Some("17"));
        assert_eq!(c.policy, UpdatePolicy::PrimaryLast);
        let mut r = req(OperationKind::Upgrade);
        r.version = Some("7.2".into());
        let mut s = spec(EngineKind::Redis, 3);
        s.version = Some("7.0".into());
        assert_eq!(change(&s, &r).unwrap().spec.version.as_deref(), Some("7.2"));
    }

    #[test]
    fn a_postgresql_major_upgrade_is_refused_by_name() {
        let mut s = spec(EngineKind::Postgresql, 3);
        s.version = Some("15".into());
        let mut r = req(OperationKind::Upgrade);
        r.version = Some("16".into());
        let e = change(&s, &r).unwrap_err();
        assert!(e.0.iter().any(|f| f.field == "version" && f.message.contains("pg_upgrade")), "{e}");
        r.version = Some("15".into());
        assert!(change(&s, &r).is_ok(), "the same major is a restart on the new spec");
    }

    #[test]
    fn fields_of_another_kind_and_missing_fields_are_named() {
        let mut r = req(OperationKind::Restart);
        r.version = Some("16".into());
        let e = change(&spec(EngineKind::Postgresql, 3), &r).unwrap_err().to_string();
        assert!(e.contains("version") && e.contains("upgrade"), "{e}");
        let e = change(&spec(EngineKind::Postgresql, 3), &req(OperationKind::Upgrade)).unwrap_err().to_string();
        assert!(e.contains("version") && e.contains("required"), "{e}");
        let e = change(&spec(EngineKind::Postgresql, 3), &OperationRequest::default()).unwrap_err().to_string();
        assert!(e.contains("kind") && e.contains("restart"), "{e}");
    }

    #[test]
    fn the_service_policy_is_used_unless_the_request_names_one() {
        let mut s = spec(EngineKind::Postgresql, 3);
        s.update_policy = Some(UpdatePolicy::PrimaryFirst);
        assert_eq!(change(&s, &req(OperationKind::Restart)).unwrap().policy, UpdatePolicy::PrimaryFirst);
        let mut r = req(OperationKind::Restart);
        r.policy = Some(UpdatePolicy::PrimaryLast);
        assert_eq!(change(&s, &r).unwrap().policy, UpdatePolicy::PrimaryLast);
    }

    #[test]
    fn stop_and_start_flip_the_stopped_flag_once() {
        let s = spec(EngineKind::Zookeeper, 3);
        let stopped = change(&s, &req(OperationKind::Stop)).unwrap().spec;
        assert!(stopped.stopped);
        assert!(change(&stopped, &req(OperationKind::Stop)).is_err());
        assert!(change(&stopped, &req(OperationKind::Restart)).is_err());
        assert!(!change(&stopped, &req(OperationKind::Start)).unwrap().spec.stopped);
    }

    #[test]
    fn config_values_are_set_and_an_empty_value_removes_the_key() {
        let mut s = spec(EngineKind::Postgresql, 3);
        s.config.insert("work_mem".into(), "4MB".into());
        let mut r = req(OperationKind::Config);
        r.config.insert("work_mem".into(), String::new());
        r.member_config.insert("pg-1".into(), BTreeMap::from([("log_min_duration_statement".into(), "100".into())]));
        let c = change(&s, &r).unwrap();
        assert!(c.spec.config.is_empty());
        assert_eq!(c.spec.member_config["pg-1"]["log_min_duration_statement"], "100");
        assert_eq!(c.changed_keys, ["log_min_duration_statement", "work_mem"]);
    }

    #[test]
    fn certificates_take_a_ca_stage_and_nothing_of_other_kinds() {
        let mut r = req(OperationKind::Certificates);
        let c = change(&spec(EngineKind::Postgresql, 3), &r).unwrap();
        assert_eq!(c.target.as_deref(), Some("member certificates"));
        assert_eq!(c.spec, spec(EngineKind::Postgresql, 3), "the spec does not change");
        r.ca = Some(firecamp_core::operation::CaStage::Switch);
        assert_eq!(change(&spec(EngineKind::Redis, 3), &r).unwrap().target.as_deref(), Some("CA switch"));
        let mut r = req(OperationKind::Restart);
        r.ca = Some(firecamp_core::operation::CaStage::Add);
        let e = change(&spec(EngineKind::Postgresql, 3), &r).unwrap_err().to_string();
        assert!(e.contains("ca") && e.contains("certificates"), "{e}");
        let mut stopped = spec(EngineKind::Zookeeper, 3);
        stopped.stopped = true;
        assert!(change(&stopped, &req(OperationKind::Certificates)).unwrap_err().to_string().contains("start it first"));
    }

    #[test]
    fn a_scale_names_its_replicas_and_a_redis_cluster_scales_by_shards() {
        let mut r = req(OperationKind::Scale);
        let e = change(&spec(EngineKind::Postgresql, 3), &r).unwrap_err().to_string();
        assert!(e.contains("replicas") && e.contains("required"), "{e}");
        r.replicas = Some(3);
        assert!(change(&spec(EngineKind::Postgresql, 3), &r).unwrap_err().to_string().contains("already has 3 members"));
        r.replicas = Some(5);
        let c = change(&spec(EngineKind::Postgresql, 3), &r).unwrap();
        assert_eq!((c.spec.replicas, c.target.as_deref()), (5, Some("replicas 3 → 5")));
        let members: Vec<MemberRole> = (0..3).map(|i| MemberRole { member: format!("pg-{i}"), primary: i == 0, shard: None }).collect();
        assert_eq!(steps(&c, &members).iter().map(|s| s.describe()).collect::<Vec<_>>(), ["add pg-3", "add pg-4"]);
        assert_eq!(change(&spec(EngineKind::Redis, 3), &r).unwrap().spec.replicas, 5, "Redis replication mode scales");
        let mut cluster = spec(EngineKind::Redis, 6);
        cluster.redis = Some(firecamp_core::spec::RedisOptions { mode: firecamp_core::spec::RedisMode::Cluster, shards: Some(3), ..Default::default() });
        let e = change(&cluster, &r).unwrap_err().to_string();
        assert!(e.contains("replicas") && e.contains("by shards"), "{e}");
        let mut by_shards = req(OperationKind::Scale);
        by_shards.shards = Some(4);
        assert!(change(&spec(EngineKind::Redis, 3), &by_shards).unwrap_err().to_string().contains("Redis Cluster only"));
        let c = change(&cluster, &by_shards).unwrap();
        assert_eq!((c.spec.replicas, c.spec.redis.as_ref().unwrap().shards, c.target.as_deref()), (8, Some(4), Some("shards 3 → 4")));
        let members: Vec<MemberRole> = (0..6).map(|i| MemberRole { member: format!("rd-{i}"), primary: i % 2 == 0, shard: Some(i / 2) }).collect();
        assert_eq!(steps(&c, &members).iter().map(|s| s.describe()).collect::<Vec<_>>(), ["add rd-6", "add rd-7", "fill rd-6"]);
        by_shards.shards = Some(2);
        let two = change(&cluster, &by_shards).unwrap();
        let mut errs = firecamp_core::ValidationErrors::default();
        engine(EngineKind::Redis).validate(&two.spec, &mut errs);
        let e = errs.to_string();
        assert!(e.contains("spec.redis.shards") && e.contains("at least 3"), "{e}");
        let mut restart = req(OperationKind::Restart);
        restart.replicas = Some(4);
        assert!(change(&spec(EngineKind::Postgresql, 3), &restart).unwrap_err().to_string().contains("belongs to kind scale"));
    }

    #[test]
    fn a_zookeeper_ensemble_scales_between_3_and_9_and_its_leader_leaves_without_switchover() {
        let mut r = req(OperationKind::Scale);
        r.replicas = Some(3);
        let c = change(&spec(EngineKind::Zookeeper, 5), &r).unwrap();
        let members: Vec<MemberRole> = (0..5).map(|i| MemberRole { member: format!("zk-{i}"), primary: i == 4, shard: None }).collect();
        assert_eq!(steps(&c, &members).iter().map(|s| s.describe()).collect::<Vec<_>>(), ["remove zk-4", "remove zk-3"]);
        for (from, to) in [(1, 3), (3, 1)] {
            r.replicas = Some(to);
            let e = change(&spec(EngineKind::Zookeeper, from), &r).unwrap_err().to_string();
            assert!(e.contains("replicas") && e.contains("standalone"), "{from} → {to}: {e}");
        }
    }

    #[test]
    fn a_zookeeper_restart_puts_the_leader_last_without_switchover() {
        let c = change(&spec(EngineKind::Zookeeper, 3), &req(OperationKind::Restart)).unwrap();
        let members = [
            MemberRole { member: "zk-0".into(), primary: false, shard: None },
            MemberRole { member: "zk-1".into(), primary: true, shard: None },
            MemberRole { member: "zk-2".into(), primary: false, shard: None },
        ];
        let got: Vec<_> = steps(&c, &members).iter().map(|s| s.describe()).collect();
        assert_eq!(got, ["restart zk-0", "restart zk-2", "restart zk-1"]);
    }

    #[test]
    fn a_volume_only_grows_and_every_member_reports_its_resize() {
        let mut r = req(OperationKind::Volume);
        let e = change(&spec(EngineKind::Postgresql, 3), &r).unwrap_err().to_string();
        assert!(e.contains("size") && e.contains("required"), "{e}");
        for (size, why) in [("10Gi", "not larger"), ("5Gi", "only grow"), ("lots", "not a quantity")] {
            r.size = Some(size.into());
            let e = change(&spec(EngineKind::Postgresql, 3), &r).unwrap_err().to_string();
            assert!(e.contains("size") && e.contains(why), "{size}: {e}");
        }
        r.size = Some("20Gi".into());
        let c = change(&spec(EngineKind::Postgresql, 3), &r).unwrap();
        assert_eq!((c.spec.volumes.data.size.as_str(), c.target.as_deref()), ("20Gi", Some("data volume 10Gi → 20Gi")));
        let members: Vec<MemberRole> = (0..3).map(|i| MemberRole { member: format!("pg-{i}"), primary: i == 1, shard: None }).collect();
        assert_eq!(steps(&c, &members).iter().map(|s| s.describe()).collect::<Vec<_>>(), ["resize pg-0", "resize pg-1", "resize pg-2"]);
        r.volume = Some("journal".into());
        assert!(change(&spec(EngineKind::Postgresql, 3), &r).unwrap_err().to_string().contains("no journal volume"));
        r.volume = Some("../etc".into());
        let e = change(&spec(EngineKind::Postgresql, 3), &r).unwrap_err().to_string();
        assert!(e.contains("volume") && e.contains("allowed: data, journal"), "{e}");
        let mut restart = req(OperationKind::Restart);
        restart.size = Some("20Gi".into());
        assert!(change(&spec(EngineKind::Postgresql, 3), &restart).unwrap_err().to_string().contains("belongs to kind volume"));
    }
}
