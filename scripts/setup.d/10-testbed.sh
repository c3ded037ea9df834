# The Kubernetes test bed (docs/testbed.md): built once per go.sum, started for the run.
testbed/bed build
CLEANUP+=('step "test bed: down"; testbed/bed down')
# Redis members use the host network, one per node: 18 nodes let several tests run at once.
testbed/bed up --nodes 18
eval "$(testbed/bed env)"
