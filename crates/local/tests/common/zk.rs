//! ZooKeeper's own client (zkCli, `org.apache.zookeeper.ZooKeeperMain` from the installed jars)
//! as a user of a FireCamp service would run it: over TLS with the client properties and the
//! service's CA, logged in with SASL through a JAAS file — or without one of those, to see it
//! refused.

use std::path::PathBuf;
use std::process::Command;

use super::Bed;

/// How zkCli connects.
#[derive(Debug, Clone, Default)]
pub struct ZkClient {
    /// Over TLS (`zookeeper.client.secure`, the Netty socket); plain TCP when false.
    pub tls: bool,
    /// The CA to trust (a PEM file); `None`: the JVM's own trust store, which does not hold it.
    pub ca: Option<PathBuf>,
    /// The SASL (DIGEST-MD5) user and password; `None`: no JAAS file, so no login.
    pub login: Option<(String, String)>,
}

impl ZkClient {
    /// Over TLS with `ca`, logged in as nobody.
    pub fn anonymous(ca: PathBuf) -> Self {
        ZkClient { tls: true, ca: Some(ca), login: None }
    }
}

impl Bed {
    /// zkCli for ZooKeeper service `name` as `user` (`client` or `super`), with the password of
    /// the service's Secret and its CA: what a user of the service is handed.
    pub fn zk_client(&self, name: &str, user: &str) -> ZkClient {
        let first = format!("{name}-0");
        let password = self.secret(name, &first, &format!("{user}-password"));
        ZkClient { tls: true, ca: Some(self.ca_path(name, &first)), login: Some((user.to_string(), password)) }
    }
}

/// The installed ZooKeeper jar and what its client needs beside the jar's manifest (netty-codec
/// and netty-resolver for the Netty socket TLS needs; slf4j-simple for its warnings, which say
/// why a connection failed).
fn classpath() -> String {
    let dir = std::path::Path::new("/usr/share/java");
    let jar = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| firecamp_local::servers::parse_zookeeper_jar(p).is_some())
        .expect("zookeeper jar");
    let mut cp = jar.display().to_string();
    for extra in ["slf4j-simple", "netty-codec", "netty-resolver", "netty-transport-native-unix-common"] {
        let p = dir.join(format!("{extra}.jar"));
        if p.exists() {
            cp.push(':');
            cp.push_str(&p.display().to_string());
        }
    }
    cp
}

/// Runs one zkCli command against `server` (`host:port`) as `client` says; its output (stdout
/// and stderr). At most a minute: a client that cannot connect gives up before.
pub fn zk_cli(server: &str, client: &ZkClient, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("timeout");
    cmd.args(["60", "java"]);
    if let Some((user, password)) = &client.login {
        let jaas = dir.path().join("jaas.conf");
        let text =
            format!("Client {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  username=\"{user}\"\n  password=\"{password}\";\n}};\n");
        std::fs::write(&jaas, text).unwrap();
        std::fs::set_permissions(&jaas, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        cmd.arg(format!("-Djava.security.auth.login.config={}", jaas.display()));
    }
    cmd.args(["-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", &classpath(), "org.apache.zookeeper.ZooKeeperMain"]);
    if client.tls {
        let mut props = String::from("zookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty\nzookeeper.client.secure=true\n");
        if let Some(ca) = &client.ca {
            props.push_str(&format!("zookeeper.ssl.trustStore.location={}\nzookeeper.ssl.trustStore.type=PEM\n", ca.display()));
        }
        let file = dir.path().join("client.properties");
        std::fs::write(&file, props).unwrap();
        cmd.arg("-client-configuration").arg(&file);
    }
    let out = cmd.args(["-server", server]).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// [`zk_cli`] off the async runtime's threads (the JVM takes a second or two to start).
pub async fn zk_cli_async(server: String, client: ZkClient, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || zk_cli(&server, &client, &args.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap()
}
