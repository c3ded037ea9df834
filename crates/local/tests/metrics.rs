//! Every member's metrics (issue #17, docs/monitoring.md), scraped from the endpoint its status
//! names as Prometheus would: postgres_exporter and redis_exporter beside the servers, logged in
//! as monitoring users that may read nothing else, and ZooKeeper's own provider.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Bed, pg_connect, redis_cli, require, spec, with_bed};
use firecamp_api::Phase;
use firecamp_core::EngineKind;
use firecamp_local::servers;
use serde_json::json;

/// The exporter (or provider) of `engine` must be installed: scripts/setup.d/30-local.sh.
fn require_metrics(engine: EngineKind) {
    require(engine);
    let found = servers::detect(&firecamp_local::Config::new("/nonexistent"), engine, None, false).unwrap();
    assert!(found.metrics.is_some(), "no metrics exporter for {engine} on this machine (scripts/setup.d/30-local.sh installs it)");
}

/// The value of the first sample of `name` whose labels contain every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        (metric == name && labels.iter().all(|x| rest.contains(x))).then(|| value.parse().ok())?
    })
}

/// The member's metrics URL from its status (what `service members` shows).
async fn metrics_url(bed: &Bed, name: &str, member: &str) -> String {
    let s = bed.get(name).await;
    let m = s.status.members.iter().find(|m| m.name == member).expect("member");
    m.metrics.clone().unwrap_or_else(|| panic!("{member} has no metrics endpoint: {m:?}"))
}

async fn scrape(url: &str) -> Result<String, String> {
    let r = reqwest::get(url).await.map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("HTTP {}", r.status()));
    }
    r.text().await.map_err(|e| e.to_string())
}

