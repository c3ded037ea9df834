//! Each member's ConfigMap (its rendered files) and the service's Secret (its passwords).

use std::collections::BTreeMap;

use firecamp_catalog::{MemberPlan, ServicePlan};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use crate::{labels, meta, names};

/// The service's passwords, or a stand-in that keeps them out of printed output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secrets {
    Values(BTreeMap<String, String>),
    /// Print a placeholder no engine accepts (start scripts want alphanumeric passwords).
    Redacted,
}

pub const REDACTED: &str = "<redacted: print with --show-secrets>";

/// The file that tells `member-init` the member's static IP.
pub const STATIC_IP_FILE: &str = "static-ip";

pub fn config_map(plan: &ServicePlan, m: &MemberPlan) -> ConfigMap {
    let mut data: BTreeMap<String, String> = m.files.iter().map(|f| (f.name.to_string(), f.content.clone())).collect();
    if let Some(ip) = m.member.static_ip {
        data.insert(STATIC_IP_FILE.into(), ip.to_string());
    }
    ConfigMap { metadata: meta::namespaced(plan, names::config_map(&m.member.name), labels::member(plan, m)), data: Some(data), ..Default::default() }
}

/// The Secret, when the engine has passwords.
pub fn secret(plan: &ServicePlan, secrets: &Secrets) -> Option<Secret> {
    if plan.secret_keys.is_empty() {
        return None;
    }
    let data = plan
        .secret_keys
        .iter()
        .map(|k| {
            let v = match secrets {
                Secrets::Values(v) => v.get(*k).cloned().unwrap_or_default(),
                Secrets::Redacted => REDACTED.to_string(),
            };
            (k.to_string(), v)
        })
        .collect();
    Some(Secret {
        metadata: meta::namespaced(plan, names::secret(&plan.name), labels::common(plan)),
        type_: Some("Opaque".into()),
        string_data: Some(data),
        ..Default::default()
    })
}
