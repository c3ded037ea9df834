//! Each member's metrics in Prometheus' text format (docs/monitoring.md): PostgreSQL's through
//! postgres_exporter and Redis's through redis_exporter, each a second process beside the
//! server started by the member's `metrics.sh` and logged in as a monitoring user of its own;
//! ZooKeeper's through its own Prometheus provider, inside the server. A member has them when
//! its runtime has the exporter ([`crate::layout::MemberPaths::metrics`]): on Kubernetes
//! always (FireCamp's engine images carry them), locally when this machine has them.

use firecamp_core::{EngineKind, Member};

use crate::plan::{ConfigFile, RenderContext};
use crate::render::file;

/// The path every member's metrics are served at.
pub const PATH: &str = "/metrics";
/// The name of the metrics port (container, headless Service).
pub const PORT_NAME: &str = "metrics";
/// The script that runs a member's exporter, beside `start.sh`.
pub const SCRIPT: &str = "metrics.sh";
/// The Secret's key of the monitoring user's password (PostgreSQL, Redis).
pub const MONITOR_PASSWORD: &str = "monitor-password";

/// The port of the engine's metrics: the exporters' registered defaults, and 7000 for
/// ZooKeeper's provider (its documented example).
pub fn port(engine: EngineKind) -> u16 {
    match engine {
        EngineKind::Postgresql => 9187,
        EngineKind::Redis => 9121,
        EngineKind::Zookeeper => 7000,
        // Not served yet (docs/kafka.md); the JMX exporter's usual port.
        EngineKind::Kafka => 7071,
        // Not served yet (docs/mariadb.md); mysqld_exporter's registered port.
        EngineKind::Mariadb => 9104,
        // Not served yet (docs/cassandra.md); the JMX exporter's port beside the storage port.
        EngineKind::Cassandra => 7070,
    }
}

/// The address a member's metrics listen on: the first of its own (its static IP when it binds
/// one, else all interfaces).
pub fn listen_address(ctx: &RenderContext, m: &Member) -> String {
    ctx.listen_addresses(m).into_iter().next().unwrap_or_else(|| "0.0.0.0".into())
}

/// Where a scraper finds metrics served on `port` at a member's `address`.
pub fn url(address: &str, port: u16) -> String {
    format!("http://{address}:{port}{PATH}")
}

/// The member's `metrics.sh` (engines whose metrics come from an exporter process).
pub(crate) fn script(content: &str) -> ConfigFile {
    file(SCRIPT, content.to_string(), 0o755)
}

/// The `member.env` lines `metrics.sh` reads: the exporter and where it listens.
pub(crate) fn env(ctx: &RenderContext, m: &Member, exporter: &str) -> Vec<(&'static str, String)> {
    vec![("METRICS_EXPORTER", exporter.to_string()), ("METRICS_ADDRESS", format!("{}:{}", listen_address(ctx, m), port(ctx.spec.engine)))]
}
