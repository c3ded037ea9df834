//! Kafka's own command-line tools (`org.apache.kafka.tools.*` from the installed jars) as a user
//! of a FireCamp Kafka service would run them: SASL SCRAM-SHA-512 over TLS with the service's CA and a
//! user's password from the Secret, written into a client properties file.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use super::Bed;

/// A client properties file for one login.
pub struct KafkaClient {
    dir: tempfile::TempDir,
}

impl Bed {
    /// The tools' login to service `name` as `user` with `password` (the Secret's, or not).
    pub fn kafka_client(&self, name: &str, user: &str, password: &str) -> KafkaClient {
        self.kafka_client_with(name, "SCRAM-SHA-512", "org.apache.kafka.common.security.scram.ScramLoginModule", user, password)
    }

    /// The same with another SASL mechanism and its login module (what FireCamp refuses).
    pub fn kafka_client_with(&self, name: &str, mechanism: &str, module: &str, user: &str, password: &str) -> KafkaClient {
        let dir = tempfile::tempdir().unwrap();
        let props = format!(
            "security.protocol=SASL_SSL\nsasl.mechanism={mechanism}\n\
             sasl.jaas.config={module} required username=\"{user}\" password=\"{password}\";\n\
             ssl.truststore.type=PEM\nssl.truststore.location={}\n",
            self.ca_path(name, &format!("{name}-0")).display()
        );
        std::fs::write(dir.path().join("client.properties"), props).unwrap();
        std::fs::write(dir.path().join("log4j2.properties"), "status = error\nrootLogger.level = ERROR\n").unwrap();
        KafkaClient { dir }
    }
}

impl KafkaClient {
    pub fn props(&self) -> PathBuf {
        self.dir.path().join("client.properties")
    }

    pub fn command(&self, class: &str, args: &[&str]) -> Command {
        let lib = PathBuf::from(firecamp_local::config::KAFKA_DIR).join("lib");
        let mut c = Command::new("java");
        c.arg("-Xmx256m")
            .arg(format!("-Dlog4j2.configurationFile={}", self.dir.path().join("log4j2.properties").display()))
            .arg("-cp")
            .arg(format!("{}/*", lib.display()))
            .arg(format!("org.apache.kafka.tools.{class}"))
            .args(args);
        c
    }

    /// Runs a tool to its end (off the async runtime: the JVM takes a few seconds).
    pub async fn run(&self, class: &str, args: &[&str], stdin: Option<String>) -> Output {
        let mut c = self.command(class, args);
        c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
        tokio::task::spawn_blocking(move || {
            let mut child = c.spawn().expect("java runs");
            if let Some(input) = stdin {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
            }
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    }

    /// Starts a tool in the background, its stdout piped.
    pub fn spawn(&self, class: &str, args: &[&str]) -> Child {
        self.command(class, args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("java runs")
    }
}

/// Stdout and stderr of a tool, for messages.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}
