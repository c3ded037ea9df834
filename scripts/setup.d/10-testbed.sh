# The Kubernetes test bed (docs/testbed.md): built once per go.sum, started for the run.
testbed/bed build
CLEANUP+=('step "test bed: down"; testbed/bed down')
testbed/bed up
eval "$(testbed/bed env)"
