# The Kubernetes test bed (docs/testbed.md): kwok nodes for the many-node tests and real nodes
# (kubelet + containerd + runc) running FireCamp's images (docs/images.md). Binaries and images
# are built once per input (stamps); the bed starts in 25-testbed-up.sh, once moto is there.
bed_pkgs=()
for c in containerd runc nsenter iptables mmdebstrap umoci; do command -v "$c" >/dev/null || bed_pkgs+=("$c"); done
[ -x /usr/lib/cni/bridge ] || bed_pkgs+=(containernetworking-plugins)
if [ ${#bed_pkgs[@]} -gt 0 ]; then
  bed_pkgs=("${bed_pkgs[@]/nsenter/util-linux}")
  echo "installing: ${bed_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${bed_pkgs[@]}" >/dev/null
fi
# Side by side: the Go binaries, the engine images (Debian root filesystems: downloads and dpkg),
# and the workspace's test build, whose debug `firecamp` goes into the bed's FireCamp image (one
# Rust build instead of two; users build the release image with scripts/image.sh).
bed_log=$(mktemp) images_log=$(mktemp)
testbed/bed build >"$bed_log" 2>&1 & bed_build=$!
scripts/image.sh postgres redis zookeeper pause >"$images_log" 2>&1 & images=$!
cargo build --workspace --tests --locked
FIRECAMP_BIN=target/debug/firecamp scripts/image.sh firecamp
wait "$images" || { cat "$images_log" >&2; echo "scripts/image.sh failed" >&2; kill "$bed_build" 2>/dev/null; exit 1; }
cat "$images_log"
wait "$bed_build" || { cat "$bed_log" >&2; echo "testbed/bed build failed" >&2; exit 1; }
cat "$bed_log"; rm -f "$bed_log" "$images_log"
CLEANUP+=('step "test bed: down"; testbed/bed down')
# The bridge the real nodes hang on: moto (20-moto.sh) listens on its address for their pods.
eval "$(testbed/bed net)"
