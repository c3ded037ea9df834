# Sourced by testbed/bed: real nodes, each a kubelet v1.36 + containerd + runc + kube-proxy in a
# network namespace of its own (as kind gives each node its own), so host-network pods of two
# nodes never collide. See docs/testbed.md, "Real nodes".
#
# Addresses are the bed's own, on a bridge it creates (never anyone else's range). The bridge is
# the bed's "VPC" 10.250.0.0/16: every address in it is on-link, as a VPC routes any of its
# addresses to the instance that holds it, so a member's static IP works on whichever node holds it.
#   bridge fcbed0 on the host        10.250.0.1/16  (the apiserver, CoreDNS and moto for pods)
#   node i of zone z, netns fcbed-n<i>, eth0
#                                    10.250.<16+z>.<11+i>/16 (in its zone's subnet 10.250.<16+z>.0/24)
#   node i's pods, bridge cni0       10.251.<i>.0/24, routed to by every node and the host

NET_BRIDGE=fcbed0
HOST_IP=10.250.0.1
NODE_NET_PREFIX=10.250
POD_NET_PREFIX=10.251
SERVICE_CIDR=10.96.0.0/16
IMAGE_REGISTRY=firecamp.local
CGROUP_CONTROLLERS=(cpu cpuacct cpuset memory devices freezer blkio pids systemd)

node_ip() { local z; IFS=, read -r -a z <<<"$FIRECAMP_TESTBED_ZONES"; echo "$NODE_NET_PREFIX.$((16 + $1 % ${#z[@]})).$((11 + $1))"; }
node_zone() { local z; IFS=, read -r -a z <<<"$FIRECAMP_TESTBED_ZONES"; echo "${z[$1 % ${#z[@]}]}"; }
node_name() { echo "ip-$(node_ip "$1" | tr . -).ec2.internal"; }
node_ns() { echo "fcbed-n$1"; }
node_dir() { echo "$BED/nodes/n$1"; }
in_node() { local i=$1; shift; nsenter --net="/var/run/netns/$(node_ns "$i")" "$@"; }

# host_net_up: the bridge the nodes hang on; the apiserver and CoreDNS listen on its address.
host_net_up() {
  ip link show "$NET_BRIDGE" >/dev/null 2>&1 || ip link add "$NET_BRIDGE" type bridge
  # Not `ip | grep -q`: grep's early exit fails the pipeline (pipefail) with SIGPIPE.
  local addrs; addrs=$(ip -o addr show dev "$NET_BRIDGE")
  [[ $addrs == *" $HOST_IP/16 "* ]] || ip addr add "$HOST_IP/16" dev "$NET_BRIDGE"
  ip link set "$NET_BRIDGE" up
}

host_net_down() {
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '/^fcbed-n[0-9]+/ {print $1}'); do ip netns del "$ns" 2>/dev/null || true; done
  ip link del "$NET_BRIDGE" 2>/dev/null || true
  ip route show | awk -v p="$POD_NET_PREFIX." 'index($1, p) == 1 {print $1}' | while read -r r; do ip route del "$r" 2>/dev/null || true; done
  return 0
}

# node_net_up I N: node I's namespace, its veth on the bridge, routes to every node's pods.
node_net_up() {
  local i=$1 n=$2 ns veth j
  ns=$(node_ns "$i") veth="fcbv$i"
  # A namespace of that name left by a bed that was killed (no `down`) is removed; one that
  # processes still hold is another bed's running node, which two beds on one host cannot share.
  if [ -e "/var/run/netns/$ns" ]; then
    local held; held=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
    [ -z "$held" ] || die "network namespace $ns is in use (pids $held): another bed's real nodes run on this host; stop it (testbed/bed down in its checkout) first"
    ip netns del "$ns" 2>/dev/null || rm -f "/var/run/netns/$ns"
    log "removed the leftover network namespace $ns"
  fi
  ip link del "$veth" 2>/dev/null || true
  ip netns add "$ns"
  ip link add "$veth" type veth peer name eth0 netns "$ns"
  ip link set "$veth" master "$NET_BRIDGE" up
  in_node "$i" ip addr add "$(node_ip "$i")/16" dev eth0
  in_node "$i" ip link set lo up
  in_node "$i" ip link set eth0 up
  in_node "$i" ip route add default via "$HOST_IP"
  in_node "$i" sysctl -qw net.ipv4.ip_forward=1
  for ((j = 0; j < n; j++)); do
    [ "$j" = "$i" ] || in_node "$i" ip route add "$POD_NET_PREFIX.$j.0/24" via "$(node_ip "$j")"
  done
  ip route replace "$POD_NET_PREFIX.$i.0/24" via "$(node_ip "$i")"
}

