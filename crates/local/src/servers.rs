//! The engine servers installed on this machine: where their executables are, which version
//! they are, and which catalog version that is. The runtime refuses what the catalog does not
//! support, and names the package to install when a server is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use firecamp_catalog::layout::MetricsTools;
use firecamp_catalog::version::server_matches;
use firecamp_catalog::{EngineVersion, engine};
use firecamp_core::EngineKind;

use crate::config::{BinDirs, CASSANDRA_DIR, Config, KAFKA_DIR, ZOOKEEPER_METRICS_DIR};
use crate::error::{LocalError, Result};

/// One installed server an engine's members can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The server's own version, e.g. `15.14`, `7.0.15`, `3.8.0`.
    pub server_version: String,
    /// The catalog version it is.
    pub catalog_version: &'static str,
    /// `bin_dir` of the catalog's layout: the executables the start script runs.
    pub bin_dir: String,
    /// The JVM engines' launchers (file name, script) the runtime writes into `bin_dir`: the
    /// start scripts run them as the engine's own scripts.
    pub launchers: Vec<(&'static str, String)>,
    /// What serves the members' metrics, when this machine has it (docs/monitoring.md).
    pub metrics: Option<MetricsTools>,
}

fn run_version(exe: &Path, arg: &str) -> Option<String> {
    let out = Command::new(exe).arg(arg).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)` → `15.14`.
pub fn parse_postgres_version(s: &str) -> Option<String> {
    s.split_whitespace().nth(2).map(str::to_string)
}

/// `Redis server v=7.0.15 sha=…` → `7.0.15`.
pub fn parse_redis_version(s: &str) -> Option<String> {
    s.split_whitespace().find_map(|w| w.strip_prefix("v=")).map(str::to_string)
}

/// `…/zookeeper-3.8.0.jar` → `3.8.0`.
pub fn parse_zookeeper_jar(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let v = name.strip_prefix("zookeeper-")?.strip_suffix(".jar")?;
    v.chars().next().filter(char::is_ascii_digit).map(|_| v.to_string())
}

fn on_path(exe: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(exe)).find(|p| p.is_file())
}

fn missing(what: &str, install: &str) -> LocalError {
    LocalError::Unavailable(format!("{what} is not installed on this machine; install it (Debian: apt-get install {install})"))
}

/// Picks the catalog version of `server_version`, checking it against the one asked for.
fn catalog_version(kind: EngineKind, server_version: &str, asked: Option<&str>) -> Result<&'static str> {
    let versions: &'static [EngineVersion] = engine(kind).versions();
    let Some(v) = versions.iter().find(|v| server_matches(v, server_version)) else {
        let supported: Vec<_> = versions.iter().map(|v| v.version).collect();
        return Err(LocalError::Unavailable(format!(
            "the installed {kind} server is version {server_version}, which FireCamp's catalog does not support (supported: {})",
            supported.join(", ")
        )));
    };
    match asked {
        Some(a) if a != v.version => Err(LocalError::BadRequest(format!(
            "{kind} {a} was asked for, but this machine has {kind} {server_version} (catalog version {}); ask for version {} or install {kind} {a}",
            v.version, v.version
        ))),
        _ => Ok(v.version),
    }
}

fn postgresql(dirs: &BinDirs, asked: Option<&str>) -> Result<Installed> {
    let candidates: Vec<PathBuf> = match &dirs.postgresql {
        Some(d) => vec![d.clone()],
        None => {
            let mut v: Vec<PathBuf> =
                std::fs::read_dir("/usr/lib/postgresql").map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect()).unwrap_or_default();
            v.sort();
            v.reverse();
            v
        }
    };
    let found: Vec<(PathBuf, String)> = candidates
        .into_iter()
        .filter(|d| d.join("postgres").is_file() && d.join("initdb").is_file())
        .filter_map(|d| run_version(&d.join("postgres"), "--version").and_then(|s| parse_postgres_version(&s)).map(|v| (d, v)))
        .collect();
    if found.is_empty() {
        return Err(match &dirs.postgresql {
            Some(d) => LocalError::Unavailable(format!("no PostgreSQL server (postgres, initdb) in {}", d.display())),
            None => missing("PostgreSQL (/usr/lib/postgresql/*/bin/postgres)", "postgresql"),
        });
    }
    // The asked version's installation, else the newest the catalog supports.
    let pick = found
        .iter()
        .find(|(_, v)| asked.is_none_or(|a| v.split('.').next() == Some(a)) && catalog_version(EngineKind::Postgresql, v, asked).is_ok())
        .unwrap_or(&found[0]);
    Ok(Installed {
        catalog_version: catalog_version(EngineKind::Postgresql, &pick.1, asked)?,
        server_version: pick.1.clone(),
        bin_dir: pick.0.display().to_string(),
        launchers: Vec::new(),
        metrics: exporter(dirs, &["prometheus-postgres-exporter", "postgres_exporter"]),
    })
}

fn redis(dirs: &BinDirs, asked: Option<&str>, cluster_mode: bool) -> Result<Installed> {
    let find = |exe: &str| match &dirs.redis {
        Some(d) => Some(d.join(exe)).filter(|p| p.is_file()),
        None => on_path(exe),
    };
    let where_ = || dirs.redis.as_ref().map(|d| format!(" in {}", d.display())).unwrap_or_default();
    let server = find("redis-server").ok_or_else(|| match &dirs.redis {
        Some(_) => LocalError::Unavailable(format!("redis-server is not installed{}", where_())),
        None => missing("redis-server", "redis-server"),
    })?;
    if cluster_mode && find("redis-cli").is_none() {
        return Err(LocalError::Unavailable(format!("redis-cli{} is needed to create a Redis Cluster (Debian: apt-get install redis-tools)", where_())));
    }
    let version = run_version(&server, "--version")
        .and_then(|s| parse_redis_version(&s))
        .ok_or_else(|| LocalError::Unavailable(format!("{} did not report its version", server.display())))?;
    Ok(Installed {
        catalog_version: catalog_version(EngineKind::Redis, &version, asked)?,
        server_version: version,
        bin_dir: server.parent().map(|p| p.display().to_string()).unwrap_or_default(),
        launchers: Vec::new(),
        metrics: exporter(dirs, &["prometheus-redis-exporter", "redis_exporter"]),
    })
}

fn zookeeper(cfg: &Config, asked: Option<&str>) -> Result<Installed> {
    let dir = cfg.bin_dirs.zookeeper.clone().unwrap_or_else(|| PathBuf::from("/usr/share/java"));
    // Debian ships zookeeper.jar with a versioned name (zookeeper-3.8.0.jar) beside it.
    let mut jars: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| parse_zookeeper_jar(p).is_some()).collect())
        .unwrap_or_default();
    jars.sort();
    let jar = jars.pop().ok_or_else(|| match &cfg.bin_dirs.zookeeper {
        Some(d) => LocalError::Unavailable(format!("no ZooKeeper server (zookeeper-<version>.jar) in {}", d.display())),
        None => missing("ZooKeeper (/usr/share/java/zookeeper-<version>.jar)", "zookeeper"),
    })?;
    if on_path("java").is_none() {
        return Err(missing("java, which ZooKeeper needs,", "default-jre-headless"));
    }
    let version = parse_zookeeper_jar(&jar).unwrap_or_default();
    let metrics_jars = zookeeper_metrics_jars(&cfg.bin_dirs.zookeeper_metrics.clone().unwrap_or_else(|| PathBuf::from(ZOOKEEPER_METRICS_DIR)));
    Ok(Installed {
        catalog_version: catalog_version(EngineKind::Zookeeper, &version, asked)?,
        server_version: version,
        bin_dir: cfg.bin_dir().join("zookeeper").display().to_string(),
        metrics: (!metrics_jars.is_empty()).then(MetricsTools::default),
        launchers: vec![("zkServer.sh", zookeeper_launcher(&jar, &metrics_jars))],
    })
}

/// `kafka_2.13-4.4.0.jar` → `4.4.0`.
pub fn parse_kafka_jar(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let v = name.strip_prefix("kafka_2.13-")?.strip_suffix(".jar")?;
    v.chars().next().filter(char::is_ascii_digit).map(|_| v.to_string())
}

/// Kafka from the jars `scripts/setup.d/30-local.sh` fetches from Maven Central into
/// [`KAFKA_DIR`]`/lib` (Debian has no Kafka package).
fn kafka(cfg: &Config, asked: Option<&str>) -> Result<Installed> {
    let lib = cfg.bin_dirs.kafka.clone().unwrap_or_else(|| PathBuf::from(KAFKA_DIR)).join("lib");
    let jar = std::fs::read_dir(&lib)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| parse_kafka_jar(p).is_some()))
        .ok()
        .flatten()
        .ok_or_else(|| {
            LocalError::Unavailable(format!(
                "Kafka is not installed on this machine: no kafka_2.13-<version>.jar in {}; scripts/setup.d/30-local.sh fetches it from Maven Central (scripts/kafka/pom.xml)",
                lib.display()
            ))
        })?;
    if on_path("java").is_none() {
        return Err(missing("java, which Kafka needs,", "default-jre-headless"));
    }
    let version = parse_kafka_jar(&jar).unwrap_or_default();
    Ok(Installed {
        catalog_version: catalog_version(EngineKind::Kafka, &version, asked)?,
        server_version: version,
        bin_dir: cfg.bin_dir().join("kafka").display().to_string(),
        launchers: kafka_launchers(&lib),
        metrics: None,
    })
}

/// `mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu …` → `10.11.19`.
pub fn parse_mariadb_version(s: &str) -> Option<String> {
    let v = s.split_whitespace().skip_while(|w| *w != "Ver").nth(1)?;
    let v = v.split('-').next()?;
    v.chars().next().filter(char::is_ascii_digit).map(|_| v.to_string())
}

/// MariaDB from Debian's `mariadb-server` (mariadbd in /usr/sbin, mariadb-install-db in
/// /usr/bin), run through launchers in the runtime's own bin directory so the start script
/// finds both in one place.
fn mariadb(cfg: &Config, asked: Option<&str>) -> Result<Installed> {
    let find = |exe: &str| on_path(exe).or_else(|| ["/usr/sbin", "/usr/bin"].iter().map(|d| Path::new(d).join(exe)).find(|p| p.is_file()));
    let (Some(server), Some(install)) = (find("mariadbd"), find("mariadb-install-db")) else {
        return Err(missing("MariaDB (mariadbd, mariadb-install-db)", "mariadb-server"));
    };
    let version = run_version(&server, "--version")
        .and_then(|s| parse_mariadb_version(&s))
        .ok_or_else(|| LocalError::Unavailable(format!("{} did not report its version", server.display())))?;
    let launcher = |exe: &Path| format!("#!/bin/bash\n# Written by the FireCamp local runtime.\nexec {} \"$@\"\n", exe.display());
    Ok(Installed {
        catalog_version: catalog_version(EngineKind::Mariadb, &version, asked)?,
        server_version: version,
        bin_dir: cfg.bin_dir().join("mariadb").display().to_string(),
        launchers: vec![("mariadbd", launcher(&server)), ("mariadb-install-db", launcher(&install))],
        metrics: None,
    })
}

/// `cassandra-all-5.0.6.jar` → `5.0.6`.
pub fn parse_cassandra_jar(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let v = name.strip_prefix("cassandra-all-")?.strip_suffix(".jar")?;
    v.chars().next().filter(char::is_ascii_digit).map(|_| v.to_string())
}

/// Cassandra from the jars `scripts/setup.d/30-local.sh` fetches from Maven Central into
/// [`CASSANDRA_DIR`]`/lib` (Debian has no Cassandra package).
fn cassandra(cfg: &Config, asked: Option<&str>) -> Result<Installed> {
    let lib = cfg.bin_dirs.cassandra.clone().unwrap_or_else(|| PathBuf::from(CASSANDRA_DIR)).join("lib");
    let jars: Vec<PathBuf> = std::fs::read_dir(&lib).map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
    let server = jars.iter().find(|p| parse_cassandra_jar(p).is_some());
    let jamm = jars.iter().find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("jamm-")));
    let (Some(server), Some(jamm)) = (server, jamm) else {
        return Err(LocalError::Unavailable(format!(
            "Cassandra is not installed on this machine: no cassandra-all-<version>.jar and jamm agent in {}; scripts/setup.d/30-local.sh fetches them from Maven Central (scripts/cassandra/pom.xml)",
            lib.display()
        )));
    };
    if on_path("java").is_none() {
        return Err(missing("java, which Cassandra needs,", "default-jre-headless"));
    }
    let version = parse_cassandra_jar(server).unwrap_or_default();
    Ok(Installed {
        catalog_version: catalog_version(EngineKind::Cassandra, &version, asked)?,
        server_version: version,
        bin_dir: cfg.bin_dir().join("cassandra").display().to_string(),
        launchers: vec![("cassandra-server", cassandra_launcher(&lib, jamm)), ("cassandra-nodetool", cassandra_nodetool(&lib))],
        metrics: None,
    })
}

/// The launcher the Cassandra start script runs as `cassandra-server @<jvm.args>`: Java with the
/// jars of `lib`, the jamm agent Cassandra measures memory with, the member's argfile (module
/// flags, GC) and its `CASSANDRA_JVM_FLAGS` (heap, config files, directories).
pub fn cassandra_launcher(lib: &Path, jamm: &Path) -> String {
    format!(
        r#"#!/bin/bash
# Written by the FireCamp local runtime: runs a Cassandra server (CassandraDaemon) from the jars
# in {lib}, with the member's JVM flags.
set -euo pipefail
exec java "$@" ${{CASSANDRA_JVM_FLAGS:-}} -javaagent:{jamm} -cp '{lib}/*' org.apache.cassandra.service.CassandraDaemon
"#,
        lib = lib.display(),
        jamm = jamm.display()
    )
}

/// The launcher the runtime runs nodetool with (`cassandra-nodetool <member config dir> -h <ip>
/// -p 7199 -u admin -pwf <file> <command>`): Java with the member's `jvm.args` (the module flags
/// Cassandra's classes need on Java 17, nodetool's too), its logging, and the jars of `lib`.
pub fn cassandra_nodetool(lib: &Path) -> String {
    format!(
        r#"#!/bin/bash
# Written by the FireCamp local runtime: runs Cassandra's nodetool (NodeTool) from the jars in
# {lib}; it speaks JMX to a member.
set -euo pipefail
config="$1"
shift
exec java "@$config/jvm.args" -Xmx256m -Dlogback.configurationFile="$config/logback.xml" -cp '{lib}/*' org.apache.cassandra.tools.NodeTool "$@"
"#,
        lib = lib.display()
    )
}

