#!/usr/bin/env bash
# FireCamp in one command, on a fresh Debian 12 machine: installs the servers, builds FireCamp,
# starts the local runtime and creates a PostgreSQL cluster of 3 (a primary, two streaming
# replicas), then prints how to connect.
#   scripts/quickstart.sh            as root (or with sudo available)
#   FIRECAMP_BIN=path/to/firecamp scripts/quickstart.sh   with a binary built already
# Afterwards: `sudo firecamp service list`, `sudo firecamp local down` (the runtime's API wants
# its token, /var/lib/firecamp/api-token: root, or the `firecamp` group; docs/local.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { printf '\n==> %s\n' "$*"; }
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

step "installing PostgreSQL, Redis, ZooKeeper and the metrics exporters (Debian packages)"
pkgs=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || pkgs+=(postgresql)
command -v redis-server >/dev/null || pkgs+=(redis-server)
command -v redis-cli >/dev/null || pkgs+=(redis-tools)
ls /usr/share/java/zookeeper-[0-9]*.jar >/dev/null 2>&1 || pkgs+=(zookeeper default-jre-headless libslf4j-java)
command -v psql >/dev/null || pkgs+=(postgresql-client)
# Members' metrics (docs/monitoring.md; ZooKeeper's provider comes from Maven: scripts/setup.d/30-local.sh).
command -v prometheus-postgres-exporter >/dev/null || pkgs+=(prometheus-postgres-exporter)
command -v prometheus-redis-exporter >/dev/null || pkgs+=(prometheus-redis-exporter)
if [ ${#pkgs[@]} -gt 0 ]; then
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${pkgs[@]}"
fi
# Debian starts a PostgreSQL and a Redis of its own on 127.0.0.1; FireCamp's members use other
# loopback addresses, so they do not clash. Stop them if you do not need them.

if [ -n "${FIRECAMP_BIN:-}" ]; then
  fc="$FIRECAMP_BIN"   # a firecamp binary built already
else
  step "building FireCamp (cargo build --release, local runtime only; a few minutes the first time)"
  command -v cargo >/dev/null || { echo "cargo is missing: install Rust (https://rustup.rs) first" >&2; exit 1; }
  cargo build --release --locked -p firecamp --no-default-features
  fc="$PWD/target/release/firecamp"
fi

step "starting the local runtime"
$sudo "$fc" local up

step "creating PostgreSQL cluster pg (3 members, backed up)"
# --backup: WAL archived continuously, base backups on request (docs/backup.md).
# --wait follows the phase (CREATING → INITIALIZING → ACTIVE) and the members ready.
# The API token is root's (0600), so service commands run as root too.
if $sudo "$fc" service get pg >/dev/null 2>&1; then
  echo "service pg exists already"
else
  $sudo "$fc" service create postgresql pg --zones local --replicas 3 --memory 256Mi --backup --wait --timeout 600
fi
$sudo "$fc" service members pg

dir="$($sudo "$fc" local status | sed -n 's/^  state: //p')"
cat <<MSG

PostgreSQL cluster "pg" is up: pg-0 is the primary, pg-1 and pg-2 stream from it.
Connect: psql on the primary over TLS verified against the service's CA, logged in:
  $sudo $fc service connect pg                         # --member pg-1: a replica (read-only)
Or by hand (the superuser password is in the primary's secret file, readable by root):
  $sudo $fc service credentials pg --ca-file pg-ca.crt
  export PGPASSWORD="\$($sudo cat $dir/services/pg/pg-0/secret/superuser-password)"
  psql "host=pg-0.local-firecamp.com user=postgres sslmode=verify-full sslrootcert=pg-ca.crt"
More:
  $sudo $fc service list | members pg | logs pg pg-1 --follow
  $sudo $fc service backup pg --wait; $sudo $fc service restore pg --from latest --as pg-copy --wait
  $sudo $fc service create redis cache --zones local --replicas 6 --option mode=cluster --option shards=3 --wait
  $sudo $fc service delete pg [--delete-volumes]
  $sudo $fc local down
MSG
