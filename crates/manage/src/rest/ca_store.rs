//! Where the REST API's CA lives: a Secret FireCamp makes once in its own namespace (the first
//! replica to start creates it; the others read it), and a ConfigMap of the same name with the
//! CA's certificate alone, for clients to trust. Neither is adopted when someone else made it.

use std::collections::BTreeMap;

use firecamp_pki::OffsetDateTime;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, PostParams};

use super::ca::{self, CA_CERT_KEY, CA_KEY_KEY, CaPem};

const COMPONENT: &str = "app.kubernetes.io/component";
const COMPONENT_VALUE: &str = "manage-ca";

#[derive(Debug, thiserror::Error)]
pub enum CaStoreError {
    #[error("{kind} {namespace}/{name} exists and FireCamp did not create it (labels {managed}=firecamp and {COMPONENT}={COMPONENT_VALUE} missing): delete it or give --tls-ca-secret another name", managed = firecamp_kube::labels::MANAGED_BY)]
    NotOurs { kind: &'static str, namespace: String, name: String },
    #[error("Secret {namespace}/{name} lacks {key}")]
    Missing { namespace: String, name: String, key: &'static str },
    #[error("Secret {namespace}/{name} was created by another replica and is gone again")]
    Vanished { namespace: String, name: String },
    #[error(transparent)]
    Ca(#[from] ca::CaError),
    #[error("{what} {namespace}/{name}: {source}")]
    Kube { what: &'static str, namespace: String, name: String, source: Box<kube::Error> },
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([(firecamp_kube::labels::MANAGED_BY.into(), "firecamp".into()), (COMPONENT.into(), COMPONENT_VALUE.into())])
}

fn ours(meta: &ObjectMeta) -> bool {
    let l = meta.labels.clone().unwrap_or_default();
    labels().iter().all(|(k, v)| l.get(k) == Some(v))
}

fn meta(namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), namespace: Some(namespace.into()), labels: Some(labels()), ..Default::default() }
}

/// The CA of Secret `namespace/name`, made and stored when there is none, and its certificate
/// published in the ConfigMap of the same name.
pub async fn ensure(client: &Client, namespace: &str, name: &str) -> Result<CaPem, CaStoreError> {
    let ca = ensure_secret(client, namespace, name).await?;
    publish(client, namespace, name, &ca.cert).await?;
    Ok(ca)
}

async fn ensure_secret(client: &Client, namespace: &str, name: &str) -> Result<CaPem, CaStoreError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let kube = |what, source| CaStoreError::Kube { what, namespace: namespace.into(), name: name.into(), source: Box::new(source) };
    // Two replicas starting together: one creates, the other reads what it created.
    for _ in 0..2 {
        if let Some(s) = api.get_opt(name).await.map_err(|e| kube("reading Secret", e))? {
            return from_secret(&s, namespace, name);
        }
        let made = ca::new_ca(OffsetDateTime::now_utc())?;
        let data = BTreeMap::from([
            (CA_CERT_KEY.to_string(), ByteString(made.cert.clone().into_bytes())),
            (CA_KEY_KEY.to_string(), ByteString(made.key.clone().into_bytes())),
        ]);
        let secret = Secret { metadata: meta(namespace, name), data: Some(data), type_: Some("Opaque".into()), immutable: Some(true), ..Default::default() };
        match api.create(&PostParams::default(), &secret).await {
            Ok(_) => {
                tracing::info!(%namespace, %name, "made the REST API's CA");
                return Ok(made);
            }
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(kube("creating Secret", e)),
        }
    }
    Err(CaStoreError::Vanished { namespace: namespace.into(), name: name.into() })
}

fn from_secret(s: &Secret, namespace: &str, name: &str) -> Result<CaPem, CaStoreError> {
    if !ours(&s.metadata) {
        return Err(CaStoreError::NotOurs { kind: "Secret", namespace: namespace.into(), name: name.into() });
    }
    let data = s.data.clone().unwrap_or_default();
    let get = |key: &'static str| {
        data.get(key).map(|b| String::from_utf8_lossy(&b.0).into_owned()).ok_or_else(|| CaStoreError::Missing {
            namespace: namespace.into(),
            name: name.into(),
            key,
        })
    };
    let ca = CaPem { cert: get(CA_CERT_KEY)?, key: get(CA_KEY_KEY)? };
    ca::check(&ca, &format!("Secret {namespace}/{name}"))?;
    Ok(ca)
}

/// The ConfigMap clients read the CA from; written only when it differs.
async fn publish(client: &Client, namespace: &str, name: &str, cert: &str) -> Result<(), CaStoreError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let kube = |what, source| CaStoreError::Kube { what, namespace: namespace.into(), name: name.into(), source: Box::new(source) };
    let data = BTreeMap::from([(CA_CERT_KEY.to_string(), cert.to_string())]);
    match api.get_opt(name).await.map_err(|e| kube("reading ConfigMap", e))? {
        Some(cm) if !ours(&cm.metadata) => Err(CaStoreError::NotOurs { kind: "ConfigMap", namespace: namespace.into(), name: name.into() }),
        Some(cm) if cm.data.as_ref() == Some(&data) => Ok(()),
        Some(mut cm) => {
            cm.data = Some(data);
            api.replace(name, &PostParams::default(), &cm).await.map(|_| ()).or_else(|e| match e {
                // Another replica wrote it first: the same CA, from the same Secret.
                kube::Error::Api(ref r) if r.code == 409 => Ok(()),
                e => Err(kube("updating ConfigMap", e)),
            })
        }
        None => {
            let cm = ConfigMap { metadata: meta(namespace, name), data: Some(data), ..Default::default() };
            api.create(&PostParams::default(), &cm).await.map(|_| ()).or_else(|e| match e {
                kube::Error::Api(ref r) if r.code == 409 => Ok(()),
                e => Err(kube("creating ConfigMap", e)),
            })
        }
    }
}
