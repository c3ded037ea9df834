#!/usr/bin/env bash
# Benchmark (not a test): the time from `firecamp service create` to a PostgreSQL cluster of 3
# whose two replicas stream (phase ACTIVE, which checks pg_stat_replication), against the same
# done by hand on this machine in the same run: initdb, start, two pg_basebackups, start both
# replicas, until pg_stat_replication shows both streaming. Then one replica more (issue #16):
# `firecamp service scale pg --replicas 4 --wait` against a pg_basebackup and start by hand until
# it streams. Prints the times and the ratios.
# The create is measured in BENCH_ROUNDS rounds (default 3), by hand and FireCamp alternating, and
# the medians are compared: on this kind of machine one round's time swings by a third with the
# disk's fsyncs (initdb and pg_basebackup sync every file), which one round pair cannot tell
# from FireCamp's own cost.
# Runs as root (PostgreSQL members run as the postgres user). Uses 127.0.210.0/24 and
# 127.0.211.0/24 and a temp directory; removes everything it made.
#   scripts/bench-local-pg.sh [path/to/firecamp]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fc="${1:-$PWD/target/release/firecamp}"
[ -x "$fc" ] || { echo "build first: cargo build --release -p firecamp (or pass the binary)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
work="$(mktemp -d /tmp/firecamp-bench.XXXXXX)"
chmod 711 "$work"
now() { date +%s.%N; }
pids=()
rounds="${BENCH_ROUNDS:-3}"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_ROUNDS must be a positive number, not $rounds" >&2; exit 2; }
stop_hand() {
  for d in "$work"/hand/m*; do [ -f "$d/postmaster.pid" ] && runuser -u postgres -- "$bin/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true; done
}
cleanup() {
  stop_hand
  FIRECAMP_LOCAL_DIR="$work/fc" "$fc" local down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- by hand ---------------------------------------------------------------------------------
as_pg() { runuser -u postgres -- "$@"; }
streaming() { as_pg psql -h "$work/hand" -U postgres -Atc "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"; }
start_replica() { # N: the replica m$N on 127.0.211.(N+1), its socket in s$N
  mkdir -p "$work/hand/s$1" && chown postgres: "$work/hand/s$1"
  as_pg "$bin/pg_ctl" -D "$work/hand/m$1" -w -l "$work/hand/m$1.log" \
    -o "-c listen_addresses=127.0.211.$(($1 + 1)) -c unix_socket_directories=$work/hand/s$1" start >/dev/null
}
# One round: the time to a primary and two streaming replicas, made from nothing.
hand_create() {
  stop_hand
  rm -rf "$work/hand" && mkdir -p "$work/hand" && chown postgres: "$work/hand"
  local t0 t1
  t0=$(now)
  as_pg "$bin/initdb" -D "$work/hand/m0" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >> "$work/hand/m0/postgresql.conf" <<CONF
listen_addresses = '127.0.211.1'
unix_socket_directories = '$work/hand'
CONF
  echo "host replication all 127.0.0.0/8 trust" >> "$work/hand/m0/pg_hba.conf"
  as_pg "$bin/pg_ctl" -D "$work/hand/m0" -w -l "$work/hand/m0.log" start >/dev/null
  for i in 1 2; do
    as_pg "$bin/pg_basebackup" -h 127.0.211.1 -U postgres -D "$work/hand/m$i" -X stream -R --checkpoint=fast
    start_replica "$i"
  done
  until [ "$(streaming)" = 2 ]; do sleep 0.05; done
  t1=$(now)
  awk "BEGIN { print $t1 - $t0 }"
}

# --- FireCamp --------------------------------------------------------------------------------
export FIRECAMP_LOCAL_DIR="$work/fc" FIRECAMP_SERVER=http://127.0.0.1:27240
"$fc" local up --listen 127.0.0.1:27240 --dns-listen 127.0.0.1:27253 --cluster bench --ip-pool 127.0.210.1/10 >/dev/null
token="$(cat "$FIRECAMP_LOCAL_DIR/api-token")"
# One round: service NAME of 3 created until ACTIVE (asked the way any client asks, GET on the
# API, with curl: a debug `firecamp` process started every 50 ms would load the machine the
# members are being made on).
firecamp_create() {
  local t0 t1
  t0=$(now)
  "$fc" service create postgresql "$1" --zones local --replicas 3 --memory 256Mi >/dev/null
  until curl -fsS -H "Authorization: Bearer $token" "$FIRECAMP_SERVER/v1/services/$1" | grep -q '"phase":"ACTIVE"'; do sleep 0.05; done
  t1=$(now)
  awk "BEGIN { print $t1 - $t0 }"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

hands=() fcs=()
for ((r = 1; r <= rounds; r++)); do
  hands+=("$(hand_create)")
  # The last round's service stays for the scale below; the others go (their addresses with them).
  fcs+=("$(firecamp_create "pg$r")")
  [ "$r" -eq "$rounds" ] || "$fc" service delete "pg$r" --delete-volumes >/dev/null
  printf 'round %d: by hand %.2f s, firecamp %.2f s\n' "$r" "${hands[-1]}" "${fcs[-1]}"
done
hand="$(median "${hands[@]}")"
firecamp="$(median "${fcs[@]}")"

# One replica more: by hand on the last cluster made by hand, then FireCamp's scale.
t0=$(now)
as_pg "$bin/pg_basebackup" -h 127.0.211.1 -U postgres -D "$work/hand/m3" -X stream -R --checkpoint=fast
start_replica 3
until [ "$(streaming)" = 3 ]; do sleep 0.05; done
t1=$(now)
hand_add=$(awk "BEGIN { print $t1 - $t0 }")
t0=$(now)
"$fc" service scale "pg$rounds" --replicas 4 --wait >/dev/null
t1=$(now)
firecamp_add=$(awk "BEGIN { print $t1 - $t0 }")
"$fc" service delete "pg$rounds" --delete-volumes >/dev/null

printf 'by hand (initdb + 2 x pg_basebackup, streaming), median of %d: %6.2f s\n' "$rounds" "$hand"
printf 'firecamp service create → ACTIVE (streaming), median of %d:   %6.2f s\n' "$rounds" "$firecamp"
ratio="$(awk "BEGIN { print $firecamp / $hand }")"
printf 'ratio firecamp / by hand:                        %6.2f\n' "$ratio"
# The line scripts/bench.sh gathers: what, FireCamp, baseline, ratio, budget.
printf 'BENCH\tlocal PostgreSQL of 3 created → streaming, vs by hand (medians of %d)\t%.2f s\t%.2f s\t%.2f\t≤ 1.2\n' "$rounds" "$firecamp" "$hand" "$ratio"
printf 'by hand (pg_basebackup + start, streaming):      %6.2f s\n' "$hand_add"
printf 'firecamp service scale 3 → 4 --wait (streaming):  %6.2f s\n' "$firecamp_add"
ratio_add="$(awk "BEGIN { print $firecamp_add / $hand_add }")"
printf 'ratio firecamp / by hand:                        %6.2f\n' "$ratio_add"
printf 'BENCH\tlocal PostgreSQL replica added (scale 3 → 4) → streaming, vs pg_basebackup by hand\t%.2f s\t%.2f s\t%.2f\t—\n' "$firecamp_add" "$hand_add" "$ratio_add"
