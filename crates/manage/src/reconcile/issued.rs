//! Members' certificates from a cert-manager issuer (`spec.tls.issuer`): one Certificate per
//! member (`firecamp_kube::tls::certificates`, applied with the service's other objects before
//! this runs), issued by cert-manager into a Secret of the same name; this assembles the
//! members' Secret `<service>-tls` from them, as the service's own CA would fill it, so pods,
//! probes and clients read the same files either way. Each issued Secret is made its
//! Certificate's, so that it goes with it.

use std::collections::BTreeMap;

use firecamp_catalog::ServicePlan;
use firecamp_kube::certificate::Certificate;
use firecamp_kube::tls::{Issued, mounted_from_issued};
use firecamp_kube::{Object, names};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use super::apply;
use crate::error::{Error, Result};

/// Why a certificate rotation is refused when the certificates are cert-manager's.
pub fn rotation_refused(issuer: &firecamp_core::spec::CertIssuer) -> String {
    format!(
        "the members' certificates come from cert-manager's {issuer}, which renews them: `cmctl renew` issues new ones now, and `firecamp service restart` puts them in use; a new CA is the issuer's to change"
    )
}

/// Whether the cluster serves cert-manager's `Certificate` (`cert-manager.io/v1`). Read once
/// when the manage service starts: a cluster without cert-manager gets no watch of it.
pub async fn cert_manager_served(client: &Client) -> bool {
    match client.list_api_group_resources("cert-manager.io/v1").await {
        Ok(list) => list.resources.iter().any(|r| r.name == "certificates"),
        Err(e) => {
            tracing::info!(error = %e, "no cert-manager.io/v1 API: services cannot name spec.tls.issuer");
            false
        }
    }
}

/// What a pass did: the members whose certificate or key changed in `<service>-tls`, and why
/// some are not issued yet (the StatefulSet waits for them).
pub struct Assembled {
    pub changed: Vec<String>,
    pub waiting: Option<String>,
}

/// Reads each member's Certificate and issued Secret (two GETs a member), claims the Secrets
/// issued for this service, and writes `<service>-tls` when what it should hold changed.
pub async fn assemble(client: &Client, field_manager: &str, plan: &ServicePlan, owner: &OwnerReference) -> Result<Assembled> {
    let ns = plan.cluster.namespace.as_str();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let certs: Api<Certificate> = Api::namespaced(client.clone(), ns);
    let mut issued = BTreeMap::new();
    let mut waiting = Vec::new();
    for m in &plan.members {
        let name = names::member_certificate(&m.member.name);
        let cert = certs.get_opt(&name).await.map_err(Error::kube("get", "Certificate", &name))?;
        let not_ready = match &cert {
            Some(c) => c.not_ready(),
            None => Some("its Certificate is not created yet".into()),
        };
        if let Some(why) = not_ready {
            waiting.push(format!("{} ({why})", m.member.name));
            continue;
        }
        // `ownership::check` refused this pass if a Secret of the name is a stranger's.
        let Some(secret) = secrets.get_opt(&name).await.map_err(Error::kube("get", "Secret", &name))? else {
            waiting.push(format!("{} (its Secret {name} is not written yet)", m.member.name));
            continue;
        };
        if let Some(c) = &cert {
            claim(&secrets, &secret, c).await?;
        }
        match Issued::from_data(&super::tls::secret_data(&secret)) {
            Some(i) => {
                issued.insert(m.member.name.to_string(), i);
            }
            None => waiting.push(format!("{} (Secret {name} lacks tls.crt, tls.key or ca.crt: the issuer must give its CA)", m.member.name)),
        }
    }
    let tls_name = names::tls_secret(&plan.name);
    let previous = secrets.get_opt(&tls_name).await.map_err(Error::kube("get", "Secret", &tls_name))?.map(|s| super::tls::secret_data(&s)).unwrap_or_default();
    let wanted = mounted_from_issued(plan, &issued, &previous);
    let changed: Vec<String> = plan
        .members
        .iter()
        .map(|m| m.member.name.as_str())
        .filter(|m| {
            let keys = [firecamp_catalog::tls::cert_file(m), firecamp_catalog::tls::key_file(m)];
            keys.iter().any(|k| wanted.get(k) != previous.get(k))
        })
        .map(String::from)
        .collect();
    if wanted != previous && !wanted.is_empty() {
        for mut s in firecamp_kube::tls::secrets(plan, Some(&wanted)) {
            s.data = s.string_data.take().map(|d| d.into_iter().map(|(k, v)| (k, ByteString(v.into_bytes()))).collect());
            apply::apply(client, field_manager, &Object::Secret(s), Some(owner)).await?;
        }
    }
    let waiting = (!waiting.is_empty()).then(|| format!("waiting for cert-manager to issue the certificates of {}", waiting.join(", ")));
    Ok(Assembled { changed, waiting })
}

/// Makes an issued Secret its Certificate's, as cert-manager does itself with
/// `--enable-certificate-owner-ref` (off by default: it leaves issued Secrets behind): the
/// Secret, and the key in it, then goes with its Certificate, which goes with the service or
/// with its member when the service shrinks.
async fn claim(api: &Api<Secret>, s: &Secret, cert: &Certificate) -> Result<()> {
    if s.metadata.owner_references.iter().flatten().any(|r| r.controller == Some(true)) {
        return Ok(());
    }
    let name = s.metadata.name.clone().unwrap_or_default();
    let owner = OwnerReference {
        api_version: firecamp_kube::certificate::API_VERSION.into(),
        kind: firecamp_kube::certificate::KIND.into(),
        name: cert.metadata.name.clone().unwrap_or_default(),
        uid: cert.metadata.uid.clone().ok_or(Error::MissingField("Certificate metadata.uid"))?,
        controller: Some(true),
        block_owner_deletion: None,
    };
    let patch = serde_json::json!({"metadata": {"ownerReferences": [owner]}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(Error::kube("claim", "Secret", &name))?;
    Ok(())
}
