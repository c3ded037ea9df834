//! The probes over TLS against real servers that serve TLS only, with certificates of a service CA
//! (firecamp-pki) naming the member's DNS name and not the address dialed (127.0.0.1): the right
//! CA and name connect; another CA, another name or no TLS at all do not, and say why. Keys and
//! passwords only in 0600 files of the test's own directory. A missing server fails the test.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use firecamp_pki::{CaPem, LeafPem, Usage};
use firecamp_probe::{ProbeError, Role, Target, postgresql, redis};

const PASSWORD: &str = "Xk7RqplUjw3s9ZtQ";
const PG_NAME: &str = "pg-0.db.prod-firecamp.com";

/// A server process, stopped with `signal` (then killed) when the test ends.
struct Server {
    child: Child,
    signal: &'static str,
    log: PathBuf,
}

impl Server {
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").args([self.signal, &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now() -> firecamp_pki::OffsetDateTime {
    firecamp_pki::OffsetDateTime::now_utc()
}

fn ca(name: &str) -> CaPem {
    firecamp_pki::new_ca(name, firecamp_pki::Duration::days(1), now()).unwrap()
}

/// A member's certificate: its DNS name only, no IP, so dialing 127.0.0.1 proves the name is
/// taken from the settings.
fn member_cert(ca: &CaPem, name: &str) -> LeafPem {
    firecamp_pki::issue(ca, &[name.to_string()], &[], Usage::ServerAndClient, firecamp_pki::Duration::days(1), now()).unwrap()
}

fn write(path: &Path, mode: u32, text: &str) {
    let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A port on 127.0.0.1 that nobody holds now, and whose `+ 10000` (Redis' cluster bus) is free too.
/// Never the same port twice in this process: a server started a moment ago may not have bound
/// its port yet, and the kernel may hand that port out again.
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if port < 55000 && !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            given.push(port);
            return port;
        }
    }
}

