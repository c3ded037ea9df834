//! The service's TLS Secrets kept current (`firecamp_pki::bundle`): the CA made with the
//! service, a certificate issued for each new member or changed address, renewed in its last
//! 30 days. Read every reconcile (two GETs), written only when something changed, by server-side
//! apply like the service's other objects (`ownership::check` refused any it did not make).
//! An operation of kind `certificates` rotates them ([`rotate`]) before its members restart.

use std::collections::BTreeMap;

use firecamp_catalog::ServicePlan;
use firecamp_core::operation::{CaStage, Operation};
use firecamp_kube::{Object, names};
use firecamp_pki::rotate::{RotateError, Rotation};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Api, Client};

use super::apply;
use crate::error::{Error, Result};

/// A Secret's data as text (PEM and keys are).
pub(crate) fn secret_data(s: &Secret) -> BTreeMap<String, String> {
    s.data.clone().unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned())).collect()
}

/// The two Secrets' data merged (the bundle), and the members' Secret's alone.
async fn read(api: &Api<Secret>, plan: &ServicePlan) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    let mut existing = BTreeMap::new();
    let mut mounted = BTreeMap::new();
    for name in [names::ca_secret(&plan.name), names::tls_secret(&plan.name)] {
        if let Some(s) = api.get_opt(&name).await.map_err(Error::kube("get", "Secret", &name))? {
            let data = secret_data(&s);
            if name == names::tls_secret(&plan.name) {
                mounted = data.clone();
            }
            existing.extend(data);
        }
    }
    Ok((existing, mounted))
}

/// Writes the bundle into both Secrets, the CA's first: a members' Secret never names a CA
/// that is not stored.
async fn write(client: &Client, field_manager: &str, plan: &ServicePlan, owner: &OwnerReference, data: &BTreeMap<String, String>) -> Result<()> {
    for mut s in firecamp_kube::tls::secrets(plan, Some(data)) {
        s.data = s.string_data.take().map(|d| d.into_iter().map(|(k, v)| (k, ByteString(v.into_bytes()))).collect());
        apply::apply(client, field_manager, &Object::Secret(s), Some(owner)).await?;
    }
    Ok(())
}

fn store_name(plan: &ServicePlan) -> String {
    format!("Secret {}/{}", plan.cluster.namespace, names::ca_secret(&plan.name))
}

/// What changed: `CA` when the CA was made, and the members whose certificates were issued.
pub async fn ensure(client: &Client, field_manager: &str, plan: &ServicePlan, owner: &OwnerReference) -> Result<Vec<String>> {
    let ns = plan.cluster.namespace.as_str();
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let (existing, mounted) = read(&api, plan).await?;
    let bundle = firecamp_pki::bundle::renew(
        &existing,
        &firecamp_catalog::tls::ca_name(Some(ns), &plan.name),
        &firecamp_kube::tls::members_names(plan),
        now(),
        &store_name(plan),
    )?;
    let secrets = firecamp_kube::tls::secrets(plan, Some(&bundle.data));
    let wanted_mounted = secrets.get(1).and_then(|s| s.string_data.clone()).unwrap_or_default();
    if !bundle.new_ca && bundle.issued.is_empty() && wanted_mounted == mounted {
        return Ok(Vec::new());
    }
    write(client, field_manager, plan, owner, &bundle.data).await?;
    let mut changed: Vec<String> = bundle.new_ca.then(|| "CA".to_string()).into_iter().collect();
    changed.extend(bundle.issued);
    Ok(changed)
}

/// The rotation an operation of kind `certificates` asks for.
pub fn rotation(stage: Option<CaStage>) -> Rotation {
    match stage {
        None => Rotation::Members,
        Some(CaStage::Add) => Rotation::AddCa,
        Some(CaStage::Switch) => Rotation::SwitchCa,
        Some(CaStage::Drop) => Rotation::DropCa,
    }
}

/// Whether the stage can run on the bundle of service `name` now, read with `api` (the
/// requester's view: the CA's Secret alone holds what the check needs).
pub async fn check(api: &Api<Secret>, name: &str, stage: Option<CaStage>) -> std::result::Result<std::result::Result<(), String>, kube::Error> {
    let data: BTreeMap<String, String> = match api.get_opt(&names::ca_secret(name)).await? {
        Some(s) => secret_data(&s),
        None => BTreeMap::new(),
    };
    Ok(firecamp_pki::rotate::check(&data, rotation(stage)))
}

/// Applies the rotation of operation `op` to the Secrets, once (a second call for the same
/// operation changes nothing). `Ok(Err(why))`: the stage cannot run now; nothing changed.
pub async fn rotate(
    client: &Client,
    field_manager: &str,
    plan: &ServicePlan,
    owner: &OwnerReference,
    op: &Operation,
) -> Result<std::result::Result<Option<String>, String>> {
    // An operation written into the resource by hand meets the same refusal as the API's.
    if let Some(issuer) = &plan.spec.tls.issuer {
        return Ok(Err(super::issued::rotation_refused(issuer)));
    }
    let ns = plan.cluster.namespace.as_str();
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let (existing, _) = read(&api, plan).await?;
    let rotated = firecamp_pki::rotate::rotate(
        &existing,
        rotation(op.ca),
        &firecamp_catalog::tls::ca_name(Some(ns), &plan.name),
        &firecamp_kube::tls::members_names(plan),
        now(),
        &op.id,
        &store_name(plan),
    );
    let bundle = match rotated {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(Ok(None)),
        Err(RotateError::Order(why)) => return Ok(Err(why)),
        Err(RotateError::Pki(e)) => return Err(e.into()),
    };
    write(client, field_manager, plan, owner, &bundle.data).await?;
    let what = match op.ca {
        None => format!("new certificates for {}", bundle.issued.join(", ")),
        Some(CaStage::Add) => "a new CA, trusted next to the old one".into(),
        Some(CaStage::Switch) => format!("the new CA signs now; new certificates for {}", bundle.issued.join(", ")),
        Some(CaStage::Drop) => "the old CA is no longer trusted".into(),
    };
    Ok(Ok(Some(what)))
}

fn now() -> firecamp_pki::OffsetDateTime {
    firecamp_pki::OffsetDateTime::now_utc()
}

/// Whether an object of the build is one of the TLS Secrets, whose content is [`ensure`]'s.
pub fn is_tls_secret(plan: &ServicePlan, o: &Object) -> bool {
    matches!(o, Object::Secret(_)) && [names::ca_secret(&plan.name), names::tls_secret(&plan.name)].iter().any(|n| n == o.name())
}
