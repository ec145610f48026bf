#!/usr/bin/env bash
# Builds bin/workload-clusters. Does nothing when the binary is newer than every input, so test
# targets can call it unconditionally.
set -euo pipefail
cd "$(dirname "$0")"

out=bin/workload-clusters
if [[ -x "$out" && -z "$(find . -path ./bin -prune -o \( -name '*.go' -o -name go.mod -o -name go.sum -o -name build.sh \) -newer "$out" -print -quit)" ]]; then
  exit 0
fi

mkdir -p bin
GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp" .
mv -f "$out.tmp" "$out" # atomic: a running copy or a failed build never sees a half-written file
