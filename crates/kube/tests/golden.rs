//! Golden files of every object FireCamp renders, per engine and mode. A change to the output
//! shows as a reviewable diff of tests/golden/*.yaml. To accept a change:
//!     UPDATE_GOLDEN=1 cargo test -p firecamp-kube --test golden

mod common;

use std::path::PathBuf;

use firecamp_kube::{Secrets, build, objects};

#[test]
fn rendered_objects_match_the_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut stale = Vec::new();
    for (file, name, spec, ips) in common::cases() {
        let plan = common::plan_of(name, &spec, &ips);
        let yaml = objects::to_yaml(&build(&plan, &Secrets::Redacted)).unwrap();
        let path = dir.join(format!("{file}.yaml"));
        if update {
            std::fs::write(&path, &yaml).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(yaml.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(stale.is_empty(), "rendered objects differ from {stale:?}; review and run with UPDATE_GOLDEN=1 to accept");
}
