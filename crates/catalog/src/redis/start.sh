#!/bin/bash
# Starts one Redis member of a FireCamp service; member.env beside this script says which.
# The password comes from the service Secret at every start and goes to a file only this member
# reads (redis.conf includes it), never into the config map, the command line or environment.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/member.env"
bin() { if [ -n "$BIN_DIR" ]; then echo "$BIN_DIR/$1"; else echo "$1"; fi; }

umask 0077
mkdir -p "$RUN_DIR" "$DATA_DIR/redis"
password="$(cat "$SECRET_DIR/password")"
[[ "$password" =~ ^[A-Za-z0-9]+$ ]] || { echo "firecamp[$MEMBER]: the password must be alphanumeric" >&2; exit 1; }
printf 'requirepass "%s"\nmasterauth "%s"\n' "$password" "$password" > "$RUN_DIR/auth.conf"
# The metrics exporter's user (docs/monitoring.md): it may read what redis_exporter reads and
# nothing else, no key and no write. (A Secret made before FireCamp had metrics has no such key.)
if [ -e "$SECRET_DIR/monitor-password" ]; then
  monitor="$(cat "$SECRET_DIR/monitor-password")"
  [[ "$monitor" =~ ^[A-Za-z0-9]+$ ]] || { echo "firecamp[$MEMBER]: the monitoring password must be alphanumeric" >&2; exit 1; }
  printf 'user monitor reset on >%s -@all +ping +hello +auth +client|setname +info +config|get +slowlog|get +slowlog|len +latency|latest +latency|histogram +cluster|info +dbsize +select\n' \
    "$monitor" >> "$RUN_DIR/auth.conf"
fi
# TLS: the member's certificate and key from the service's CA, copied at every start (a renewed
# certificate takes effect); the key stays readable by this member only.
install -m 0644 "$TLS_DIR/$MEMBER.crt" "$RUN_DIR/tls.crt"
install -m 0600 "$TLS_DIR/$MEMBER.key" "$RUN_DIR/tls.key"
# A restored service's first member (docs/backup.md): the backup's snapshot becomes the base of
# a new append-only file before the first start (Redis 7 ignores dump.rdb when appendonly is on),
# made aside and renamed into place, so an interrupted copy starts over.
if [ -n "${RESTORE_BASE:-}" ] && [ ! -e "$DATA_DIR/redis/appendonlydir" ]; then
  echo "firecamp[$MEMBER]: loading the backup's snapshot $RESTORE_BASE/dump.rdb" >&2
  aof="$DATA_DIR/redis/appendonlydir.restoring"
  rm -rf "$aof"
  mkdir -p "$aof"
  cp "$RESTORE_BASE/dump.rdb" "$aof/appendonly.aof.1.base.rdb"
  : > "$aof/appendonly.aof.1.incr.aof"
  printf 'file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n' > "$aof/appendonly.aof.manifest"
  sync "$aof"/*
  mv "$aof" "$DATA_DIR/redis/appendonlydir"
  sync "$DATA_DIR/redis"
fi
echo "firecamp[$MEMBER]: starting" >&2
exec "$(bin redis-server)" "$CONFIG_DIR/redis.conf"
