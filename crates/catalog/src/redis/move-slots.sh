#!/bin/bash
# Moves a Redis Cluster's slots for a FireCamp scale: `fill` gives the new shards' primaries
# their share, `drain` moves every slot of the leaving shards' primaries to the shards that stay.
# Slots move key by key (MIGRATE); clients follow the ASK/MOVED redirects throughout. Rerun after
# a failure, it first closes the slots a cut-off move left half-migrated (`--cluster fix`).
#   move-slots.sh fill|drain <address of a member that stays> <address of each moving member>...
set -euo pipefail
mode=$1 via=$2; shift 2
port=${REDIS_PORT:-6379}
# The password comes from the Secret's file, never from the command line or the Job's spec.
REDISCLI_AUTH="$(cat "${SECRET_DIR:-/etc/firecamp/secret}/password")"
export REDISCLI_AUTH
cacert="${TLS_DIR:-/etc/firecamp/tls}/ca.crt"
cli() { "${BIN_DIR:+$BIN_DIR/}redis-cli" --tls --cacert "$cacert" "$@"; }
nodes() { cli -h "$via" -p "$port" cluster nodes | tr -d '\r'; }
# The slots a node serves as a primary, or `replica`.
slots_of() {
  nodes | awk -v id="$1" '$1 == id {
    if ($3 !~ /master/) { print "replica"; exit }
    n = 0
    for (i = 9; i <= NF; i++) { if ($i ~ /^\[/) continue; k = split($i, r, "-"); n += (k == 2 ? r[2] - r[1] + 1 : 1) }
    print n; exit
  }'
}

ids=()
for n in "$@"; do ids+=("$(cli -h "$n" -p "$port" cluster myid | tr -d '\r')"); done
if ! cli --cluster check "$via:$port" >/dev/null; then
  timeout 600 "${BIN_DIR:+$BIN_DIR/}redis-cli" --tls --cacert "$cacert" --cluster fix "$via:$port" --cluster-yes
fi
args=(--cluster rebalance "$via:$port" --cluster-pipeline 100)
if [ "$mode" = drain ]; then
  weights=()
  for id in "${ids[@]}"; do
    [ "$(slots_of "$id")" = replica ] || weights+=("$id=0")
  done
  (( ${#weights[@]} == 0 )) || args+=(--cluster-weight "${weights[@]}")
else
  args+=(--cluster-use-empty-masters)
fi
cli "${args[@]}"
for id in "${ids[@]}"; do
  s=$(slots_of "$id")
  if [ "$mode" = drain ] && [ "$s" != replica ] && [ "$s" != 0 ]; then echo "after the rebalance, $id still serves $s slots" >&2; exit 1; fi
  if [ "$mode" = fill ] && [ "$s" = 0 ]; then echo "after the rebalance, the new primary $id serves no slot" >&2; exit 1; fi
done
echo "slots moved ($mode)"
