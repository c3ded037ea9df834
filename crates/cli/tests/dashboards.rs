//! FireCamp's Grafana dashboards (deploy/monitoring/dashboards, docs/monitoring.md): each is a
//! dashboard Grafana imports — a unique uid, a Prometheus data source chosen by a variable,
//! panels on the 24-column grid without overlaps — and every query is PromQL that Prometheus'
//! own promtool accepts once Grafana's variables are filled in. (Their queries answering real
//! series is checked in crates/local/tests/metrics.rs, which renders two of them.)

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const DASHBOARDS: [&str; 4] = ["postgresql", "redis", "zookeeper", "firecamp"];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/monitoring/dashboards")
}

/// A query as Grafana sends it: variables filled in (All as a regex).
fn filled(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "1h")
        .replace("${namespace}", ".*")
        .replace("$namespace", ".*")
        .replace("${service}", "pg")
        .replace("$service", "pg")
        .replace("${member}", ".*")
        .replace("$member", ".*")
}

#[test]
fn every_dashboard_imports_and_every_query_parses() {
    let mut uids = BTreeSet::new();
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    let mut queries = 0;
    for name in DASHBOARDS {
        let path = dir().join(format!("{name}.json"));
        let d: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(uids.insert(d["uid"].as_str().unwrap().to_string()), "{name}: uid used twice");
        assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()), "{name}: no title");
        let vars: Vec<&Value> = d["templating"]["list"].as_array().unwrap().iter().collect();
        let source = vars.iter().find(|v| v["name"] == "datasource").unwrap_or_else(|| panic!("{name}: no datasource variable"));
        assert_eq!((source["type"].as_str(), source["query"].as_str()), (Some("datasource"), Some("prometheus")), "{name}");

        // Panels within the grid, none over another.
        let mut cells = BTreeSet::new();
        for p in d["panels"].as_array().unwrap() {
            let title = p["title"].as_str().unwrap_or("?");
            let g = &p["gridPos"];
            let (x, y, w, h) = (g["x"].as_u64().unwrap(), g["y"].as_u64().unwrap(), g["w"].as_u64().unwrap(), g["h"].as_u64().unwrap());
            assert!(w >= 1 && x + w <= 24 && h >= 1, "{name}/{title}: {g}");
            for cx in x..x + w {
                for cy in y..y + h {
                    assert!(cells.insert((cx, cy)), "{name}/{title} overlaps another panel at ({cx}, {cy})");
                }
            }
            if p["type"] == "row" {
                continue;
            }
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{name}/{title}: its data source is the variable's");
            let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{name}/{title}: no targets"));
            assert!(!targets.is_empty(), "{name}/{title}: no targets");
            for t in targets {
                let expr = t["expr"].as_str().unwrap_or_else(|| panic!("{name}/{title}: a target without expr"));
                queries += 1;
                rules.push_str(&format!("      - record: dashboard:{name}:{queries}\n        expr: {}\n", serde_json::to_string(&filled(expr)).unwrap()));
            }
        }
    }
    assert!(queries >= 40, "{queries} queries");
    let file = std::env::temp_dir().join(format!("firecamp-dashboard-queries-{}.yaml", std::process::id()));
    std::fs::write(&file, &rules).unwrap();
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("promtool: {e} (Debian's prometheus package has it; scripts/setup.d/30-local.sh installs it)"));
    let _ = std::fs::remove_file(&file);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool refused a dashboard query:\n{text}");
    assert!(text.contains(&format!("SUCCESS: {queries} rules found")), "{text}");
}
