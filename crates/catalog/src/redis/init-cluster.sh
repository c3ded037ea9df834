#!/bin/bash
# Creates the Redis Cluster of a FireCamp service: the first member of each shard becomes its
# primary, the others its replicas (shards are runs of consecutive members, so a shard spans
# zones). Idempotent: rerun after a failure, it creates the cluster only if no slot is assigned
# yet and adds only the replicas that are not replicas already. A restored cluster's task
# names after `--` the command that then loads the backup into it (`firecamp redis-load`, which
# replaces each key it copies: run again, it ends the same).
#   init-cluster.sh <members per shard> <address>... [-- <load command>...]
set -euo pipefail
per_shard=$1; shift
nodes=() load=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do nodes+=("$1"); shift; done
[ $# -gt 0 ] && { shift; load=("$@"); }
port=${REDIS_PORT:-6379}
# The password comes from the Secret's file, never from the command line or the Job's spec.
REDISCLI_AUTH="$(cat "${SECRET_DIR:-/etc/firecamp/secret}/password")"
export REDISCLI_AUTH
# Members serve TLS only: every connection verifies the member against the service's CA.
cacert="${TLS_DIR:-/etc/firecamp/tls}/ca.crt"
cli() { "${BIN_DIR:+$BIN_DIR/}redis-cli" --tls --cacert "$cacert" "$@"; }
bounded() { timeout 180 "${BIN_DIR:+$BIN_DIR/}redis-cli" --tls --cacert "$cacert" "$@"; }

# Every step is bounded: redis-cli waits for the cluster to agree without end, so a lost
# handshake would hang this attempt forever; failed, the Job runs the script again.
for n in "${nodes[@]}"; do
  for ((try = 0; ; try++)); do
    cli -h "$n" -p "$port" ping 2>/dev/null | grep -qx PONG && break
    (( try < 300 )) || { echo "$n does not answer" >&2; exit 1; }
    echo "waiting for $n"; sleep 1
  done
done
assigned=$(cli -h "${nodes[0]}" -p "$port" cluster info | tr -d '\r' | sed -n 's/^cluster_slots_assigned://p')
if [ "${assigned:-0}" = 0 ]; then
  primaries=()
  for ((i = 0; i < ${#nodes[@]}; i += per_shard)); do primaries+=("${nodes[i]}:$port"); done
  bounded --cluster create "${primaries[@]}" --cluster-replicas 0 --cluster-yes
else
  # A run after a failed one: the primaries meet again (idempotent), in case a handshake was lost.
  for ((i = per_shard; i < ${#nodes[@]}; i += per_shard)); do cli -h "${nodes[0]}" -p "$port" cluster meet "${nodes[i]}" "$port" >/dev/null || true; done
fi
for ((i = 0; i < ${#nodes[@]}; i++)); do
  (( i % per_shard == 0 )) && continue
  primary=${nodes[i - i % per_shard]}
  if cli -h "${nodes[i]}" -p "$port" role | head -1 | grep -q slave; then continue; fi
  id=$(cli -h "$primary" -p "$port" cluster myid | tr -d '\r')
  bounded --cluster add-node "${nodes[i]}:$port" "$primary:$port" --cluster-slave --cluster-master-id "$id"
done
cli --cluster check "${nodes[0]}:$port"
if [ ${#load[@]} -gt 0 ]; then
  # The bucket's credentials: the tenant's file when it keeps one, else the pod's AWS identity.
  creds="${SECRET_DIR:-/etc/firecamp/secret}/aws-credentials"
  if [ -f "$creds" ]; then export AWS_SHARED_CREDENTIALS_FILE="$creds"; fi
  exec "${load[@]}"
fi
