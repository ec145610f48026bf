package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func memberID(t testing.TB, cl *clientv3.Client, name string) uint64 {
	t.Helper()
	resp, err := cl.MemberList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range resp.Members {
		if m.Name == name {
			return m.ID
		}
	}
	t.Fatalf("no member %s", name)
	return 0
}

func leader(t testing.TB, cl *clientv3.Client, endpoint string) uint64 {
	t.Helper()
	status, err := cl.Status(context.Background(), endpoint)
	if err != nil {
		t.Fatalf("status of %s: %v", endpoint, err)
	}
	return status.Leader
}

// TestKCPEtcdOperations plays KCP's scale-down of a control plane (ForwardEtcdLeadership, then
// RemoveEtcdMemberForMachine) and the loss of a leader whose host is reset.
func TestKCPEtcdOperations(t *testing.T) {
	st := startStack(t, Options{})
	c := st.newCluster("etcd", "127.0.20.100")
	c.mustPut("cp-0", c.request(true, true), http.StatusCreated)
	c.mustPut("cp-1", c.request(true, false), http.StatusCreated)
	c.mustPut("cp-2", c.request(true, false), http.StatusCreated)
	e0, e1 := c.etcdClient("cp-0"), c.etcdClient("cp-1")
	if got := leader(t, e0, "etcd-cp-0"); got != memberID(t, e0, "cp-0") {
		t.Fatalf("the first member does not lead: %x", got)
	}
	// ForwardEtcdLeadership: MoveLeader on the leader's client.
	if _, err := e0.MoveLeader(context.Background(), memberID(t, e0, "cp-1")); err != nil {
		t.Fatal(err)
	}
	if got := leader(t, e1, "etcd-cp-1"); got != memberID(t, e1, "cp-1") {
		t.Fatalf("leadership did not move: %x", got)
	}
	// RemoveEtcdMemberForMachine: through another member.
	if _, err := e1.MemberRemove(context.Background(), memberID(t, e1, "cp-0")); err != nil {
		t.Fatal(err)
	}
	if names := memberNames(t, e1); joined(names) != "cp-1,cp-2" {
		t.Fatalf("members after removal: %v", names)
	}
	if _, err := e0.Status(context.Background(), "etcd-cp-0"); err == nil {
		t.Fatal("a removed member still answers Status")
	}
	c.reset("cp-0")
	// The leader's host is reset without KCP moving leadership: the others elect one.
	c.reset("cp-1")
	e2 := c.etcdClient("cp-2")
	if got := leader(t, e2, "etcd-cp-2"); got != memberID(t, e2, "cp-2") {
		t.Fatalf("no leader elected after the leader's reset: %x", got)
	}
	// A port-forward to the etcd of a reset host fails, as the pod is gone.
	cs := c.clientset()
	if _, err := cs.CoreV1().Pods("kube-system").Get(context.Background(), "etcd-cp-1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("etcd-cp-1 after reset: %v", err)
	}
	if err := tryPortForward(t, c, "etcd-cp-1"); err == nil {
		t.Fatal("port-forward to a pod that does not exist succeeded")
	}
}

func tryPortForward(t testing.TB, c *testCluster, pod string) error {
	cfg := c.restConfig()
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(fmt.Sprintf("%s/api/v1/namespaces/kube-system/pods/%s/portforward", cfg.Host, pod))
	conn, _, err := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u).Dial(portforward.PortForwardProtocolV1Name)
	if err == nil {
		_ = conn.Close()
	}
	return err
}

