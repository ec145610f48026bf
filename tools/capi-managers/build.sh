#!/usr/bin/env bash
# Builds the real Cluster API managers (core, kubeadm bootstrap, kubeadm control plane) and BYOH's
# manager from the Go module proxy into bin/. A binary is rebuilt only when it is older than its
# wrapper module's go.mod/go.sum or this script, so test targets can call it unconditionally.
set -euo pipefail
cd "$(dirname "$0")"
export GOTOOLCHAIN=local CGO_ENABLED=0

# up_to_date <binary> <module dir>
up_to_date() {
  [[ -x "$1" && -z "$(find "$2/go.mod" "$2/go.sum" build.sh -newer "$1" -print -quit)" ]]
}

# The tag's commit, as the module proxy recorded it (hack/version.sh upstream reads it from git).
commit_of() { # <module dir> <module path>
  (cd "$1" && go mod download -json "$2@$(go list -m -f '{{.Version}}' "$2")") |
    sed -n 's/^[[:space:]]*"Hash": "\([0-9a-f]*\)".*/\1/p'
}

# version_ldflags <module dir> <module path> <version package> <variable prefix: git or Git>
# The -X flags of upstream's hack/version.sh, so the managers log their real version at start
# instead of an empty one.
version_ldflags() {
  local version major minor
  version=$(cd "$1" && go list -m -f '{{.Version}}' "$2")
  major=${version#v}; major=${major%%.*}
  minor=${version#v*.}; minor=${minor%%.*}
  local p="$3.$4"
  echo "-X '${p}Major=${major}' -X '${p}Minor=${minor}' -X '${p}Version=${version}'" \
    "-X '${p}Commit=$(commit_of "$1" "$2")' -X '${p}TreeState=clean'" \
    "-X '$3.$( [[ $4 == git ]] && echo buildDate || echo BuildDate )=$(date -u +%Y-%m-%dT%H:%M:%SZ)'"
}

# build <module dir> <binary> <main package> <ldflags>
# -s -w drop the symbol table and DWARF only; the Go build information (`go version -m`: the main
# package, its module and version, every dependency) stays in the binary.
build() {
  local module=$1 out=bin/$2 package=$3 ldflags=$4
  if up_to_date "$out" "$module"; then
    return
  fi
  local started=$SECONDS
  (cd "$module" && go build -trimpath -ldflags "-s -w $ldflags" -o "../$out.tmp" "$package")
  mv -f "$out.tmp" "$out" # atomic: a running copy or a failed build never sees a half-written file
  echo "built $out in $((SECONDS - started)) s"
}

mkdir -p bin

capi_ldflags=""
if ! up_to_date bin/cluster-api capi || ! up_to_date bin/bootstrap-kubeadm capi || ! up_to_date bin/controlplane-kubeadm capi; then
  capi_ldflags=$(version_ldflags capi sigs.k8s.io/cluster-api sigs.k8s.io/cluster-api/version git)
fi
# The kubeadm bootstrap and control-plane mains are both named "kubeadm" upstream: each its own -o.
build capi cluster-api sigs.k8s.io/cluster-api "$capi_ldflags"
build capi bootstrap-kubeadm sigs.k8s.io/cluster-api/bootstrap/kubeadm "$capi_ldflags"
build capi controlplane-kubeadm sigs.k8s.io/cluster-api/controlplane/kubeadm "$capi_ldflags"

byoh=github.com/vmware-tanzu/cluster-api-provider-bringyourownhost
byoh_ldflags=""
if ! up_to_date bin/byoh byoh; then
  # Upstream stamps its agent's version package; the manager links it only if it imports it.
  byoh_ldflags=$(version_ldflags byoh "$byoh" "$byoh/agent/version" Git)
fi
build byoh byoh "$byoh" "$byoh_ldflags"
