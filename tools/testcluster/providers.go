package main

import (
	"path/filepath"
	"strconv"
)

// provider is one of the managers `up --managers` runs: the real Cluster API v1.10 managers and
// BYOH's, built by tools/capi-managers/build.sh.
type provider struct {
	name        string // binary in the --managers directory, its log and its --manager-arg name
	mainPackage string // what the binary's Go build information must name as its main package
	// namePrefix is what upstream's kustomize config/default puts before the names of the
	// provider's objects (webhook configurations, RBAC), as a release's components YAML has them.
	namePrefix string
	label      string   // cluster.x-k8s.io/provider value, as clusterctl labels its components
	crdGroups  []string // API groups whose CRDs belong to the provider
	// contract: the provider's CRDs carry the contract label cluster.x-k8s.io/v1beta1=v1beta1
	// (their kustomize config/crd adds it; util/conversion looks it up on every CRD a Cluster
	// API object references). Core Cluster API's CRDs have none upstream.
	contract bool
	// Ports inside the managers' network namespace, the same for every stack since each stack
	// has its own namespace. BYOH's webhook port is 9443, hard-coded in its main.go.
	webhookPort, healthPort, metricsPort int
	byoh                                 bool // BYOH's manager: other flags, certificates via $TMPDIR
}

var providers = []*provider{
	{
		name: "cluster-api", mainPackage: "sigs.k8s.io/cluster-api", namePrefix: "capi-",
		label:       "cluster-api",
		crdGroups:   []string{"cluster.x-k8s.io", "addons.cluster.x-k8s.io", "ipam.cluster.x-k8s.io", "runtime.cluster.x-k8s.io"},
		webhookPort: 9444, healthPort: 9454, metricsPort: 9464,
	},
	{
		name: "bootstrap-kubeadm", mainPackage: "sigs.k8s.io/cluster-api/bootstrap/kubeadm",
		namePrefix: "capi-kubeadm-bootstrap-", label: "bootstrap-kubeadm",
		crdGroups: []string{"bootstrap.cluster.x-k8s.io"}, contract: true,
		webhookPort: 9445, healthPort: 9455, metricsPort: 9465,
	},
	{
		name: "controlplane-kubeadm", mainPackage: "sigs.k8s.io/cluster-api/controlplane/kubeadm",
		namePrefix: "capi-kubeadm-control-plane-", label: "control-plane-kubeadm",
		crdGroups: []string{"controlplane.cluster.x-k8s.io"}, contract: true,
		webhookPort: 9446, healthPort: 9456, metricsPort: 9466,
	},
	{
		name: "byoh", mainPackage: "github.com/vmware-tanzu/cluster-api-provider-bringyourownhost",
		namePrefix: "byoh-", label: "infrastructure-byoh",
		crdGroups: []string{"infrastructure.cluster.x-k8s.io"}, contract: true,
		webhookPort: 9443, healthPort: 9453, metricsPort: 9463, byoh: true,
	},
}

func findProvider(name string) *provider {
	for _, p := range providers {
		if p.name == name {
			return p
		}
	}
	return nil
}

// flags are the manager's command-line flags for serving inside the namespace. Everything else
// (concurrency, QPS, feature gates, sync period) stays at upstream's defaults unless
// --manager-arg adds a flag.
func (p *provider) flags(certDir string) []string {
	if p.byoh {
		// Its main.go has only these three flags (and klog's); leader election is off by default.
		return []string{
			"--metrics-addr=:" + strconv.Itoa(p.metricsPort),
			"--health-probe-bind-address=:" + strconv.Itoa(p.healthPort),
		}
	}
	return []string{
		"--leader-elect=false", // one replica; no Lease traffic
		"--webhook-port=" + strconv.Itoa(p.webhookPort),
		"--webhook-cert-dir=" + certDir,
		"--health-addr=:" + strconv.Itoa(p.healthPort),
		"--diagnostics-address=:" + strconv.Itoa(p.metricsPort),
		"--insecure-diagnostics", // plain HTTP /metrics, no authn/authz round trips
	}
}

// certDir is where the manager reads its webhook serving certificate (tls.crt, tls.key).
func (p *provider) certDir(home string) string {
	if p.byoh {
		// controller-runtime v0.14's default, which BYOH's main.go does not change.
		return filepath.Join(p.tmpDir(home), "k8s-webhook-server", "serving-certs")
	}
	return filepath.Join(home, "certs")
}

// tmpDir is BYOH's $TMPDIR, private so that its certificate directory is its own.
func (p *provider) tmpDir(home string) string { return filepath.Join(home, "tmp") }
