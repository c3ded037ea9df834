//! `firecamp service top <svc>`: each member's key figures, read from the metrics endpoints its
//! status names (docs/monitoring.md) and refreshed, for users without a Prometheus: role,
//! whether the exporter reaches its server, connections, replication lag, memory and
//! operations per second (the change of the engine's own counter between two scrapes).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use firecamp_api::metrics::{Sample, parse};
use firecamp_api::{MemberStatus, Service};
use firecamp_core::EngineKind;
use serde::Serialize;

use crate::args::Format;
use crate::backend::Backend;
use crate::error::CliError;
use crate::output::table;
use crate::service_cmds::print_as;

/// One member's figures in one frame.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberFigures {
    pub member: String,
    pub role: String,
    /// Whether the exporter reached its server (`pg_up`, `redis_up`; ZooKeeper: it answered).
    pub up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<f64>,
    /// Replication lag as the engine measures it (see [`lag`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops_per_second: Option<f64>,
    /// Why the member's figures are missing (its endpoint did not answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn sum(s: &[Sample], name: &str) -> Option<f64> {
    let v: Vec<f64> = s.iter().filter(|x| x.name == name).map(|x| x.value).collect();
    (!v.is_empty()).then(|| v.iter().sum())
}

fn max(s: &[Sample], name: &str) -> Option<f64> {
    s.iter().filter(|x| x.name == name).map(|x| x.value).reduce(f64::max)
}

fn one(s: &[Sample], name: &str, label: (&str, &str)) -> Option<f64> {
    s.iter().find(|x| x.name == name && x.label(label.0) == Some(label.1)).map(|x| x.value)
}

/// The engine's counter of work done, whose change per second is `ops/s`.
fn ops_counter(engine: EngineKind, s: &[Sample]) -> Option<f64> {
    match engine {
        EngineKind::Postgresql => Some(sum(s, "pg_stat_database_xact_commit")? + sum(s, "pg_stat_database_xact_rollback").unwrap_or(0.0)),
        EngineKind::Redis => sum(s, "redis_commands_processed_total"),
        EngineKind::Zookeeper => sum(s, "packets_received"),
        // Kafka, MariaDB and Cassandra members serve no metrics yet (docs/kafka.md, …).
        EngineKind::Kafka | EngineKind::Mariadb | EngineKind::Cassandra => None,
    }
}

pub fn bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{v:.0} {}", UNITS[u]) } else { format!("{v:.1} {}", UNITS[u]) }
}

/// Replication lag: a PostgreSQL primary's farthest replica in bytes not replayed, a replica's
/// seconds and bytes behind what it received; a Redis replica's seconds since its primary last
/// spoke to it (or its link down); ZooKeeper: synced followers of the leader's ensemble.
fn lag(engine: EngineKind, s: &[Sample]) -> Option<String> {
    match engine {
        EngineKind::Postgresql => match max(s, "pg_replication_is_replica") {
            Some(1.0) => {
                Some(format!("{:.0} s, {}", max(s, "pg_replication_lag").unwrap_or(0.0), bytes(max(s, "pg_replication_replay_lag_bytes").unwrap_or(0.0))))
            }
            _ => max(s, "pg_stat_replication_pg_wal_lsn_diff").map(|b| format!("replicas ≤ {}", bytes(b))),
        },
        EngineKind::Redis => match max(s, "redis_master_link_up") {
            Some(0.0) => Some("link down".into()),
            Some(_) => max(s, "redis_master_last_io_seconds_ago").map(|v| format!("{v:.0} s")),
            None => None,
        },
        EngineKind::Zookeeper => Some(format!("{:.0}/{:.0} synced", max(s, "synced_followers")?, max(s, "quorum_size")? - 1.0)),
        EngineKind::Kafka | EngineKind::Mariadb | EngineKind::Cassandra => None,
    }
}