/// The launchers the Kafka start script runs: `kafka-server <server.properties>`, and
/// `kafka-java @<argfile>` for the storage tool (the main class and its arguments, SCRAM
/// passwords among them, are in the argument file, never in argv); both Java with the jars of
/// `lib` and the member's `KAFKA_JVM_FLAGS` (heap, JAAS file, logging), which start.sh exports.
pub fn kafka_launchers(lib: &Path) -> Vec<(&'static str, String)> {
    let launcher = |what: &str, class: &str| {
        format!(
            r#"#!/bin/bash
# Written by the FireCamp local runtime: runs {what} from the jars in
# {lib}, with the member's JVM flags.
set -euo pipefail
exec java ${{KAFKA_JVM_FLAGS:-}} -cp '{lib}/*' {class}"$@"
"#,
            lib = lib.display()
        )
    };
    vec![("kafka-server", launcher("Kafka's server (kafka.Kafka)", "kafka.Kafka ")), ("kafka-java", launcher("the main class its argument file names", ""))]
}

/// The first of `names` found as an executable (in `dirs.exporters`, else on PATH).
fn exporter(dirs: &BinDirs, names: &[&str]) -> Option<MetricsTools> {
    let found = names.iter().find_map(|n| match &dirs.exporters {
        Some(d) => Some(d.join(n)).filter(|p| p.is_file()),
        None => on_path(n),
    });
    found.map(|p| MetricsTools { exporter: p.display().to_string() })
}

