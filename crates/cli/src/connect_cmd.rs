//! `firecamp service connect <svc> [--member M] [-- ARGS…]`: the engine's own client (psql,
//! redis-cli, ZooKeeper's zkCli) connected to a member over TLS verified against the service's
//! CA, logged in without the password ever reaching a command line: it goes into a 0600 file
//! (psql's passfile, zkCli's JAAS file) or the client's environment (redis-cli's
//! `REDISCLI_AUTH`), in a private directory removed when the client exits.

use std::path::{Path, PathBuf};
use std::process::Command;

use firecamp_api::{Role, Service};
use firecamp_catalog::{kafka, mariadb, postgresql, redis, zookeeper};
use firecamp_core::EngineKind;

use crate::backend::Backend;
use crate::error::CliError;

#[derive(clap::Args)]
pub struct ConnectArgs {
    pub name: String,
    /// The member to connect to; the primary (or leader) when absent.
    #[arg(long)]
    pub member: Option<String>,
    /// A file holding the password; else the client's own variable (PGPASSWORD, REDISCLI_AUTH)
    /// when set, else the service's Secret (`--kube`) or the local runtime's secret file.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Passed to the client after the connection options (e.g. `-- -c 'select 1'`, `-- PING`,
    /// `-- ls /`).
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// The member to connect to and its DNS name (which its certificate names).
fn member_of(s: &Service, wanted: Option<&str>) -> Result<(String, String), CliError> {
    let members = &s.status.members;
    let m = match wanted {
        Some(w) => members.iter().find(|m| m.name == w).ok_or_else(|| {
            let all: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
            CliError::Usage(format!("--member {w:?}: service {} has the members {}", s.name, all.join(", ")))
        })?,
        None => members
            .iter()
            .find(|m| matches!(m.role, Role::Primary | Role::Leader))
            .or_else(|| members.first())
            .ok_or_else(|| CliError::Failed(format!("service {} has no members yet", s.name)))?,
    };
    Ok((m.name.clone(), m.dns_name.clone()))
}

/// The login user and the key of its password where FireCamp keeps it.
fn login(engine: EngineKind) -> (&'static str, &'static str, Option<&'static str>) {
    match engine {
        EngineKind::Postgresql => (postgresql::SUPERUSER, postgresql::SUPERUSER_PASSWORD, Some("PGPASSWORD")),
        EngineKind::Redis => ("default", redis::PASSWORD, Some("REDISCLI_AUTH")),
        EngineKind::Zookeeper => (zookeeper::CLIENT_USER, zookeeper::CLIENT_PASSWORD, None),
        EngineKind::Kafka => (kafka::CLIENT_USER, kafka::CLIENT_PASSWORD, None),
        EngineKind::Mariadb => (mariadb::ADMIN_USER, mariadb::ADMIN_PASSWORD, None),
        EngineKind::Cassandra => (firecamp_catalog::cassandra::ADMIN_USER, firecamp_catalog::cassandra::ADMIN_PASSWORD, None),
    }
}

/// The password: `--password-file`, else (`None`) the client's variable is set and used as is,
/// else the Secret (`--kube`) or the local runtime's member file.
async fn password(client: &Backend, s: &Service, member: &str, a: &ConnectArgs) -> Result<Option<String>, CliError> {
    let (_, key, var) = login(s.spec.engine);
    if let Some(f) = &a.password_file {
        let text = std::fs::read_to_string(f).map_err(|e| CliError::Usage(format!("--password-file {}: {e}", f.display())))?;
        return Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()));
    }
    if let Some(v) = var.filter(|v| std::env::var_os(v).is_some()) {
        tracing::debug!(variable = v, "password from the client's own variable");
        return Ok(None);
    }
    let found = match client {
        Backend::Kube(_) => client.secret_value(&firecamp_kube::names::secret(&s.name), key).await?,
        Backend::Rest(c) => match crate::client::local_runtime(c.base()) {
            Some(cfg) => std::fs::read_to_string(cfg.service_dir(&s.name).join(member).join("secret").join(key)).ok(),
            None => None,
        },
    };
    found.map(|p| Some(p.trim_end_matches(['\n', '\r']).to_string())).ok_or_else(|| {
        CliError::Usage(format!(
            "no password for {}: give --password-file with key {key} of the Secret {}{}",
            s.name,
            firecamp_kube::names::secret(&s.name),
            var.map(|v| format!(", or set {v}")).unwrap_or_default()
        ))
    })
}

fn private_file(dir: &Path, name: &str, text: &str) -> Result<PathBuf, CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| CliError::Failed(format!("writing {}: {e}", path.display())))?;
    f.write_all(text.as_bytes()).map_err(|e| CliError::Failed(format!("writing {}: {e}", path.display())))?;
    Ok(path)
}

/// psql's passfile line: `:` and `\` escaped.
fn pgpass_line(host: &str, user: &str, password: &str) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
    format!("{}:{}:*:{}:{}\n", esc(host), postgresql::PORT, esc(user), esc(password))
}

/// The ZooKeeper jar and what its TLS client needs beside it, from Debian's packages.
fn zookeeper_classpath() -> Result<String, CliError> {
    let dir = Path::new("/usr/share/java");
    let jar = std::fs::read_dir(dir)
        .ok()
        .and_then(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| firecamp_local::servers::parse_zookeeper_jar(p).is_some()))
        .ok_or_else(|| CliError::Failed("ZooKeeper's client is not installed here (apt-get install zookeeper)".into()))?;
    let mut cp = jar.display().to_string();
    for extra in ["netty-codec", "netty-resolver", "netty-transport-native-unix-common", "slf4j-simple"] {
        let p = dir.join(format!("{extra}.jar"));
        if p.exists() {
            cp.push(':');
            cp.push_str(&p.display().to_string());
        }
    }
    Ok(cp)
}

