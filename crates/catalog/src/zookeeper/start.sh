#!/bin/bash
# Starts one ZooKeeper member of a FireCamp service; member.env beside this script says which.
# The member's myid is written into its data directory on first start and checked on every
# later one, so a volume never joins the ensemble under another member's id.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/member.env"
bin() { if [ -n "$BIN_DIR" ]; then echo "$BIN_DIR/$1"; else echo "$1"; fi; }
log() { echo "firecamp[$MEMBER]: $*" >&2; }

umask 0077
mkdir -p "$RUN_DIR" "$DATA_DIR/zookeeper"
[ -n "$LOG_DIR" ] && mkdir -p "$LOG_DIR"
read_secret() {
  local v
  v="$(cat "$SECRET_DIR/$1")"
  # Generated passwords are alphanumeric; anything else could break the JAAS file below.
  [[ "$v" =~ ^[A-Za-z0-9]+$ ]] || { log "secret $1 must be alphanumeric"; exit 1; }
  printf '%s' "$v"
}

myid_file="$DATA_DIR/zookeeper/myid"
if [ -s "$myid_file" ] && [ "$(cat "$myid_file")" != "$MYID" ]; then
  log "refusing to start: the data volume belongs to server $(cat "$myid_file"), not $MYID"
  exit 1
fi
echo "$MYID" > "$myid_file"

# A restored service's first member (docs/backup.md): the backup's snapshots and transaction
# logs become its database before its first start; it has the newest transaction, so the
# ensemble elects it and the other members take the data from it. Copied aside and renamed into
# place (the logs first, the snapshots last), so an interrupted copy starts over.
snaps="$DATA_DIR/zookeeper/version-2" logs="${LOG_DIR:-$DATA_DIR/zookeeper}/version-2"
if [ -n "${RESTORE_BASE:-}" ] && [ ! -e "$snaps" ]; then
  log "loading the backup's snapshots and logs from $RESTORE_BASE"
  if [ "$logs" != "$snaps" ]; then
    rm -rf "$logs" "$logs.restoring"
    mkdir -p "$logs.restoring"
    cp "$RESTORE_BASE"/log.* "$logs.restoring/" 2>/dev/null || true
    sync "$logs.restoring"
    mv "$logs.restoring" "$logs"
  fi
  rm -rf "$snaps.restoring"
  mkdir -p "$snaps.restoring"
  cp "$RESTORE_BASE"/snapshot.* "$snaps.restoring/"
  if [ "$logs" = "$snaps" ]; then cp "$RESTORE_BASE"/log.* "$snaps.restoring/" 2>/dev/null || true; fi
  sync "$snaps.restoring"
  mv "$snaps.restoring" "$snaps"
fi

# TLS: ZooKeeper's PEM key store is one file with the key and the certificate; made from the
# member's files at every start (a renewed certificate takes effect), private to the server.
cat "$TLS_DIR/$MEMBER.key" "$TLS_DIR/$MEMBER.crt" > "$RUN_DIR/tls.pem"

# SASL (DIGEST-MD5): the JAAS file with the service's passwords, made from the Secret at every
# start (a rotated password takes effect). QuorumLearner is how this member logs in to the
# others, QuorumServer whom it admits; Server holds the users clients log in as. Only its path
# is on the command line (java.env); printf is bash's own, so no password is in any argv.
quorum="$(read_secret quorum-password)"
super="$(read_secret super-password)"
client="$(read_secret client-password)"
module=org.apache.zookeeper.server.auth.DigestLoginModule
{
  printf 'QuorumLearner {\n  %s required\n  username="quorum"\n  password="%s";\n};\n' "$module" "$quorum"
  printf 'QuorumServer {\n  %s required\n  user_quorum="%s";\n};\n' "$module" "$quorum"
  printf 'Server {\n  %s required\n  user_super="%s"\n  user_client="%s";\n};\n' "$module" "$super" "$client"
} > "$RUN_DIR/jaas.conf"

# The ensemble may change while the server runs (`reconfig`, in a scale): ZooKeeper then
# rewrites zoo.cfg and writes zoo.cfg.dynamic.<version> beside it. It runs from copies in the
# private run directory, made at every start from the rendered files, which FireCamp renders
# again with the new membership after each change; older versions left there are removed.
rm -f "$RUN_DIR"/zoo.cfg.dynamic.[0-9a-f]*
cp "$CONFIG_DIR/zoo.cfg" "$CONFIG_DIR/zoo.cfg.dynamic" "$RUN_DIR/"

# In a pod, the member's DNS name follows the pod's address only once FireCamp has updated the
# record: a server that started before then would be told of its own old address by the
# ensemble, and as a new leader would step down without committing anything. Wait for it (up
# to 2 minutes; then start all the same, the ensemble sorts it out more slowly).
if [ "$WAIT_DNS" = 1 ]; then
  mine=" $(hostname -I 2>/dev/null || true) "
  for ((try = 1; try <= 600; try++)); do
    now="$(getent hosts "$DNS_NAME" | awk '{print $1}' | head -1 || true)"
    [ -n "$now" ] && [[ "$mine" == *" $now "* ]] && break
    sleep 0.2
  done
  if [ -n "$now" ] && [[ "$mine" == *" $now "* ]]; then
    log "$DNS_NAME is this pod's address $now (after $try tries)"
  else
    log "$DNS_NAME resolves to '${now:-nothing}', not to this pod ($mine): starting all the same"
  fi
fi

# zkEnv.sh reads java.env and logback.xml from ZOOCFGDIR.
export ZOOCFGDIR="$CONFIG_DIR"
export ZOO_LOG_DIR="$RUN_DIR"
log "starting as server $MYID"
exec "$(bin zkServer.sh)" start-foreground "$RUN_DIR/zoo.cfg"
