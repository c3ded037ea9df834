//! Redis: `ROLE` says master or slave; `INFO replication` counts a primary's replicas;
//! `CLUSTER INFO` says whether a cluster covers every slot.
//!
//! With [`Target::with_tls`], every function here connects over TLS: the TCP connection and the
//! handshake are made here (tokio-rustls, [`crate::tls`]), the redis crate speaks RESP over the
//! stream. Its own TLS takes the name to verify from the address dialed, which for FireCamp is an
//! IP the member's certificate need not name.

use std::collections::BTreeMap;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use redis::{RedisConnectionInfo, Value};
use tokio::net::TcpStream;

use crate::tls::Connector;
use crate::{ProbeError, Role, Target, TlsSettings, within};

/// Every hash slot of a Redis Cluster.
pub const SLOTS: u32 = 16384;

/// A connection to the member (over TLS when the target says so), for callers with more than
/// one command to send.
pub async fn connect(t: &Target) -> Result<MultiplexedConnection, ProbeError> {
    match &t.tls {
        None => connect_plain(t).await,
        Some(tls) => connect_tls(t, tls).await,
    }
}

async fn connect_tls(t: &Target, tls: &TlsSettings) -> Result<MultiplexedConnection, ProbeError> {
    let connector = Connector::new(tls).map_err(|e| ProbeError::tls_settings(t, e))?;
    let tcp = TcpStream::connect((t.host.as_str(), t.port)).await.map_err(|e| ProbeError::failed(t, e))?;
    let _ = tcp.set_nodelay(true);
    let stream = connector.handshake(tcp).await.map_err(|e| ProbeError::handshake(t, &e))?;
    let mut info = RedisConnectionInfo::default();
    if let Some(p) = &t.password {
        info = info.set_password(p);
    }
    let (con, driver) = MultiplexedConnection::new_with_config(&info, stream, AsyncConnectionConfig::new()).await.map_err(|e| ProbeError::failed(t, e))?;
    // The driver ends when the last handle of the connection is dropped.
    tokio::spawn(driver);
    Ok(con)
}

async fn connect_plain(t: &Target) -> Result<MultiplexedConnection, ProbeError> {
    // Passwords are alphanumeric (FireCamp generates them), so the URL needs no escaping.
    let url = match &t.password {
        Some(p) => format!("redis://:{p}@{}:{}/", t.host, t.port),
        None => format!("redis://{}:{}/", t.host, t.port),
    };
    let client = redis::Client::open(url).map_err(|e| ProbeError::failed(t, e))?;
    client.get_multiplexed_async_connection().await.map_err(|e| ProbeError::failed(t, e))
}

/// Runs one command and returns its raw answer.
pub async fn command(t: &Target, args: &[&str]) -> Result<Value, ProbeError> {
    within(t, async {
        let mut con = connect(t).await?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async(&mut con).await.map_err(|e| ProbeError::failed(t, e))
    })
    .await
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

/// `primary` or `replica`, from `ROLE`.
pub async fn role(t: &Target) -> Result<Role, ProbeError> {
    let v = command(t, &["ROLE"]).await?;
    let first = match &v {
        Value::Array(items) => items.first().and_then(text),
        _ => None,
    };
    match first.as_deref() {
        Some("master") => Ok(Role::Primary),
        Some("slave") => Ok(Role::Replica),
        _ => Err(ProbeError::unexpected(t, format!("{v:?}"))),
    }
}

/// `key:value` lines of an `INFO` or `CLUSTER INFO` answer.
pub fn parse_info(s: &str) -> BTreeMap<String, String> {
    s.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.trim().split_once(':')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn info(t: &Target, args: &[&str]) -> Result<BTreeMap<String, String>, ProbeError> {
    let v = command(t, args).await?;
    text(&v).map(|s| parse_info(&s)).ok_or_else(|| ProbeError::unexpected(t, format!("{v:?}")))
}

/// `INFO replication` as key/values (`role`, `connected_slaves`, `master_link_status`, …).
pub async fn replication(t: &Target) -> Result<BTreeMap<String, String>, ProbeError> {
    info(t, &["INFO", "replication"]).await
}

/// What `CLUSTER INFO` says about a cluster's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub state_ok: bool,
    pub slots_assigned: u32,
    pub slots_ok: u32,
    pub known_nodes: u32,
    /// Shards serving slots.
    pub size: u32,
}

impl ClusterInfo {
    pub fn from_info(m: &BTreeMap<String, String>) -> Self {
        let n = |k: &str| m.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        ClusterInfo {
            state_ok: m.get("cluster_state").map(String::as_str) == Some("ok"),
            slots_assigned: n("cluster_slots_assigned"),
            slots_ok: n("cluster_slots_ok"),
            known_nodes: n("cluster_known_nodes"),
            size: n("cluster_size"),
        }
    }

    /// Healthy and every slot served.
    pub fn covers_all_slots(&self) -> bool {
        self.state_ok && self.slots_assigned == SLOTS && self.slots_ok == SLOTS
    }
}

pub async fn cluster_info(t: &Target) -> Result<ClusterInfo, ProbeError> {
    info(t, &["CLUSTER", "INFO"]).await.map(|m| ClusterInfo::from_info(&m))
}

/// The member's cluster node id (`CLUSTER MYID`).
pub async fn cluster_myid(t: &Target) -> Result<String, ProbeError> {
    let v = command(t, &["CLUSTER", "MYID"]).await?;
    text(&v).ok_or_else(|| ProbeError::unexpected(t, format!("{v:?}")))
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: String,
    pub ip: String,
    pub primary: bool,
    pub myself: bool,
    pub handshake: bool,
    pub slots: usize,
}

/// The nodes of a `CLUSTER NODES` answer (`<id> <ip:port@bus> <flags> <master> … <slots>…`).
pub fn parse_nodes(text: &str) -> Vec<Node> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (id, addr, flags) = (*f.first()?, *f.get(1)?, *f.get(2)?);
            let ip = addr.split(['@', ',']).next()?.rsplit_once(':')?.0.to_string();
            let flags: Vec<&str> = flags.split(',').collect();
            let slots = f.iter().skip(8).filter(|s| !s.starts_with('[')).map(|s| slot_count(s)).sum();
            Some(Node {
                id: id.to_string(),
                ip,
                primary: flags.contains(&"master"),
                myself: flags.contains(&"myself"),
                handshake: flags.contains(&"handshake"),
                slots,
            })
        })
        .collect()
}

