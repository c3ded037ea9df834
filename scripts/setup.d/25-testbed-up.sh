# The test bed (docs/testbed.md): 18 kwok nodes (Redis members use the host network, one per node,
# so several tests can run at once) and 6 real nodes, two per zone (a Redis Cluster of 6 on the
# host network), each a moto instance, with
# CoreDNS serving the members' Route53 records to pods.
testbed/bed up --nodes 18 --real-nodes 6 --aws "$FIRECAMP_MOTO_ENDPOINT"
eval "$(testbed/bed env)"