/// The jars of ZooKeeper's Prometheus provider in `dir`, when the provider is among them.
fn zookeeper_metrics_jars(dir: &Path) -> Vec<PathBuf> {
    let mut jars: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "jar")).collect())
        .unwrap_or_default();
    jars.sort();
    let has_provider = jars.iter().any(|j| j.file_name().is_some_and(|n| n.to_string_lossy().starts_with("zookeeper-prometheus-metrics")));
    if has_provider { jars } else { Vec::new() }
}

/// Finds the installed server of `kind` that can run version `asked` (any supported one when
/// `None`).
pub fn detect(cfg: &Config, kind: EngineKind, asked: Option<&str>, redis_cluster: bool) -> Result<Installed> {
    match kind {
        EngineKind::Postgresql => postgresql(&cfg.bin_dirs, asked),
        EngineKind::Redis => redis(&cfg.bin_dirs, asked, redis_cluster),
        EngineKind::Zookeeper => zookeeper(cfg, asked),
        EngineKind::Kafka => kafka(cfg, asked),
        EngineKind::Mariadb => mariadb(cfg, asked),
        EngineKind::Cassandra => cassandra(cfg, asked),
    }
}

/// The ZooKeeper launcher the catalog's start script runs as `zkServer.sh start-foreground`:
/// Debian's own zkServer.sh ignores ZOOCFGDIR and logs nowhere, so the runtime runs the server
/// class itself with the member's java.env and logs to stderr (the member's log).
pub fn zookeeper_launcher(jar: &Path, metrics_jars: &[PathBuf]) -> String {
    let dir = jar.parent().map(|p| p.display().to_string()).unwrap_or_default();
    // ZooKeeper's Prometheus provider, when this machine has it (zoo.cfg then names it).
    let extra: String = metrics_jars.iter().map(|j| format!(":{}", j.display())).collect();
    format!(
        r#"#!/bin/bash
# Written by the FireCamp local runtime: runs a ZooKeeper server in the foreground from
# {jar}, with the member's java.env (heap, flags) and log lines on stderr.
set -euo pipefail
[ "${{1:-}}" = start-foreground ] || {{ echo "usage: $0 start-foreground <zoo.cfg>" >&2; exit 2; }}
ZK_SERVER_HEAP=512
SERVER_JVMFLAGS=""
[ -f "$ZOOCFGDIR/java.env" ] && . "$ZOOCFGDIR/java.env"
cp="{jar}{extra}"
# The jar's manifest misses netty-codec and netty-resolver, which TLS (the Netty connection
# factory, quorum TLS) needs; slf4j-simple logs to stderr.
for j in slf4j-simple netty-codec netty-resolver netty-transport-native-unix-common; do
  [ -f "{dir}/$j.jar" ] && cp="$cp:{dir}/$j.jar"
done
exec java -Xmx${{ZK_SERVER_HEAP}}m $SERVER_JVMFLAGS -Dorg.slf4j.simpleLogger.showDateTime=true \
  -Dzookeeper.admin.enableServer=false -cp "$cp" org.apache.zookeeper.server.quorum.QuorumPeerMain "$2"
"#,
        jar = jar.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_versions() {
        assert_eq!(parse_postgres_version("postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n").as_deref(), Some("15.14"));
        assert_eq!(parse_redis_version("Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0").as_deref(), Some("7.0.15"));
        assert_eq!(parse_zookeeper_jar(Path::new("/usr/share/java/zookeeper-3.8.0.jar")).as_deref(), Some("3.8.0"));
        assert_eq!(parse_zookeeper_jar(Path::new("/usr/share/java/zookeeper-jute.jar")), None);
        assert_eq!(parse_kafka_jar(Path::new("/x/lib/kafka_2.13-4.4.0.jar")).as_deref(), Some("4.4.0"));
        assert_eq!(parse_kafka_jar(Path::new("/x/lib/kafka-clients-4.4.0.jar")), None);
        let mariadbd = "mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)\n";
        assert_eq!(parse_mariadb_version(mariadbd).as_deref(), Some("10.11.19"));
        assert_eq!(catalog_version(EngineKind::Mariadb, "10.11.19", None).unwrap(), "10.11");
    }

    #[test]
    fn refuses_versions_the_catalog_does_not_have() {
        let e = catalog_version(EngineKind::Redis, "6.0.16", None).unwrap_err().to_string();
        assert!(e.contains("version 6.0.16, which FireCamp's catalog does not support (supported: 7.0, 7.2, 7.4)"), "{e}");
        let e = catalog_version(EngineKind::Postgresql, "15.14", Some("17")).unwrap_err().to_string();
        assert!(e.contains("postgresql 17 was asked for, but this machine has postgresql 15.14"), "{e}");
        assert_eq!(catalog_version(EngineKind::Zookeeper, "3.8.0", None).unwrap(), "3.8");
        assert_eq!(catalog_version(EngineKind::Kafka, "4.4.0", None).unwrap(), "4.4");
    }
}
