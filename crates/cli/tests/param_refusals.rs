//! Issue #12, items 2 and 5 through the CLI: an engine parameter that would run a command or
//! load code, a value out of range or not in its enum, and a reserved label or annotation prefix
//! exit 2 naming the field, before anything reaches a server (`create` plans locally, for the
//! REST API and `--kube` alike) or, for a `config` operation, when the server refuses it.

use std::process::{Command, Output};
use std::time::Duration;

/// A kubeconfig whose API server is a closed port: `--kube` gets a client, and any request
/// through it would fail with exit 1.
/// Written once per test binary: tests run in parallel, and a file rewritten under a CLI that is
/// reading it reads empty.
fn kubeconfig() -> std::path::PathBuf {
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("firecamp-params-kubeconfig-{}", std::process::id()));
        let text = "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"http://127.0.0.1:9\"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n";
        std::fs::write(&path, text).unwrap();
        path
    })
    .clone()
}

fn firecamp(args: &[&str]) -> Output {
    firecamp_in(None, args)
}

/// With the local runtime's state directory in FIRECAMP_LOCAL_DIR, where the CLI finds the
/// runtime's API token (no flag).
fn firecamp_in(local_dir: Option<&std::path::Path>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_firecamp"));
    c.args(args).env_remove("FIRECAMP_ZONES").env("KUBECONFIG", kubeconfig());
    if let Some(d) = local_dir {
        c.env("FIRECAMP_LOCAL_DIR", d);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const ZONES: &str = "--zones=us-east-1a,us-east-1b,us-east-1c";
/// A closed port: reaching it would exit 1, not 2.
const NOWHERE: &str = "--server=http://127.0.0.1:9";

fn refused(args: &[&str], want: &[&str]) {
    for mode in [&["--dry-run"][..], &[NOWHERE][..], &["--kube"][..]] {
        let all: Vec<&str> = args.iter().chain(mode).copied().collect();
        let o = firecamp(&all);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{all:?}: {e}");
        for w in want {
            assert!(e.contains(w), "{all:?}: want {w:?} in {e}");
        }
        assert!(o.stdout.is_empty(), "{all:?}: nothing printed or created");
    }
}

#[test]
fn create_refuses_keys_that_run_commands_or_load_code() {
    let cases: &[(&str, &str, &str)] = &[
        ("redis", "loadmodule=/tmp/evil.so", "spec.config.loadmodule: \"loadmodule\" is not an allowed Redis parameter"),
        ("redis", "enable-debug-command=yes", "spec.config.enable-debug-command: FireCamp sets enable-debug-command itself"),
        ("redis", "dbfilename=authorized_keys", "spec.config.dbfilename: \"dbfilename\" is not an allowed Redis parameter"),
        ("postgresql", "archive_command=sh -c id", "spec.config.archive_command: \"archive_command\" is not an allowed PostgreSQL parameter"),
        ("postgresql", "ssl_passphrase_command=sh -c id", "spec.config.ssl_passphrase_command"),
        ("postgresql", "include_dir=/tmp", "spec.config.include_dir"),
        ("zookeeper", "jute.maxbuffer=1", "spec.config.jute.maxbuffer: \"jute.maxbuffer\" is not an allowed ZooKeeper parameter"),
    ];
    for (engine, set, want) in cases {
        // What is allowed instead: the docs' list, or (for a key FireCamp sets) why.
        let instead = if want.contains("FireCamp sets") { "itself" } else { "docs/service-spec.md#" };
        refused(&["service", "create", engine, "svc", ZONES, &format!("--set={set}")], &[want, instead]);
    }
    refused(
        &["service", "create", "redis", "svc", ZONES, "--member-set=svc-1:loadmodule=/tmp/evil.so"],
        &["spec.memberConfig.svc-1.loadmodule: \"loadmodule\" is not an allowed Redis parameter"],
    );
}

#[test]
fn create_refuses_values_out_of_range_or_not_in_the_enum() {
    refused(&["service", "create", "redis", "svc", ZONES, "--set=hz=0"], &["spec.config.hz: \"0\" is not valid: hz takes an integer from 1 to 500"]);
    refused(&["service", "create", "redis", "svc", ZONES, "--set=appendfsync=sometimes"], &["spec.config.appendfsync", "one of `always`, `everysec`, `no`"]);
    refused(&["service", "create", "postgresql", "svc", ZONES, "--set=work_mem=lots"], &["spec.config.work_mem", "memory with a unit"]);
}

#[test]
fn create_refuses_clients_a_network_policy_cannot_hold() {
    refused(&["service", "create", "postgresql", "svc", ZONES, "--client-namespace=apps,kube-system"], &["spec.clients.namespaces[0]: not a namespace name"]);
    refused(&["service", "create", "postgresql", "svc", ZONES, "--client-cidr=10.0.0.0/40"], &["spec.clients.cidrs[0]", "prefix length"]);
    refused(
        &["service", "create", "postgresql", "svc", ZONES, "--client-cidr=10.1.0.0/16", "--no-network-policy"],
        &["spec.clients.networkPolicy", "nothing would enforce"],
    );
}

#[test]
fn create_refuses_reserved_label_and_annotation_prefixes() {
    refused(
        &["service", "create", "postgresql", "svc", ZONES, "--annotation=storageclass.kubernetes.io/is-default-class=true"],
        &["spec.annotations[\"storageclass.kubernetes.io/is-default-class\"]", "reserved"],
    );
    refused(
        &["service", "create", "postgresql", "svc", ZONES, "--label=x.firecamp.dev/service=other"],
        &["spec.labels[\"x.firecamp.dev/service\"]", "reserved"],
    );
}

#[test]
fn allowed_parameters_render_in_the_dry_run() {
    let o =
        firecamp(&["service", "create", "redis", "svc", ZONES, "--set=hz=20", "--set=appendfsync=always", "--member-set=svc-1:maxmemory=256mb", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("hz 20") && out.contains("appendfsync always") && out.contains("maxmemory 256mb"), "{out}");
}

/// A `config` operation against the local runtime (the same REST API as the manage service):
/// the server refuses it with 400, which the CLI turns into exit 2 naming the key.
#[tokio::test(flavor = "multi_thread")]
async fn config_operations_with_dangerous_keys_exit_2_and_change_nothing() {
    let cfg = firecamp_local::config::Config::new("/nonexistent");
    if let Err(e) = firecamp_local::servers::detect(&cfg, firecamp_core::EngineKind::Redis, None, true) {
        panic!("{e}\n(this test runs a Redis member: scripts/setup.d/30-local.sh installs it)");
    }
    let dir = std::env::temp_dir().join(format!("firecamp-cli-params-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = firecamp_local::config::Config::new(&dir);
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dns_listen = "127.0.0.1:0".parse().unwrap();
    cfg.cluster = "t-cliparams".into();
    cfg.ips = firecamp_local::ips::IpPool::parse("127.0.147.1/10").unwrap();
    let daemon = firecamp_local::start(cfg).await.expect("the local runtime starts");
    let server = format!("--server={}", daemon.url());
    let local = dir.clone();
    let run = move |args: Vec<String>| {
        let local = local.clone();
        tokio::task::spawn_blocking(move || firecamp_in(Some(&local), &args.iter().map(String::as_str).collect::<Vec<_>>()))
    };
    let a = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let result = async {
        let o = run(a(&[
            "service",
            "create",
            &server,
            "redis",
            "rd",
            "--zones=local",
            "--replicas=1",
            "--memory=128Mi",
            "--volume-size=1Gi",
            "--wait",
            "--timeout=60",
        ]))
        .await
        .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let conf = std::fs::read_to_string(dir.join("services/rd/rd-0/config/redis.conf")).unwrap();
        for (flag, want) in [
            ("--set=loadmodule=/tmp/evil.so", "spec.config.loadmodule"),
            ("--set=rename-command=CONFIG x", "spec.config.rename-command: FireCamp sets rename-command itself"),
            ("--set=maxmemory=lots", "spec.config.maxmemory: \"lots\" is not valid"),
            ("--member-set=rd-0:aclfile=/tmp/users.acl", "spec.memberConfig.rd-0.aclfile"),
        ] {
            let o = run(a(&["service", "config", &server, "rd", flag])).await.unwrap();
            assert_eq!(o.status.code(), Some(2), "{flag}: {}", stderr(&o));
            assert!(stderr(&o).contains(want), "{flag}: want {want:?} in {}", stderr(&o));
        }
        let o = run(a(&["service", "operations", &server, "rd", "-o", "json"])).await.unwrap();
        let ops: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(ops["items"], serde_json::json!([]), "no operation recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(std::fs::read_to_string(dir.join("services/rd/rd-0/config/redis.conf")).unwrap(), conf, "the member's file is unchanged");
    };
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(result)).await;
    daemon.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}
