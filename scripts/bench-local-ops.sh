#!/bin/bash
# Ordered updates on the local runtime (as root; PostgreSQL 15 from Debian installed):
# a 3-member PostgreSQL service with a continuous writer, one PrimaryLast and one PrimaryFirst
# update per round (ROUNDS=n, default 1). Prints, per update, the operation's total time, the
# sum of its members' own restart times (the restart steps of the same operation), their
# ratio, the switchover's time and the longest pause between two acknowledged writes.
# See crates/local/examples/bench_ops.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root (members bind loopback addresses, PostgreSQL runs as postgres)" >&2; exit 1; }
cargo build -q -p firecamp-local --example bench_ops
exec "$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/examples/bench_ops"
