#!/usr/bin/env bash
# The test command: installs what the tests need, builds and starts the Kubernetes test bed,
# runs every test of the workspace against it, and stops the bed whatever happens.
#   scripts/test.sh            everything
#   scripts/test.sh -- ARGS    extra arguments for `cargo test` (e.g. -- -p firecamp-kube)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { printf '\n==> %s\n' "$*"; }

step "tools"
need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v curl >/dev/null || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi
command -v cargo >/dev/null || { echo "cargo is missing: install Rust (rustup) first" >&2; exit 1; }
cargo --version

step "test bed: build (Go binaries are cached by go.sum hash)"
testbed/bed build

step "test bed: up"
trap 'step "test bed: down"; testbed/bed down || true' EXIT
testbed/bed up
eval "$(testbed/bed env)"

step "cargo test"
[ "${1:-}" = "--" ] && shift
cargo test --workspace --locked "$@"
