//! The steps of a `scale` operation on the local runtime (PostgreSQL, Redis in replication
//! mode, ZooKeeper, Cassandra). Each step moves the
//! service's record (`spec.replicas`, the members' addresses) by one member at the moment the
//! engine allows it, so the record never names a member the engine is not ready for, and a
//! step resumed after a daemon restart sees how far it got:
//!
//! - **add** `pg-i`: its slot on the primary first (holding WAL from then on), then its address
//!   and names recorded with `replicas = i + 1`, every member's files written again (the
//!   primary reloads them: `synchronous_standby_names` names the new member), the member started
//!   — its start script clones the primary through that slot — and waited for until it streams;
//! - **remove** `pg-i`: stopped (never the primary: the steps switch over first), the record
//!   shrunk to `replicas = i` without its address and names, its slot dropped on the primary
//!   once no sender uses it, the others' files written again, its directory removed.
//!
//! Redis replication mode is the same without slots: a replica's files name only the primary,
//! so the new member needs nothing from the others before it starts and syncs.
//!
//! ZooKeeper changes its membership with `reconfig`, one server at a time, so a majority of
//! the ensemble serves throughout:
//!
//! - **add** `zk-i`: recorded and rendered like the others (every member's dynamic file names
//!   it; running members keep their own until the reconfig reaches them), started — it joins
//!   the leader as a non-voting learner and syncs — then added with `reconfig` once it
//!   answers, unless the ensemble's configuration has it already (a resumed step);
//! - **remove** `zk-i`: removed with `reconfig` through another member (the leader too: the
//!   ensemble elects another), then stopped, the record shrunk, the files written again.
//!
//! Cassandra changes its ring one member at a time too:
//!
//! - **add** `cs-i`: recorded and rendered like the others; it is never a seed (the seeds are
//!   the first member of each zone, which the scale's rules keep), so it bootstraps: it streams
//!   its ranges from the ring, and is waited for until every member's gossip has it NORMAL;
//! - **remove** `cs-i`: `nodetool decommission` (its ranges streamed to the members that take
//!   them over; skipped when another member's gossip has it gone already), then stopped, the
//!   record shrunk, the files written again.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Instant;

use firecamp_catalog::{postgresql, redis, zookeeper};
use firecamp_core::{EngineKind, MemberName};

use crate::operations::{pg, poll};
use crate::runtime::Runtime;
use crate::store::ServiceRecord;
use crate::zk;

/// The index of member `<service>-<i>`.
fn index_of(rec: &ServiceRecord, member: &str) -> Result<u32, String> {
    match MemberName::from_string(member).parts() {
        Some((service, i)) if service == rec.name => Ok(i),
        _ => Err(format!("{member} is not a member name of {}", rec.name)),
    }
}

/// Members recorded and removed together: a Redis Cluster's shard, else one.
fn members_per_step(rec: &ServiceRecord) -> u32 {
    if crate::status::is_redis_cluster(rec) { redis::members_per_shard(&rec.spec) } else { 1 }
}

fn is_postgresql(rec: &ServiceRecord) -> bool {
    rec.spec.engine == EngineKind::Postgresql
}

impl Runtime {
    fn record_now(&self, service: &str) -> Result<ServiceRecord, String> {
        self.store.get(service).map_err(|e| e.to_string())?.ok_or_else(|| format!("service {service} is gone"))
    }

    /// A connection to the primary, waited for (after a daemon restart it is starting again).
    async fn primary_client(&self, rec: &ServiceRecord, deadline: Instant) -> Result<tokio_postgres::Client, String> {
        let primary = rec.current_primary();
        poll(deadline, &format!("the primary {primary} does not answer"), || async { pg(rec, &primary).await.map(|_| ()) }).await?;
        pg(rec, &primary).await
    }

    /// Every member's files from the record as it is now, and the primary's reloaded.
    async fn rewrite_members(&self, rec: &ServiceRecord, deadline: Instant) -> Result<(), String> {
        let installed = self.installed(rec).map_err(|e| e.to_string())?;
        let plan = self.plan_of(rec, &installed).map_err(|e| e.to_string())?;
        let rec = self.ensure_tls(rec, &plan).map_err(|e| e.to_string())?;
        for m in &plan.members {
            self.write_member(&rec, &plan, m.member.name.as_str()).map_err(|e| e.to_string())?;
        }
        if !is_postgresql(&rec) {
            return Ok(());
        }
        let primary = rec.current_primary();
        self.primary_client(&rec, deadline).await?.query_one("SELECT pg_reload_conf()", &[]).await.map_err(|e| format!("reloading {primary}: {e}"))?;
        Ok(())
    }

