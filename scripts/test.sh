#!/usr/bin/env bash
# The test command: installs what the tests need, builds and starts the Kubernetes test bed,
# runs every test of the workspace against it, and stops the bed whatever happens.
#   scripts/test.sh            everything
#   scripts/test.sh -- ARGS    extra arguments for `cargo test` (e.g. -- -p firecamp-kube)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { printf '\n==> %s (%s)\n' "$*" "$(date +%T)"; }

step "tools"
need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v curl >/dev/null || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi
command -v cargo >/dev/null || { echo "cargo is missing: install Rust (rustup) first" >&2; exit 1; }
cargo --version

step "cargo fmt --check"
cargo fmt --all -- --check

# Each file in scripts/setup.d installs and starts what one group of tests needs. A file may
# push commands onto CLEANUP (run in reverse order on exit) and export variables the tests read.
CLEANUP=()
cleanup() {
  local i
  for ((i=${#CLEANUP[@]}-1; i>=0; i--)); do eval "${CLEANUP[i]}" || true; done
}
trap cleanup EXIT
for f in scripts/setup.d/*.sh; do
  step "setup: $(basename "$f" .sh)"
  . "$f"
done

# Lints beside the tests, at the lowest CPU priority so they only take what the tests leave idle
# (waiting on pods and servers): their check build shares nothing with the test build, so it has
# its own target directory and never waits for the test build's lock. Reported after the tests,
# so a lint never hides a failing test.
step "cargo clippy (in the background, niced)"
clippy_log=$(mktemp)
CARGO_TARGET_DIR=target/clippy nice -n 19 cargo clippy --workspace --all-targets --locked -- -D warnings >"$clippy_log" 2>&1 & clippy=$!
CLEANUP+=("kill $clippy 2>/dev/null; rm -f $clippy_log")

step "cargo test"
tests=0
if [ "${1:-}" = "--" ]; then
  shift
  cargo test --workspace --locked --no-fail-fast "$@" || tests=$?
else
  # One build, then two lanes side by side: the local runtime's tests (real servers on
  # 127.0.0.0/8) and everything else (mostly waiting on the bed's pods). They share nothing:
  # the local tests' address pools are their own. Each lane runs its binaries one after the
  # other, every one even after one fails, so one run shows every failure.
  cargo test --workspace --locked --no-run
  lanes=$(mktemp -d)
  CLEANUP+=("rm -rf $lanes")
  cargo test --workspace --locked --no-run --message-format=json 2>/dev/null | scripts/test-lanes.py "$lanes"
  run_lane() { # lane file → exit status of the lane
    local status=0 dir exe
    while IFS=$'\t' read -r dir exe; do
      printf '     Running %s\n' "${exe#"$PWD"/}"
      (cd "$dir" && CARGO_MANIFEST_DIR="$dir" "$exe") || status=1
    done <"$1"
    return "$status"
  }
  local_status=0
  run_lane "$lanes/local" >"$lanes/local.log" 2>&1 & local_lane=$!
  CLEANUP+=("kill $local_lane 2>/dev/null")
  run_lane "$lanes/rest" || tests=1
  cargo test --workspace --locked --doc || tests=1
  wait "$local_lane" || local_status=$?
  step "cargo test: the local runtime's lane"
  cat "$lanes/local.log"
  [ "$local_status" -eq 0 ] || tests=1
fi

step "cargo clippy: its result"
lints=0
wait "$clippy" || lints=$?
cat "$clippy_log"
[ "$tests" -eq 0 ] || { echo "cargo test failed (exit $tests)" >&2; exit "$tests"; }
[ "$lints" -eq 0 ] || { echo "cargo clippy failed (exit $lints)" >&2; exit "$lints"; }
step "all passed"