/// The client's command line, for a member reached as `host`, with the CA in `ca`.
fn command(engine: EngineKind, dir: &Path, host: &str, ca: &Path, password: Option<&str>) -> Result<Command, CliError> {
    let (user, _, _) = login(engine);
    let mut cmd;
    match engine {
        EngineKind::Postgresql => {
            cmd = Command::new("psql");
            cmd.arg(format!("host={host} port={} user={user} dbname=postgres sslmode=verify-full sslrootcert={}", postgresql::PORT, ca.display()));
            if let Some(p) = password {
                cmd.env("PGPASSFILE", private_file(dir, "pgpass", &pgpass_line(host, user, p))?).env_remove("PGPASSWORD");
            }
        }
        EngineKind::Redis => {
            cmd = Command::new("redis-cli");
            cmd.args(["--tls", "--cacert"]).arg(ca).args(["-h", host, "-p", &redis::PORT.to_string()]);
            if let Some(p) = password {
                cmd.env("REDISCLI_AUTH", p);
            }
        }
        EngineKind::Zookeeper => {
            let p = password.unwrap_or_default();
            let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
            let jaas = format!(
                "Client {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  username=\"{}\"\n  password=\"{}\";\n}};\n",
                q(user),
                q(p)
            );
            let jaas = private_file(dir, "jaas.conf", &jaas)?;
            let props = format!(
                "zookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty\nzookeeper.client.secure=true\n\
                 zookeeper.ssl.trustStore.location={}\nzookeeper.ssl.trustStore.type=PEM\n",
                ca.display()
            );
            let props = private_file(dir, "client.properties", &props)?;
            cmd = Command::new("java");
            cmd.arg(format!("-Djava.security.auth.login.config={}", jaas.display()))
                .args(["-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", &zookeeper_classpath()?, "org.apache.zookeeper.ZooKeeperMain"])
                .arg("-client-configuration")
                .arg(props)
                .args(["-server", &format!("{host}:{}", zookeeper::CLIENT_PORT)]);
        }
        EngineKind::Mariadb => {
            // The password in a private option file, not on the client's command line; the
            // option file must be the first argument.
            let options = format!("[client]\npassword={}\n", password.unwrap_or_default());
            let options = private_file(dir, "client.cnf", &options)?;
            cmd = Command::new("mariadb");
            cmd.arg(format!("--defaults-extra-file={}", options.display()))
                .args(["--host", host, "--port", &mariadb::PORT.to_string(), "--user", user, "--ssl", "--ssl-verify-server-cert"])
                .arg(format!("--ssl-ca={}", ca.display()));
        }
        EngineKind::Kafka => {
            return Err(CliError::Usage(
                "Kafka has no interactive client; `firecamp service credentials` prints the client properties its tools and clients take".into(),
            ));
        }
        EngineKind::Cassandra => {
            return Err(CliError::Usage(
                "FireCamp does not run cqlsh yet (it is not packaged here); `firecamp service credentials` prints the cqlsh line to use".into(),
            ));
        }
    }
    Ok(cmd)
}

/// Runs the client with the terminal, and exits with its status.
pub async fn connect(client: &Backend, a: &ConnectArgs) -> Result<i32, CliError> {
    let s = client.get(&a.name).await?;
    let (member, host) = member_of(&s, a.member.as_deref())?;
    let ca = client.ca(&a.name).await?;
    let password = password(client, &s, &member, a).await?;
    let dir = tempfile::Builder::new().prefix("firecamp-connect-").tempdir().map_err(|e| CliError::Failed(format!("a private directory: {e}")))?;
    let ca_path = private_file(dir.path(), "ca.crt", &ca)?;
    let mut cmd = command(s.spec.engine, dir.path(), &host, &ca_path, password.as_deref())?;
    cmd.args(&a.args);
    let program = cmd.get_program().to_string_lossy().into_owned();
    let status = tokio::task::spawn_blocking(move || cmd.status())
        .await
        .map_err(|e| CliError::Failed(format!("running {program}: {e}")))?
        .map_err(|e| CliError::Failed(format!("running {program} (is it installed?): {e}")))?;
    drop(dir);
    Ok(status.code().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passfile_line_escapes_its_separators() {
        assert_eq!(pgpass_line("pg-0.x", "postgres", r"a:b\c"), "pg-0.x:5432:*:postgres:a\\:b\\\\c\n");
    }

    #[test]
    fn no_password_reaches_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.crt");
        for engine in [EngineKind::Postgresql, EngineKind::Redis] {
            let cmd = command(engine, dir.path(), "m-0.x", &ca, Some("s3cret-Pw")).unwrap();
            let argv: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
            assert!(!argv.iter().any(|a| a.contains("s3cret-Pw")), "{engine}: {argv:?}");
            assert!(argv.iter().any(|a| a.contains("verify-full") || a == "--tls"), "{engine}: {argv:?}");
        }
        let pgpass = std::fs::metadata(dir.path().join("pgpass")).unwrap();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&pgpass.permissions()) & 0o777, 0o600);
    }
}
