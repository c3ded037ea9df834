//! A real PostgreSQL cluster: a primary and streaming replicas from the catalog's configs.

mod common;

use std::time::Duration;

use common::{PgLogin, kill9, pg_connect, require, spec, with_bed};
use firecamp_api::{Phase, Role};
use firecamp_core::EngineKind;
use serde_json::json;

async fn connect(host: &str, password: &PgLogin) -> tokio_postgres::Client {
    pg_connect(host, password).await.unwrap_or_else(|e| panic!("connecting to {host}: {e}"))
}

/// Reads `SELECT v FROM t` on `host` until it shows `want` (replay is asynchronous), within a deadline.
async fn read_until(host: &str, password: &PgLogin, want: &str) {
    let c = connect(host, password).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = c.query("SELECT v FROM t", &[]).await;
        if rows.as_ref().is_ok_and(|rows| rows.iter().any(|r| r.get::<_, String>(0) == want)) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{host} never showed {want:?}: {rows:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_primary_and_two_streaming_replicas_that_survive_a_crash() {
    require(EngineKind::Postgresql);
    with_bed(
        "t-pg",
        "127.0.110.1/20",
        |_| {},
        |bed| async move {
            bed.create(json!({ "name": "pg", "spec": spec("postgresql", 3, "256Mi") })).await.expect("created");
            let s = bed.wait_phase("pg", Phase::Active, Duration::from_secs(180)).await;
            let roles: Vec<(String, Role)> = s.status.members.iter().map(|m| (m.name.clone(), m.role)).collect();
            assert_eq!(roles, vec![("pg-0".into(), Role::Primary), ("pg-1".into(), Role::Replica), ("pg-2".into(), Role::Replica)]);
            assert_eq!(s.spec.version.as_deref(), Some("15"));

            // Every replica streams from the primary, as PostgreSQL itself says.
            let password = bed.pg_login("pg");
            let primary_ip = bed.ip("pg", "pg-0").await;
            let primary = connect(&primary_ip, &password).await;
            let rows = primary.query("SELECT application_name, state FROM pg_stat_replication ORDER BY 1", &[]).await.unwrap();
            let got: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            assert_eq!(got, vec![("pg-1".into(), "streaming".into()), ("pg-2".into(), "streaming".into())]);

            // Issue #13: replication runs over TLS; clients must use it and verify the member.
            let rows =
                primary.query("SELECT r.application_name, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) ORDER BY 1", &[]).await.unwrap();
            let got: Vec<(String, bool)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            assert_eq!(got, vec![("pg-1".into(), true), ("pg-2".into(), true)], "replication over TLS");
            tls_is_required_and_verified(&bed.ca_path("pg", "pg-0"), &primary_ip, "pg-0.t-pg-firecamp.com", &password).await;

            // A row written on the primary is read on a replica, through its DNS name.
            primary.batch_execute("CREATE TABLE t (v text); INSERT INTO t VALUES ('before-crash')").await.unwrap();
            read_until("pg-2.t-pg-firecamp.com", &password, "before-crash").await;

            // Kill the primary's server: the supervisor starts it again, same IP, same data.
            let pid = bed.server_pid("pg", "pg-0");
            kill9(pid);
            let s = bed.wait_phase("pg", Phase::Active, Duration::from_secs(180)).await;
            assert_ne!(bed.server_pid("pg", "pg-0"), pid, "a new server process");
            let m0 = s.status.members.iter().find(|m| m.name == "pg-0").unwrap();
            assert_eq!(m0.static_ip.as_deref(), Some(primary_ip.as_str()));
            assert_eq!(m0.role, Role::Primary);
            let primary = connect(&primary_ip, &password).await;
            primary.batch_execute("INSERT INTO t VALUES ('after-crash')").await.unwrap();
            read_until(&primary_ip, &password, "before-crash").await;
            read_until(&bed.ip("pg", "pg-1").await, &password, "after-crash").await;
            assert!(bed.logs("pg", "pg-0").await.contains("starting it again"), "the supervisor logged the restart");

            // Stop and start keep the data; delete keeps it unless asked.
            bed.http.post(format!("{}/v1/services/pg/stop", bed.url)).send().await.unwrap();
            bed.wait_phase("pg", Phase::Stopped, Duration::from_secs(60)).await;
            bed.http.post(format!("{}/v1/services/pg/start", bed.url)).send().await.unwrap();
            bed.wait_phase("pg", Phase::Active, Duration::from_secs(180)).await;
            read_until(&bed.ip("pg", "pg-2").await, &password, "after-crash").await;
            bed.delete("pg", false).await;
            assert!(bed.member_dir("pg", "pg-0").join("data/pgdata/PG_VERSION").exists(), "data kept");
            assert!(!bed.member_dir("pg", "pg-0").join("secret").exists(), "secrets removed");
            let hosts = std::fs::read_to_string("/etc/hosts").unwrap();
            assert!(!hosts.contains("t-pg-firecamp.com"), "names removed from /etc/hosts");
        },
    )
    .await;
}

/// What a client sees: psql with `sslmode=verify-full` and the service's CA connects by address
/// and by DNS name; without TLS, or trusting another CA, or naming another member, it does not.
async fn tls_is_required_and_verified(ca: &std::path::Path, ip: &str, dns: &str, login: &PgLogin) {
    let psql = |conninfo: String| {
        let out = std::process::Command::new("psql")
            .args([conninfo.as_str(), "-XAtc", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"])
            .env("PGPASSWORD", &login.password)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .expect("psql (Debian's postgresql-client) is needed");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).trim().to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    let ca = ca.display();
    for host in [ip, dns] {
        let (ok, out) = psql(format!("host={host} user=postgres dbname=postgres sslmode=verify-full sslrootcert={ca}"));
        assert!(ok && out == "t", "verify-full to {host}: {out}");
    }
    let (ok, out) = psql(format!("host={ip} user=postgres dbname=postgres sslmode=disable"));
    assert!(!ok && out.contains("no encryption"), "a plain connection: {out}");
    let other = std::env::temp_dir().join(format!("firecamp-other-ca-{}.crt", std::process::id()));
    let now = firecamp_pki::OffsetDateTime::now_utc();
    std::fs::write(&other, firecamp_pki::new_ca("another", firecamp_pki::Duration::days(1), now).unwrap().cert).unwrap();
    let (ok, out) = psql(format!("host={ip} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}", other.display()));
    assert!(!ok && out.contains("certificate verify failed"), "another CA: {out}");
    std::fs::remove_file(&other).unwrap();
    // The member's certificate names it, not its peers.
    let wrong = dns.replacen("pg-0", "pg-1", 1);
    let (ok, out) = psql(format!("host={ip} hostaddr={ip} user=postgres dbname=postgres sslmode=verify-full sslrootcert={ca}").replacen(
        &format!("host={ip} "),
        &format!("host={wrong} "),
        1,
    ));
    assert!(!ok && out.contains("does not match host name"), "another member's name: {out}");
    // FireCamp's own client refuses another CA too.
    let t = firecamp_probe::Target::new(ip, 5432)
        .with_password(login.password.clone())
        .with_tls(firecamp_pki::new_ca("x", firecamp_pki::Duration::days(1), now).unwrap().cert, ip);
    assert!(firecamp_probe::postgresql::connect(&t, "postgres").await.is_err());
}
