#!/bin/bash
# Serves one Redis member's metrics: redis_exporter beside the server, logged in over TLS
# (verified against the service's CA) as the ACL user `monitor`, which may read INFO, CONFIG
# GET, SLOWLOG and LATENCY and nothing else. Its password reaches the exporter in a file of the
# member's private run directory, never on the command line or in the environment.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/member.env"
# An image without the exporter (an official one) runs no metrics: said once, then the
# container idles (a crash loop would make the member's pod look unready).
if [ ! -x "$METRICS_EXPORTER" ]; then
  echo "firecamp[$MEMBER]: no redis_exporter in this image ($METRICS_EXPORTER); no metrics" >&2
  exec sleep infinity
fi
umask 0077
mkdir -p "$RUN_DIR"
password="$(cat "$SECRET_DIR/monitor-password")"
[[ "$password" =~ ^[A-Za-z0-9]+$ ]] || { echo "firecamp[$MEMBER]: the monitoring password must be alphanumeric" >&2; exit 1; }
addr="rediss://$METRICS_SERVER"
printf '{"%s": "%s"}\n' "$addr" "$password" > "$RUN_DIR/exporter-passwords.json"
exec "$METRICS_EXPORTER" -web.listen-address="$METRICS_ADDRESS" -redis.addr="$addr" -redis.user=monitor \
  -redis.password-file="$RUN_DIR/exporter-passwords.json" -tls-ca-cert-file="$TLS_DIR/ca.crt" -log-format=txt