fn figures(engine: EngineKind, m: &MemberStatus, scraped: &Result<Vec<Sample>, String>, before: Option<&(Instant, f64)>, now: Instant) -> MemberFigures {
    let base = MemberFigures {
        member: m.name.clone(),
        role: m.role.as_str().to_string(),
        up: false,
        connections: None,
        lag: None,
        memory_bytes: None,
        ops_per_second: None,
        error: None,
    };
    let s = match scraped {
        Ok(s) => s,
        Err(e) => return MemberFigures { error: Some(e.clone()), ..base },
    };
    let (up, connections, memory) = match engine {
        EngineKind::Postgresql => (max(s, "pg_up") == Some(1.0), sum(s, "pg_stat_database_numbackends"), None),
        EngineKind::Redis => (max(s, "redis_up") == Some(1.0), max(s, "redis_connected_clients"), max(s, "redis_memory_used_bytes")),
        EngineKind::Zookeeper => (true, max(s, "num_alive_connections"), one(s, "jvm_memory_bytes_used", ("area", "heap"))),
        EngineKind::Kafka | EngineKind::Mariadb | EngineKind::Cassandra => (false, None, None),
    };
    let ops = ops_counter(engine, s).zip(before).and_then(|(c, (t, b))| {
        let secs = now.duration_since(*t).as_secs_f64();
        (secs > 0.0 && c >= *b).then(|| (c - b) / secs)
    });
    MemberFigures { up, connections, lag: if up { lag(engine, s) } else { None }, memory_bytes: memory, ops_per_second: ops, ..base }
}

async fn scrape(http: &reqwest::Client, url: &str) -> Result<Vec<Sample>, String> {
    let r = http.get(url).send().await.map_err(|e| format!("{url}: {e}"))?;
    if !r.status().is_success() {
        return Err(format!("{url}: HTTP {}", r.status()));
    }
    Ok(parse(&r.text().await.map_err(|e| format!("{url}: {e}"))?))
}

/// Every member's samples, scraped side by side.
async fn scrape_all(http: &reqwest::Client, s: &Service) -> Vec<Result<Vec<Sample>, String>> {
    let urls: Vec<Option<String>> = s.status.members.iter().map(|m| m.metrics.clone()).collect();
    futures::future::join_all(urls.iter().map(|u| async move {
        match u {
            Some(u) => scrape(http, u).await,
            None => Err("no metrics endpoint".into()),
        }
    }))
    .await
}

