//! The Redis Cluster parts of a `scale` (`--shards`) on the local runtime. Shards are runs of
//! consecutive members (catalog `redis::members_per_shard`), so a scale records and removes a
//! whole shard at a time in the service's record, while its steps go member by member:
//!
//! - **add** `rd-i`: the first member of a new shard records the whole shard (addresses,
//!   `replicas`, `shards`), so the catalog renders every member with its shard; each member is
//!   started, met by the cluster (`CLUSTER MEET` through a member that stays) and, unless it is
//!   its shard's first, made a replica of it (`CLUSTER REPLICATE`). It holds no slot yet.
//! - **fill**: `redis-cli --cluster rebalance --cluster-use-empty-masters` moves slots, key by
//!   key with `MIGRATE`, until every primary holds its share. Clients follow `ASK`/`MOVED`
//!   redirects throughout: a key is always served by the source or by the target.
//! - **drain**: the same with weight 0 for the primaries of the leaving shards, so every slot
//!   they hold moves to the shards that stay (Redis then turns an emptied primary into a replica
//!   of the shard that took its last slot).
//! - **remove** `rd-i`: refused while its shard serves a slot; stopped; the last one to go (the
//!   shard's first) shrinks the record by the whole shard; every member that stays forgets the
//!   removed nodes (`CLUSTER FORGET`).
//!
//! A move cut off (a daemon restart in the middle of a step) leaves slots half-migrated: the
//! resumed step closes them with `redis-cli --cluster fix` before it rebalances.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Instant;

use firecamp_catalog::redis::{self as catalog, PORT};
use firecamp_probe::redis::{Node, parse_nodes};

use crate::operations::{poll, redis_cmd};
use crate::runtime::Runtime;
use crate::store::ServiceRecord;

