# The local runtime's real-server tests (crates/local/tests, crates/probe/tests): PostgreSQL 15,
# Redis 7.0 (server and redis-cli), ZooKeeper 3.8 with a JRE, Kafka 4.4 and Cassandra 5.0 (Maven Central), MariaDB 10.11, and the metrics exporters
# (postgres_exporter, redis_exporter) and promtool from Debian 12's packages; ZooKeeper's
# Prometheus provider from Maven Central (docs/monitoring.md).
# Sourced by scripts/test.sh. Tests that need a server fail, loudly, when it is missing.
local_pkgs=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || local_pkgs+=(postgresql)
command -v redis-server >/dev/null || local_pkgs+=(redis-server)
command -v redis-cli >/dev/null || local_pkgs+=(redis-tools)
ls /usr/share/java/zookeeper-[0-9]*.jar >/dev/null 2>&1 || local_pkgs+=(zookeeper)
command -v java >/dev/null || local_pkgs+=(default-jre-headless)
# MariaDB 10.11: mariadbd, mariadb-install-db and the user mysql its members run as.
[ -x /usr/sbin/mariadbd ] && [ -x /usr/bin/mariadb-install-db ] || local_pkgs+=(mariadb-server)
[ -e /usr/share/java/slf4j-simple.jar ] || local_pkgs+=(libslf4j-java)
command -v prometheus-postgres-exporter >/dev/null || local_pkgs+=(prometheus-postgres-exporter)
command -v prometheus-redis-exporter >/dev/null || local_pkgs+=(prometheus-redis-exporter)
# promtool checks and unit-tests the alert rules (crates/cli/tests/alert_rules.rs).
command -v promtool >/dev/null || local_pkgs+=(prometheus)
if [ ${#local_pkgs[@]} -gt 0 ]; then
  echo "installing: ${local_pkgs[*]}"
  # The packages' own services must not start: members run under the local runtime only.
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; CLEANUP+=('rm -f /usr/sbin/policy-rc.d'); }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${local_pkgs[@]}" >/dev/null
fi
# ZooKeeper's Prometheus provider, its simpleclient jars and the servlet API (Jetty comes with
# Debian's ZooKeeper): fetched again only when the pom that names them changes.
zk_metrics=/usr/local/share/firecamp/zookeeper-metrics
zk_pom=scripts/zookeeper-metrics/pom.xml
if [ "$(cat "$zk_metrics/.pom.sha256" 2>/dev/null)" != "$(sha256sum < "$zk_pom")" ]; then
  echo "fetching ZooKeeper's Prometheus provider from Maven Central"
  rm -rf "$zk_metrics.partial" && mkdir -p "$zk_metrics.partial"
  mvn -q -B -f "$zk_pom" dependency:copy-dependencies -DoutputDirectory="$zk_metrics.partial"
  sha256sum < "$zk_pom" > "$zk_metrics.partial/.pom.sha256"
  rm -rf "$zk_metrics" && mv "$zk_metrics.partial" "$zk_metrics"
fi
# Engines Debian has no package of, from Maven Central: `maven_jars <name> <dir> <dest>` resolves
# <dir>/pom.xml (pinned versions, Maven's checksums enforced with -C) into <dest>/lib, checks every
# jar against <dir>/jars.sha256 (and that there is no other), and fetches again only when either
# file changes.
maven_jars() {
  local name=$1 src=$2 dest=$3 inputs
  inputs="$(cat "$src/pom.xml" "$src/jars.sha256" | sha256sum)"
  [ "$(cat "$dest/.inputs.sha256" 2>/dev/null)" = "$inputs" ] && return 0
  echo "fetching $name from Maven Central"
  rm -rf "$dest.partial" && mkdir -p "$dest.partial/lib"
  mvn -q -B -C -f "$src/pom.xml" dependency:copy-dependencies -DoutputDirectory="$dest.partial/lib"
  (cd "$dest.partial/lib" && sha256sum --quiet -c "$OLDPWD/$src/jars.sha256")
  [ "$(ls "$dest.partial/lib" | wc -l)" = "$(wc -l < "$src/jars.sha256")" ] || { echo "$name's jars are not the ones $src/jars.sha256 lists" >&2; exit 1; }
  echo "$inputs" > "$dest.partial/.inputs.sha256"
  rm -rf "$dest" && mv "$dest.partial" "$dest"
}
# Kafka 4.4 and Cassandra 5.0; their members run as the system users kafka and cassandra,
# created here.
kafka_dir=/usr/local/share/firecamp/kafka-4.4.0
maven_jars Kafka scripts/kafka "$kafka_dir"
id -u kafka >/dev/null 2>&1 || adduser --system --group --no-create-home --quiet kafka
cassandra_dir=/usr/local/share/firecamp/cassandra-5.0.6
maven_jars Cassandra scripts/cassandra "$cassandra_dir"
id -u cassandra >/dev/null 2>&1 || adduser --system --group --no-create-home --quiet cassandra
# A server the packages started anyway would hold no port of ours (members bind their own
# loopback IPs), so nothing else to stop. Report what the tests will run.
echo "PostgreSQL: $(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' ')"
echo "Redis: $(redis-server --version | cut -d' ' -f3)"
echo "ZooKeeper: $(ls /usr/share/java/zookeeper-[0-9]*.jar)"
echo "Kafka: $(ls "$kafka_dir"/lib/kafka_2.13-*.jar)"
echo "MariaDB: $(/usr/sbin/mariadbd --version)"
echo "Cassandra: $(ls "$cassandra_dir"/lib/cassandra-all-*.jar)"
echo "exporters: $(command -v prometheus-postgres-exporter prometheus-redis-exporter | tr '\n' ' ')$(ls "$zk_metrics"/zookeeper-prometheus-metrics-*.jar)"
# Names the tests' runtimes add to /etc/hosts are removed when each test ends; a crashed run
# could leave a block behind: remove the tests' blocks (clusters named t-…) at the end anyway.
CLEANUP+=("sed -i '/^# BEGIN firecamp t-/,/^# END firecamp t-/d' /etc/hosts")
