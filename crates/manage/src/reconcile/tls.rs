//! The service's TLS Secrets kept current (`firecamp_pki::bundle`): the CA made with the
//! service, a certificate issued for each new member or changed address, renewed in its last
//! 30 days. Read every reconcile (two GETs), written only when something changed, by server-side
//! apply like the service's other objects (`ownership::check` refused any it did not make).

use std::collections::BTreeMap;

use firecamp_catalog::ServicePlan;
use firecamp_kube::{Object, names};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Api, Client};

use super::apply;
use crate::error::{Error, Result};

/// What changed: `CA` when the CA was made, and the members whose certificates were issued.
pub async fn ensure(client: &Client, field_manager: &str, plan: &ServicePlan, owner: &OwnerReference) -> Result<Vec<String>> {
    let ns = plan.cluster.namespace.as_str();
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut existing = BTreeMap::new();
    let mut mounted = BTreeMap::new();
    for name in [names::ca_secret(&plan.name), names::tls_secret(&plan.name)] {
        if let Some(s) = api.get_opt(&name).await.map_err(Error::kube("get", "Secret", &name))? {
            let data: BTreeMap<String, String> = s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned())).collect();
            if name == names::tls_secret(&plan.name) {
                mounted = data.clone();
            }
            existing.extend(data);
        }
    }
    let store = format!("Secret {ns}/{}", names::ca_secret(&plan.name));
    let bundle =
        firecamp_pki::bundle::renew(&existing, &firecamp_catalog::tls::ca_name(Some(ns), &plan.name), &firecamp_kube::tls::members_names(plan), now(), &store)?;
    let secrets = firecamp_kube::tls::secrets(plan, Some(&bundle.data));
    let wanted_mounted = secrets.get(1).and_then(|s| s.string_data.clone()).unwrap_or_default();
    if !bundle.new_ca && bundle.issued.is_empty() && wanted_mounted == mounted {
        return Ok(Vec::new());
    }
    // The CA first: a members' Secret never names a CA that is not stored.
    for mut s in secrets {
        s.data = s.string_data.take().map(|d| d.into_iter().map(|(k, v)| (k, ByteString(v.into_bytes()))).collect());
        apply::apply(client, field_manager, &Object::Secret(s), Some(owner)).await?;
    }
    let mut changed: Vec<String> = bundle.new_ca.then(|| "CA".to_string()).into_iter().collect();
    changed.extend(bundle.issued);
    Ok(changed)
}

fn now() -> firecamp_pki::OffsetDateTime {
    firecamp_pki::OffsetDateTime::now_utc()
}

/// Whether an object of the build is one of the TLS Secrets, whose content is [`ensure`]'s.
pub fn is_tls_secret(plan: &ServicePlan, o: &Object) -> bool {
    matches!(o, Object::Secret(_)) && [names::ca_secret(&plan.name), names::tls_secret(&plan.name)].iter().any(|n| n == o.name())
}
