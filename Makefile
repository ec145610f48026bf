# The two commands of the README: `make demo` and `make test`.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
export GOTOOLCHAIN := local
export CARGO_TERM_COLOR ?= never

TESTCLUSTER := tools/testcluster/bin/testcluster

.PHONY: ansible-inventory bench soak demo test tools lint crds check-crds static-checks image-binaries testcluster managers cluster simulator-tests

## demo: the whole chain on a local control plane with simulated hosts (KEEP=1 keeps it running)
demo: testcluster managers
	cargo build --workspace --bins
	target/debug/lcm-demo

## bench: fleets of 10, 100 and 1000 clusters on the real control plane with simulated hosts (SIZES=10,100 for fewer); table, .cache/bench/bench.json and bench.png
SIZES ?= 10,100,1000
bench: testcluster managers
	cargo build --release -p o2ims-operator -p focom-operator -p o2ims-api -p demo --bins
	target/release/lcm-bench --sizes $(SIZES)

## soak: create, scale out, scale in and delete a fleet in a loop for MINUTES (30): RSS, writes per cycle, logged problems, leftovers; .cache/bench/soak.json
MINUTES ?= 30
soak: testcluster managers
	cargo build --release -p o2ims-operator -p focom-operator -p o2ims-api -p demo --bins
	target/release/lcm-bench --soak-minutes $(MINUTES)

## test: everything that proves the product (formatting, lints, generated files, deployment files, unit and integration tests)
test: check-crds lint static-checks image-binaries testcluster managers tools simulator-tests
	cargo build --workspace --bins
	mkdir -p .cache
	cargo test --workspace --no-fail-fast 2>&1 | tee .cache/test.log
	@awk '/^test result:/ { passed += $$4; failed += $$6 } END { printf "%d passed, %d failed\n", passed, failed }' .cache/test.log

## lint: rustfmt and clippy, warnings are errors
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

## crds: regenerate crds/ and examples/template-info.yaml from the Rust types (and their copies in deploy/)
crds:
	cargo run -q -p lcm-core --bin lcm-gen
	deploy/sync.sh

## check-crds: fail when crds/ differs from what the Rust types generate
check-crds:
	cargo run -q -p lcm-core --bin lcm-gen -- --check

## static-checks: shellcheck, hadolint, ansible-playbook --syntax-check, ansible-lint, mgmt.sh --dry-run and idempotency
static-checks:
	tests/static-checks.sh

## image-binaries: the Dockerfile's build stage without a container engine (its musl toolchain and cargo command)
image-binaries:
	tests/image-binaries.sh

## ansible-inventory: the Ansible inventory of input.json's hosts (CLUSTERS="core edge" to select) into hosts.yaml
ansible-inventory:
	cargo run -q -p lcm-core --example ansible_inventory -- input.json $(CLUSTERS) > hosts.yaml
	@echo "wrote hosts.yaml"

## tools: helm and kustomize, built once through the Go module proxy into .cache/bin, and the Prometheus Operator's CRDs into .cache/prometheus-operator-crds (the chart tests use them)
tools:
	deploy/install-tools.sh

## testcluster: build the real control plane (etcd, kube-apiserver, kube-controller-manager) once
testcluster:
	tools/testcluster/build.sh

## simulator-tests: the workload-cluster simulator's own Go tests (what Cluster API, BYOH and kubeadm see of a workload cluster)
simulator-tests:
	cd tools/workload-clusters && go test ./...

## managers: build the real Cluster API v1.10.10 managers (core, kubeadm bootstrap, kubeadm control plane) and BYOH v0.5.0's manager once (tools/capi-managers/bin), and the workload-cluster simulator that runs beside them (tools/workload-clusters/bin)
managers:
	tools/capi-managers/build.sh
	tools/workload-clusters/build.sh

## cluster: start a control plane with the real Cluster API and BYOH managers and the simulated workload clusters in the foreground for kubectl (Ctrl-C stops it)
CLUSTER_DIR := $(CURDIR)/.cache/cluster
UPSTREAM_CRDS := ../shared/upstream-crds
cluster: testcluster managers
	rm -rf $(CLUSTER_DIR)
	$(TESTCLUSTER) up --stdin-lifeline=false --dir $(CLUSTER_DIR) --crds crds --crds $(UPSTREAM_CRDS)/cluster-api-v1.10.10 \
	  --crds $(UPSTREAM_CRDS)/cluster-api-provider-bringyourownhost-v0.5.0 --managers tools/capi-managers/bin \
	  | while read -r _ kubeconfig seconds; do \
	      echo "control plane ready in $${seconds}s; Ctrl-C stops it"; \
	      echo "kubeconfig: $$kubeconfig"; echo "export KUBECONFIG=$$kubeconfig"; done
