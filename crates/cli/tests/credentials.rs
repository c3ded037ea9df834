//! Issue #13 item 5 through the CLI: `firecamp service credentials` hands out the service's CA
//! and a connection line per member, and the line works as printed: psql verifies the member
//! against that CA and connects (a real PostgreSQL of the local runtime). No password is printed.
//! `firecamp service connect` runs psql itself, connected and logged in.

use std::process::Command;

use firecamp_api::Phase;

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn firecamp(state: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_firecamp"))
        .args(args)
        .env("FIRECAMP_LOCAL_DIR", state)
        .env_remove("FIRECAMP_TOKEN")
        .env_remove("FIRECAMP_SERVER")
        .output()
        .unwrap()
}

fn ok(o: std::process::Output) -> String {
    assert!(o.status.success(), "firecamp failed: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_print_the_ca_and_lines_that_connect_over_verified_tls() {
    let dir = TempDir(std::env::temp_dir().join(format!("firecamp-cli-credentials-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    // Members run as postgres, which must pass through the state directory.
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
    let state = dir.0.join("state");
    let mut cfg = firecamp_local::config::Config::new(&state);
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dns_listen = "127.0.0.1:0".parse().unwrap();
    cfg.cluster = "t-clicreds".into();
    cfg.ips = firecamp_local::ips::IpPool::parse("127.0.176.1/24").unwrap();
    let daemon = firecamp_local::start(cfg).await.expect("the local runtime starts");
    let server = format!("--server={}", daemon.url());
    let result = async {
        let (st, sv) = (state.clone(), server.clone());
        let created = tokio::task::spawn_blocking(move || {
            firecamp(&st, &["service", "create", "postgresql", "pg", "--replicas=1", "--zones=local", "--memory=256Mi", "--wait", "--timeout=180", &sv])
        })
        .await
        .unwrap();
        ok(created);
        let ca_file = dir.0.join("pg-ca.crt");
        let json = ok(firecamp(&state, &["service", "credentials", "pg", "--ca-file", ca_file.to_str().unwrap(), "-o", "json", &server]));
        let creds: serde_json::Value = serde_json::from_str(&json).unwrap();
        let ca = std::fs::read_to_string(&ca_file).unwrap();
        assert!(ca.contains("BEGIN CERTIFICATE") && creds["ca"] == ca.as_str(), "{json}");
        let password = std::fs::read_to_string(state.join("services/pg/pg-0/secret/superuser-password")).unwrap();
        assert!(!json.contains(&password) && !json.contains("PRIVATE KEY"), "a secret in the output: {json}");
        let line = creds["members"][0]["connect"].as_str().unwrap();
        assert!(line.contains("sslmode=verify-full") && line.contains(ca_file.to_str().unwrap()), "{line}");
        // The line as printed, with the password where a user keeps it.
        let out = Command::new("bash")
            .args(["-c", &format!("{line} -XAtc 'select ssl from pg_stat_ssl where pid = pg_backend_pid()'")])
            .env("PGPASSWORD", password.trim())
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "t", "{line}: {}", String::from_utf8_lossy(&out.stderr));
        // The primary endpoint's line: its name in the runtime's hosts block, and in the
        // member's certificate (verify-full).
        let endpoint = &creds["endpoints"][0];
        assert_eq!((endpoint["endpoint"].as_str(), endpoint["dnsName"].as_str()), (Some("primary"), Some("primary.pg.t-clicreds-firecamp.com")), "{json}");
        let line = endpoint["connect"].as_str().unwrap();
        let out = Command::new("bash").args(["-c", &format!("{line} -XAtc 'select pg_is_in_recovery()'")]).env("PGPASSWORD", password.trim()).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "f", "{line}: {}", String::from_utf8_lossy(&out.stderr));
        // `service connect`: psql on the primary over verified TLS, logged in with the password
        // the local runtime keeps (never on psql's command line: a 0600 passfile).
        let out = ok(firecamp(&state, &["service", "connect", "pg", &server, "--", "-XAtc", "select ssl from pg_stat_ssl where pid = pg_backend_pid()"]));
        assert_eq!(out.trim(), "t", "{out}");
        let bad = firecamp(&state, &["service", "connect", "pg", "--member", "pg-7", &server]);
        assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));
        assert!(String::from_utf8_lossy(&bad.stderr).contains("pg-0"), "the error names the members");
        let wrong = dir.0.join("wrong-password");
        std::fs::write(&wrong, "not-the-password\n").unwrap();
        let refused = firecamp(&state, &["service", "connect", "pg", "--password-file", wrong.to_str().unwrap(), &server, "--", "-XAtc", "select 1"]);
        assert!(!refused.status.success(), "a wrong password is refused by PostgreSQL");
        assert!(String::from_utf8_lossy(&refused.stderr).contains("password authentication failed"), "{}", String::from_utf8_lossy(&refused.stderr));
        let table = ok(firecamp(&state, &["service", "credentials", "pg", &server]));
        assert!(table.contains("BEGIN CERTIFICATE") && table.contains("pg-0: psql"), "{table}");
        let status = ok(firecamp(&state, &["service", "get", "pg", "-o", "json", &server]));
        assert_eq!(serde_json::from_str::<firecamp_api::Service>(&status).unwrap().status.phase, Phase::Active);
        ok(firecamp(&state, &["service", "delete", "pg", "--delete-volumes", "--wait", "--timeout=120", &server]));

        // Redis and ZooKeeper through `connect` too: redis-cli with REDISCLI_AUTH, zkCli with a
        // JAAS file and the client TLS properties.
        let (st, sv) = (state.clone(), server.clone());
        let created = tokio::task::spawn_blocking(move || {
            // No --zones: a local runtime's services default to the zone `local` (issue #19).
            ok(firecamp(&st, &["service", "create", "redis", "rd", "--replicas=1", "--memory=128Mi", "--wait", "--timeout=120", &sv]));
            firecamp(
                &st,
                &[
                    "service",
                    "create",
                    "zookeeper",
                    "zk",
                    "--replicas=1",
                    "--zones=local",
                    "--memory=512Mi",
                    "--option",
                    "heap=128Mi",
                    "--wait",
                    "--timeout=180",
                    &sv,
                ],
            )
        })
        .await
        .unwrap();
        ok(created);
        let out = ok(firecamp(&state, &["service", "connect", "rd", &server, "--", "SET", "connected", "yes"]));
        assert_eq!(out.trim(), "OK", "{out}");
        // zkCli prints some answers on stderr: both are read.
        let both = |o: std::process::Output| {
            assert!(o.status.success(), "zkCli failed: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
        };
        let out = both(firecamp(&state, &["service", "connect", "zk", &server, "--", "create", "/connected", "through-connect"]));
        assert!(out.contains("Created /connected"), "{out}");
        let out = both(firecamp(&state, &["service", "connect", "zk", &server, "--", "get", "/connected"]));
        assert!(out.contains("through-connect"), "{out}");
        for svc in ["rd", "zk"] {
            ok(firecamp(&state, &["service", "delete", svc, "--delete-volumes", "--wait", "--timeout=120", &server]));
        }
    };
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(result)).await;
    daemon.stop().await;
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}