/// Scrapes `url` until `ok` holds for what it serves (60 s at most: an exporter answers as soon
/// as it runs, its figures once the server does); the last scrape.
async fn scrape_until(url: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = scrape(url).await;
        match &got {
            Ok(text) if ok(text) => return text.clone(),
            _ if Instant::now() > deadline => {
                // The series' names, and every sample of those the test looks for.
                let shown = got
                    .map(|t| {
                        let names: std::collections::BTreeSet<&str> =
                            t.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split(['{', ' ']).next()).collect();
                        let wanted: Vec<&str> = t.lines().filter(|l| what.split([' ', ',']).any(|w| w.len() > 4 && l.starts_with(w))).collect();
                        format!("{}\n{}", names.into_iter().collect::<Vec<_>>().join(" "), wanted.join("\n"))
                    })
                    .unwrap_or_else(|e| e);
                panic!("{url}: {what} not seen within 60 s; last scrape:\n{shown}")
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// `firecamp service top <name> --once -o json` against the bed's daemon: each member's
/// figures, as the user's terminal view computes them (ops/s over one second).
fn top_once(bed: &Bed, name: &str) -> Vec<serde_json::Value> {
    let out = std::process::Command::new(common::s3::firecamp_bin())
        .args(["service", "--server", &bed.url, "top", name, "--once", "--interval", "1", "-o", "json"])
        .env("FIRECAMP_LOCAL_DIR", &bed.cfg.dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "firecamp service top: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The exporter's command line and environment hold no password of the service.
fn assert_no_secret_in_process(bed: &Bed, name: &str, member: &str, secrets: &[&str]) {
    let pid = std::fs::read_to_string(bed.member_dir(name, member).join("metrics.pid")).expect("the exporter's pid file");
    let pid = pid.trim();
    for file in ["cmdline", "environ"] {
        let text = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/{file}")).unwrap()).into_owned();
        for key in secrets {
            let secret = bed.secret(name, member, key);
            assert!(!text.contains(&secret), "{member}'s exporter has {key} in its {file}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgresql_members_serve_their_figures_and_a_paused_replica_shows_its_lag() {
    require_metrics(EngineKind::Postgresql);
    with_bed(
        "t-mpg",
        "127.0.205.1/20",
        |_| {},
        |bed: Arc<Bed>| async move {
            bed.create(json!({ "name": "pg", "spec": spec("postgresql", 2, "256Mi") })).await.expect("created");
            bed.wait_phase("pg", Phase::Active, Duration::from_secs(180)).await;
            let login = bed.pg_login("pg");
            let (primary_ip, replica_ip) = (bed.ip("pg", "pg-0").await, bed.ip("pg", "pg-1").await);
            let (primary, replica) = (metrics_url(&bed, "pg", "pg-0").await, metrics_url(&bed, "pg", "pg-1").await);
            assert_eq!(primary, format!("http://{primary_ip}:9187/metrics"));

            // Both up; the primary reports its replica's replication, the replica its replay.
            let text = scrape_until(&primary, "pg_up 1 and pg-1's replication", |t| {
                sample(t, "pg_up", &[]) == Some(1.0) && sample(t, "pg_stat_replication_pg_wal_lsn_diff", &["application_name=\"pg-1\""]).is_some()
            })
            .await;
            assert!(sample(&text, "pg_stat_database_numbackends", &["datname=\"postgres\""]).is_some(), "connections per database");
            scrape_until(&replica, "pg_up 1, and the replica's lag in seconds", |t| {
                sample(t, "pg_up", &[]) == Some(1.0)
                    && sample(t, "pg_replication_is_replica", &[]) == Some(1.0)
                    && sample(t, "pg_replication_lag", &[]).is_some()
            })
            .await;
            assert_no_secret_in_process(&bed, "pg", "pg-0", &["monitor-password", "superuser-password"]);
            // The terminal view: both members up, the primary's connections, its replica's lag and
            // its transactions per second (the exporter's and FireCamp's own queries commit too).
            let top = top_once(&bed, "pg");
            assert_eq!(top.len(), 2, "{top:?}");
            assert_eq!((top[0]["member"].as_str(), top[0]["role"].as_str(), top[0]["up"].as_bool()), (Some("pg-0"), Some("primary"), Some(true)), "{top:?}");
            assert!(top[0]["connections"].as_f64().is_some_and(|c| c >= 1.0), "{top:?}");
            assert!(top[0]["lag"].as_str().is_some_and(|l| l.starts_with("replicas ≤ ")), "{top:?}");
            assert!(top[0]["opsPerSecond"].as_f64().is_some_and(|o| o > 0.0), "{top:?}");
            assert!(top[1]["lag"].as_str().is_some_and(|l| l.ends_with(" B") && l.contains(" s, ")), "{top:?}");

            // Replay paused on the replica while the primary writes: its lag grows, then closes.
            // (A first write before: a replica's lag in seconds counts from the last transaction it
            // replayed.)
            let p = pg_connect(&primary_ip, &login).await.unwrap();
            p.batch_execute("CREATE TABLE warm (x int)").await.unwrap();
            scrape_until(&primary, "pg-1 caught up", |t| sample(t, "pg_stat_replication_pg_wal_lsn_diff", &["application_name=\"pg-1\""]) == Some(0.0)).await;
            let r = pg_connect(&replica_ip, &login).await.unwrap();
            r.batch_execute("SELECT pg_wal_replay_pause()").await.unwrap();
            p.batch_execute("CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g").await.unwrap();
            scrape_until(&primary, "pg-1 lagging by bytes", |t| {
                sample(t, "pg_stat_replication_pg_wal_lsn_diff", &["application_name=\"pg-1\""]).is_some_and(|v| v > 0.0)
            })
            .await;
            scrape_until(&replica, "pg_replication_lag and pg_replication_replay_lag_bytes above 0", |t| {
                sample(t, "pg_replication_lag", &[]).is_some_and(|v| v > 0.0) && sample(t, "pg_replication_replay_lag_bytes", &[]).is_some_and(|v| v > 0.0)
            })
            .await;
            r.batch_execute("SELECT pg_wal_replay_resume()").await.unwrap();
            scrape_until(&primary, "pg-1 caught up", |t| sample(t, "pg_stat_replication_pg_wal_lsn_diff", &["application_name=\"pg-1\""]) == Some(0.0)).await;
            scrape_until(&replica, "pg_replication_lag and pg_replication_replay_lag_bytes back at 0", |t| {
                sample(t, "pg_replication_lag", &[]) == Some(0.0) && sample(t, "pg_replication_replay_lag_bytes", &[]) == Some(0.0)
            })
            .await;

            // The monitoring role reads statistics, never data.
            let monitor = bed.secret("pg", "pg-0", "monitor-password");
            let t = firecamp_probe::Target::new(primary_ip.clone(), 5432).with_password(monitor.clone()).with_tls(login.ca.clone(), primary_ip.clone());
            let c = firecamp_probe::postgresql::connect(&t, "firecamp_monitor").await.expect("the monitoring role logs in");
            let e = c.batch_execute("SELECT count(*) FROM t").await.unwrap_err();
            let why = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
            assert!(why.contains("permission denied"), "{why}");

            // Credentials that stopped working show as a failing target (pg_up 0), not a gap: the
            // role's password changed and the exporter's session ended, so it must log in again.
            p.batch_execute("ALTER ROLE firecamp_monitor PASSWORD 'not-the-secret'").await.unwrap();
            p.batch_execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'firecamp_monitor'").await.unwrap();
            let text = scrape_until(&primary, "pg_up 0", |t| sample(t, "pg_up", &[]) == Some(0.0)).await;
            assert!(sample(&text, "pg_stat_replication_pg_wal_lsn_diff", &[]).is_none(), "no stale figures");
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_members_serve_their_figures_through_a_user_that_reads_no_key() {
    require_metrics(EngineKind::Redis);
    with_bed(
        "t-mrd",
        "127.0.206.1/20",
        |_| {},
        |bed: Arc<Bed>| async move {
            bed.create(json!({ "name": "rd", "spec": spec("redis", 2, "256Mi") })).await.expect("created");
            bed.wait_phase("rd", Phase::Active, Duration::from_secs(120)).await;
            let (primary, replica) = (metrics_url(&bed, "rd", "rd-0").await, metrics_url(&bed, "rd", "rd-1").await);
            let text = scrape_until(&primary, "redis_up 1 with one replica", |t| {
                sample(t, "redis_up", &[]) == Some(1.0) && sample(t, "redis_connected_slaves", &[]) == Some(1.0)
            })
            .await;
            assert!(sample(&text, "redis_connected_clients", &[]).is_some_and(|v| v >= 1.0), "clients");
            assert!(sample(&text, "redis_memory_used_bytes", &[]).is_some_and(|v| v > 0.0), "memory");
            assert!(sample(&text, "redis_instance_info", &["role=\"master\""]).is_some(), "the primary's role");
            let text = scrape_until(&replica, "redis_up 1 on the replica", |t| sample(t, "redis_up", &[]) == Some(1.0)).await;
            assert!(sample(&text, "redis_instance_info", &["role=\"slave\""]).is_some(), "the replica's role");
            assert!(sample(&text, "redis_master_link_up", &[]) == Some(1.0), "the replica's link to its primary");
            assert_no_secret_in_process(&bed, "rd", "rd-0", &["monitor-password", "password"]);
            let top = top_once(&bed, "rd");
            assert_eq!(top.iter().map(|m| m["up"].as_bool()).collect::<Vec<_>>(), [Some(true), Some(true)], "{top:?}");
            assert!(top[0]["memoryBytes"].as_f64().is_some_and(|b| b > 0.0) && top[0]["opsPerSecond"].as_f64().is_some(), "{top:?}");
            assert!(top[1]["lag"].as_str().is_some_and(|l| l.ends_with(" s")), "the replica's seconds since its primary spoke: {top:?}");

            // The exporter's user may read figures, not keys, and write nothing.
            let ip = bed.ip("rd", "rd-0").await;
            bed.redis("rd", "rd-0", &["SET", "k", "v"]).await;
            let ca = bed.ca_path("rd", "rd-0").display().to_string();
            let monitor = bed.secret("rd", "rd-0", "monitor-password");
            let tls = ["--tls", "--cacert", ca.as_str(), "--user", "monitor", "--no-auth-warning"];
            let (_, out) = redis_cli(&ip, 6379, &monitor, &[&tls[..], &["INFO", "server"]].concat());
            assert!(out.contains("redis_version"), "{out}");
            for cmd in [&["GET", "k"][..], &["SET", "k", "x"], &["CONFIG", "SET", "maxmemory", "1"], &["KEYS", "*"]] {
                let (_, out) = redis_cli(&ip, 6379, &monitor, &[&tls[..], cmd].concat());
                assert!(out.contains("NOPERM"), "{cmd:?} as monitor: {out}");
            }

            // FireCamp's own metrics: the service's phase, members and primary; an operation's
            // count and its steps' time once it ran; refused requests counted, and /metrics itself
            // behind the token.
            let own = format!("{}/metrics", bed.url);
            let unauthenticated = reqwest::get(&own).await.unwrap();
            assert_eq!(unauthenticated.status().as_u16(), 401);
            let text = bed.http.get(&own).send().await.unwrap().text().await.unwrap();
            for (name, labels, value) in [
                ("firecamp_service_phase", &["service=\"rd\"", "phase=\"ACTIVE\""][..], 1.0),
                ("firecamp_service_members_desired", &["service=\"rd\""], 2.0),
                ("firecamp_service_members_ready", &["service=\"rd\""], 2.0),
                ("firecamp_service_primary", &["service=\"rd\"", "member=\"rd-0\""], 1.0),
                ("firecamp_api_requests_total", &["route=\"/metrics\"", "status=\"401\""], 1.0),
            ] {
                assert_eq!(sample(&text, name, labels), Some(value), "{name}{labels:?} in\n{text}");
            }
            assert_eq!(sample(&text, "firecamp_operations_total", &["kind=\"config\"", "result=\"succeeded\""]), Some(0.0), "no operation yet");
            // Its certificates' expiry: the CA's in about ten years, each member's in about one.
            let year = 365.0 * 86400.0;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
            for (which, years) in [("ca", 10.0), ("rd-0", 1.0), ("rd-1", 1.0)] {
                let at = sample(&text, "firecamp_certificate_expiry_timestamp_seconds", &["service=\"rd\"", &format!("certificate=\"{which}\"")]);
                assert!(at.is_some_and(|t| (t - now - years * year).abs() < 2.0 * 86400.0), "{which}: {at:?}");
            }
            // Each member's volume: the file system under its data directory, as statvfs(3) sees it.
            let data = bed.member_dir("rd", "rd-1").join("data");
            let st = nix::sys::statvfs::statvfs(&data).unwrap();
            let size = sample(&text, "firecamp_member_volume_size_bytes", &["service=\"rd\"", "member=\"rd-1\""]).unwrap();
            assert_eq!(size, st.blocks() as f64 * st.fragment_size() as f64, "{text}");
            let available = sample(&text, "firecamp_member_volume_available_bytes", &["service=\"rd\"", "member=\"rd-1\""]).unwrap();
            assert!(available > 0.0 && available < size, "{available} of {size}");
            let op = bed.operate("rd", json!({ "kind": "config", "config": { "hz": "20" } })).await.unwrap();
            bed.wait_operation("rd", &op.id, Duration::from_secs(60)).await;
            let text = bed.http.get(&own).send().await.unwrap().text().await.unwrap();
            assert_eq!(sample(&text, "firecamp_operations_total", &["kind=\"config\"", "result=\"succeeded\""]), Some(1.0), "{text}");
            let steps = sample(&text, "firecamp_operation_step_duration_seconds_count", &["kind=\"config\"", "result=\"succeeded\""]);
            assert!(steps.is_some_and(|n| n >= 1.0), "{text}");
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn zookeeper_members_serve_their_own_prometheus_metrics() {
    require_metrics(EngineKind::Zookeeper);
    with_bed(
        "t-mzk",
        "127.0.207.1/20",
        |_| {},
        |bed: Arc<Bed>| async move {
            let mut s = spec("zookeeper", 3, "512Mi");
            s["zookeeper"] = json!({ "heap": "128Mi" });
            bed.create(json!({ "name": "zk", "spec": s })).await.expect("created");
            let s = bed.wait_phase("zk", Phase::Active, Duration::from_secs(180)).await;
            let leader = s.status.members.iter().find(|m| m.role == firecamp_api::Role::Leader).expect("a leader").name.clone();
            for m in ["zk-0", "zk-1", "zk-2"] {
                let url = metrics_url(&bed, "zk", m).await;
                assert_eq!(url, format!("http://{}:7000/metrics", bed.ip("zk", m).await));
                let text = scrape_until(&url, "znode_count", |t| sample(t, "znode_count", &[]).is_some_and(|v| v > 0.0)).await;
                assert!(sample(&text, "num_alive_connections", &[]).is_some(), "{m}: connections");
                assert!(sample(&text, "jvm_memory_bytes_used", &["area=\"heap\""]).is_some(), "{m}: the JVM's heap");
                if m == leader {
                    assert_eq!(sample(&text, "quorum_size", &[]), Some(3.0), "{m}: the quorum");
                    assert_eq!(sample(&text, "synced_followers", &[]), Some(2.0), "{m}: its followers");
                }
            }
            let top = top_once(&bed, "zk");
            assert!(
                top.iter().all(|m| m["up"].as_bool() == Some(true) && m["memoryBytes"].as_f64().is_some() && m["opsPerSecond"].as_f64().is_some()),
                "{top:?}"
            );
            let led = top.iter().find(|m| m["member"].as_str() == Some(leader.as_str())).unwrap();
            assert_eq!(led["lag"].as_str(), Some("2/2 synced"), "{top:?}");
        },
    )
    .await;
}

/// A real Prometheus (Debian's) scraping the daemon (with its API token) and every member every
/// 5 s — the daemon's answer probes every member, up to the probes' 3 s when one hangs, and an
/// exporter whose server is down takes over a second to say so — with FireCamp's alert rules
/// evaluated every second; killed when dropped.
struct Prometheus {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// `members`: (member, target) of service pg, labelled as the dashboards expect.
    fn start(bed: &Bed, members: &[(&str, String)]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/monitoring/alerts.yaml");
        let daemon = bed.url.trim_start_matches("http://");
        let members: Vec<String> = members.iter().map(|(m, t)| format!("{{targets: [{t:?}], labels: {{service: pg, member: {m}}}}}")).collect();
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{rules:?}]\nscrape_configs:\n\
             - job_name: firecamp\n  scrape_interval: 5s\n  scrape_timeout: 5s\n  authorization: {{credentials_file: {token:?}}}\n  static_configs: [{{targets: [{daemon:?}]}}]\n\
             - job_name: members\n  scrape_interval: 5s\n  scrape_timeout: 5s\n  static_configs: [{members}]\n",
            members = members.join(", "),
            rules = rules.display().to_string(),
            token = bed.cfg.token_path().display().to_string(),
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let child = std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("prometheus: {e} (Debian's prometheus package; scripts/setup.d/30-local.sh installs it)"));
        Prometheus { child, url: format!("http://127.0.0.1:{port}"), _dir: dir }
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Option<serde_json::Value> {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.url), query).ok()?;
        reqwest::get(url).await.ok()?.json().await.ok()
    }

    /// Asks until `ok` holds for the answer to `path` (60 s at most); the last answer.
    async fn until(&self, path: &str, query: &[(&str, &str)], what: &str, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.get(path, query).await;
            match got {
                Some(v) if ok(&v) => return v,
                _ if Instant::now() > deadline => {
                    let log = std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(20).collect();
                    let targets = self.get("/api/v1/targets", &[]).await;
                    panic!("Prometheus: {what} not seen within 60 s; last answer: {got:?}\ntargets: {targets:?}\nits log:\n{}", tail.join("\n"))
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// The values of an instant query, by the series' label `by`.
    async fn values(&self, query: &str, by: &str, what: &str, ok: impl Fn(&BTreeMap<String, f64>) -> bool) -> BTreeMap<String, f64> {
        let v = self.until("/api/v1/query", &[("query", query)], what, |v| ok(&by_label(v, by))).await;
        by_label(&v, by)
    }
}

/// The PostgreSQL and FireCamp dashboards (deploy/monitoring/dashboards) rendered by
/// scripts/dashboards/render.py from this Prometheus: every query is valid PromQL that it
/// answers, and the panels a user looks at first show the service's real state.
async fn dashboards_render_from_real_series(prom: &Prometheus) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = tempfile::tempdir().unwrap();
    for dashboard in ["postgresql", "firecamp"] {
        let html = out.path().join(format!("{dashboard}.html"));
        let run = tokio::process::Command::new("python3")
            .arg(root.join("scripts/dashboards/render.py"))
            .args(["--prometheus", &prom.url, "--var", "service=pg", "--range", "2m", "--scrape-interval", "5s", "--strict", "--out"])
            .arg(&html)
            .arg("--dashboard")
            .arg(root.join(format!("deploy/monitoring/dashboards/{dashboard}.json")))
            .output()
            .await
            .expect("python3");
        let report = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{dashboard}: {report}");
        assert!(!report.contains(": error:") && !report.contains("(error:"), "{dashboard}: {report}");
        let page = std::fs::read_to_string(&html).unwrap();
        assert!(page.contains("<svg") && page.contains("pg-0"), "{dashboard}: {report}");
        if dashboard == "postgresql" {
            for panel in ["Phase: 1 series", "Primary: 1 series", "Members ready: 2 series"] {
                assert!(report.lines().any(|l| l.trim() == panel), "{panel} in:\n{report}");
            }
            assert!(page.contains("ACTIVE"), "the Phase panel shows ACTIVE: {report}");
        }
    }
}

fn by_label(v: &serde_json::Value, label: &str) -> BTreeMap<String, f64> {
    v["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r["metric"][label].as_str()?.to_string(), r["value"][1].as_str()?.parse().ok()?)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_the_daemon_and_every_member_and_raises_an_alert_for_a_member_that_goes_down() {
    require_metrics(EngineKind::Postgresql);
    with_bed(
        "t-mpr",
        "127.0.208.1/20",
        |_| {},
        |bed: Arc<Bed>| async move {
            bed.create(json!({ "name": "pg", "spec": spec("postgresql", 2, "256Mi") })).await.expect("created");
            bed.wait_phase("pg", Phase::Active, Duration::from_secs(180)).await;
            let mut targets = Vec::new();
            for m in ["pg-0", "pg-1"] {
                targets.push(metrics_url(&bed, "pg", m).await.trim_start_matches("http://").trim_end_matches("/metrics").to_string());
            }
            let prom = Prometheus::start(&bed, &[("pg-0", targets[0].clone()), ("pg-1", targets[1].clone())]);
            prom.until("/api/v1/targets", &[], "3 targets up", |v| {
                let t = v["data"]["activeTargets"].as_array().cloned().unwrap_or_default();
                t.len() == 3 && t.iter().all(|t| t["health"] == "up")
            })
            .await;
            prom.values("firecamp_service_members_ready", "service", "pg's 2 ready members", |v| v.get("pg") == Some(&2.0)).await;
            let up = prom.values("pg_up", "instance", "pg_up 1 on both members", |v| v.len() == 2 && v.values().all(|x| *x == 1.0)).await;
            assert_eq!(up.keys().cloned().collect::<Vec<_>>(), targets);
            dashboards_render_from_real_series(&prom).await;

            // pg-1 killed and kept down: the rule's expression matches the real series at once
            // (the alert is pending until its 2 minutes have passed).
            let _held = common::kill_and_block(&bed, "pg", "pg-1", 5432).await;
            let alerts = prom.values("ALERTS{alertname=\"FireCampMemberDown\"}", "member", "FireCampMemberDown for pg-1", |v| v.contains_key("pg-1")).await;
            assert_eq!(alerts.keys().collect::<Vec<_>>(), ["pg-1"], "only the member that is down");
            // Its exporter still answers, and says its server is down.
            prom.until("/api/v1/query", &[("query", "pg_up")], "pg-1's exporter reporting pg_up 0", |v| by_label(v, "instance").get(&targets[1]) == Some(&0.0))
                .await;
        },
    )
    .await;
}
