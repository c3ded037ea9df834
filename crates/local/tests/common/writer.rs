//! A continuous PostgreSQL writer for tests of operations: one row per INSERT to the member the
//! runtime reports as primary, reconnecting after an error, and the check that every
//! acknowledged row is on the primary at the end.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use firecamp_api::{Operation, Phase, Role};
use serde_json::json;
use tokio::sync::watch;

use super::{Bed, PgLogin, pg_connect, pg_connect_as, spec};

/// The member the runtime reports as primary (or leader), with its address.
pub async fn primary(bed: &Bed, name: &str) -> Option<(String, String)> {
    let s = bed.get(name).await;
    s.status.members.iter().find(|m| matches!(m.role, Role::Primary | Role::Leader)).map(|m| (m.name.clone(), m.static_ip.clone().unwrap()))
}

/// What a continuous writer saw: every acknowledged id, the outcome of every attempt in order,
/// and the member that acknowledged each write.
#[derive(Default)]
pub struct Writes {
    pub acked: Vec<i64>,
    pub outcomes: Vec<bool>,
    pub by: Vec<String>,
    pub last_error: Option<String>,
}

impl Writes {
    /// Maximal runs of failed attempts after the first success.
    pub fn outage_windows(&self) -> usize {
        let start = self.outcomes.iter().position(|o| *o).unwrap_or(self.outcomes.len());
        let seq = &self.outcomes[start..];
        seq.windows(2).filter(|w| w[0] && !w[1]).count()
    }
    /// The members that acknowledged writes, in order, without repeats in a row.
    pub fn primaries(&self) -> Vec<String> {
        let mut v = self.by.clone();
        v.dedup();
        v
    }
}

/// Row ids, unique across every writer of the test binary.
static NEXT_ID: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);

/// How a writer finds where to write.
#[derive(Clone)]
pub enum Via {
    /// The member the runtime's API reports as primary.
    Role,
    /// The service's primary endpoint, resolved through the runtime's DNS server at each
    /// (re)connection, as a client would.
    Endpoint,
}

/// The primary endpoint's name.
pub fn primary_endpoint(bed: &Bed, name: &str) -> String {
    format!("primary.{name}.{}-firecamp.com", bed.cfg.cluster)
}

/// The member behind the primary endpoint now, with its address.
pub async fn endpoint_primary(bed: &Bed, name: &str) -> Option<(String, String)> {
    let ip = super::query_a(bed.dns_addr, &primary_endpoint(bed, name)).await.first()?.to_string();
    let s = bed.get(name).await;
    s.status.members.iter().find(|m| m.static_ip.as_deref() == Some(ip.as_str())).map(|m| (m.name.clone(), ip))
}

/// One row per INSERT (autocommit) to the member the runtime reports as primary; after an
/// error the primary is looked up again.
pub fn writer(bed: Arc<Bed>, name: &'static str, password: PgLogin, stop: watch::Receiver<bool>, w: Arc<Mutex<Writes>>) -> tokio::task::JoinHandle<()> {
    writer_via(bed, name, Via::Role, password, stop, w)
}

