# Sourced by testbed/bed: `dns`, CoreDNS for the real nodes' pods. Members find each other as
# `<member>.<cluster>-firecamp.com`: FireCamp writes those records to Route53 (moto on the bed),
# and CoreDNS's route53 plugin serves that zone to pods, as a cluster's resolver would on AWS.

cmd_dns() {
  local endpoint="" py=${FIRECAMP_TESTBED_PYTHON:-$REPO/.venv-moto/bin/python}
  while [ $# -gt 0 ]; do
    case $1 in
      --route53) endpoint=$2; shift 2 ;;
      *) die "dns: unknown option $1 (known: --route53 ENDPOINT)" ;;
    esac
  done
  [ -n "$endpoint" ] || die "dns: --route53 ENDPOINT (moto's URL, reachable from pods) is required"
  [ -x "$BIN/coredns" ] || die "binary $BIN/coredns is missing: run testbed/bed build"
  [ -x "$py" ] || die "dns: no python with boto3 at $py (scripts/setup.d/20-moto.sh makes it; or set FIRECAMP_TESTBED_PYTHON)"
  [[ $(ip -o addr show dev "$NET_BRIDGE" 2>/dev/null) == *" $HOST_IP/"* ]] || die "dns: no bridge $NET_BRIDGE: start the bed with --real-nodes first"
  stop coredns
  "$py" "$TB/lib/bed_aws.py" "$endpoint" "$FIRECAMP_TESTBED_REGION" "$FIRECAMP_TESTBED_REAL_CLUSTER" "$FIRECAMP_TESTBED_ZONES" >"$BED/aws.env.new" \
    || die "dns: creating the VPC and hosted zone in $endpoint failed"
  mv "$BED/aws.env.new" "$BED/aws.env"
  . "$BED/aws.env"
  local domain="$FIRECAMP_TESTBED_REAL_CLUSTER-firecamp.com"
  cat >"$BED/Corefile" <<C
$domain:53 {
  bind $HOST_IP
  route53 $domain.:$FIRECAMP_TESTBED_ZONE_ID {
    refresh 1s
  }
  errors
}
.:53 {
  bind $HOST_IP
  errors
}
C
  # The endpoint goes in the SDK's environment: CoreDNS 1.15's `aws_endpoint` reads its argument
  # after the block is parsed (a closure over the parser's cursor) and gets "}".
  start coredns env AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION="$FIRECAMP_TESTBED_REGION" AWS_ENDPOINT_URL="$endpoint" \
    "$BIN/coredns" -conf "$BED/Corefile"
  # Not wait_for: a CoreDNS that does not come up stops itself, not the bed.
  local deadline=$((SECONDS + 30))
  until dns_answers "$domain"; do
    if ! pid_of coredns >/dev/null || [ $SECONDS -ge $deadline ]; then
      tail -20 "$BED/logs/coredns.log" >&2; stop coredns; die "CoreDNS does not serve $domain (log: $BED/logs/coredns.log)"
    fi
    sleep 0.2
  done
  log "CoreDNS serves $domain (hosted zone $FIRECAMP_TESTBED_ZONE_ID) to pods on $HOST_IP:53"
  cat "$BED/aws.env"
}

# dns_answers DOMAIN: CoreDNS answers the zone's SOA (bash's /dev/udp cannot read replies: python).
dns_answers() {
  python3 - "$HOST_IP" "$1" <<'P'
import socket, struct, sys
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"".join(bytes([len(l)]) + l.encode() for l in sys.argv[2].split(".")) + b"\x00\x00\x06\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1); s.sendto(q, (sys.argv[1], 53))
r = s.recv(512)
sys.exit(0 if r[:2] == b"\x12\x34" and r[3] & 0x0F == 0 else 1)
P
}