# node_cgroups I: kubelet needs its cgroup root to exist in every v1 controller (with cpuset's
# cpus and mems filled in), else "cgroup ... has some missing paths".
node_cgroups() {
  local c d
  for c in "${CGROUP_CONTROLLERS[@]}"; do
    d=/sys/fs/cgroup/$c/fcbed-n$1
    [ -d "/sys/fs/cgroup/$c" ] || continue
    mkdir -p "$d"
    if [ "$c" = cpuset ]; then
      cat /sys/fs/cgroup/cpuset/cpuset.cpus >"$d/cpuset.cpus"
      cat /sys/fs/cgroup/cpuset/cpuset.mems >"$d/cpuset.mems"
    fi
  done
}

node_cgroups_down() {
  local c d
  for c in "${CGROUP_CONTROLLERS[@]}"; do
    for d in /sys/fs/cgroup/"$c"/fcbed-n*; do
      [ -d "$d" ] || continue
      # Leaf cgroups first; a cgroup with processes left is reported, not forced.
      find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  done
}

# node_config I ZONE PROVIDER_ID: containerd's, kubelet's and kube-proxy's files for node I.
node_config() {
  local i=$1 zone=$2 provider=$3 d; d=$(node_dir "$i")
  local run=$BED/run/n$i
  mkdir -p "$d/cni" "$d/pod-logs" "$d/kubelet" "$d/volume-plugins" "$run"
  cat >"$d/containerd.toml" <<T
version = 2
root = "$d/containerd"
state = "$run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$run/containerd.sock"
[ttrpc]
  address = "$run/containerd.sock.ttrpc"
[debug]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$IMAGE_REGISTRY/pause:3.10"
  # This machine's container lacks CAP_SYS_RESOURCE: lowering oom_score_adj fails with EPERM.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/cni"
T
  cat >"$d/cni/10-bed.conflist" <<T
{"cniVersion": "0.4.0", "name": "bed", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$d/cni-ipam", "ranges": [[{"subnet": "$POD_NET_PREFIX.$i.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
T
  # Pods resolve through CoreDNS on the bridge (testbed/bed dns); nothing else is reachable.
  printf 'nameserver %s\n' "$HOST_IP" >"$BED/resolv.conf"
  cat >"$d/kubelet.yaml" <<T
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 here: kubelet 1.35+ refuses it unless told (supported until at least 1.38).
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /fcbed-n$i
containerRuntimeEndpoint: unix://$run/containerd.sock
podLogsDir: $d/pod-logs
volumePluginDir: $d/volume-plugins
address: $(node_ip "$i")
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
failSwapOn: false
providerID: $provider
clusterDNS: [$HOST_IP]
clusterDomain: cluster.local
resolvConf: $BED/resolv.conf
maxPods: 40
serializeImagePulls: false
# The disk is shared with the whole machine: evict only when it is really full, never GC images
# (they cannot be pulled again).
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $BED/pki/ca.crt}
authorization: {mode: AlwaysAllow}
nodeStatusReportFrequency: 10s
T
  cat >"$d/kube-proxy.yaml" <<T
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $d/kube-proxy.kubeconfig}
hostnameOverride: $(node_name "$i")
mode: iptables
clusterCIDR: $POD_NET_PREFIX.0.0/16
# Pod to Service to a pod of the same bridge: without br_netfilter the reply would bypass the
# DNAT; masquerading every Service connection keeps it on the node.
iptables: {masqueradeAll: true, syncPeriod: 30s, minSyncPeriod: 1s}
# The node's namespace cannot set the machine-wide conntrack table size: leave it.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
T
}