// TestAPIServerCertificateThroughPortForward is KCP's GetAPIServerCertificateExpiry: TLS to
// kube-apiserver-<node>:6443 through a port-forward, reading the certificate named kube-apiserver.
func TestAPIServerCertificateThroughPortForward(t *testing.T) {
	st := startStack(t, Options{})
	c := st.newCluster("certs", "127.0.21.100")
	c.mustPut("cp-0", c.request(true, true), http.StatusCreated)
	cfg := c.restConfig()
	transport, upgrader, _ := spdy.RoundTripperFor(cfg)
	u, _ := url.Parse(cfg.Host + "/api/v1/namespaces/kube-system/pods/kube-apiserver-cp-0/portforward")
	stop, ready := make(chan struct{}), make(chan struct{})
	defer close(stop)
	fw, err := portforward.NewOnAddresses(spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u),
		[]string{"127.0.0.1"}, []string{"0:6443"}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = fw.ForwardPorts() }()
	<-ready
	ports, _ := fw.GetPorts()
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	leaf := conn.ConnectionState().PeerCertificates[0]
	if leaf.Subject.CommonName != "kube-apiserver" || time.Until(leaf.NotAfter) < 300*24*time.Hour {
		t.Fatalf("API server certificate: %s until %s", leaf.Subject.CommonName, leaf.NotAfter)
	}
}

// TestWritesAsKubeAPIServer covers what Cluster API's controllers write besides Node patches.
func TestWritesAsKubeAPIServer(t *testing.T) {
	st := startStack(t, Options{})
	c := st.newCluster("writes", "127.0.22.100")
	c.mustPut("cp-0", c.request(true, true), http.StatusCreated)
	cl := c.ctrlClient()
	ctx := context.Background()

	// KCP's CoreDNS migration updates the coredns ConfigMap without a resourceVersion.
	if err := cl.Update(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"},
		Data:       map[string]string{"Corefile": ".:53 {}", "Corefile-backup": ".:53 {}"},
	}); err != nil {
		t.Fatalf("unconditional update: %v", err)
	}
	// With a stale one it conflicts.
	cm := &corev1.ConfigMap{}
	_ = cl.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "coredns"}, cm)
	stale := cm.DeepCopy()
	cm.Data["x"] = "1"
	if err := cl.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	stale.Data["x"] = "2"
	if err := cl.Update(ctx, stale); !apierrors.IsConflict(err) {
		t.Fatalf("stale update: %v", err)
	}
	// A merge patch pinned to a stale resourceVersion conflicts (MergeFromWithOptimisticLock).
	if err := cl.Patch(ctx, stale, client.MergeFromWithOptions(stale.DeepCopy(), client.MergeFromWithOptimisticLock{})); !apierrors.IsConflict(err) {
		t.Fatalf("stale optimistic patch: %v", err)
	}
	// CABPK's bootstrap token Secret.
	token := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "bootstrap-token-abcdef"},
		Type:       "bootstrap.kubernetes.io/token",
		StringData: map[string]string{"token-id": "abcdef", "token-secret": "0123456789abcdef", "expiration": time.Now().Add(time.Hour).Format(time.RFC3339)},
	}
	if err := cl.Create(ctx, token); err != nil {
		t.Fatal(err)
	}
	// Creates need an existing namespace; generateName works.
	if err := cl.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "nowhere", Name: "x"}}); !apierrors.IsNotFound(err) {
		t.Fatalf("create in a missing namespace: %v", err)
	}
	gen := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", GenerateName: "gen-"}}
	if err := cl.Create(ctx, gen); err != nil || !strings.HasPrefix(gen.Name, "gen-") || gen.UID == "" {
		t.Fatalf("generateName: %q %v", gen.Name, err)
	}
	// Server-side apply is refused precisely.
	err := cl.Patch(ctx, gen, client.RawPatch(types.ApplyPatchType, []byte(`{"apiVersion":"v1","kind":"ConfigMap"}`)), client.FieldOwner("test"))
	if !apierrors.IsUnsupportedMediaType(err) {
		t.Fatalf("apply patch: %v", err)
	}

	// A join that presents the token works; a wrong secret fails as kubeadm's discovery does.
	join := c.request(false, false)
	join["bootstrapToken"] = "abcdef.0123456789abcdef"
	c.mustPut("worker-0", join, http.StatusCreated)
	join["bootstrapToken"] = "abcdef.ffffffffffffffff"
	if code, _ := c.put("worker-1", join); code != http.StatusForbidden {
		t.Fatalf("join with a wrong token: %d", code)
	}

	// Drain: list the node's pods by field selector, evict.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "app"},
		Spec:       corev1.PodSpec{NodeName: "worker-0", Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
	if err := cl.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	cs := c.clientset()
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=worker-0"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods on worker-0: %v %v", pods, err)
	}
	if err := cs.PolicyV1().Evictions("default").Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "app"}}); err != nil {
		t.Fatalf("eviction: %v", err)
	}
	if err := cl.Get(ctx, client.ObjectKeyFromObject(pod), pod); !apierrors.IsNotFound(err) {
		t.Fatalf("evicted pod: %v", err)
	}
	// Cluster API deletes the Node of a deleted Machine; the host claimed again without a reset
	// fails kubeadm's preflight checks, and joins again once reset.
	if err := cl.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-0"}}); err != nil {
		t.Fatal(err)
	}
	join["bootstrapToken"] = "abcdef.0123456789abcdef"
	if code, _ := c.put("worker-0", join); code != http.StatusConflict {
		t.Fatalf("join of a dirty host: %d", code)
	}
	c.reset("worker-0")
	c.mustPut("worker-0", join, http.StatusCreated)
}

