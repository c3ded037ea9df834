#!/bin/bash
# zkServer.sh of FireCamp's Debian-built ZooKeeper image (scripts/image.sh puts it in
# /usr/local/bin). It does what FireCamp's start script needs from the official image's script:
# `zkServer.sh start-foreground [zoo.cfg]` with ZOOCFGDIR/java.env honoured and logs on stderr.
# Debian's own /usr/share/zookeeper/bin/zkServer.sh cannot: its zkEnv.sh is
# /etc/zookeeper/conf/environment, which pins ZOOCFGDIR to /etc/zookeeper/conf.
set -euo pipefail

JAVA_DIR=/usr/share/java
MAIN=org.apache.zookeeper.server.quorum.QuorumPeerMain
# Upstream's image sets ZOOCFGDIR=/conf; FireCamp exports its own config directory.
ZOOCFGDIR="${ZOOCFGDIR:-/conf}"

usage() {
  echo "usage: $0 {start-foreground|print-cmd} [zoo.cfg] | version" >&2
  exit 2
}

# As upstream: a bare file name is looked up in ZOOCFGDIR, a path is taken as it is.
config_file() {
  local cfg="${1:-zoo.cfg}"
  case "$cfg" in */*) ;; *) cfg="$ZOOCFGDIR/$cfg" ;; esac
  echo "$cfg"
}

# zookeeper.jar's manifest Class-Path lists its Debian dependencies (zookeeper-jute, netty,
# slf4j-api, commons-cli, metrics, snappy, jetty...), so the jar alone brings most of them. It
# misses netty-codec and netty-resolver, which TLS needs (the Netty connection factory of
# secureClientPort, quorum TLS): they are added here. slf4j-simple is the logging backend: it
# writes to stderr, the member's log. ZOOCFGDIR comes first, as upstream's zkEnv.sh puts it, so
# logging configuration placed there is found.
classpath() {
  local cp="$ZOOCFGDIR:$JAVA_DIR/zookeeper.jar" jar
  for jar in slf4j-simple netty-codec netty-resolver netty-transport-native-unix-common; do
    if [ -f "$JAVA_DIR/$jar.jar" ]; then cp="$cp:$JAVA_DIR/$jar.jar"; fi
  done
  # ZooKeeper's Prometheus provider and its jars (from Maven Central; zoo.cfg names it).
  for jar in "$JAVA_DIR"/zookeeper-metrics/*.jar; do
    if [ -f "$jar" ]; then cp="$cp:$jar"; fi
  done
  echo "$cp"
}

# Fills CMD with the server's command line. java.env (upstream's zkEnv.sh sources it too) sets
# ZK_SERVER_HEAP in MiB and SERVER_JVMFLAGS; JVMFLAGS from the environment come last, as upstream.
server_cmd() {
  local cfg heap flags cp
  cfg="$(config_file "${1:-}")"
  [ -r "$cfg" ] || { echo "$0: cannot read the configuration $cfg" >&2; exit 1; }
  if [ -f "$ZOOCFGDIR/java.env" ]; then
    # shellcheck disable=SC1091
    . "$ZOOCFGDIR/java.env"
  fi
  heap="${ZK_SERVER_HEAP:-1000}"
  flags="${SERVER_JVMFLAGS:-} ${JVMFLAGS:-}"
  cp="$(classpath)" # before globbing is off: it lists the provider's jars
  set -f # the flags are split on spaces, never globbed
  # shellcheck disable=SC2206
  CMD=("${JAVA_HOME:+$JAVA_HOME/bin/}java" "-Xmx${heap}m" -Dzookeeper.admin.enableServer=false
    -Dorg.slf4j.simpleLogger.showDateTime=true
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ" $flags -cp "$cp" "$MAIN" "$cfg")
  set +f
}

case "${1:-}" in
  start-foreground)
    server_cmd "${2:-}"
    echo "Using config: ${CMD[-1]}" >&2
    exec "${CMD[@]}"
    ;;
  print-cmd)
    server_cmd "${2:-}"
    printf '%q ' "${CMD[@]}"
    echo
    ;;
  version)
    exec "${JAVA_HOME:+$JAVA_HOME/bin/}java" -cp "$(classpath)" org.apache.zookeeper.version.VersionInfoMain
    ;;
  *) usage ;;
esac
