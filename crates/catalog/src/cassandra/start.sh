#!/bin/bash
# Starts one Cassandra member of a FireCamp service; member.env beside this script says which.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/member.env"
bin() { if [ -n "$BIN_DIR" ]; then echo "$BIN_DIR/$1"; else echo "$1"; fi; }
log() { echo "firecamp[$MEMBER]: $*" >&2; }

umask 0077
mkdir -p "$RUN_DIR" "$DATA_DIR"

# TLS: Cassandra's PEM key store is one file with the key and the certificate; made from the
# member's files at every start (a renewed certificate takes effect), private to the server.
cat "$TLS_DIR/$MEMBER.key" "$TLS_DIR/$MEMBER.crt" > "$RUN_DIR/tls.pem"

# The config with the member's address: its own IP as rendered, or the pod's when it binds none.
addr="$(hostname -i 2>/dev/null | cut -d' ' -f1 || true)"
sed "s/@POD_IP@/${addr:-127.0.0.1}/g" "$CONFIG_DIR/cassandra.yaml" > "$RUN_DIR/cassandra.yaml"
jmx_addr="${JMX_ADDRESS/@POD_IP@/${addr:-127.0.0.1}}"

# JMX, which nodetool speaks (FireCamp decommissions a member leaving the ring with it): on the
# member's own address only, and a login as admin with the Secret's password. Java's JMX agent
# reads the password and access files, made at every start and private to the server (it
# refuses a password file others can read); the password is in no argv.
password="$(cat "$SECRET_DIR/admin-password")"
[[ "$password" =~ ^[A-Za-z0-9]+$ ]] || { log "secret admin-password must be alphanumeric"; exit 1; }
printf 'admin %s\n' "$password" > "$RUN_DIR/jmx.password"
unset password
printf 'admin readwrite\n' > "$RUN_DIR/jmx.access"

flags="-Xms${HEAP_MIB}m -Xmx${HEAP_MIB}m"
flags+=" -Dcassandra.config=file://$RUN_DIR/cassandra.yaml"
flags+=" -Dcassandra-rackdc.properties=file://$CONFIG_DIR/cassandra-rackdc.properties"
flags+=" -Dlogback.configurationFile=$CONFIG_DIR/logback.xml"
flags+=" -Dcassandra.logdir=$DATA_DIR/logs -Dcassandra.storagedir=$DATA_DIR"
# Cassandra's own keyspaces (the roles among them) get one replica per member, up to 3, from
# the first start; the default superuser is set up 1 s after start rather than 10.
flags+=" -Dcassandra.system_auth.default_rf=$SYSTEM_RF -Dcassandra.system_distributed.default_rf=$SYSTEM_RF -Dcassandra.system_traces.default_rf=$SYSTEM_RF"
flags+=" -Dcassandra.superuser_setup_delay_ms=1000"
flags+=" -Dcom.sun.management.jmxremote.port=$JMX_PORT -Dcom.sun.management.jmxremote.rmi.port=$JMX_PORT"
flags+=" -Dcom.sun.management.jmxremote.host=$jmx_addr -Djava.rmi.server.hostname=$jmx_addr"
flags+=" -Dcom.sun.management.jmxremote.authenticate=true -Dcom.sun.management.jmxremote.ssl=false"
flags+=" -Dcom.sun.management.jmxremote.password.file=$RUN_DIR/jmx.password -Dcom.sun.management.jmxremote.access.file=$RUN_DIR/jmx.access"
if [ ! -d "$DATA_DIR/data/system" ]; then
  # First start, on an empty volume: the ring is being formed, there is nothing to learn from
  # gossip first (Cassandra waits 30 s for the ring and up to 3×8 s for gossip otherwise). A
  # restart keeps Cassandra's waits.
  log "first start (seed: $SEED)"
  flags+=" -Dcassandra.ring_delay_ms=5000 -Dcassandra.skip_wait_for_gossip_to_settle=0"
fi
export CASSANDRA_JVM_FLAGS="$flags"
log "starting"
exec "$(bin cassandra-server)" "@$CONFIG_DIR/jvm.args"
