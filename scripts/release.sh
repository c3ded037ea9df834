#!/usr/bin/env bash
# A release of the `firecamp` binary a user can install without the source tree: one static
# (musl) executable in a tarball, with its SHA-256 checksum.
#   scripts/release.sh [out-dir]      (default: target/dist)
# Needs Rust's x86_64-unknown-linux-musl target (`rustup target add x86_64-unknown-linux-musl`)
# and a musl C compiler for the crates with C inside (ring, aws-lc): Debian's `musl-tools`.
# The release profile builds cold in about half an hour on 2 cores; later runs reuse it.
# Checks before it writes anything out: the binary is statically linked and runs
# (`firecamp --version` from the unpacked tarball).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=x86_64-unknown-linux-musl
out="${1:-target/dist}"
die() { echo "release.sh: $*" >&2; exit 1; }

rustup target list --installed 2>/dev/null | grep -qx "$target" || die "the Rust target $target is missing: rustup target add $target"
command -v musl-gcc >/dev/null || die "musl-gcc is missing: apt-get install musl-tools"
version="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "firecamp"))')"
targetdir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

# cc-rs finds musl-gcc by the target's name; aws-lc's build needs it said outright.
export CC_x86_64_unknown_linux_musl=musl-gcc
cargo build --release --locked --target "$target" -p firecamp
bin="$targetdir/$target/release/firecamp"

# Static: no interpreter and no shared library (file(1) says "statically linked" or "static-pie").
file -L "$bin" | grep -Eq 'statically linked|static-pie linked' || die "$bin is not static: $(file -L "$bin")"

name="firecamp-$version-x86_64-linux-musl"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name" "$out"
cp "$bin" "$stage/$name/firecamp"
strip "$stage/$name/firecamp"
cp README.md "$stage/$name/"
[ -f LICENSE ] && cp LICENSE "$stage/$name/"
# Reproducible archive: fixed order, owner and times.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2026-01-01 00:00:00Z' -C "$stage" -czf "$out/$name.tar.gz" "$name"
(cd "$out" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")

# What a user does: verify, unpack, run.
check="$(mktemp -d)"
trap 'rm -rf "$stage" "$check"' EXIT
(cd "$out" && sha256sum -c "$name.tar.gz.sha256" >/dev/null) || die "checksum mismatch"
tar -xzf "$out/$name.tar.gz" -C "$check"
"$check/$name/firecamp" --version >/dev/null || die "the unpacked binary does not run"
echo "$out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1)), sha256 $(cut -d' ' -f1 "$out/$name.tar.gz.sha256")"
