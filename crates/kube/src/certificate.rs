//! cert-manager's `Certificate` (`cert-manager.io/v1`), the fields FireCamp sets and reads. A
//! typed object of our own: no maintained crate carries cert-manager's types, and a handful of
//! fields is all a member's certificate needs.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "cert-manager.io/v1";
pub const KIND: &str = "Certificate";
/// The annotation cert-manager writes on every Secret it issues into.
pub const CERTIFICATE_NAME_ANNOTATION: &str = "cert-manager.io/certificate-name";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Certificate {
    pub metadata: ObjectMeta,
    pub spec: CertificateSpec,
    pub status: Option<CertificateStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSpec {
    pub secret_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_template: Option<SecretTemplate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<PrivateKey>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usages: Vec<String>,
    pub issuer_ref: IssuerRef,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretTemplate {
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivateKey {
    pub algorithm: String,
    pub size: u32,
    pub encoding: String,
    pub rotation_policy: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuerRef {
    pub group: String,
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateStatus {
    #[serde(default)]
    pub conditions: Vec<CertificateCondition>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub observed_generation: Option<i64>,
}

impl Certificate {
    /// Why the certificate is not issued yet (its `Ready` condition's message, else its reason),
    /// or `None` when it is Ready for its current spec.
    pub fn not_ready(&self) -> Option<String> {
        let ready = self.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
        match ready {
            // Ready for an older spec (new names): its Secret still holds the old certificate.
            Some(c) if c.status == "True" && c.observed_generation.is_some() && c.observed_generation < self.metadata.generation => {
                Some("being issued again for its changed names".into())
            }
            Some(c) if c.status == "True" => None,
            Some(c) => Some(c.message.clone().or_else(|| c.reason.clone()).unwrap_or_else(|| "not Ready".into())),
            None => Some("not issued yet".into()),
        }
    }
}

/// What the API serves: apiVersion and kind first, status only when there is one.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
    spec: CertificateSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<CertificateStatus>,
}

impl Serialize for Certificate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire { api_version: API_VERSION.into(), kind: KIND.into(), metadata: self.metadata.clone(), spec: self.spec.clone(), status: self.status.clone() }
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Certificate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        if w.api_version != API_VERSION || w.kind != KIND {
            return Err(serde::de::Error::custom(format!("expected {API_VERSION} {KIND}, got {} {}", w.api_version, w.kind)));
        }
        Ok(Certificate { metadata: w.metadata, spec: w.spec, status: w.status })
    }
}

impl k8s_openapi::Resource for Certificate {
    const API_VERSION: &'static str = API_VERSION;
    const GROUP: &'static str = "cert-manager.io";
    const KIND: &'static str = KIND;
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "certificates";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for Certificate {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_reads_back_and_refuses_other_kinds() {
        let c = Certificate {
            metadata: ObjectMeta { name: Some("pg-0-certificate".into()), ..Default::default() },
            spec: CertificateSpec { secret_name: "pg-0-certificate".into(), ..Default::default() },
            status: None,
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["apiVersion"], API_VERSION);
        assert_eq!(v["kind"], KIND);
        assert!(v.get("status").is_none());
        assert_eq!(serde_json::from_value::<Certificate>(v.clone()).unwrap(), c);
        let mut other = v;
        other["kind"] = "Issuer".into();
        assert!(serde_json::from_value::<Certificate>(other).unwrap_err().to_string().contains("got cert-manager.io/v1 Issuer"));
    }

    #[test]
    fn readiness_comes_from_the_ready_condition() {
        let with = |status: &str, message: Option<&str>| Certificate {
            metadata: ObjectMeta { generation: Some(1), ..Default::default() },
            status: Some(CertificateStatus {
                conditions: vec![CertificateCondition {
                    type_: "Ready".into(),
                    status: status.into(),
                    reason: Some("Pending".into()),
                    message: message.map(String::from),
                    observed_generation: Some(1),
                }],
            }),
            ..Default::default()
        };
        assert_eq!(with("True", None).not_ready(), None);
        assert_eq!(with("False", Some("Issuer bed-ca not found")).not_ready().as_deref(), Some("Issuer bed-ca not found"));
        assert_eq!(with("False", None).not_ready().as_deref(), Some("Pending"));
        assert_eq!(Certificate::default().not_ready().as_deref(), Some("not issued yet"));
        // Ready, but for the spec before the last change.
        let mut stale = with("True", None);
        stale.metadata.generation = Some(2);
        assert_eq!(stale.not_ready().as_deref(), Some("being issued again for its changed names"));
    }
}
