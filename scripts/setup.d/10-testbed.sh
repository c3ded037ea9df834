# The Kubernetes test bed (docs/testbed.md): kwok nodes for the many-node tests and real nodes
# (kubelet + containerd + runc) running FireCamp's images (docs/images.md). Binaries and images
# are built once per input (stamps), then the bed is started for the run.
bed_pkgs=()
for c in containerd runc nsenter iptables mmdebstrap umoci; do command -v "$c" >/dev/null || bed_pkgs+=("$c"); done
[ -x /usr/lib/cni/bridge ] || bed_pkgs+=(containernetworking-plugins)
if [ ${#bed_pkgs[@]} -gt 0 ]; then
  bed_pkgs=("${bed_pkgs[@]/nsenter/util-linux}")
  echo "installing: ${bed_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${bed_pkgs[@]}" >/dev/null
fi
# The Go binaries and the images build side by side (the images' Debian root filesystems are
# mostly downloads and dpkg; both wait for cargo's lock when they compile Rust).
bed_log=$(mktemp)
testbed/bed build >"$bed_log" 2>&1 & bed_build=$!
scripts/image.sh & images=$!
wait "$images" || { echo "scripts/image.sh failed" >&2; kill "$bed_build" 2>/dev/null; exit 1; }
wait "$bed_build" || { cat "$bed_log" >&2; echo "testbed/bed build failed" >&2; exit 1; }
cat "$bed_log"; rm -f "$bed_log"
CLEANUP+=('step "test bed: down"; testbed/bed down')
# Redis members use the host network, one per node: 18 kwok nodes let several tests run at once.
testbed/bed up --nodes 18 --real-nodes 3
eval "$(testbed/bed env)"
