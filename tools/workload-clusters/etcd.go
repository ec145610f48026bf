package main

// etcd members are kept as upstream's etcd handler reads them: annotations on the etcd-<node>
// mirror Pods (cluster ID, member ID, leader-from time, member-removed). MemberList answers the
// Pods not marked removed, Status names as leader the one with the latest leader-from.

import (
	"cmp"
	"context"
	"crypto/tls"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cloudv1 "sigs.k8s.io/cluster-api/test/infrastructure/inmemory/pkg/cloud/api/v1alpha1"
	inmemoryruntime "sigs.k8s.io/cluster-api/test/infrastructure/inmemory/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var etcdPodLabels = client.MatchingLabels{"component": "etcd", "tier": "control-plane"}

func listEtcdPods(ctx context.Context, store inmemoryruntime.Client) ([]corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := store.List(ctx, pods, client.InNamespace(metav1.NamespaceSystem), etcdPodLabels); err != nil {
		return nil, err
	}
	slices.SortFunc(pods.Items, func(a, b corev1.Pod) int { return cmp.Compare(a.Name, b.Name) })
	return pods.Items, nil
}

func isRemovedMember(p *corev1.Pod) bool {
	_, removed := p.Annotations[cloudv1.EtcdMemberRemoved]
	return removed
}

// annotateNewMember makes pod a new member of the cluster's etcd, with an ID no member has.
func annotateNewMember(c *cluster, pod *corev1.Pod, members []corev1.Pod) {
	taken := map[string]bool{}
	for _, m := range members {
		taken[m.Annotations[cloudv1.EtcdMemberIDAnnotationName]] = true
	}
	id := ""
	for id == "" || taken[id] {
		id = strconv.FormatUint(uint64(nonZeroUint32()), 10)
	}
	pod.Annotations[cloudv1.EtcdClusterIDAnnotationName] = strconv.FormatUint(uint64(c.etcdClusterID), 10)
	pod.Annotations[cloudv1.EtcdMemberIDAnnotationName] = id
}

// electLeader gives the etcd cluster a leader when no member holds leadership (its first member
// starts, or the leader's host was reset), as etcd's raft election does; it picks the first
// member by name. KCP moves leadership itself before it removes a leader (ForwardEtcdLeadership).
func electLeader(ctx context.Context, store inmemoryruntime.Client) error {
	var err error
	for range maxConflictRetries {
		var pods []corev1.Pod
		if pods, err = listEtcdPods(ctx, store); err != nil {
			return err
		}
		var candidate *corev1.Pod
		for i := range pods {
			p := &pods[i]
			if isRemovedMember(p) {
				continue
			}
			if _, err := time.Parse(time.RFC3339, p.Annotations[cloudv1.EtcdLeaderFromAnnotationName]); err == nil {
				return nil // a member leads
			}
			if candidate == nil {
				candidate = p
			}
		}
		if candidate == nil {
			return nil
		}
		// Backdated by a second: upstream's MoveLeader stamps the target with the current time at
		// one-second resolution and the latest stamp leads, so a move within the second of an
		// election would otherwise tie with it.
		candidate.Annotations[cloudv1.EtcdLeaderFromAnnotationName] = time.Now().Add(-time.Second).Format(time.RFC3339)
		if err = store.Update(ctx, candidate); !isConflict(err) {
			return err
		}
	}
	return err
}

// etcdMemberTLS is what etcd serves a member's clients with: its certificate from the etcd CA
// (kubeadm's etcd/server.crt names the node, its address and localhost) and client certificates
// required from the same CA (--client-cert-auth). gRPC needs HTTP/2.
func etcdMemberTLS(c *cluster, n *node) (*tls.Config, error) {
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if n.ip != nil {
		ips = append(ips, n.ip)
	}
	cert, err := c.etcdCA.issue(certSpec{commonName: n.name, dnsNames: []string{n.name, "etcd-" + n.name, "localhost"}, ips: ips, clientAuth: true})
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert}, ClientCAs: c.etcdCA.pool, ClientAuth: tls.RequireAndVerifyClientCert,
		NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12,
	}, nil
}

// nonZeroUint32 is how upstream's in-memory provider draws etcd IDs; its handler parses them as int.
func nonZeroUint32() uint32 {
	for {
		if v := rand.Uint32(); v != 0 {
			return v
		}
	}
}
