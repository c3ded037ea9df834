//! kube-score (built from its Go module by `testbed/bed build`) over every object FireCamp
//! renders: each engine's service and the install manifests. A CRITICAL finding fails unless
//! docs/kube-score.md justifies that check, and the justification is listed here too.

use std::path::PathBuf;
use std::process::Command;

/// The checks whose findings are deliberate, with the reason docs/kube-score.md gives.
const JUSTIFIED: &[(&str, &str)] = &[
    ("CPU limit is not set", "CPU limits throttle databases at their peaks; requests reserve the CPU"),
    ("ImagePullPolicy is not set to Always", "pinned tags never change; IfNotPresent lets air-gapped nodes run preloaded images"),
    ("The container is running with a low user ID", "the engine images' own users (postgres/redis 999, zookeeper 1000) own the data"),
    ("The container running with a low group ID", "as above: fsGroup is the image user's group"),
    ("The pod does not have a matching NetworkPolicy", "NetworkPolicies are the security work's (issue 12, item 8)"),
    ("The services selector does not match any pods", "the client Service selects the role label the manage service sets at run time"),
];

fn kube_score() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testbed/bin/kube-score");
    assert!(p.exists(), "{} is missing: run testbed/bed build (it builds kube-score from its Go module)", p.display());
    p
}

fn render(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_firecamp")).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_rendered_object_passes_kube_score_or_its_finding_is_justified() {
    let zones = "--zones=us-east-1a,us-east-1b,us-east-1c";
    let mut yaml = String::new();
    for svc in [
        vec!["postgresql", "pg", "--replicas=3"],
        vec!["redis", "rd", "--replicas=3", "--option=mode=replication"],
        vec!["redis", "rc", "--replicas=6", "--option=mode=cluster", "--option=shards=3"],
        vec!["zookeeper", "zk", "--replicas=3"],
    ] {
        let mut args = vec!["service", "create"];
        args.extend(svc);
        args.extend([zones, "--cluster=prod", "--dry-run"]);
        yaml.push_str(&render(&args));
    }
    yaml.push_str(&render(&["install", "render", "--cluster=prod", zones]));
    let file = std::env::temp_dir().join(format!("firecamp-kube-score-{}.yaml", std::process::id()));
    std::fs::write(&file, &yaml).unwrap();
    let out = Command::new(kube_score()).args(["score", "-o", "ci"]).arg(&file).output().unwrap();
    let _ = std::fs::remove_file(&file);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.lines().any(|l| l.starts_with("[OK]")), "kube-score scored nothing: {report}{}", String::from_utf8_lossy(&out.stderr));
    let unjustified: Vec<&str> =
        report.lines().filter(|l| l.starts_with("[CRITICAL]")).filter(|l| !JUSTIFIED.iter().any(|(check, _)| l.ends_with(check))).collect();
    assert!(unjustified.is_empty(), "CRITICAL findings nobody justified:\n{}", unjustified.join("\n"));
}