/// Polls `probe` until it answers, failing with its last error (and the server's log) after 30 s.
async fn until_up<T, F, Fut>(what: &str, server: &Server, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ProbeError>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("{what} never answered: {e}\n--- server log ---\n{}", server.log()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn assert_refused_certificate(r: Result<impl std::fmt::Debug, ProbeError>, says: &[&str]) {
    let e = r.expect_err("the probe must refuse the member's certificate");
    let msg = e.to_string();
    eprintln!("refused: {msg}");
    assert!(e.is_tls_verification(), "a verification failure: {e:?}");
    assert!(matches!(e, ProbeError::Tls { .. }), "{e:?}");
    for s in says {
        assert!(msg.contains(s), "the error says {s:?}: {msg}");
    }
    assert!(!msg.contains(PASSWORD), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

fn pg_bin(name: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (scripts/setup.d/30-local.sh installs it)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin").join(name)))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| panic!("{name} is not installed (scripts/setup.d/30-local.sh installs PostgreSQL)"))
}

/// PostgreSQL refuses to run as root: as root, the servers run as Debian's `postgres` user.
fn pg_user() -> Option<(u32, u32)> {
    let me = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&me.stdout).trim() != "0" {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd.lines().find(|l| l.starts_with("postgres:")).expect("the OS user postgres is missing (the postgresql package creates it)");
    let f: Vec<&str> = line.split(':').collect();
    Some((f[2].parse().unwrap(), f[3].parse().unwrap()))
}

fn as_pg_user(cmd: &mut Command, user: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// A PostgreSQL primary on 127.0.0.1 with `ssl = on` and only `hostssl` lines for TCP.
fn start_postgresql(dir: &Path, leaf: &LeafPem, ca: &CaPem) -> (Server, u16) {
    let user = pg_user();
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
    }
    let owned = |p: &Path| {
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
        }
    };
    let pwfile = dir.join("pwfile");
    write(&pwfile, 0o600, PASSWORD);
    owned(&pwfile);
    let data = dir.join("data");
    let out = as_pg_user(Command::new(pg_bin("initdb")).current_dir(dir), user)
        .args(["-U", "postgres", "--auth=scram-sha-256", "--no-sync", "-D"])
        .arg(&data)
        .arg(format!("--pwfile={}", pwfile.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "initdb: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    fs::remove_file(&pwfile).unwrap();
    for (file, mode, text) in [("server.crt", 0o644, &leaf.cert), ("server.key", 0o600, &leaf.key), ("ca.crt", 0o644, &ca.cert)] {
        write(&dir.join(file), mode, text);
        owned(&dir.join(file));
    }
    let port = free_port();
    let mut conf = OpenOptions::new().append(true).open(data.join("postgresql.conf")).unwrap();
    writeln!(
        conf,
        "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{d}'\nssl = on\nssl_cert_file = '{d}/server.crt'\n\
         ssl_key_file = '{d}/server.key'\nssl_ca_file = '{d}/ca.crt'\nssl_min_protocol_version = 'TLSv1.2'\nfsync = off",
        d = dir.display()
    )
    .unwrap();
    // TCP only with TLS: a plain connection matches no line.
    fs::write(data.join("pg_hba.conf"), "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n").unwrap();
    let log = dir.join("postgres.log");
    let log_file = OpenOptions::new().create(true).append(true).open(&log).unwrap();
    let child =
        as_pg_user(Command::new(pg_bin("postgres")).current_dir(dir), user).arg("-D").arg(&data).stdout(Stdio::null()).stderr(log_file).spawn().unwrap();
    // SIGINT: a fast shutdown, which removes the server's shared memory.
    (Server { child, signal: "-INT", log }, port)
}

#[tokio::test]
async fn postgresql_over_tls_verifies_the_ca_and_the_members_name_and_plain_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let service_ca = ca("FireCamp CA prod/db");
    let (server, port) = start_postgresql(dir.path(), &member_cert(&service_ca, PG_NAME), &service_ca);
    let target = |tls: Option<(&str, &str)>| {
        let t = Target::new("127.0.0.1", port).with_password(PASSWORD);
        match tls {
            Some((ca, name)) => t.with_tls(ca, name),
            None => t,
        }
    };

    // The right CA and name: the role, over TLS, though 127.0.0.1 is not in the certificate.
    let right = target(Some((&service_ca.cert, PG_NAME)));
    let role = until_up("PostgreSQL over TLS", &server, || postgresql::role(&right, "postgres")).await;
    assert_eq!(role, Role::Primary);
    assert_eq!(postgresql::replicas(&right, "postgres").await.unwrap(), vec![]);
    let client = postgresql::connect(&right, "postgres").await.unwrap();
    let row = client.query_one("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap();
    assert!(row.get::<_, bool>(0), "the session is encrypted");
    assert!(row.get::<_, String>(1).starts_with("TLSv1."), "{}", row.get::<_, String>(1));
    // Its Debug shows the address only.
    assert_eq!(format!("{right:?}"), format!("127.0.0.1:{port}"));

    // Another CA, of another name and of the same name (the service made again).
    let other = ca("FireCamp CA prod/other");
    assert_refused_certificate(postgresql::role(&target(Some((&other.cert, PG_NAME))), "postgres").await, &["not signed by the service's CA"]);
    let same_name = ca("FireCamp CA prod/db");
    assert_refused_certificate(postgresql::role(&target(Some((&same_name.cert, PG_NAME))), "postgres").await, &["not signed by the service's CA"]);

    // The right CA, the wrong member.
    let wrong = "pg-1.db.prod-firecamp.com";
    assert_refused_certificate(postgresql::role(&target(Some((&service_ca.cert, wrong))), "postgres").await, &["wrong server name", wrong, PG_NAME]);

    // No TLS: the server refuses, and says so.
    let plain = postgresql::role(&target(None), "postgres").await.expect_err("a plain connection must be refused");
    let msg = plain.to_string();
    eprintln!("plain: {msg}");
    assert!(matches!(plain, ProbeError::Failed { .. }), "{plain:?}");
    assert!(msg.contains("no pg_hba.conf entry") && msg.contains("no encryption"), "{msg}");

    // Settings that cannot work are refused before anything is sent.
    let bad = postgresql::role(&target(Some(("not a certificate", PG_NAME))), "postgres").await.unwrap_err();
    assert!(matches!(bad, ProbeError::Tls { verification: false, .. }) && bad.to_string().contains("not a usable PEM certificate"), "{bad:?}");
}

// ---------------------------------------------------------------------------------------------
// Redis

fn redis_server() -> String {
    ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("redis-server is not installed (scripts/setup.d/30-local.sh installs it)")
        .to_string()
}

/// A Redis member serving TLS only (`port 0`), its settings, password and key in 0600 files;
/// `extra` lines are added to its configuration.
fn start_redis(dir: &Path, leaf: &LeafPem, ca: &CaPem, extra: &str) -> (Server, u16) {
    let port = free_port();
    write(&dir.join("tls.crt"), 0o644, &leaf.cert);
    write(&dir.join("tls.key"), 0o600, &leaf.key);
    write(&dir.join("ca.crt"), 0o644, &ca.cert);
    let d = dir.display();
    let conf = dir.join("redis.conf");
    write(
        &conf,
        0o600,
        &format!(
            "bind 127.0.0.1\nport 0\ntls-port {port}\ntls-cert-file {d}/tls.crt\ntls-key-file {d}/tls.key\ntls-ca-cert-file {d}/ca.crt\n\
             tls-auth-clients no\ntls-replication yes\ntls-cluster yes\nrequirepass {PASSWORD}\nmasterauth {PASSWORD}\nsave \"\"\nappendonly no\n\
             dir {d}\nlogfile {d}/redis.log\n{extra}\n"
        ),
    );
    let child = Command::new(redis_server()).arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    (Server { child, signal: "-TERM", log: dir.join("redis.log") }, port)
}

/// One member with cluster mode on (so the cluster functions the callers use are reached too).
#[tokio::test]
async fn redis_over_tls_verifies_the_ca_and_the_members_name_and_plain_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let name = "rc-0.prod-firecamp.com";
    let service_ca = ca("FireCamp CA prod/rc");
    let (server, port) = start_redis(dir.path(), &member_cert(&service_ca, name), &service_ca, "cluster-enabled yes");
    let target = |tls: Option<(&str, &str)>| {
        let t = Target::new("127.0.0.1", port).with_password(PASSWORD);
        match tls {
            Some((ca, name)) => t.with_tls(ca, name),
            None => t,
        }
    };

    let right = target(Some((&service_ca.cert, name)));
    let role = until_up("Redis over TLS", &server, || redis::role(&right)).await;
    assert_eq!(role, Role::Primary);
    assert_eq!(redis::replication(&right).await.unwrap().get("role").map(String::as_str), Some("master"));
    let id = redis::cluster_myid(&right).await.unwrap();
    assert_eq!(id.len(), 40, "{id}");
    let ci = redis::cluster_info(&right).await.unwrap();
    assert_eq!(ci.known_nodes, 1);
    assert!(!ci.covers_all_slots());
    assert_eq!(redis::command(&right, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).await.unwrap(), ::redis::Value::Okay);
    // The password travels only inside TLS: a wrong one is the server's refusal, over TLS.
    let bad_password = Target::new("127.0.0.1", port).with_password("wrong").with_tls(service_ca.cert.clone(), name);
    let e = redis::role(&bad_password).await.unwrap_err();
    assert!(matches!(e, ProbeError::Failed { .. }) && e.to_string().to_lowercase().contains("authentication failed"), "{e:?}");

    let other = ca("FireCamp CA prod/other");
    assert_refused_certificate(redis::role(&target(Some((&other.cert, name)))).await, &["not signed by the service's CA"]);
    let same_name = ca("FireCamp CA prod/rc");
    assert_refused_certificate(redis::cluster_info(&target(Some((&same_name.cert, name)))).await, &["not signed by the service's CA"]);

    let wrong = "rc-1.prod-firecamp.com";
    assert_refused_certificate(redis::role(&target(Some((&service_ca.cert, wrong)))).await, &["wrong server name", wrong, name]);

    // No TLS on a TLS-only port: no answer but an error (the server drops the connection).
    let plain = redis::role(&target(None)).await.expect_err("a plain connection must be refused");
    eprintln!("plain: {plain}");
    assert!(matches!(plain, ProbeError::Failed { .. } | ProbeError::Timeout { .. }), "{plain:?}");
    assert!(!plain.to_string().contains(PASSWORD), "{plain}");
}

/// The switchover the manage service runs, over TLS: `FAILOVER TO` on the primary, the replica
/// replicating over TLS (`tls-replication yes`) and the old primary following the new one.
#[tokio::test]
async fn a_redis_switchover_over_tls() {
    let service_ca = ca("FireCamp CA prod/rd");
    let names = ["rd-0.prod-firecamp.com", "rd-1.prod-firecamp.com"];
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (s0, p0) = start_redis(dirs[0].path(), &member_cert(&service_ca, names[0]), &service_ca, "");
    let (s1, p1) = start_redis(dirs[1].path(), &member_cert(&service_ca, names[1]), &service_ca, &format!("replicaof 127.0.0.1 {p0}"));
    let t0 = Target::new("127.0.0.1", p0).with_password(PASSWORD).with_tls(service_ca.cert.clone(), names[0]);
    let t1 = Target::new("127.0.0.1", p1).with_password(PASSWORD).with_tls(service_ca.cert.clone(), names[1]);
    until_up("the primary", &s0, || redis::role(&t0)).await;
    // Linked on both sides: FAILOVER TO wants the replica `online` in the primary's view.
    until_up("the replica linked over TLS", &s1, || async {
        let (replica, primary) = (redis::replication(&t1).await?, redis::replication(&t0).await?);
        match (replica.get("master_link_status").map(String::as_str), primary.get("slave0")) {
            (Some("up"), Some(s)) if s.contains("state=online") => Ok(()),
            other => Err(ProbeError::Unexpected { addr: t1.addr(), answer: format!("{other:?}") }),
        }
    })
    .await;
    redis::command(&t0, &["SET", "kept", "before"]).await.unwrap();

    redis::failover_to(&t0, "127.0.0.1", p1, 10_000).await.unwrap();
    until_up("the roles swapped", &s1, || async {
        match (redis::role(&t1).await?, redis::role(&t0).await?) {
            (Role::Primary, Role::Replica) => Ok(()),
            other => Err(ProbeError::Unexpected { addr: t1.addr(), answer: format!("{other:?}") }),
        }
    })
    .await;
    assert_eq!(redis::command(&t1, &["GET", "kept"]).await.unwrap(), ::redis::Value::BulkString(b"before".to_vec()));
    until_up("the old primary linked to the new one over TLS", &s0, || async {
        let info = redis::replication(&t0).await?;
        match (info.get("master_port").map(String::as_str), info.get("master_link_status").map(String::as_str)) {
            (Some(p), Some("up")) if p == p1.to_string() => Ok(()),
            other => Err(ProbeError::Unexpected { addr: t0.addr(), answer: format!("{other:?}") }),
        }
    })
    .await;
}