/// A writer that finds the primary `via` the API or the primary endpoint.
pub fn writer_via(
    bed: Arc<Bed>,
    name: &'static str,
    via: Via,
    password: PgLogin,
    mut stop: watch::Receiver<bool>,
    w: Arc<Mutex<Writes>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut client: Option<(String, tokio_postgres::Client)> = None;
        while !*stop.borrow() {
            if client.is_none() {
                // By endpoint, the server's certificate must carry the endpoint's name.
                let found = match via {
                    Via::Role => primary(&bed, name).await.map(|(m, ip)| (m, ip.clone(), ip)),
                    Via::Endpoint => endpoint_primary(&bed, name).await.map(|(m, ip)| (m, ip, primary_endpoint(&bed, name))),
                };
                let connected = match found {
                    // A dead primary's address may be held by a listener that never answers.
                    Some((m, ip, server_name)) => match tokio::time::timeout(Duration::from_secs(3), pg_connect_as(&ip, &server_name, &password)).await {
                        Ok(r) => r.map(|c| (m, c)).map_err(|e| e.to_string()),
                        Err(_) => Err(format!("connecting to {m} ({ip}): no answer within 3 s")),
                    },
                    None => Err("no primary".to_string()),
                };
                match connected {
                    Ok(c) => client = Some(c),
                    Err(e) => {
                        {
                            let mut g = w.lock().unwrap();
                            g.outcomes.push(false);
                            g.last_error = Some(e);
                        }
                        // Pacing between attempts while there is no primary (not a synchronisation).
                        tokio::select! { _ = tokio::time::sleep(Duration::from_millis(50)) => {}, _ = stop.changed() => {} }
                        continue;
                    }
                }
            }
            let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let (m, c) = client.as_ref().unwrap();
            let r = tokio::time::timeout(Duration::from_secs(5), c.execute("INSERT INTO t VALUES ($1)", &[&id])).await;
            let mut g = w.lock().unwrap();
            match r {
                Ok(Ok(_)) => {
                    g.acked.push(id);
                    g.outcomes.push(true);
                    g.by.push(m.clone());
                }
                Ok(Err(e)) => {
                    g.outcomes.push(false);
                    g.last_error = Some(e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string()));
                    if g.outcomes.iter().filter(|o| !**o).count() < 3 {
                        eprintln!("writer: INSERT {id} on {m} failed: {:?}", g.last_error);
                    }
                    client = None;
                }
                Err(_) => {
                    g.outcomes.push(false);
                    g.last_error = Some("INSERT timed out".into());
                    client = None;
                }
            }
        }
    })
}

/// Runs `body` (which starts an operation and returns its id) with a continuous writer, waits
/// for the operation, lets the writer acknowledge a few more rows, and checks that every
/// acknowledged row is on the primary. Returns the operation and what the writer saw.
pub async fn with_writer(bed: &Arc<Bed>, name: &'static str, password: &PgLogin, request: serde_json::Value) -> (Operation, Writes) {
    let w = Arc::new(Mutex::new(Writes::default()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = writer(bed.clone(), name, password.clone(), stop_rx, w.clone());
    // Writes flow before the operation starts.
    wait_for_acks(&w, 20).await;
    let op = bed.operate(name, request).await.expect("operation accepted");
    let op = bed.wait_operation(name, &op.id, Duration::from_secs(600)).await;
    let seen = w.lock().unwrap().acked.len();
    wait_for_acks(&w, seen + 20).await;
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    let writes = std::mem::take(&mut *w.lock().unwrap());

    let (p, ip) = primary(bed, name).await.expect("a primary");
    assert_eq!(writes.primaries().last(), Some(&p), "the writer ends on the primary");
    let c = pg_connect(&ip, password).await.unwrap();
    let rows = c.query("SELECT id FROM t", &[]).await.unwrap();
    let present: std::collections::HashSet<i64> = rows.iter().map(|r| r.get(0)).collect();
    let lost: Vec<i64> = writes.acked.iter().filter(|i| !present.contains(i)).copied().collect();
    assert!(lost.is_empty(), "acknowledged rows missing on the primary {p}: {lost:?}");
    (op, writes)
}

pub async fn wait_for_acks(w: &Arc<Mutex<Writes>>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (got, last) = {
            let g = w.lock().unwrap();
            (g.acked.len(), g.last_error.clone())
        };
        if got >= n {
            return;
        }
        assert!(Instant::now() < deadline, "the writer got only {got} of {n} acknowledgements; last error {last:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn pg_service(bed: &Bed, name: &str) -> PgLogin {
    bed.create(json!({ "name": name, "spec": spec("postgresql", 3, "256Mi") })).await.expect("created");
    bed.wait_phase(name, Phase::Active, Duration::from_secs(240)).await;
    let password = bed.pg_login(name);
    let c = pg_connect(&bed.ip(name, &format!("{name}-0")).await, &password).await.unwrap();
    c.batch_execute("CREATE TABLE t (id bigint PRIMARY KEY)").await.unwrap();
    password
}