fn text(v: redis::Value) -> Result<String, String> {
    match v {
        redis::Value::BulkString(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        redis::Value::VerbatimString { text, .. } => Ok(text),
        redis::Value::SimpleString(s) => Ok(s),
        v => Err(format!("unexpected answer {v:?}")),
    }
}

/// The index of member `<service>-<i>` (checked by the caller).
fn index(member: &str) -> u32 {
    firecamp_core::MemberName::from_string(member).parts().map(|(_, i)| i).unwrap_or(0)
}

/// The members of `rec` below index `below` (the ones that stay), lowest first.
fn staying(rec: &ServiceRecord, below: u32) -> Vec<String> {
    let mut m: Vec<String> = rec.ips.keys().filter(|m| index(m) < below).cloned().collect();
    m.sort_by_key(|m| index(m));
    m
}

impl Runtime {
    pub(crate) async fn cluster_nodes(&self, rec: &ServiceRecord, member: &str) -> Result<Vec<Node>, String> {
        Ok(parse_nodes(&text(redis_cmd(rec, member, &["CLUSTER", "NODES"]).await?)?))
    }

    /// After `add` started `member`: met by the cluster, and a replica of its shard's first
    /// member unless it is that one.
    pub(crate) async fn cluster_join(&self, rec: &ServiceRecord, member: &str, deadline: Instant) -> Result<(), String> {
        let i = index(member);
        let per = catalog::members_per_shard(&rec.spec);
        let first = i - i % per;
        let via = staying(rec, first).into_iter().next().ok_or("no member to join through")?;
        let ip = rec.ips.get(member).ok_or_else(|| format!("{member} has no address"))?.to_string();
        poll(deadline, &format!("{member} does not answer"), || async { redis_cmd(rec, member, &["PING"]).await.map(|_| ()) }).await?;
        // Met once `via` knows it and it knows every node `via` knows, handshakes done.
        poll(deadline, &format!("{member} meeting the cluster"), || async {
            let theirs = self.cluster_nodes(rec, &via).await?;
            let mine: BTreeSet<String> = self.cluster_nodes(rec, member).await?.into_iter().filter(|n| !n.handshake).map(|n| n.ip).collect();
            if !theirs.iter().any(|n| n.ip == ip && !n.handshake) {
                // Refused while a handshake with it is under way: asked again on the next pass.
                let _ = redis_cmd(rec, &via, &["CLUSTER", "MEET", &ip, &PORT.to_string()]).await;
                return Err(format!("{via} does not know {member} yet"));
            }
            match theirs.iter().find(|n| !n.handshake && !mine.contains(&n.ip)) {
                Some(n) => Err(format!("{member} does not know {} yet", n.ip)),
                None => Ok(()),
            }
        })
        .await?;
        if i == first {
            return Ok(());
        }
        let shard_first = format!("{}-{first}", rec.name);
        let primary_ip = rec.ips.get(&shard_first).ok_or_else(|| format!("{shard_first} has no address"))?.to_string();
        poll(deadline, &format!("{member} replicating {shard_first}"), || async {
            let nodes = self.cluster_nodes(rec, member).await?;
            let me = nodes.iter().find(|n| n.myself).ok_or("no myself line")?;
            if !me.primary {
                return Ok(());
            }
            let id = &nodes.iter().find(|n| n.ip == primary_ip).ok_or_else(|| format!("{shard_first} not known yet"))?.id;
            redis_cmd(rec, member, &["CLUSTER", "REPLICATE", id]).await.map(|_| ())
        })
        .await
    }

    /// Steps `fill` and `drain`: see the module's comment. `member` is the first member of the
    /// lowest shard that joins or leaves.
    pub(crate) async fn reshard(&self, rec: &ServiceRecord, member: &str, drain: bool, deadline: Instant) -> Result<(), String> {
        if !crate::status::is_redis_cluster(rec) {
            return Err(format!("{} is not a Redis Cluster: it has no slots to move", rec.name));
        }
        let from = index(member);
        let moving: BTreeSet<Ipv4Addr> = rec.ips.iter().filter(|(m, _)| index(m) >= from).map(|(_, ip)| *ip).collect();
        let via = staying(rec, from).into_iter().next().ok_or("no member stays")?;
        let installed = self.installed(rec).map_err(|e| e.to_string())?;
        let plan = self.plan_of(rec, &installed).map_err(|e| e.to_string())?;
        let cacert = format!("{}/{}", plan.member(&via).ok_or("not in the plan")?.paths.tls_dir, firecamp_catalog::tls::CA_FILE);
        let addr = format!("{}:{PORT}", rec.ips[&via]);
        let cli = |args: Vec<String>| {
            let (cacert, bin) = (cacert.clone(), installed.bin_dir.clone());
            async move {
                match tokio::time::timeout_at(deadline.into(), crate::init::redis_cli(rec, &bin, &cacert, &args)).await {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(_) => Err(format!("redis-cli {} did not finish in the step's time", args[..2].join(" "))),
                }
            }
        };
        if cli(vec!["--cluster".into(), "check".into(), addr.clone()]).await.is_err() {
            cli(vec!["--cluster".into(), "fix".into(), addr.clone(), "--cluster-yes".into()]).await?;
        }
        let mut args = vec!["--cluster".into(), "rebalance".into(), addr.clone(), "--cluster-pipeline".into(), "100".into()];
        if drain {
            let weights: Vec<String> = self
                .cluster_nodes(rec, &via)
                .await?
                .iter()
                .filter(|n| n.primary && n.slots > 0 && is_moving(&moving, n))
                .map(|n| format!("{}=0", n.id))
                .collect();
            if !weights.is_empty() {
                args.push("--cluster-weight".into());
                args.extend(weights);
            }
        } else {
            args.push("--cluster-use-empty-masters".into());
        }
        cli(args).await?;
        let nodes = self.cluster_nodes(rec, &via).await?;
        let wrong: Vec<&Node> = nodes.iter().filter(|n| n.primary && is_moving(&moving, n) && (n.slots > 0) == drain).collect();
        if let Some(n) = wrong.first() {
            return Err(format!("after the rebalance, the primary at {} holds {} slots", n.ip, n.slots));
        }
        Ok(())
    }

    /// `remove` of a cluster member: refused while its shard serves slots.
    pub(crate) async fn cluster_drained(&self, rec: &ServiceRecord, member: &str) -> Result<(), String> {
        let first = index(member) - index(member) % catalog::members_per_shard(&rec.spec);
        let shard: BTreeSet<Ipv4Addr> = rec.ips.iter().filter(|(m, _)| index(m) >= first).map(|(_, ip)| *ip).collect();
        let via = staying(rec, first).into_iter().next().ok_or("no member stays")?;
        match self.cluster_nodes(rec, &via).await?.iter().find(|n| n.primary && n.slots > 0 && is_moving(&shard, n)) {
            Some(n) => Err(format!("{member}'s shard still serves {} slots (at {}): drain it first", n.slots, n.ip)),
            None => Ok(()),
        }
    }

    /// Every member outside `member`'s shard forgets the nodes that no member of the record
    /// runs any more: `member` when given (stopped, still in the record until its shard's
    /// first member goes), and any whose address left the record.
    pub(crate) async fn cluster_forget(&self, rec: &ServiceRecord, member: Option<&str>, deadline: Instant) -> Result<(), String> {
        let per = catalog::members_per_shard(&rec.spec);
        let first = member.map(|m| index(m) - index(m) % per).unwrap_or(u32::MAX);
        let known: BTreeSet<String> = rec.ips.iter().filter(|(m, _)| Some(m.as_str()) != member).map(|(_, ip)| ip.to_string()).collect();
        for m in staying(rec, first) {
            poll(deadline, &format!("{m} forgetting the removed nodes"), || async {
                for n in self.cluster_nodes(rec, &m).await?.iter().filter(|n| !n.myself && !known.contains(&n.ip)) {
                    if let Err(e) = redis_cmd(rec, &m, &["CLUSTER", "FORGET", &n.id]).await
                        && !e.contains("Unknown node")
                    {
                        return Err(format!("CLUSTER FORGET {} ({}): {e}", n.id, n.ip));
                    }
                }
                Ok(())
            })
            .await?;
        }
        Ok(())
    }
}

fn is_moving(moving: &BTreeSet<Ipv4Addr>, n: &Node) -> bool {
    n.ip.parse().is_ok_and(|ip| moving.contains(&ip))
}
