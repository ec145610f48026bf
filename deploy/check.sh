#!/usr/bin/env bash
# Every check of deploy/: installs helm if needed (deploy/install-tools.sh), builds the operators,
# then runs the deploy-tests crate: copies in sync (crds/, ansible/, template catalogue,
# inventory), helm lint, chart == kustomize (default and dev), flags and variables the operators
# read, helm install + strict server-side dry run, and both operators end to end with only the
# chart's RBAC on the real control plane (tools/testcluster/build.sh must have built it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bin=$(deploy/install-tools.sh)
export PATH="$bin:$PATH"
[[ -x tools/testcluster/bin/testcluster ]] ||
  { echo "check.sh: build the test control plane first: tools/testcluster/build.sh (make testcluster)" >&2; exit 1; }
cargo build -q -p o2ims-operator -p focom-operator
cargo test -q -p deploy-tests
