#!/usr/bin/env bash
# A PNG of one of FireCamp's Grafana dashboards with real data, without Grafana: renders it with
# scripts/dashboards/render.py (queries Prometheus, writes a static HTML page) and takes a
# screenshot with headless Chromium, installing Debian's chromium first when it is missing
# (root; apt). docs/monitoring.md, "Dashboards".
#
#   scripts/dashboards/screenshot.sh PROMETHEUS_URL DASHBOARD OUT.png [render.py options…]
#   scripts/dashboards/screenshot.sh http://127.0.0.1:9090 deploy/monitoring/dashboards/postgresql.json \
#       docs/images/dashboard-postgresql.png --var service=pg --range 10m --scrape-interval 5s
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
prometheus="$1" dashboard="$2" png="$3"
shift 3
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

chromium="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$chromium" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "no Chromium here: apt-get install chromium (as root), then run this again" >&2; exit 1; }
  echo "installing chromium (apt-get)…" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
  chromium="$(command -v chromium)"
fi

html="$(mktemp --suffix=.html)"
trap 'rm -f "$html"' EXIT
python3 "$here/render.py" --prometheus "$prometheus" --dashboard "$dashboard" \
  --out "$html" --png "$png" --chromium "$chromium" "$@"
echo "$png: $(stat -c %s "$png") bytes" >&2
