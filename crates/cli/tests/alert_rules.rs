//! FireCamp's Prometheus alert rules (deploy/monitoring/alerts.yaml, docs/monitoring.md) checked
//! and unit-tested by Prometheus' own promtool: every rule parses, and each alert fires on the
//! series that should raise it, with the labels and texts a user sees, and not before its time.

use std::path::PathBuf;
use std::process::Command;

fn promtool(args: &[&str]) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/monitoring");
    let out = Command::new("promtool")
        .args(args)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("promtool: {e} (Debian's prometheus package has it; scripts/setup.d/30-local.sh installs it)"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {}:\n{text}", args.join(" "));
    text
}

#[test]
fn the_alert_rules_parse_and_fire_on_the_series_that_should_raise_them() {
    let checked = promtool(&["check", "rules", "alerts.yaml"]);
    let rules = include_str!("../../../deploy/monitoring/alerts.yaml").matches("- alert:").count();
    assert!(rules >= 13, "{rules} alerts");
    assert!(checked.contains(&format!("SUCCESS: {rules} rules found")), "{checked}");
    let tested = promtool(&["test", "rules", "alerts.test.yaml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}
