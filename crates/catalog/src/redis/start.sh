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
# TLS: the member's certificate and key from the service's CA, copied at every start (a renewed
# certificate takes effect); the key stays readable by this member only.
install -m 0644 "$TLS_DIR/$MEMBER.crt" "$RUN_DIR/tls.crt"
install -m 0600 "$TLS_DIR/$MEMBER.key" "$RUN_DIR/tls.key"
echo "firecamp[$MEMBER]: starting" >&2
exec "$(bin redis-server)" "$CONFIG_DIR/redis.conf"