    /// Step `add`: see the module's comment.
    pub(crate) async fn add_member(&self, rec: &ServiceRecord, member: &str, deadline: Instant) -> Result<(), String> {
        let service = rec.name.as_str();
        let i = index_of(rec, member)?;
        let per = members_per_step(rec);
        if rec.spec.replicas <= i {
            if rec.spec.replicas != i {
                return Err(format!("{member} cannot join before {service}-{}", rec.spec.replicas));
            }
            let primary = rec.current_primary();
            let slot = postgresql::slot_name(member);
            if is_postgresql(rec) {
                let c = self.primary_client(rec, deadline).await?;
                firecamp_probe::postgresql::ensure_slot(&c, &slot).await.map_err(|e| format!("creating slot {slot} on {primary}: {e}"))?;
            }
            let mut next = self.record_now(service)?;
            let mut chosen = BTreeSet::new();
            for j in i..i + per {
                let joining = format!("{service}-{j}");
                // A directory left by an unfinished removal of this member is not its data.
                let dir = self.cfg.service_dir(service).join(&joining);
                if dir.exists() {
                    self.forget_member_logs(service, &joining);
                    std::fs::remove_dir_all(&dir).map_err(|e| format!("removing {} left by an earlier removal: {e}", dir.display()))?;
                }
                let ip = self.free_address(rec, &joining, &chosen)?;
                chosen.insert(ip);
                next.ips.insert(joining, ip);
            }
            next.spec.replicas = i + per;
            if let Some(r) = next.spec.redis.as_mut().filter(|_| crate::status::is_redis_cluster(rec)) {
                r.shards = Some(r.shards.unwrap_or(0) + 1);
            }
            self.store.put(&next).map_err(|e| e.to_string())?;
            self.sync_names().await.map_err(|e| e.to_string())?;
        }
        let rec = self.record_now(service)?;
        self.rewrite_members(&rec, deadline).await?;
        let rec = self.record_now(service)?;
        let from = if rec.spec.engine == EngineKind::Zookeeper {
            "syncing with the ensemble's leader".to_string()
        } else if rec.spec.engine == EngineKind::Cassandra {
            "bootstrapping: streaming its ranges from the ring".to_string()
        } else if crate::status::is_redis_cluster(&rec) {
            "joining the cluster".to_string()
        } else {
            format!("copying {}", rec.current_primary())
        };
        self.log_sink(service, member).line(&format!("firecamp: {member} added to {service}; {from}"));
        self.start_member(&rec, member).await.map_err(|e| e.to_string())?;
        if rec.spec.engine == EngineKind::Zookeeper {
            self.zk_join(&rec, member, deadline).await?;
        } else if crate::status::is_redis_cluster(&rec) {
            self.cluster_join(&rec, member, deadline).await?;
        }
        self.wait_member(&rec, member, deadline).await
    }

    /// The member a ZooKeeper scale talks through: the lowest one other than `member`.
    fn zk_peer(rec: &ServiceRecord, member: &str) -> Result<String, String> {
        rec.ips.keys().find(|m| m.as_str() != member).cloned().ok_or_else(|| format!("{} has no member but {member}", rec.name))
    }

    /// `reconfig` adds the started member `member` (once it answers: it has synced with the
    /// leader), unless the ensemble has it already.
    async fn zk_join(&self, rec: &ServiceRecord, member: &str, deadline: Instant) -> Result<(), String> {
        poll(deadline, &format!("{member} does not answer"), || async { crate::status::probe_role(rec, member).await.map(|_| ()).map_err(|e| e.to_string()) })
            .await?;
        self.zk_reconfig(rec, member, true, deadline).await
    }

    /// `reconfig` removes `member` from the ensemble, unless it is gone already.
    async fn zk_leave(&self, rec: &ServiceRecord, member: &str, deadline: Instant) -> Result<(), String> {
        self.zk_reconfig(rec, member, false, deadline).await
    }

