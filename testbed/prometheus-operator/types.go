// Package crds names the Prometheus Operator's API types, from which controller-gen makes the
// CustomResourceDefinitions the bed installs (testbed/lib/build.sh, crates/cli/tests/install_on_bed.rs).
package crds

import _ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
