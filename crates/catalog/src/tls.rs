//! Members' TLS: the service's CA and each member's certificate and key, as files in the
//! member's `tls_dir` under the names of the service's bundle (`firecamp_pki::bundle`): `ca.crt`,
//! `<member>.crt`, `<member>.key`. On Kubernetes they come from the Secret `<service>-tls`
//! (without the CA's key); locally the runtime writes them. Start scripts copy the member's key
//! into its private run directory, owned by the engine's user with mode 0600, as engines demand.

pub use firecamp_pki::bundle::{CA_CERT as CA_FILE, cert_key as cert_file, key_key as key_file};

/// The subject of a service's CA.
pub fn ca_name(namespace: Option<&str>, service: &str) -> String {
    match namespace {
        Some(ns) => format!("FireCamp CA {ns}/{service}"),
        None => format!("FireCamp CA {service}"),
    }
}
