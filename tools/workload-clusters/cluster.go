package main

import (
	"crypto/tls"
	"net"
	"net/netip"
	"sort"
	"time"
)

// clusterKey names a workload cluster as its Cluster API Cluster does.
type clusterKey struct{ namespace, name string }

// String is also the cluster's resource group in the object store.
func (k clusterKey) String() string { return k.namespace + "/" + k.name }

// cluster is one workload cluster: what its API server and etcd members need to be served.
// Everything else about it lives as objects in its resource group.
type cluster struct {
	key             clusterKey
	endpoint        netip.AddrPort
	ca, etcdCA      *authority
	cniPreinstalled bool
	etcdClusterID   uint32
	network         clusterNetwork
	apiTLS          *tls.Config
	etcdTLS         map[string]*tls.Config // by the server name a client asks for: etcd-<node>
	listener        *vipListener
	nodes           map[string]*node // every host that joined, running or reset
}

// clusterNetwork is what kubeadm derives from ClusterConfiguration.networking.
type clusterNetwork struct {
	serviceIP net.IP // the kubernetes Service: first address of the service subnet
	dnsIP     net.IP // the kube-dns Service: tenth address
	dnsDomain string
	podSubnet string
}

// node is one host as far as this cluster knows it.
type node struct {
	name              string
	controlPlane      bool
	kubeletVersion    string
	kubernetesVersion string // of the static pods, control planes only
	ip                net.IP // optional: the host's address
	running           bool   // its kubelet runs (joined and not reset)
	stoppedAt         time.Time
}

// runningControlPlanes are the control-plane hosts whose API server and etcd run.
func (c *cluster) runningControlPlanes() []*node {
	var out []*node
	for _, n := range c.sortedNodes() {
		if n.running && n.controlPlane {
			out = append(out, n)
		}
	}
	return out
}

func (c *cluster) sortedNodes() []*node {
	out := make([]*node, 0, len(c.nodes))
	for _, n := range c.nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