/// `5461` or `0-5460`.
fn slot_count(s: &str) -> usize {
    match s.split_once('-') {
        Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
            (Ok(a), Ok(b)) if b >= a => b - a + 1,
            _ => 0,
        },
        None => usize::from(s.parse::<usize>().is_ok()),
    }
}

/// `CLUSTER NODES` of the member.
pub async fn cluster_nodes(t: &Target) -> Result<Vec<Node>, ProbeError> {
    let v = command(t, &["CLUSTER", "NODES"]).await?;
    text(&v).map(|s| parse_nodes(&s)).ok_or_else(|| ProbeError::unexpected(t, format!("{v:?}")))
}

fn expect_ok(t: &Target, v: Value) -> Result<(), ProbeError> {
    match v {
        Value::Okay => Ok(()),
        Value::SimpleString(s) if s == "OK" => Ok(()),
        other => Err(ProbeError::unexpected(t, format!("{other:?}"))),
    }
}

/// Replication mode: asks the primary to hand its role to the replica `to_host:to_port` (the
/// address the replica announces). Redis pauses writes until that replica has every write,
/// then the two swap roles; this returns at once and the swap follows (watch the roles).
pub async fn failover_to(primary: &Target, to_host: &str, to_port: u16, timeout_ms: u64) -> Result<(), ProbeError> {
    let (port, timeout) = (to_port.to_string(), timeout_ms.to_string());
    expect_ok(primary, command(primary, &["FAILOVER", "TO", to_host, &port, "TIMEOUT", &timeout]).await?)
}

/// Cluster mode: the replica takes over its shard, with its primary's agreement.
pub async fn cluster_failover(replica: &Target) -> Result<(), ProbeError> {
    expect_ok(replica, command(replica, &["CLUSTER", "FAILOVER"]).await?)
}

/// Replication mode: points a replica at another primary.
pub async fn replicate_from(replica: &Target, host: &str, port: u16) -> Result<(), ProbeError> {
    expect_ok(replica, command(replica, &["REPLICAOF", host, &port.to_string()]).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_lines_give_addresses_roles_and_slot_counts() {
        let text = "\
07c3 127.0.0.3:6379@16379 master - 0 1 3 connected 10923-16383
e7d1 127.0.0.1:6379@16379,host myself,master - 0 0 1 connected 0-5460 [5461->-292f]
292f 127.0.0.2:6379@16379 master - 0 1 2 connected 5461 5462-10922
6ec2 127.0.0.4:6379@16379 slave e7d1 0 1 1 connected
aaaa 127.0.0.5:6379@16379 master,fail - 0 1 4 disconnected
bbbb 127.0.0.6:6379@16379 handshake - 0 0 0 connected
";
        let n = parse_nodes(text);
        let got: Vec<(&str, bool, bool, usize)> = n.iter().map(|n| (n.ip.as_str(), n.primary, n.myself, n.slots)).collect();
        assert_eq!(n.iter().map(|n| n.handshake).collect::<Vec<_>>(), [false, false, false, false, false, true]);
        assert_eq!(
            got,
            [
                ("127.0.0.3", true, false, 5461),
                ("127.0.0.1", true, true, 5461),
                ("127.0.0.2", true, false, 5462),
                ("127.0.0.4", false, false, 0),
                ("127.0.0.5", true, false, 0),
                ("127.0.0.6", false, false, 0)
            ]
        );
    }

    #[test]
    fn reads_cluster_info() {
        let s = "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\ncluster_known_nodes:6\r\ncluster_size:3\r\n";
        let ci = ClusterInfo::from_info(&parse_info(s));
        assert!(ci.covers_all_slots());
        assert_eq!((ci.known_nodes, ci.size), (6, 3));
    }

    #[test]
    fn a_failing_cluster_does_not_cover_its_slots() {
        let ci = ClusterInfo::from_info(&parse_info("cluster_state:fail\r\ncluster_slots_assigned:0\r\n"));
        assert!(!ci.covers_all_slots());
    }
}
