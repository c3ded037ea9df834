//! `firecamp install render --prometheus-operator`: the Prometheus Operator's objects
//! (`monitoring.coreos.com/v1`, as JSON: not typed here) that scrape FireCamp and its members and
//! load its alert rules (docs/monitoring.md).
//!
//! - a ServiceMonitor of the manage service's `/metrics`, with the Prometheus pod's own
//!   ServiceAccount token (RBAC: the `firecamp-metrics-reader` ClusterRole, bound by the
//!   administrator to Prometheus's ServiceAccount) over the REST API's TLS;
//! - a PodMonitor of every member's `metrics` port in every namespace, its series labelled with
//!   the namespace, service and member (the labels FireCamp's pods carry);
//! - a PrometheusRule holding `deploy/monitoring/alerts.yaml`.

use serde_json::{Value, json};

use crate::install::{self, ApiTls, InstallOptions};

/// The Prometheus Operator's API group and version.
pub const API_VERSION: &str = "monitoring.coreos.com/v1";
/// FireCamp's alert rules, as shipped (the PrometheusRule's spec is their `groups`).
pub const ALERT_RULES: &str = include_str!("../../../deploy/monitoring/alerts.yaml");

fn metadata(name: &str) -> Value {
    let (k, v) = firecamp_kube::network::MANAGE_POD_LABEL;
    json!({ "name": name, "namespace": install::NAMESPACE, "labels": { k: v } })
}

/// How Prometheus reaches the REST API: its scheme and, for HTTPS, the CA it verifies with.
fn api_tls(tls: &ApiTls) -> (&'static str, Option<Value>) {
    let server_name = format!("{}.{}.svc", install::NAME, install::NAMESPACE);
    let ca = match tls {
        ApiTls::InsecureHttp => return ("http", None),
        // The CA FireCamp made, published without its key.
        ApiTls::OwnCa => json!({ "configMap": { "name": install::CA_SECRET, "key": crate::rest::ca::CA_CERT_KEY } }),
        // cert-manager writes its issuer's CA beside the certificate; so must a Secret kept by
        // someone else (docs/monitoring.md).
        ApiTls::CertManager { .. } => json!({ "secret": { "name": install::TLS_SECRET, "key": "ca.crt" } }),
        ApiTls::Secret(name) => json!({ "secret": { "name": name, "key": "ca.crt" } }),
    };
    ("https", Some(json!({ "ca": ca, "serverName": server_name })))
}

pub fn service_monitor(o: &InstallOptions) -> Value {
    let (scheme, tls) = api_tls(&o.tls);
    let mut endpoint = json!({
        "port": "api",
        "path": crate::rest::METRICS_PATH,
        "scheme": scheme,
        "interval": "30s",
        "scrapeTimeout": "10s",
        // Prometheus's own token (the API server's audience), re-read as the kubelet rotates it.
        "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token",
        // The series' own `namespace` and `service` (the tenant's) win over the target's (the
        // manage service's), which would otherwise rename them `exported_*`.
        "honorLabels": true,
    });
    if let Some(tls) = tls {
        endpoint["tlsConfig"] = tls;
    }
    let (k, v) = firecamp_kube::network::MANAGE_POD_LABEL;
    json!({
        "apiVersion": API_VERSION,
        "kind": "ServiceMonitor",
        "metadata": metadata(install::NAME),
        "spec": {
            "selector": { "matchLabels": { k: v } },
            "namespaceSelector": { "matchNames": [install::NAMESPACE] },
            "endpoints": [endpoint],
        },
    })
}

/// A relabelling that copies a pod label to a series label.
fn copy_label(pod_label: &str, to: &str) -> Value {
    let meta = format!("__meta_kubernetes_pod_label_{}", pod_label.replace(['.', '/', '-'], "_"));
    json!({ "sourceLabels": [meta], "targetLabel": to, "action": "replace" })
}

