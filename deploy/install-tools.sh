#!/usr/bin/env bash
# Installs the tools the deploy/ checks need into <repo>/.cache/bin, built from source through
# the Go module proxy (the only download): helm and kustomize; and the Prometheus Operator's
# ServiceMonitor and PrometheusRule CRDs into <repo>/.cache/prometheus-operator-crds (from its
# module's example/prometheus-operator-crd, checked against a pinned go.sum hash), so the tests
# can install them and validate the chart's monitoring objects. Idempotent, and instant when
# they are installed. Needs Go (>= 1.25) on the PATH. Prints the directory to put on the PATH.
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
PROMETHEUS_OPERATOR=github.com/prometheus-operator/prometheus-operator
PROMETHEUS_OPERATOR_VERSION=v0.85.0
# The module zip's hash (go.sum's h1:), so the CRDs are the same bytes on every machine.
PROMETHEUS_OPERATOR_SUM=h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s=
CRDS=$ROOT/.cache/prometheus-operator-crds

command -v go >/dev/null || { echo "install-tools.sh: go is not on the PATH" >&2; exit 1; }
if [[ ! -x $BIN/kustomize || "$(cat "$BIN/.kustomize-stamp" 2>/dev/null)" != "$KUSTOMIZE_VERSION" ]]; then
  echo "install-tools.sh: building kustomize $KUSTOMIZE_VERSION" >&2
  GOTOOLCHAIN=local GOBIN=$BIN CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  echo "$KUSTOMIZE_VERSION" >"$BIN/.kustomize-stamp"
fi
if [[ "$(cat "$CRDS/.stamp" 2>/dev/null)" != "$PROMETHEUS_OPERATOR_VERSION" ]]; then
  echo "install-tools.sh: fetching the Prometheus Operator $PROMETHEUS_OPERATOR_VERSION CRDs" >&2
  # Outside any Go module, so no go.mod is read or changed.
  download=$(cd "$ROOT/.cache" && GOTOOLCHAIN=local go mod download -json "$PROMETHEUS_OPERATOR@$PROMETHEUS_OPERATOR_VERSION")
  field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" <<<"$download"; }
  sum=$(field Sum)
  [[ $sum == "$PROMETHEUS_OPERATOR_SUM" ]] ||
    { echo "install-tools.sh: $PROMETHEUS_OPERATOR@$PROMETHEUS_OPERATOR_VERSION has hash $sum, expected $PROMETHEUS_OPERATOR_SUM" >&2; exit 1; }
  rm -rf "$CRDS"
  mkdir -p "$CRDS"
  for kind in servicemonitors prometheusrules; do
    cp "$(field Dir)/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$CRDS/"
  done
  echo "$PROMETHEUS_OPERATOR_VERSION" >"$CRDS/.stamp"
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