fn rows(frame: &[MemberFigures]) -> String {
    let dash = || "-".to_string();
    let rows: Vec<Vec<String>> = frame
        .iter()
        .map(|f| {
            vec![
                f.member.clone(),
                f.role.clone(),
                if f.error.is_some() {
                    "?".into()
                } else if f.up {
                    "yes".into()
                } else {
                    "no".into()
                },
                f.connections.map(|c| format!("{c:.0}")).unwrap_or_else(dash),
                f.lag.clone().unwrap_or_else(dash),
                f.memory_bytes.map(bytes).unwrap_or_else(dash),
                f.ops_per_second.map(|o| format!("{o:.1}")).unwrap_or_else(dash),
                f.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(&["MEMBER", "ROLE", "UP", "CONNECTIONS", "LAG", "MEMORY", "OPS/S", "ERROR"], &rows)
}

/// Shows the figures every `interval` until interrupted; with `once`, one frame (two scrapes
/// `interval` apart, for the rates), in `format`.
pub async fn top(client: &Backend, name: &str, interval: Duration, once: bool, format: Format) -> Result<(), CliError> {
    let svc = client.get(name).await?;
    if !svc.status.members.iter().any(|m| m.metrics.is_some()) {
        return Err(CliError::Failed(format!("no member of {name} serves metrics: on the local runtime, install the exporters (docs/monitoring.md)")));
    }
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().map_err(|e| CliError::Failed(e.to_string()))?;
    let engine = svc.spec.engine;
    let mut before: BTreeMap<String, (Instant, f64)> = BTreeMap::new();
    let tty = std::io::stdout().is_terminal();
    let mut first = true;
    loop {
        let svc = client.get(name).await?;
        let scraped = scrape_all(&http, &svc).await;
        let now = Instant::now();
        let frame: Vec<MemberFigures> = svc.status.members.iter().zip(&scraped).map(|(m, s)| figures(engine, m, s, before.get(&m.name), now)).collect();
        for (m, s) in svc.status.members.iter().zip(&scraped) {
            if let Some(c) = s.as_ref().ok().and_then(|s| ops_counter(engine, s)) {
                before.insert(m.name.clone(), (now, c));
            }
        }
        if !(once && first) {
            if !once && tty {
                // Home and clear: the frame replaces the last one.
                print!("\x1b[H\x1b[2J");
            }
            if !once {
                println!("{name} ({}, {}) every {} s; Ctrl-C ends", svc.spec.engine, svc.status.phase.as_str(), interval.as_secs_f64());
            }
            print_as(format, &frame, || rows(&frame))?;
            if once {
                return Ok(());
            }
        }
        first = false;
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firecamp_api::Role;

    fn member(name: &str, role: Role) -> MemberStatus {
        MemberStatus { name: name.into(), role, ..Default::default() }
    }

    #[test]
    fn a_postgresql_primary_and_replica() {
        let primary = parse(
            "pg_up 1\npg_stat_database_numbackends{datname=\"postgres\"} 3\npg_stat_database_numbackends{datname=\"app\"} 2\n\
             pg_stat_database_xact_commit{datname=\"postgres\"} 150\npg_stat_database_xact_rollback{datname=\"postgres\"} 10\n\
             pg_replication_is_replica 0\npg_stat_replication_pg_wal_lsn_diff{application_name=\"pg-1\"} 2048\n",
        );
        let t0 = Instant::now();
        let f = figures(EngineKind::Postgresql, &member("pg-0", Role::Primary), &Ok(primary), Some(&(t0, 60.0)), t0 + Duration::from_secs(2));
        assert_eq!((f.up, f.connections, f.lag.as_deref(), f.memory_bytes, f.ops_per_second), (true, Some(5.0), Some("replicas ≤ 2.0 KiB"), None, Some(50.0)));
        let replica = parse("pg_up 1\npg_replication_is_replica 1\npg_replication_lag 4\npg_replication_replay_lag_bytes 0\n");
        let f = figures(EngineKind::Postgresql, &member("pg-1", Role::Replica), &Ok(replica), None, t0);
        assert_eq!((f.lag.as_deref(), f.ops_per_second), (Some("4 s, 0 B"), None));
    }

    #[test]
    fn a_server_the_exporter_cannot_reach_and_an_endpoint_that_does_not_answer() {
        let f = figures(EngineKind::Redis, &member("rd-1", Role::Replica), &Ok(parse("redis_up 0\n")), None, Instant::now());
        assert_eq!((f.up, f.lag), (false, None));
        let f = figures(EngineKind::Redis, &member("rd-1", Role::Replica), &Err("refused".into()), None, Instant::now());
        assert_eq!(f.error.as_deref(), Some("refused"));
        assert!(rows(&[f]).lines().nth(1).unwrap().contains("?"));
    }

    #[test]
    fn redis_and_zookeeper_figures() {
        let s = parse("redis_up 1\nredis_connected_clients 7\nredis_memory_used_bytes 1048576\nredis_master_link_up 1\nredis_master_last_io_seconds_ago 1\n");
        let f = figures(EngineKind::Redis, &member("rd-1", Role::Replica), &Ok(s), None, Instant::now());
        assert_eq!((f.connections, f.memory_bytes.map(bytes), f.lag.as_deref()), (Some(7.0), Some("1.0 MiB".into()), Some("1 s")));
        let s = parse("num_alive_connections 2.0\njvm_memory_bytes_used{area=\"heap\",} 5.0E7\nquorum_size 3.0\nsynced_followers 2.0\n");
        let f = figures(EngineKind::Zookeeper, &member("zk-2", Role::Leader), &Ok(s), None, Instant::now());
        assert_eq!((f.connections, f.lag.as_deref(), f.memory_bytes), (Some(2.0), Some("2/2 synced"), Some(5.0e7)));
    }
}
