#!/usr/bin/env bash
# Builds bin/testcluster (and envtest-style symlinks). Does nothing when the binary is newer than
# every input, so test targets can call it unconditionally.
set -euo pipefail
cd "$(dirname "$0")"

out=bin/testcluster
if [[ -x "$out" && -z "$(find . -path ./bin -prune -o \( -name '*.go' -o -name go.mod -o -name go.sum -o -name build.sh \) -newer "$out" -print -quit)" ]]; then
  exit 0
fi

k8s_version=$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' go.mod)
minor=$(cut -d. -f2 <<<"$k8s_version")
# Without these, /version reports v0.0.0-master.
ldflags="-s -w
  -X main.kubernetesVersion=${k8s_version}
  -X k8s.io/component-base/version.gitVersion=${k8s_version}
  -X k8s.io/component-base/version.gitMajor=1
  -X k8s.io/component-base/version.gitMinor=${minor}
  -X k8s.io/component-base/version.gitTreeState=clean
  -X k8s.io/component-base/version.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  -X k8s.io/client-go/pkg/version.gitVersion=${k8s_version}
  -X k8s.io/client-go/pkg/version.gitMajor=1
  -X k8s.io/client-go/pkg/version.gitMinor=${minor}"

mkdir -p bin
GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out.tmp" .
mv -f "$out.tmp" "$out" # atomic: a running copy or a failed build never sees a half-written file
for name in kube-apiserver kube-controller-manager etcd; do ln -sf testcluster "bin/$name"; done
