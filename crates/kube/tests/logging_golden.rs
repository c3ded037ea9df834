//! Golden file of the log agent (`firecamp install render`). To accept a change:
//!     UPDATE_GOLDEN=1 cargo test -p firecamp-kube --test logging_golden

use std::path::PathBuf;

use firecamp_kube::logging::{LogAgentParams, log_agent};

fn params() -> LogAgentParams {
    LogAgentParams {
        namespace: "firecamp-system".into(),
        cluster: "prod".into(),
        region: "us-east-1".into(),
        role_arn: Some("arn:aws:iam::123456789012:role/firecamp-log-agent-prod".into()),
    }
}

#[test]
fn log_agent_matches_the_golden_file() {
    let yaml = log_agent(&params()).to_yaml().unwrap();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/log-agent.yaml");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &yaml).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(want == yaml, "{} differs; review and run with UPDATE_GOLDEN=1 to accept", path.display());
}

#[test]
fn each_member_container_goes_to_its_members_stream_in_the_clusters_group() {
    let conf = firecamp_kube::logging::fluent_bit_conf(&params());
    assert!(conf.contains("log_group_name       firecamp-prod\n"), "{conf}");
    assert!(conf.contains("log_stream_template  $kubernetes['namespace_name']/$kubernetes['labels']['firecamp.dev/service']/$kubernetes['pod_name']\n"));
    assert!(conf.contains("region               us-east-1\n"));
    assert!(conf.contains("Regex  $kubernetes['labels']['firecamp.dev/cluster'] ^prod$\n"));
}

#[test]
fn host_logs_are_mounted_read_only_and_the_image_is_pinned() {
    let ds = log_agent(&params()).daemon_set;
    let pod = ds.spec.unwrap().template.spec.unwrap();
    let c = &pod.containers[0];
    let image = c.image.as_deref().unwrap();
    assert!(!image.ends_with(":latest") && image.rsplit_once(':').is_some_and(|(_, tag)| tag.chars().next().unwrap().is_ascii_digit()), "{image}");
    for m in c.volume_mounts.as_ref().unwrap() {
        if m.mount_path.starts_with("/var/log") {
            assert_eq!(m.read_only, Some(true), "{}", m.mount_path);
        }
    }
    assert_eq!(pod.node_selector.unwrap().get("firecamp-worker").map(String::as_str), Some("prod"));
}
