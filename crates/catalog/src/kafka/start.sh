#!/bin/bash
# Starts one Kafka member (KRaft, broker and controller in one process) of a FireCamp service;
# member.env beside this script says which. The member's storage is formatted once, with the
# service's cluster id and its node id; a later start checks both, so a volume never joins the
# cluster under another member's id, nor another cluster.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/member.env"
bin() { if [ -n "$BIN_DIR" ]; then echo "$BIN_DIR/$1"; else echo "$1"; fi; }
log() { echo "firecamp[$MEMBER]: $*" >&2; }

umask 0077
mkdir -p "$RUN_DIR" "$LOG_DIRS" "$METADATA_DIR"
read_secret() {
  local v
  v="$(cat "$SECRET_DIR/$1")"
  # Generated passwords are alphanumeric; anything else could break the JAAS file below.
  [[ "$v" =~ ^[A-Za-z0-9]+$ ]] || { log "secret $1 must be alphanumeric"; exit 1; }
  printf '%s' "$v"
}

meta="$METADATA_DIR/meta.properties"
if [ -s "$meta" ]; then
  node="$(sed -n 's/^node.id=//p' "$meta")" cluster="$(sed -n 's/^cluster.id=//p' "$meta")"
  if [ "$node" != "$NODE_ID" ] || [ "$cluster" != "$CLUSTER_ID" ]; then
    log "refusing to start: the data volume belongs to node $node of cluster $cluster, not node $NODE_ID of $CLUSTER_ID"
    exit 1
  fi
fi

# TLS: Kafka's PEM key store is one file with the key and the certificate; made from the
# member's files at every start (a renewed certificate takes effect), private to the server.
cat "$TLS_DIR/$MEMBER.key" "$TLS_DIR/$MEMBER.crt" > "$RUN_DIR/tls.pem"

# SASL SCRAM-SHA-512 over TLS. The brokers keep the users' credentials (salted) in the metadata
# log; they are written when the storage is formatted, below. The JAAS file holds only this
# member's own login to the other brokers, made from the Secret at every start; only its path is
# on the JVM's command line (KAFKA_JVM_FLAGS), and printf is bash's own, so no password is in
# any argv.
admin="$(read_secret admin-password)"
client="$(read_secret client-password)"
printf 'KafkaServer {\n  org.apache.kafka.common.security.scram.ScramLoginModule required\n  username="admin"\n  password="%s";\n};\n' \
  "$admin" > "$RUN_DIR/jaas.conf"

export KAFKA_JVM_FLAGS="-Xms${HEAP_MIB}m -Xmx${HEAP_MIB}m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Djava.security.auth.login.config=$RUN_DIR/jaas.conf -Dlog4j2.configurationFile=$CONFIG_DIR/log4j2.properties"

if [ ! -s "$meta" ]; then
  log "formatting storage as node $NODE_ID of cluster $CLUSTER_ID, with the users' SCRAM credentials"
  # The storage tool takes credentials only as arguments: they go in a Java argument file
  # (`java @file`: the main class and its arguments), private to the server and removed after.
  args="$RUN_DIR/format.args"
  trap 'rm -f "$args"' EXIT
  printf '"%s"\n' kafka.tools.StorageTool format --cluster-id "$CLUSTER_ID" --config "$CONFIG_DIR/server.properties" --ignore-formatted \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$admin]" --add-scram "SCRAM-SHA-512=[name=client,password=$client]" > "$args"
  "$(bin kafka-java)" "@$args" >&2
  rm -f "$args"
  trap - EXIT
fi
unset admin client

log "starting as node $NODE_ID"
exec "$(bin kafka-server)" "$CONFIG_DIR/server.properties"