# provider_id I: node I's providerID: its moto instance when the bed has AWS (testbed/bed up
# --aws), else an AWS-style one made up as firecamp-testbed does for kwok nodes.
provider_id() {
  local id; id=$(sed -n "s/^node-$1 //p" "$BED/instances" 2>/dev/null)
  [ -n "$id" ] || id=i-$(printf '%s/%s' "$FIRECAMP_TESTBED_CLUSTER" "$(node_name "$1")" | sha256sum | cut -c1-17)
  printf 'aws:///%s/%s' "$(node_zone "$1")" "$id"
}

# import_images I: the bed's images into node I's containerd (they cannot be pulled).
import_images() {
  local i=$1 a; local sock=$BED/run/n$i/containerd.sock
  for a in "$IMAGES"/*.tar; do
    [ -e "$a" ] || die "no images in $IMAGES: run scripts/image.sh first"
    ctr -a "$sock" -n k8s.io images import --no-unpack=false --base-name "$IMAGE_REGISTRY/$(image_repo "$a")" "$a" >/dev/null \
      || die "importing $a into node $i failed"
  done
}

# image_repo ARCHIVE: the repository an archive's image is named under (its ref name is the tag).
image_repo() {
  case $(basename "$1" .tar) in
    postgres) echo library/postgres ;;
    redis) echo library/redis ;;
    zookeeper) echo library/zookeeper ;;
    firecamp) echo firecampdev/firecamp ;;
    pause) echo pause ;;
    *) die "unknown image archive $1" ;;
  esac
}

# real_nodes_up N: N real nodes round-robin over the zones, Ready and labelled.
real_nodes_up() {
  local n=$1 i zone name d token
  [ "$(id -u)" = 0 ] || die "real nodes need root (network namespaces, cgroups, containerd)"
  local b; for b in containerd containerd-shim-runc-v2 runc nsenter iptables /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/portmap; do
    command -v "$b" >/dev/null || [ -x "$b" ] || die "real nodes need $b (apt-get install containerd runc containernetworking-plugins iptables util-linux)"
  done
  for b in kubelet kube-proxy; do [ -x "$BIN/$b" ] || die "binary $BIN/$b is missing: run testbed/bed build"; done
  host_net_up
  for ((i = 0; i < n; i++)); do
    zone=$(node_zone "$i") name=$(node_name "$i") d=$(node_dir "$i")
    node_net_up "$i" "$n"
    node_cgroups "$i"
    node_config "$i" "$zone" "$(provider_id "$i")"
    token=$(sed -n "s/^\([^,]*\),system:node:$name,.*/\1/p" "$BED/pki/tokens.csv")
    kubeconfig "system:node:$name" "$token" "https://$HOST_IP:$APISERVER_PORT" >"$d/kubelet.kubeconfig"
    token=$(sed -n 's/^\([^,]*\),system:kube-proxy,.*/\1/p' "$BED/pki/tokens.csv")
    kubeconfig system:kube-proxy "$token" "https://$HOST_IP:$APISERVER_PORT" >"$d/kube-proxy.kubeconfig"
    chmod 600 "$d"/*.kubeconfig
  done
  # The images are imported (and unpacked) once, into node 0's containerd, whose store the other
  # nodes then get as hard links: unpacking every image on every node took 74 s for six nodes
  # here, the links take a second. Content blobs and unpacked layers are never written again
  # (overlayfs only reads its lower layers; a container's own layer is a new snapshot); the two
  # bolt databases, which are, are copied.
  node_containerd_start 0
  import_images 0
  stop containerd-n0
  local root0; root0=$(node_dir 0)/containerd
  for ((i = 1; i < n; i++)); do
    d=$(node_dir "$i")
    rm -rf "$d/containerd"
    cp -al "$root0" "$d/containerd"
    local db; while read -r db; do
      rm -f "$d/containerd/$db" && cp "$root0/$db" "$d/containerd/$db"
    done < <(cd "$root0" && find . -name '*.db' -type f)
  done
  for ((i = 0; i < n; i++)); do node_containerd_start "$i"; done
  mark "images imported into node 0's containerd and linked into $((n - 1)) other(s)"
  for ((i = 0; i < n; i++)); do node_agents_start "$i"; done
  for ((i = 0; i < n; i++)); do
    wait_for "node $(node_name "$i") Ready" 90 "kubelet-n$i" node_ready "$(node_name "$i")"
  done
  mark "$n real node(s) Ready"
}

# node_containerd_start I: node I's containerd, answering.
node_containerd_start() {
  local i=$1
  start "containerd-n$i" nsenter --net="/var/run/netns/$(node_ns "$i")" containerd --config "$(node_dir "$i")/containerd.toml"
  wait_for "containerd of node $i" 30 "containerd-n$i" ctr -a "$BED/run/n$i/containerd.sock" version
}

# node_agents_start I: node I's kubelet and kube-proxy (its containerd already runs).
node_agents_start() {
  local i=$1 zone name d
  zone=$(node_zone "$i") name=$(node_name "$i") d=$(node_dir "$i")
  # Every kubelet binds one fixed path, /var/lib/kubelet/device-plugins/kubelet.sock (no flag
  # moves it), after emptying that folder: two starting at once race, and the loser exits
  # (EADDRINUSE). So one at a time, each until its socket is there; the one before keeps serving
  # an unlinked socket, and no device plugin runs here. The lock holds across `bed node light`s too.
  local plugins=/var/lib/kubelet/device-plugins lock
  mkdir -p "$plugins"
  exec {lock}>"$plugins.bed-lock"
  flock "$lock"
  rm -f "$plugins/kubelet.sock"
  start "kubelet-n$i" nsenter --net="/var/run/netns/$(node_ns "$i")" "$BIN/kubelet" \
    --config="$d/kubelet.yaml" --kubeconfig="$d/kubelet.kubeconfig" --hostname-override="$name" \
    --node-ip="$(node_ip "$i")" --root-dir="$d/kubelet" --cert-dir="$d/pki" \
    --node-labels="topology.kubernetes.io/zone=$zone,topology.kubernetes.io/region=$FIRECAMP_TESTBED_REGION,node.kubernetes.io/instance-type=m5.large,firecamp-worker=$FIRECAMP_TESTBED_REAL_CLUSTER,type=real"
  # Not wait_for (which would take the bed down from `node light`): a kubelet that exits or
  # hangs here is reported by the wait for its node to be Ready.
  local deadline=$((SECONDS + 60))
  until [ -S "$plugins/kubelet.sock" ] || ! pid_of "kubelet-n$i" >/dev/null || [ $SECONDS -ge $deadline ]; do
    sleep 0.1
  done
  flock -u "$lock"
  exec {lock}>&-
  start "kube-proxy-n$i" nsenter --net="/var/run/netns/$(node_ns "$i")" "$BIN/kube-proxy" --config="$d/kube-proxy.yaml"
}

# cmd_node dark|mute|light I: a zone going dark and coming back. `dark` stops node I's kubelet
# and kube-proxy and cuts its link to the bridge: the API server stops hearing from it and nothing
# reaches its pods, which keep running, as an instance in an unreachable zone does. `mute` stops
# the agents only: the node goes NotReady while its pods still serve everyone who reaches them
# (a kubelet dead, or an instance cut from the control plane alone). `light` restores the link
# and the agents and waits until the node is Ready again.
cmd_node() {
  local what=${1:-} i=${2:-}
  [[ $i =~ ^[0-9]+$ ]] && [ -e "/var/run/netns/$(node_ns "$i")" ] || die "node: no real node '$i' (testbed/bed up --real-nodes N makes nodes 0..N-1)"
  case $what in
    dark | mute)
      stop "kube-proxy-n$i"
      stop "kubelet-n$i"
      [ "$what" = mute ] || ip link set "fcbv$i" down
      log "node $i ($(node_name "$i"), $(node_zone "$i")) is $what"
      ;;
    light)
      ip link set "fcbv$i" up
      pid_of "kubelet-n$i" >/dev/null || node_agents_start "$i"
      # Not wait_for: a failure here must leave the rest of the bed up.
      local deadline=$((SECONDS + 90))
      until node_ready "$(node_name "$i")" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || die "node $i is not Ready 90 s after coming back (log: $BED/logs/kubelet-n$i.log)"
        sleep 0.2
      done
      log "node $i ($(node_name "$i"), $(node_zone "$i")) is back"
      ;;
    *) die "usage: testbed/bed node dark|mute|light I" ;;
  esac
}

# cmd_cut cut|uncut SRC DST: the pod whose address is SRC no longer reaches DST (or again does):
# a partition between two pods, whatever nodes they are on, made in SRC's own network namespace
# (CNI names pods' namespaces cni-<uuid>) so nothing else between the nodes changes.
cmd_cut() {
  local what=${1:-} src=${2:-} dst=${3:-} ns found=
  [[ $src =~ ^[0-9.]+$ && $dst =~ ^[0-9.]+$ ]] || die "usage: testbed/bed cut|uncut SRC_POD_IP DST_IP"
  for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do
    [[ " $(ip -n "$ns" -o -4 addr show 2>/dev/null | awk '{print $4}' | tr '\n' ' ')" == *" $src/"* ]] && found=$ns && break
  done
  [ -n "$found" ] || die "$what: no pod of the bed's real nodes has the address $src"
  local rule=(OUTPUT -d "$dst" -j DROP)
  case $what in
    cut) ip netns exec "$found" iptables -C "${rule[@]}" 2>/dev/null || ip netns exec "$found" iptables -I "${rule[@]}" ;;
    uncut) while ip netns exec "$found" iptables -D "${rule[@]}" 2>/dev/null; do :; done ;;
  esac
  log "$what: $src → $dst (in $found)"
}

node_ready() { local n; n=$(api "/api/v1/nodes/$1" | tr -d ' \n'); [[ $n == *'"type":"Ready","status":"True"'* ]]; }

real_nodes_down() {
  local f i
  for f in "$BED"/run/kube-proxy-n*.pid "$BED"/run/kubelet-n*.pid; do
    [ -e "$f" ] || continue
    stop "$(basename "$f" .pid)"
  done
  # Containers outlive kubelet; containerd's shims hold them. Kill the pods' processes through
  # each node's cgroup root, then containerd.
  for f in "$BED"/run/containerd-n*.pid; do
    [ -e "$f" ] || continue
    i=${f##*containerd-n}; i=${i%.pid}
    kill_cgroup "fcbed-n$i"
    stop "containerd-n$i"
  done
  pkill -f "containerd-shim-runc-v2 -namespace k8s.io -id .* -address $BED/run/" 2>/dev/null || true
  # Pods' mounts (overlay rootfs, tokens, emptyDirs) live under the nodes' folders.
  { grep -F " $BED/" /proc/self/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  node_cgroups_down
  # The pods' network namespaces (CNI names them cni-<uuid>): containerd, killed, could not
  # remove them. One that no process holds any more is a leftover sandbox's.
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do
    [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && ip netns del "$ns" 2>/dev/null || true
  done
  host_net_down
}

# kill_cgroup ROOT: SIGKILL every process left in a node's cgroup tree (its pods' containers).
kill_cgroup() {
  local procs; procs=$(find "/sys/fs/cgroup/pids/$1" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
  [ -z "$procs" ] || kill -KILL $procs 2>/dev/null || true
}
