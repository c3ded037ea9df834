#!/bin/bash
# Serves one PostgreSQL member's metrics: postgres_exporter beside the server, logged in over
# the member's private socket as the monitoring role (pg_monitor, nothing more). Its password
# reaches the exporter as a file path, never on the command line or in the environment.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/member.env"
# An image without the exporter (an official one) runs no metrics: said once, then the
# container idles (a crash loop would make the member's pod look unready).
if [ ! -x "$METRICS_EXPORTER" ]; then
  echo "firecamp[$MEMBER]: no postgres_exporter in this image ($METRICS_EXPORTER); no metrics" >&2
  exec sleep infinity
fi
export DATA_SOURCE_URI=":$PORT/postgres?host=$RUN_DIR&sslmode=disable"
export DATA_SOURCE_USER="$MONITOR_USER" DATA_SOURCE_PASS_FILE="$SECRET_DIR/monitor-password"
# Server settings are configuration, not figures: left out. queries.yaml adds the replica's lag.
exec "$METRICS_EXPORTER" --web.listen-address="$METRICS_ADDRESS" --disable-settings-metrics \
  --extend.query-path="$CONFIG_DIR/queries.yaml" --log.level=warn
