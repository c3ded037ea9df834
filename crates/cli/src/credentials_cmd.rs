//! `firecamp service credentials <svc>`: what a client needs to connect over TLS: the service's
//! CA certificate and, per member, a connection line that verifies the member against it; and
//! where the password is kept. Passwords are never printed (they are read where they are kept,
//! by someone allowed to).

use std::path::Path;

use firecamp_api::Service;
use firecamp_catalog::{kafka, mariadb, postgresql, redis, zookeeper};
use firecamp_core::EngineKind;
use serde::Serialize;

use crate::args::Format;
use crate::backend::Backend;
use crate::error::CliError;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub service: String,
    pub engine: EngineKind,
    /// Where the CA's certificate was written (`--ca-file`), which the lines name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// The CA's certificate (PEM).
    pub ca: String,
    /// The user, and the Secret key (or, on the local runtime, the file in a member's secret
    /// directory) that holds its password.
    pub user: &'static str,
    pub password: String,
    /// The primary and replicas endpoints that have a DNS name: what applications should use.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointLine>,
    pub members: Vec<MemberLine>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointLine {
    pub endpoint: String,
    pub dns_name: String,
    pub connect: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberLine {
    pub member: String,
    pub dns_name: String,
    pub connect: String,
}

/// The connection line of one member, its certificate verified by `dns` against `ca`.
fn line(engine: EngineKind, dns: &str, ca: &str, user: &str) -> String {
    match engine {
        EngineKind::Postgresql => {
            format!("psql \"host={dns} port={} user={user} dbname=postgres sslmode=verify-full sslrootcert={ca}\"", postgresql::PORT)
        }
        EngineKind::Redis => format!("redis-cli --tls --cacert {ca} -h {dns} -p {} --askpass", redis::PORT),
        EngineKind::Zookeeper => format!(
            "zkCli.sh -server {dns}:{} with -Dzookeeper.client.secure=true \
             -Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty -Dzookeeper.ssl.trustStore.location={ca} \
             -Dzookeeper.ssl.trustStore.type=PEM and a JAAS Client section for user {user} (DIGEST-MD5)",
            zookeeper::CLIENT_PORT
        ),
        EngineKind::Kafka => format!(
            "bootstrap.servers={dns}:{} with security.protocol=SASL_SSL sasl.mechanism=SCRAM-SHA-512 ssl.truststore.type=PEM \
             ssl.truststore.location={ca} and a ScramLoginModule sasl.jaas.config for user {user}",
            kafka::CLIENT_PORT
        ),
        EngineKind::Mariadb => format!("mariadb --host {dns} --port {} --user {user} --ssl --ssl-verify-server-cert --ssl-ca={ca} -p", mariadb::PORT),
        EngineKind::Cassandra => format!("SSL_CERTFILE={ca} SSL_VALIDATE=true cqlsh --ssl -u {user} {dns} {}", firecamp_catalog::cassandra::CQL_PORT),
    }
}

/// The login users connect as, and the Secret key of its password.
fn login(engine: EngineKind) -> (&'static str, &'static str) {
    match engine {
        EngineKind::Postgresql => (postgresql::SUPERUSER, postgresql::SUPERUSER_PASSWORD),
        EngineKind::Redis => ("default", redis::PASSWORD),
        EngineKind::Zookeeper => (zookeeper::CLIENT_USER, zookeeper::CLIENT_PASSWORD),
        EngineKind::Kafka => (kafka::CLIENT_USER, kafka::CLIENT_PASSWORD),
        EngineKind::Mariadb => (mariadb::ADMIN_USER, mariadb::ADMIN_PASSWORD),
        EngineKind::Cassandra => (firecamp_catalog::cassandra::ADMIN_USER, firecamp_catalog::cassandra::ADMIN_PASSWORD),
    }
}

pub fn credentials_of(s: &Service, ca: String, ca_file: Option<&Path>) -> Credentials {
    let engine = s.spec.engine;
    let (user, key) = login(engine);
    let shown = ca_file.map(|p| p.display().to_string());
    let ca_ref = shown.clone().unwrap_or_else(|| "ca.crt".into());
    Credentials {
        service: s.name.clone(),
        engine,
        ca_file: shown,
        ca,
        user,
        password: format!(
            "key {key} of the Secret {}-credentials (kubectl get secret {0}-credentials -o jsonpath='{{.data.{key}}}' | base64 -d); \
             on the local runtime, <state>/services/{0}/<member>/secret/{key}",
            s.name
        ),
        endpoints: s
            .status
            .endpoints
            .iter()
            .filter_map(|e| {
                let dns = e.dns_name.clone()?;
                Some(EndpointLine { endpoint: e.role.clone(), connect: line(engine, &dns, &ca_ref, user), dns_name: dns })
            })
            .collect(),
        members: s
            .status
            .members
            .iter()
            .map(|m| MemberLine { member: m.name.clone(), dns_name: m.dns_name.clone(), connect: line(engine, &m.dns_name, &ca_ref, user) })
            .collect(),
    }
}

pub async fn credentials(client: &Backend, name: &str, ca_file: Option<&Path>, format: Format) -> Result<(), CliError> {
    let s = client.get(name).await?;
    let ca = client.ca(name).await?;
    if let Some(path) = ca_file {
        std::fs::write(path, &ca).map_err(|e| CliError::Failed(format!("writing --ca-file {}: {e}", path.display())))?;
    }
    let c = credentials_of(&s, ca, ca_file);
    crate::service_cmds::print_as(format, &c, || {
        let mut out = String::new();
        match &c.ca_file {
            Some(f) => out.push_str(&format!("CA certificate written to {f}\n")),
            None => out.push_str(&format!("CA certificate (save as ca.crt, or use --ca-file):\n{}\n", c.ca.trim_end())),
        }
        out.push_str(&format!("user: {}\npassword: {}\n", c.user, c.password));
        for e in &c.endpoints {
            out.push_str(&format!("{} endpoint: {}\n", e.endpoint, e.connect));
        }
        for m in &c.members {
            out.push_str(&format!("{}: {}\n", m.member, m.connect));
        }
        out
    })
}
