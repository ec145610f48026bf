#!/usr/bin/env bash
# Installs the tools the deploy/ checks need into <repo>/.cache/bin, built from source through
# the Go module proxy (the only download): helm and kustomize. Idempotent, and instant when they
# are installed. Needs Go (>= 1.25) on the PATH. Prints the directory to put on the PATH.
#   export PATH="$(deploy/install-tools.sh):$PATH"
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/.cache/bin
HELM_VERSION=v3.22.0
# The Kubernetes version `helm template` and `helm lint` assume without a cluster. Helm's own
# Makefile derives it from its client-go (v0.37 for v3.22.0: 1.37); `go install` alone leaves
# Helm's fallback v1.20, older than the chart's kubeVersion.
KUBE_MINOR=37
KUSTOMIZE_VERSION=v5.8.2
STAMP="helm $HELM_VERSION kubernetes 1.$KUBE_MINOR"

command -v go >/dev/null || { echo "install-tools.sh: go is not on the PATH" >&2; exit 1; }
if [[ ! -x $BIN/kustomize || "$(cat "$BIN/.kustomize-stamp" 2>/dev/null)" != "$KUSTOMIZE_VERSION" ]]; then
  echo "install-tools.sh: building kustomize $KUSTOMIZE_VERSION" >&2
  GOTOOLCHAIN=local GOBIN=$BIN CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  echo "$KUSTOMIZE_VERSION" >"$BIN/.kustomize-stamp"
fi
if [[ -x $BIN/helm && "$(cat "$BIN/.helm-stamp" 2>/dev/null)" == "$STAMP" ]]; then
  echo "$BIN"
  exit 0
fi
echo "install-tools.sh: building helm $HELM_VERSION (a few minutes the first time)" >&2
mkdir -p "$BIN"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$KUBE_MINOR"
done
GOTOOLCHAIN=local GOBIN=$BIN CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
  go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
"$BIN/helm" version --short >&2
echo "$STAMP" >"$BIN/.helm-stamp"
echo "$BIN"