pub fn pod_monitor(o: &InstallOptions) -> Value {
    use firecamp_kube::labels;
    let namespaces = match &o.watch_namespace {
        Some(ns) => json!({ "matchNames": [ns] }),
        None => json!({ "any": true }),
    };
    json!({
        "apiVersion": API_VERSION,
        "kind": "PodMonitor",
        "metadata": metadata("firecamp-members"),
        "spec": {
            "selector": { "matchLabels": { labels::MANAGED_BY: "firecamp" } },
            "namespaceSelector": namespaces,
            // The members' exporters and ZooKeeper's provider serve plain HTTP on the pod's
            // address; the service's NetworkPolicy must admit Prometheus (`spec.clients`).
            "podMetricsEndpoints": [{
                "port": firecamp_catalog::metrics::PORT_NAME,
                "path": firecamp_catalog::metrics::PATH,
                "interval": "30s",
                "scrapeTimeout": "10s",
                "relabelings": [
                    { "sourceLabels": ["__meta_kubernetes_namespace"], "targetLabel": "namespace", "action": "replace" },
                    copy_label(labels::SERVICE, "service"),
                    copy_label(labels::MEMBER, "member"),
                ],
            }],
        },
    })
}

/// The alert rules as a PrometheusRule; an error only if the shipped file stopped parsing (a
/// test keeps it parsing).
pub fn prometheus_rule() -> Result<Value, serde_saphyr::Error> {
    let rules: Value = serde_saphyr::from_str(ALERT_RULES)?;
    Ok(json!({
        "apiVersion": API_VERSION,
        "kind": "PrometheusRule",
        "metadata": metadata("firecamp"),
        "spec": { "groups": rules["groups"] },
    }))
}

/// The three objects, in apply order.
pub fn render(o: &InstallOptions) -> Result<Vec<Value>, serde_saphyr::Error> {
    Ok(vec![service_monitor(o), pod_monitor(o), prometheus_rule()?])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(tls: ApiTls, watch_namespace: Option<&str>) -> InstallOptions {
        InstallOptions {
            cluster: "c1".into(),
            image: "example/firecamp:1".into(),
            watch_namespace: watch_namespace.map(String::from),
            tls,
            ..Default::default()
        }
    }

    #[test]
    fn the_service_monitor_verifies_the_apis_certificate_and_sends_a_token() {
        let m = service_monitor(&options(ApiTls::OwnCa, None));
        let e = &m["spec"]["endpoints"][0];
        assert_eq!((e["scheme"].as_str(), e["path"].as_str()), (Some("https"), Some("/metrics")));
        assert_eq!(e["tlsConfig"]["ca"]["configMap"]["name"], install::CA_SECRET);
        assert_eq!(e["tlsConfig"]["serverName"], "firecamp-manage.firecamp-system.svc");
        assert!(e["tlsConfig"].get("insecureSkipVerify").is_none());
        assert!(e["bearerTokenFile"].as_str().unwrap().ends_with("/token"));
        assert_eq!(e["honorLabels"], true, "the series' namespace and service are the tenant's");
        let plain = service_monitor(&options(ApiTls::InsecureHttp, None));
        assert_eq!(plain["spec"]["endpoints"][0]["scheme"], "http");
        assert!(plain["spec"]["endpoints"][0].get("tlsConfig").is_none());
    }

    #[test]
    fn the_pod_monitor_follows_the_watched_namespaces_and_labels_series_by_member() {
        let all = pod_monitor(&options(ApiTls::OwnCa, None));
        assert_eq!(all["spec"]["namespaceSelector"]["any"], true);
        let one = pod_monitor(&options(ApiTls::OwnCa, Some("team-a")));
        assert_eq!(one["spec"]["namespaceSelector"]["matchNames"][0], "team-a");
        let targets: Vec<&str> =
            one["spec"]["podMetricsEndpoints"][0]["relabelings"].as_array().unwrap().iter().map(|r| r["targetLabel"].as_str().unwrap()).collect();
        assert_eq!(targets, ["namespace", "service", "member"]);
    }

    #[test]
    fn the_rule_holds_every_shipped_alert() {
        let rule = prometheus_rule().unwrap();
        let alerts: Vec<&str> =
            rule["spec"]["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()).map(|r| r["alert"].as_str().unwrap()).collect();
        assert!(alerts.contains(&"FireCampMemberDown") && alerts.contains(&"FireCampNoPrimary"), "{alerts:?}");
        assert_eq!(alerts.len(), ALERT_RULES.matches("- alert:").count());
    }
}
