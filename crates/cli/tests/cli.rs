//! The CLI as a user meets it: exit codes, messages, and what --dry-run prints.

use std::process::{Command, Output};

fn firecamp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firecamp")).args(args).env_remove("FIRECAMP_ZONES").output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const ZONES: &str = "--zones=us-east-1a,us-east-1b,us-east-1c";

#[test]
fn unknown_engine_is_a_usage_error_listing_the_engines() {
    let o = firecamp(&["service", "create", "mysql", "db", ZONES, "--dry-run"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown engine \"mysql\"; FireCamp's catalog has: postgresql, redis, zookeeper"), "{}", stderr(&o));
}

#[test]
fn invalid_spec_exits_2_naming_every_field() {
    let o = firecamp(&["service", "create", "zookeeper", "Zk", ZONES, "--replicas=4", "--volume-size=10GB", "--dry-run"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("name: must start with a lowercase letter"), "{e}");
    assert!(e.contains("spec.replicas: a ZooKeeper ensemble needs an odd number of members"), "{e}");
    assert!(e.contains("spec.volumes.data.size: \"10GB\" is not a quantity"), "{e}");
    assert!(o.stdout.is_empty(), "nothing is printed for a refused spec");
}

#[test]
fn zones_are_required() {
    let o = firecamp(&["service", "create", "postgresql", "pg", "--dry-run"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--zones is required"), "{}", stderr(&o));
}

#[test]
fn unknown_engine_option_names_the_allowed_ones() {
    let o = firecamp(&["service", "create", "redis", "r", ZONES, "--option=shard=3", "--dry-run"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("--option for redis: unknown field `shard`"), "{e}");
    assert!(e.contains("`shards`"), "{e}");
}

#[test]
fn redis_cluster_defaults_to_two_members_per_shard() {
    let o = firecamp(&["service", "create", "redis", "rc", ZONES, "--option=mode=cluster", "--option=shards=3", "--dry-run", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sts = list["items"].as_array().unwrap().iter().find(|i| i["kind"] == "StatefulSet").unwrap();
    assert_eq!(sts["spec"]["replicas"], 6);
}

#[test]
fn creating_without_a_manage_service_says_where_it_looked() {
    let o = firecamp(&["service", "create", "postgresql", "pg", ZONES, "--server", "http://127.0.0.1:9"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("cannot reach the manage service at http://127.0.0.1:9"), "{e}");
    assert!(e.contains("firecamp local up"), "{e}");
}

#[test]
fn passwords_are_printed_only_when_asked() {
    let redacted = firecamp(&["service", "create", "redis", "r", ZONES, "--dry-run"]);
    let text = String::from_utf8(redacted.stdout).unwrap();
    assert!(text.contains("password: \"<redacted: print with --show-secrets>\""), "{text}");
    let shown = firecamp(&["service", "create", "redis", "r", ZONES, "--dry-run", "--show-secrets", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let secret = list["items"].as_array().unwrap().iter().find(|i| i["kind"] == "Secret").unwrap();
    let pw = secret["stringData"]["password"].as_str().unwrap();
    assert_eq!(pw.len(), 32);
    assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));
}

#[test]
fn catalog_lists_pinned_versions() {
    let o = firecamp(&["catalog", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let entries: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let images: Vec<&str> = entries.as_array().unwrap().iter().map(|e| e["image"].as_str().unwrap()).collect();
    assert!(images.contains(&"docker.io/library/postgres:15.10-bookworm"));
    assert!(images.iter().all(|i| !i.ends_with(":latest") && i.contains(':')));
}

#[test]
fn install_render_refuses_values_that_would_reach_the_deployment_unchecked() {
    let base = ["install", "render", "--cluster=prod", "--zones=a,b,c"];
    for (flag, field) in [
        ("--image-registry=evil;rm", "--image-registry"),
        ("--aws-credentials-secret=../x", "--aws-credentials-secret"),
        ("--aws-endpoint-url=http://h:1/$(id)", "--aws-endpoint-url"),
        ("--aws-endpoint-url=file:///etc/passwd", "--aws-endpoint-url"),
    ] {
        let mut args = base.to_vec();
        args.push(flag);
        let o = firecamp(&args);
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", stderr(&o));
        assert!(stderr(&o).contains(field), "{flag}: {}", stderr(&o));
    }
    let ok = firecamp(&["install", "render", "--cluster=prod", "--zones=a,b,c", "--aws-credentials-secret=aws", "--aws-endpoint-url=http://10.250.0.1:5000"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
}
