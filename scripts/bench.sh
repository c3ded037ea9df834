#!/usr/bin/env bash
# Every benchmark of the project in one go (not a test: it prints figures). Each benchmark
# measures FireCamp and its baseline in the same run on this machine and prints `BENCH` lines
# (what, FireCamp, baseline, ratio, budget); this script runs them one after another (side by
# side they would slow each other) and ends with one table of those lines. docs/benchmarks.md
# says what each measures and holds the last figures.
#   scripts/bench.sh                 everything: the bed's benchmark, then the local runtime's
#   BENCH_ONLY=local scripts/bench.sh   only the local runtime's (no test bed needed)
#   BENCH_ONLY=bed scripts/bench.sh     only the bed's
#   BENCH_SERVICES=N                 one-member services for the manage service's RSS (default 100)
#   BENCH_RSS_ONLY=1                 the bed's benchmark measures only that RSS (with N=1000: the budget)
#   BENCH_FAILOVER_ROUNDS=N          failovers per engine on the bed's real pods (default 3)
# As root (the local runtime starts servers as their users; the bed's nodes need it too). The
# bed's benchmark uses a running bed (testbed/bed env) or starts one with 12 kwok nodes and stops
# it after. Each benchmark's whole output goes to $BENCH_LOG_DIR (default a temp directory).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench.sh: run as root" >&2; exit 2; }
only="${BENCH_ONLY:-all}"
case "$only" in all | local | bed) ;; *) echo "bench.sh: BENCH_ONLY must be all, local or bed, not $only" >&2; exit 2 ;; esac
logs="${BENCH_LOG_DIR:-$(mktemp -d /tmp/firecamp-bench.XXXXXX)}"
mkdir -p "$logs"
step() { printf '\n==> %s\n' "$*" >&2; }
started=$(date +%s)

# The release profile: what users run (the image's binary, `cargo install`). The first build
# takes a while; later runs reuse it. BENCH_PROFILE=dev measures the tests' debug build instead.
profile="${BENCH_PROFILE:-release}"
case "$profile" in release) dir=release ;; dev) dir=debug ;; *) echo "bench.sh: BENCH_PROFILE must be release or dev" >&2; exit 2 ;; esac
step "building ($profile profile)"
cargo build -q --locked --profile "$profile" -p firecamp
[ "$only" = local ] || cargo build -q --locked --profile "$profile" -p firecamp --example bench_manage
[ "$only" = bed ] || cargo build -q --locked --profile "$profile" -p firecamp-local --examples
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
examples="$target/$dir/examples"

# One benchmark: its output to its log and to the terminal; a failure is reported in the table
# rather than ending the run.
failed=()
ran=()
run() {
  local name="$1"; shift
  step "$name"
  ran+=("$logs/$name.log")
  if ! "$@" 2>&1 | tee "$logs/$name.log"; then
    failed+=("$name")
  fi
}

bed_started=""
trap '[ -z "$bed_started" ] || testbed/bed down >/dev/null 2>&1 || true' EXIT
if [ "$only" != local ]; then
  if ! testbed/bed status >/dev/null 2>&1; then
    step "starting a test bed with 12 kwok nodes"
    testbed/bed build >"$logs/bed-build.log" 2>&1
    testbed/bed up --nodes 12 >"$logs/bed-up.log" 2>&1
    bed_started=1
  fi
  eval "$(testbed/bed env)"
  run bench_manage "$examples/bench_manage"
  # AWS calls per create, member move, scale-in and delete: the moto test of the static IPs,
  # records and log streams counts them through its proxy (the tests' debug build; a count does
  # not depend on the profile). moto is started for it and stopped after.
  CLEANUP=()
  . scripts/setup.d/20-moto.sh >"$logs/moto.log" 2>&1
  run aws_calls cargo test -q --locked -p firecamp --test aws_on_bed members_get_static_ips -- --nocapture
  for c in "${CLEANUP[@]}"; do eval "$c" || true; done
  # Failover on real pods (the primary's pod deleted, its zone cordoned): needs a bed with real
  # nodes and CoreDNS, started by you with its moto (testbed/bed up --real-nodes 6 --aws URL).
  if [ -n "${FIRECAMP_TESTBED_REAL_CLUSTER:-}" ]; then
    run failover_on_real_pods env FIRECAMP_FAILOVER_ROUNDS="${BENCH_FAILOVER_ROUNDS:-3}" \
      cargo test -q --locked -p firecamp --test real_failover -- --nocapture
  else
    step "failover on real pods: not measured, the bed has no real nodes (testbed/bed up --real-nodes 6 --aws URL)"
  fi
  if [ -n "$bed_started" ]; then testbed/bed down >/dev/null 2>&1 || true; bed_started=""; fi
fi

if [ "$only" != bed ]; then
  run bench-local-pg scripts/bench-local-pg.sh "$target/$dir/firecamp"
  run bench_ops "$examples/bench_ops"
  run bench_failover-postgresql "$examples/bench_failover" postgresql
  run bench_failover-redis "$examples/bench_failover" redis
  run bench_tls "$examples/bench_tls"
  run bench_backup "$examples/bench_backup"
  run bench_reshard "$examples/bench_reshard"
  run bench_kafka "$examples/bench_kafka"
  run bench_mariadb "$examples/bench_mariadb"
  run bench_cassandra "$examples/bench_cassandra"
fi

step "all benchmarks: FireCamp against its baseline measured in the same run ($(( ($(date +%s) - started) / 60 )) min; logs in $logs)"
{
  echo "| benchmark | FireCamp | baseline | ratio | budget |"
  echo "| --- | --- | --- | --- | --- |"
  cat "${ran[@]}" | awk -F'\t' '$1 == "BENCH" { printf "| %s | %s | %s | %s | %s |\n", $2, $3, $4, $5, $6 }'
}
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed (see their logs): ${failed[*]}" >&2
  exit 1
fi
