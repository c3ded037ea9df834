# CoreDNS for the real nodes' pods (docs/testbed.md): the members' names from Route53 in moto.
# Exports the bed's VPC and hosted zone for the real-pod tests.
testbed/bed dns --route53 "$FIRECAMP_MOTO_ENDPOINT"
eval "$(testbed/bed env)"
