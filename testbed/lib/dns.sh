# Sourced by testbed/bed: the bed's AWS side (moto) and CoreDNS for the real nodes' pods.
# Members find each other as `<member>.<cluster>-firecamp.com`: FireCamp writes those records to
# Route53 (moto on the bed), and CoreDNS's route53 plugin serves that zone to pods, as a
# cluster's resolver would on AWS. `up --aws URL` runs both.

# bed_aws N: the real nodes' cluster in moto (VPC, a subnet per zone, the private hosted zone,
# one instance per real node at the node's own address); writes $BED/aws.env and $BED/instances.
bed_aws() {
  local n=$1 i nodes=() py=${FIRECAMP_TESTBED_PYTHON:-$REPO/.venv-moto/bin/python}
  [ -x "$py" ] || die "--aws: no python with boto3 at $py (scripts/setup.d/20-moto.sh makes it; or set FIRECAMP_TESTBED_PYTHON)"
  for ((i = 0; i < n; i++)); do nodes+=("node-$i,$(node_zone "$i"),$(node_ip "$i")"); done
  "$py" "$TB/lib/bed_aws.py" "$FIRECAMP_TESTBED_AWS_ENDPOINT" "$FIRECAMP_TESTBED_REGION" "$FIRECAMP_TESTBED_REAL_CLUSTER" \
    "$FIRECAMP_TESTBED_ZONES" "$BED/instances" "${nodes[@]}" >"$BED/aws.env" 2>"$BED/logs/aws.log" \
    || { cat "$BED/logs/aws.log" >&2; fail_up "creating the bed's VPC, hosted zone and instances in $FIRECAMP_TESTBED_AWS_ENDPOINT failed"; }
  . "$BED/aws.env"
  mark "moto: VPC $FIRECAMP_TESTBED_VPC, hosted zone $FIRECAMP_TESTBED_ZONE_ID, $n instance(s)"
}

# dns_up: CoreDNS on the bridge, serving the real cluster's hosted zone from Route53.
dns_up() {
  local domain="$FIRECAMP_TESTBED_REAL_CLUSTER-firecamp.com"
  [ -x "$BIN/coredns" ] || fail_up "binary $BIN/coredns is missing: run testbed/bed build"
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
  start coredns env AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION="$FIRECAMP_TESTBED_REGION" \
    AWS_ENDPOINT_URL="$FIRECAMP_TESTBED_AWS_ENDPOINT" "$BIN/coredns" -conf "$BED/Corefile"
  wait_for "CoreDNS serving $domain on $HOST_IP:53" 30 coredns dns_answers "$domain"
  mark "CoreDNS serves $domain to pods on $HOST_IP:53"
}

# dns_answers DOMAIN: CoreDNS answers the zone's SOA (bash's /dev/udp cannot read replies: python).
dns_answers() {
  python3 - "$HOST_IP" "$1" <<'P'
import socket, sys
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"".join(bytes([len(l)]) + l.encode() for l in sys.argv[2].split(".")) + b"\x00\x00\x06\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1); s.sendto(q, (sys.argv[1], 53))
r = s.recv(512)
sys.exit(0 if r[:2] == b"\x12\x34" and r[3] & 0x0F == 0 and r[7] > 0 else 1)
P
}
