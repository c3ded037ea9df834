//! FireCamp's own metrics in Prometheus' text format (docs/monitoring.md): what every server of
//! the API (the local runtime, the manage service) says of its services, rendered from the same
//! [`Service`] views the API returns, so the figures and `service list` agree; its operations'
//! counters ([`Operations`]) and its requests to AWS ([`aws_requests`]).

use std::fmt::Write;

mod operations;
pub use operations::Operations;

use crate::{Phase, Role, Service};

/// Prometheus' text format, one metric family after another.
#[derive(Default)]
pub struct Text(String);

impl Text {
    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    /// One sample; label values are escaped as the format asks.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.0.push_str(name);
        if !labels.is_empty() {
            let body: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            let _ = write!(self.0, "{{{}}}", body.join(","));
        }
        let _ = writeln!(self.0, " {value}");
        self
    }

    pub fn finish(self) -> String {
        self.0
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// An HTTP method as a label value: a fixed set, so that odd methods cannot grow the metrics
/// without bound.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

/// One sample of a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// The samples of a scrape in Prometheus' text format (comments and lines it cannot read are
/// skipped; a timestamp after the value is ignored).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (series, rest) = match line.find('{') {
        Some(open) => {
            let close = open + line[open..].rfind('}')?;
            (&line[..close + 1], &line[close + 1..])
        }
        None => line.split_at(line.find(' ')?),
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, body)) => (name, labels_of(body.strip_suffix('}')?)?),
        None => (series, Vec::new()),
    };
    Some(Sample { name: name.to_string(), labels, value })
}

/// `a="x",b="y\"z"` → pairs, with the format's escapes undone.
fn labels_of(body: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if chars.next()? != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                c => value.push(c),
            }
        }
        out.push((key.trim().to_string(), value));
    }
}

/// Requests sent to AWS, as `firecamp_aws::call` counts them: ((service, operation, outcome),
/// requests).
pub fn aws_requests(out: &mut Text, rows: &[((&str, &str, &str), u64)]) {
    out.family(
        "firecamp_aws_requests_total",
        "counter",
        "Requests sent to AWS by service, operation and outcome (ok; retryable: throttled or a transient fault, tried again within its budget; error).",
    );
    for ((service, operation, outcome), n) in rows {
        out.sample("firecamp_aws_requests_total", &[("service", service), ("operation", operation), ("outcome", outcome)], *n as f64);
    }
}

/// Every phase, so that a state-set gauge has a sample for each (1 for the current one).
pub const PHASES: [Phase; 7] = [Phase::Creating, Phase::Initializing, Phase::Active, Phase::Degraded, Phase::Stopped, Phase::Failed, Phase::Deleting];