func TestWatchSeesChanges(t *testing.T) {
	st := startStack(t, Options{})
	c := st.newCluster("watch", "127.0.23.100")
	c.mustPut("cp-0", c.request(true, true), http.StatusCreated)
	cs := c.clientset()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := cs.CoreV1().Nodes().Patch(ctx, "cp-0", types.StrategicMergePatchType, []byte(`{"spec":{"providerID":"byoh://cp-0/x"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	for ev := range w.ResultChan() {
		if n, ok := ev.Object.(*corev1.Node); ok && ev.Type == watch.Modified && n.Spec.ProviderID == "byoh://cp-0/x" {
			return
		}
	}
	t.Fatal("no MODIFIED event for the patch")
}

// TestWatchFromNothing: a watch without resourceVersion starts with the current objects, which
// client-go decodes by the response's content type.
func TestWatchFromNothing(t *testing.T) {
	st := startStack(t, Options{})
	c := st.newCluster("watch0", "127.0.23.102")
	c.mustPut("cp-0", c.request(true, true), http.StatusCreated)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := c.clientset().CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ev := <-w.ResultChan()
	if n, ok := ev.Object.(*corev1.Node); !ok || ev.Type != watch.Added || n.Name != "cp-0" {
		t.Fatalf("first event: %s %v", ev.Type, ev.Object)
	}
}

// TestWatchHonoursSelectors: KCP caches kube-system static pods by label selector.
func TestWatchHonoursSelectors(t *testing.T) {
	st := startStack(t, Options{})
	c := st.newCluster("selectors", "127.0.23.101")
	c.mustPut("cp-0", c.request(true, true), http.StatusCreated)
	cs := c.clientset()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "component in (etcd)"})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	w, err := cs.CoreV1().Pods("kube-system").Watch(ctx, metav1.ListOptions{LabelSelector: "component in (etcd)", ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	pod := func(ns, name, component string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"component": component}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}},
		}
	}
	for _, p := range []*corev1.Pod{pod("default", "other-namespace", "etcd"), pod("kube-system", "other-label", "x"), pod("kube-system", "wanted", "etcd")} {
		if _, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ev := <-w.ResultChan()
	if p, ok := ev.Object.(*corev1.Pod); !ok || p.Name != "wanted" {
		t.Fatalf("first event: %s %v", ev.Type, ev.Object)
	}
}

// TestNodeLifecycle: a reset host's Node turns Unknown after the grace period and comes back
// when the host joins again; a deleted Node's pods are collected after the quarantine.
func TestNodeLifecycle(t *testing.T) {
	st := startStack(t, Options{CNIPreinstalled: true, NodeMonitorGracePeriod: 100 * time.Millisecond, PodGCQuarantine: 100 * time.Millisecond})
	c := st.newCluster("life", "127.0.24.100")
	c.mustPut("cp-0", c.request(true, true), http.StatusCreated)
	c.mustPut("cp-1", c.request(true, false), http.StatusCreated)
	c.mustPut("worker-0", c.request(false, false), http.StatusCreated)
	cl := c.ctrlClient()
	ctx := context.Background()
	if r := nodeReady(t, cl, "worker-0"); r != corev1.ConditionTrue {
		t.Fatalf("with a preinstalled CNI worker-0 is Ready=%s", r)
	}
	c.reset("worker-0")
	eventually(t, "worker-0 Unknown", func() bool { return nodeReady(t, cl, "worker-0") == corev1.ConditionUnknown })
	n := &corev1.Node{}
	_ = cl.Get(ctx, client.ObjectKey{Name: "worker-0"}, n)
	if !slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool {
		return t.Key == corev1.TaintNodeUnreachable && t.Effect == corev1.TaintEffectNoExecute
	}) {
		t.Fatalf("no unreachable taint: %v", n.Spec.Taints)
	}
	c.mustPut("worker-0", c.request(false, false), http.StatusCreated)
	eventually(t, "worker-0 Ready again", func() bool { return nodeReady(t, cl, "worker-0") == corev1.ConditionTrue })

	// Cluster API deletes cp-1's Node while its host still runs: podgc removes the mirror pods.
	if err := cl.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp-1"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "cp-1's pods collected", func() bool {
		pods := &corev1.PodList{}
		_ = cl.List(ctx, pods, client.MatchingFields{"spec.nodeName": "cp-1"})
		return len(pods.Items) == 0
	})
}

// TestControlPlaneUpgrade plays KCP's rollout to a new version, one machine at a time.
func TestControlPlaneUpgrade(t *testing.T) {
	st := startStack(t, Options{CNIPreinstalled: true})
	c := st.newCluster("upgrade", "127.0.25.100")
	c.kubeVersion, c.kubeletVersion = "v1.32.9", "v1.32.9"
	c.clusterConfig = strings.ReplaceAll(c.clusterConfig, "v1.33.5", "v1.32.9")
	for i, name := range []string{"cp-0", "cp-1", "cp-2"} {
		c.mustPut(name, c.request(true, i == 0), http.StatusCreated)
	}
	cl := c.ctrlClient()
	ctx := context.Background()
	// UpdateClusterConfiguration: KCP rewrites kubernetesVersion before new machines join.
	cm := &corev1.ConfigMap{}
	_ = cl.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "kubeadm-config"}, cm)
	cm.Data["ClusterConfiguration"] = strings.Replace(cm.Data["ClusterConfiguration"], "kubernetesVersion: v1.32.9", "kubernetesVersion: v1.33.5", 1)
	if err := cl.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	c.kubeVersion, c.kubeletVersion = "v1.33.5", "v1.33.5"
	for i, old := range []string{"cp-0", "cp-1", "cp-2"} {
		successor := fmt.Sprintf("cp-new-%d", i)
		c.mustPut(successor, c.request(true, false), http.StatusCreated)
		e := c.etcdClient(successor)
		if l := leader(t, e, "etcd-"+successor); l == memberID(t, e, old) {
			if _, err := e.MoveLeader(ctx, memberID(t, e, successor)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.MemberRemove(ctx, memberID(t, e, old)); err != nil {
			t.Fatal(err)
		}
		if err := cl.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: old}}); err != nil {
			t.Fatal(err)
		}
		c.reset(old)
	}
	e := c.etcdClient("cp-new-2")
	if names := memberNames(t, e); joined(names) != "cp-new-0,cp-new-1,cp-new-2" {
		t.Fatalf("members after the rollout: %v", names)
	}
	pod := &corev1.Pod{}
	_ = cl.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "kube-apiserver-cp-new-2"}, pod)
	if pod.Spec.Containers[0].Image != "registry.k8s.io/kube-apiserver:v1.33.5" {
		t.Fatalf("upgraded API server image: %s", pod.Spec.Containers[0].Image)
	}
}