    /// The ensemble made the record's members with (`joins`) or without `member`, through
    /// another member; nothing when it is so already.
    async fn zk_reconfig(&self, rec: &ServiceRecord, member: &str, joins: bool, deadline: Instant) -> Result<(), String> {
        let plan = self.plan_of(rec, &self.installed(rec).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let kept: Vec<_> = plan.members.iter().map(|m| &m.member).filter(|m| joins || m.name.as_str() != member).collect();
        let ids: BTreeSet<u32> = kept.iter().map(|m| zookeeper::server_id(m)).collect();
        let servers: Vec<String> = kept.iter().map(|m| zookeeper::server_entry(m)).map(|(k, v)| format!("{k}={v}")).collect();
        let peer = Self::zk_peer(rec, member)?;
        let what = format!("{} {member} {} the ensemble", if joins { "adding" } else { "removing" }, if joins { "to" } else { "from" });
        poll(deadline, &what, || async {
            let (t, c) = zk::session(rec, &peer).await?;
            if zk::servers(&t, &c).await? == ids {
                return Ok(());
            }
            zk::set_ensemble(&t, &c, &servers).await
        })
        .await
    }

    /// The lowest address of the pool no service holds (nor one whose data is kept, nor one of
    /// `chosen`), free on every port the engine uses.
    fn free_address(&self, rec: &ServiceRecord, member: &str, chosen: &BTreeSet<Ipv4Addr>) -> Result<Ipv4Addr, String> {
        let mut taken: BTreeSet<Ipv4Addr> = self.store.list().map_err(|e| e.to_string())?.iter().flat_map(|r| r.ips.values().copied()).collect();
        taken.extend(chosen);
        for r in self.store.all_retained().map_err(|e| e.to_string())? {
            taken.extend(r.ips.values().copied());
        }
        let ip = crate::ips::allocate(&self.cfg.ips, &taken, &[member.to_string()], &Default::default()).map_err(|e| e.to_string())?[member];
        let installed = self.installed(rec).map_err(|e| e.to_string())?;
        let plan = self.plan_of(rec, &installed).map_err(|e| e.to_string())?;
        crate::runtime::ports_free(member, ip, &plan).map_err(|e| e.to_string())?;
        Ok(ip)
    }

    /// Step `remove`: see the module's comment.
    pub(crate) async fn remove_member(&self, rec: &ServiceRecord, member: &str, deadline: Instant) -> Result<(), String> {
        let service = rec.name.as_str();
        let i = index_of(rec, member)?;
        let per = members_per_step(rec);
        let cluster = crate::status::is_redis_cluster(rec);
        let first = i - i % per;
        if rec.spec.replicas > i {
            if rec.spec.replicas != first + per {
                return Err(format!("{member} cannot leave before {service}-{}", rec.spec.replicas - 1));
            }
            if rec.spec.engine == EngineKind::Zookeeper {
                self.zk_leave(rec, member, deadline).await?;
            } else if rec.spec.engine == EngineKind::Cassandra {
                crate::cassandra::decommission(self, rec, member, deadline).await?;
            } else if cluster {
                self.cluster_drained(rec, member).await?;
            } else if rec.current_primary() == member {
                return Err(format!("{member} is the primary; switch over first"));
            }
            if i == first {
                // A shard's members leave one by one; the record drops the shard with its first.
                for j in first..first + per {
                    self.stop_member(service, &format!("{service}-{j}")).await;
                }
                let mut next = self.record_now(service)?;
                for j in first..first + per {
                    next.ips.remove(&format!("{service}-{j}"));
                }
                next.spec.replicas = first;
                if let Some(r) = next.spec.redis.as_mut().filter(|_| cluster) {
                    r.shards = r.shards.map(|s| s.saturating_sub(1));
                }
                self.store.put(&next).map_err(|e| e.to_string())?;
                self.sync_names().await.map_err(|e| e.to_string())?;
            } else {
                self.stop_member(service, member).await;
            }
        }
        let rec = self.record_now(service)?;
        if cluster {
            self.cluster_forget(&rec, (rec.spec.replicas > i).then_some(member), deadline).await?;
        }
        if is_postgresql(&rec) {
            self.drop_slot(&rec, member, deadline).await?;
        }
        self.rewrite_members(&rec, deadline).await?;
        self.forget_member_logs(service, member);
        let dir = self.cfg.service_dir(service).join(member);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("removing {}: {e}", dir.display())),
            _ => Ok(()),
        }
    }

    /// A removed member's slot dropped on the primary, once its sender is gone.
    async fn drop_slot(&self, rec: &ServiceRecord, member: &str, deadline: Instant) -> Result<(), String> {
        let primary = rec.current_primary();
        let slot = postgresql::slot_name(member);
        let c = self.primary_client(rec, deadline).await?;
        poll(deadline, &format!("dropping slot {slot} on {primary}"), || async {
            let active: Option<bool> =
                c.query_opt("SELECT active FROM pg_replication_slots WHERE slot_name = $1", &[&slot]).await.map_err(|e| e.to_string())?.map(|r| r.get(0));
            match active {
                None => Ok(()),
                Some(true) => Err("a sender still streams through it".to_string()),
                Some(false) => c.execute("SELECT pg_drop_replication_slot($1)", &[&slot]).await.map(|_| ()).map_err(|e| e.to_string()),
            }
        })
        .await
    }
}