/// The services' gauges: phase, members desired and ready, each member's readiness, the
/// primary (or leader). On Kubernetes each carries its namespace (services are named per
/// namespace); the local runtime has none.
pub fn services(out: &mut Text, services: &[(Option<&str>, &Service)]) {
    let labels = |ns: Option<&str>, s: &Service, more: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        let mut l: Vec<(&'static str, String)> = ns.map(|n| ("namespace", n.to_string())).into_iter().collect();
        l.push(("service", s.name.clone()));
        l.extend(more.iter().cloned());
        l
    };
    let gauge = |out: &mut Text, name: &str, l: Vec<(&'static str, String)>, v: f64| {
        let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
        out.sample(name, &l, v);
    };
    out.family("firecamp_service_info", "gauge", "A service of this runtime: its engine and version (always 1).");
    for (ns, s) in services {
        let more = [("engine", s.spec.engine.as_str().to_string()), ("version", s.spec.version.clone().unwrap_or_default())];
        gauge(out, "firecamp_service_info", labels(*ns, s, &more), 1.0);
    }
    out.family("firecamp_service_phase", "gauge", "The service's phase: 1 for the current one, 0 for the others.");
    for (ns, s) in services {
        for p in PHASES {
            gauge(out, "firecamp_service_phase", labels(*ns, s, &[("phase", p.as_str().to_string())]), if s.status.phase == p { 1.0 } else { 0.0 });
        }
    }
    out.family("firecamp_service_members_desired", "gauge", "Members the service's spec asks for.");
    for (ns, s) in services {
        gauge(out, "firecamp_service_members_desired", labels(*ns, s, &[]), s.spec.replicas as f64);
    }
    out.family("firecamp_service_members_ready", "gauge", "Members that answer through their engine's own protocol.");
    for (ns, s) in services {
        gauge(out, "firecamp_service_members_ready", labels(*ns, s, &[]), s.status.members.iter().filter(|m| m.ready).count() as f64);
    }
    out.family("firecamp_member_ready", "gauge", "1 when the member answers through its engine's own protocol, else 0.");
    for (ns, s) in services {
        for m in &s.status.members {
            gauge(out, "firecamp_member_ready", labels(*ns, s, &[("member", m.name.clone())]), if m.ready { 1.0 } else { 0.0 });
        }
    }
    out.family(
        "firecamp_service_primary",
        "gauge",
        "The member that is the service's primary (ZooKeeper: its leader), always 1; none while there is no primary.",
    );
    for (ns, s) in services {
        for m in s.status.members.iter().filter(|m| matches!(m.role, Role::Primary | Role::Leader)) {
            gauge(out, "firecamp_service_primary", labels(*ns, s, &[("member", m.name.clone())]), 1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemberStatus, ServiceStatus};

    fn service(name: &str, phase: Phase, members: &[(&str, Role, bool)]) -> Service {
        let spec = serde_json::from_value(
            serde_json::json!({"engine": "postgresql", "replicas": members.len(), "zones": ["local"], "volumes": {"data": {"size": "1Gi"}}}),
        )
        .unwrap();
        Service {
            name: name.into(),
            spec,
            status: ServiceStatus {
                phase,
                members: members
                    .iter()
                    .map(|(n, role, ready)| MemberStatus { name: n.to_string(), role: *role, ready: *ready, ..Default::default() })
                    .collect(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn renders_each_service_in_the_text_format() {
        let mut t = Text::default();
        let pg = service("pg", Phase::Degraded, &[("pg-0", Role::Primary, true), ("pg-1", Role::Replica, false)]);
        services(&mut t, &[(None, &pg), (Some("team-b"), &pg)]);
        let text = t.finish();
        for line in [
            "# TYPE firecamp_service_phase gauge",
            "firecamp_service_phase{service=\"pg\",phase=\"DEGRADED\"} 1",
            "firecamp_service_phase{service=\"pg\",phase=\"ACTIVE\"} 0",
            "firecamp_service_members_desired{service=\"pg\"} 2",
            "firecamp_service_members_ready{service=\"pg\"} 1",
            "firecamp_member_ready{service=\"pg\",member=\"pg-1\"} 0",
            "firecamp_service_primary{service=\"pg\",member=\"pg-0\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
        assert!(!text.contains("member=\"pg-1\"} 1"), "a replica is no primary");
        // The same name in a namespace is another service.
        assert!(text.lines().any(|l| l == "firecamp_service_primary{namespace=\"team-b\",service=\"pg\",member=\"pg-0\"} 1"), "{text}");
    }

    #[test]
    fn parses_what_it_renders_and_the_exporters_forms() {
        let mut t = Text::default();
        t.family("m", "gauge", "x").sample("m", &[("a", "x\"y,z}"), ("b", "")], 2.5).sample("n", &[], 1.0);
        let text = format!("{}jvm_memory_bytes_used{{area=\"heap\",}} 5.2197048E7\npg_up 1 1700000000000\nbad line\n", t.finish());
        let got = parse(&text);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!((got[0].name.as_str(), got[0].label("a"), got[0].label("b"), got[0].value), ("m", Some("x\"y,z}"), Some(""), 2.5));
        assert_eq!((got[1].name.as_str(), got[1].labels.len()), ("n", 0));
        assert_eq!((got[2].label("area"), got[2].value), (Some("heap"), 52197048.0));
        assert_eq!((got[3].name.as_str(), got[3].value), ("pg_up", 1.0));
    }

    #[test]
    fn label_values_are_escaped() {
        let mut t = Text::default();
        t.sample("m", &[("a", "x\"y\\z\nw")], 1.0);
        assert_eq!(t.finish(), "m{a=\"x\\\"y\\\\z\\nw\"} 1\n");
    }
}
