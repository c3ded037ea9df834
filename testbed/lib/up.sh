# Sourced by testbed/bed: up, down, env, status.

BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok firecamp-testbed)

cmd_up() {
  while [ $# -gt 0 ]; do
    case $1 in
      --nodes) export FIRECAMP_TESTBED_NODES=$2; shift 2 ;;
      --zones) export FIRECAMP_TESTBED_ZONES=$2; shift 2 ;;
      --cluster) export FIRECAMP_TESTBED_CLUSTER=$2; shift 2 ;;
      --region) export FIRECAMP_TESTBED_REGION=$2; shift 2 ;;
      --real-nodes) export FIRECAMP_TESTBED_REAL_NODES=$2; shift 2 ;;
      --aws) export FIRECAMP_TESTBED_AWS_ENDPOINT=$2; shift 2 ;;
      *) die "up: unknown option $1 (known: --nodes N --real-nodes N --aws URL --zones a,b,c --cluster NAME --region R)" ;;
    esac
  done
  REAL_NODES=${FIRECAMP_TESTBED_REAL_NODES:-0}
  if pid_of kube-apiserver >/dev/null && readyz; then
    log "already up"; print_usage; return 0
  fi
  if [ -d "$BED/run" ] && [ -n "$(ls -A "$BED/run" 2>/dev/null)" ]; then
    log "found a half-dead bed in $BED: cleaning it up first"; cmd_down
  fi
  local b p
  for b in "${BINARIES[@]}"; do
    [ -x "$BIN/$b" ] || die "binary $BIN/$b is missing: run testbed/bed build first"
  done
  for p in "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" "$KCM_PORT" "$SCHEDULER_PORT" "$KWOK_PORT"; do
    port_taken "$p" && die "port 127.0.0.1:$p is taken (another bed? try testbed/bed down, or see: ss -ltnp | grep :$p)"
  done

  t0ns=$(date +%s%N)
  rm -rf "$BED/etcd-data" "$BED/pki" "$BED/run" "$BED/nodes" "$BED/volumes" "$BED/aws.env" "$BED/instances"
  mkdir -p "$BED/run" "$BED/logs"
  rm -f "$BED"/logs/*.log
  gen_pki
  mark "PKI generated"

  start etcd "$BIN/etcd" --data-dir "$BED/etcd-data" --client-port "$ETCD_PORT" --peer-port "$ETCD_PEER_PORT"
  wait_for "etcd health" 30 etcd curl -fs --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"
  mark "etcd healthy"

  local pki=$BED/pki real=()
  if [ "$REAL_NODES" -gt 0 ]; then
    # Pods reach the apiserver on the bed's bridge; kubelets are nodes with node identities.
    host_net_up
    real=(--bind-address=0.0.0.0 --advertise-address="$HOST_IP" --endpoint-reconciler-type=lease
      --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction
      --kubelet-client-certificate="$pki/kubelet-client.crt" --kubelet-client-key="$pki/kubelet-client.key"
      --kubelet-preferred-address-types=InternalIP,Hostname)
  else
    real=(--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --endpoint-reconciler-type=none --authorization-mode=RBAC)
  fi
  start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" "${real[@]}" \
    --secure-port="$APISERVER_PORT" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" --token-auth-file="$pki/tokens.csv" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" --service-cluster-ip-range=10.96.0.0/16 \
    --enable-priority-and-fairness=false --profiling=false
  wait_for "kube-apiserver /readyz" 60 kube-apiserver readyz
  mark "kube-apiserver ready"

  start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$BED/kcm.kubeconfig" --authentication-kubeconfig="$BED/kcm.kubeconfig" \
    --authorization-kubeconfig="$BED/kcm.kubeconfig" --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
    --leader-elect=false --root-ca-file="$pki/ca.crt" --service-account-private-key-file="$pki/sa.key" \
    --use-service-account-credentials=true --profiling=false
  start kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig="$BED/scheduler.kubeconfig" --authentication-kubeconfig="$BED/scheduler.kubeconfig" \
    --authorization-kubeconfig="$BED/scheduler.kubeconfig" --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" \
    --leader-elect=false --profiling=false
  start kwok "$BIN/kwok" --kubeconfig="$BED/kwok.kubeconfig" --config="$TB/kwok-stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --cidr=10.244.0.1/16 --node-ip=127.0.0.1 --server-address="127.0.0.1:$KWOK_PORT" \
    --node-lease-duration-seconds=40
  # Pods are rejected until their namespace's default ServiceAccount exists.
  wait_for "the default ServiceAccount" 60 kube-controller-manager api /api/v1/namespaces/default/serviceaccounts/default
  mark "default ServiceAccount exists"

  KUBECONFIG=$BED/admin.kubeconfig "$BIN/firecamp-testbed" setup >>"$BED/logs/setup.log" 2>&1 \
    || { tail -25 "$BED/logs/setup.log" >&2; fail_up "creating nodes/StorageClasses failed (log: $BED/logs/setup.log)"; }
  mark "nodes Ready, StorageClass created"
  # Volumes are folders of the bed's own (real nodes mount them as local volumes).
  start provisioner env FIRECAMP_TESTBED_VOLUMES="$BED/volumes" "$BIN/firecamp-testbed" --kubeconfig "$BED/admin.kubeconfig" provision
  pid_of kwok >/dev/null || fail_up "kwok died (log: $BED/logs/kwok.log)"
  if [ "$REAL_NODES" -gt 0 ]; then
    # With AWS (moto), each real node is an instance of its zone's subnet first: its providerID.
    [ -z "${FIRECAMP_TESTBED_AWS_ENDPOINT:-}" ] || bed_aws "$REAL_NODES"
    real_nodes_up "$REAL_NODES"
    [ -z "${FIRECAMP_TESTBED_AWS_ENDPOINT:-}" ] || dns_up
  fi

  log "up in $(since_start) s: $(api /api/v1/nodes | grep -c '"kwok.x-k8s.io/node"') nodes, folder $BED"
  print_usage
}

since_start() { local ms=$((($(date +%s%N) - t0ns) / 1000000)); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }
mark() { log "$(since_start) s: $1"; }

print_usage() {
  cat <<U
Kubernetes $K8S_VERSION test bed on https://127.0.0.1:$APISERVER_PORT. To use it:
  eval "\$(testbed/bed env)"      # or: export KUBECONFIG=$BED/admin.kubeconfig
  cargo test -p firecamp-testbed
  testbed/bed down
U
}

cmd_down() {
  stop_all
  # State goes; logs stay for post-mortems (the next `up` truncates them).
  rm -rf "$BED/etcd-data" "$BED/pki" "$BED/run" "$BED/nodes" "$BED/volumes" "$BED"/*.kubeconfig "$BED/aws.env" "$BED/instances" 
  log "down (logs kept in $BED/logs)"
}

cmd_env() {
  echo "export KUBECONFIG=$BED/admin.kubeconfig"
  echo "export FIRECAMP_TESTBED_DIR=$BED"
  if [ -n "$(ls "$BED"/run/kubelet-n*.pid 2>/dev/null)" ]; then
    echo "export FIRECAMP_TESTBED_HOST_IP=$HOST_IP FIRECAMP_TESTBED_IMAGE_REGISTRY=$IMAGE_REGISTRY"
  fi
  [ -f "$BED/aws.env" ] && cat "$BED/aws.env"
}

cmd_status() {
  local n pid rss total=0 up=0
  local names=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok provisioner) f want=6
  for f in "$BED"/run/containerd-n*.pid "$BED"/run/kubelet-n*.pid "$BED"/run/kube-proxy-n*.pid "$BED"/run/coredns.pid; do
    [ -e "$f" ] && names+=("$(basename "$f" .pid)") && want=$((want + 1))
  done
  for n in "${names[@]}"; do
    if pid=$(pid_of "$n"); then
      rss=$(awk '/^VmRSS:/ {print int($2 / 1024)}' "/proc/$pid/status")
      total=$((total + rss)); up=$((up + 1))
      printf '%-24s pid %-8s rss %5s MiB\n' "$n" "$pid" "$rss"
    else
      printf '%-24s not running\n' "$n"
    fi
  done
  printf '%-24s %s processes, rss %s MiB\n' total "$up" "$total"
  if [ "$up" -gt 0 ] && readyz; then echo "apiserver: ready"; [ "$up" = "$want" ]; else echo "apiserver: not ready"; return 1; fi
}
