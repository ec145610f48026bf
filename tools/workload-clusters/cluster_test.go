package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	kubeadmtypes "sigs.k8s.io/cluster-api/bootstrap/kubeadm/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// calicoNode is the demo's stand-in CNI as a ClusterResourceSet applies it: unstructured, so
// controller-runtime sends it as JSON.
func calicoNode() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("apps/v1")
	u.SetKind("DaemonSet")
	u.SetNamespace("kube-system")
	u.SetName("calico-node")
	_ = unstructured.SetNestedStringMap(u.Object, map[string]string{"k8s-app": "calico-node"}, "spec", "selector", "matchLabels")
	_ = unstructured.SetNestedStringMap(u.Object, map[string]string{"k8s-app": "calico-node"}, "spec", "template", "metadata", "labels")
	_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"name": "calico-node", "image": "docker.io/calico/node:v3.29.0"}}, "spec", "template", "spec", "containers")
	return u
}

func nodeReady(t testing.TB, cl client.Client, name string) corev1.ConditionStatus {
	t.Helper()
	n := &corev1.Node{}
	if err := cl.Get(context.Background(), client.ObjectKey{Name: name}, n); err != nil {
		t.Fatalf("get Node %s: %v", name, err)
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

func TestClusterLifecycle(t *testing.T) {
	st := startStack(t, Options{})
	c := st.newCluster("demo", "127.0.10.100")
	ctx := context.Background()

	c.mustPut("cp-0", c.request(true, true), http.StatusCreated)

	// Discovery as client-go and controller-runtime's REST mapper do it.
	cs := c.clientset()
	if _, _, err := cs.Discovery().ServerGroupsAndResources(); err != nil {
		t.Fatalf("discovery: %v", err)
	}
	cl := c.ctrlClient()

	// KCP's Initialized: kubeadm-config readable and parseable with its own types.
	cm := &corev1.ConfigMap{}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "kubeadm-config"}, cm); err != nil {
		t.Fatal(err)
	}
	cfg, err := kubeadmtypes.UnmarshalClusterConfiguration(cm.Data["ClusterConfiguration"])
	if err != nil {
		t.Fatalf("kubeadm-config: %v", err)
	}
	if cfg.ControlPlaneEndpoint != c.endpoint || cfg.Networking.ServiceSubnet != "10.128.0.0/12" || cfg.CertificatesDir != "/etc/kubernetes/pki" {
		t.Fatalf("kubeadm-config not as kubeadm uploads it: %+v", cfg)
	}
	if !strings.Contains(cm.Data["ClusterConfiguration"], "kubeadm.k8s.io/v1beta4") {
		t.Fatalf("kubeadm-config not in v1beta4:\n%s", cm.Data["ClusterConfiguration"])
	}

	// Static pods as KCP's ControlPlaneComponentsHealthy reads them.
	for _, component := range staticComponents {
		pod := &corev1.Pod{}
		if err := cl.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: component + "-cp-0"}, pod); err != nil {
			t.Fatal(err)
		}
		if pod.Status.Phase != corev1.PodRunning || pod.Spec.Containers[0].Image != "registry.k8s.io/"+component+":v1.33.5" && component != "etcd" {
			t.Fatalf("%s: %s %s", pod.Name, pod.Status.Phase, pod.Spec.Containers[0].Image)
		}
	}

	// BYOH's providerID patch (patch.Helper: a JSON merge patch of spec).
	node := &corev1.Node{}
	if err := cl.Get(ctx, client.ObjectKey{Name: "cp-0"}, node); err != nil {
		t.Fatal(err)
	}
	before := node.DeepCopy()
	node.Spec.ProviderID = "byoh://cp-0/abcdef"
	if err := cl.Patch(ctx, node, client.MergeFrom(before)); err != nil {
		t.Fatalf("providerID patch: %v", err)
	}
	// Cluster API's node labels, annotations and uninitialized-taint removal: a strategic merge patch.
	before = node.DeepCopy()
	node.Labels["node-role.kubernetes.io/demo"] = ""
	node.Annotations = map[string]string{"cluster.x-k8s.io/machine": "demo-cp-0"}
	if err := cl.Patch(ctx, node, client.StrategicMergeFrom(before)); err != nil {
		t.Fatalf("strategic merge patch: %v", err)
	}
	// A JSON patch (kubectl cordon --dry-run style clients send these).
	if err := cl.Patch(ctx, node, client.RawPatch(types.JSONPatchType, []byte(`[{"op":"add","path":"/spec/unschedulable","value":true}]`))); err != nil {
		t.Fatalf("json patch: %v", err)
	}
	nodes := &corev1.NodeList{}
	if err := cl.List(ctx, nodes); err != nil || len(nodes.Items) != 1 {
		t.Fatalf("nodes: %v %v", nodes.Items, err)
	}
	got := nodes.Items[0]
	if got.Spec.ProviderID != "byoh://cp-0/abcdef" || !got.Spec.Unschedulable || got.Annotations["cluster.x-k8s.io/machine"] != "demo-cp-0" ||
		got.Labels["node-role.kubernetes.io/control-plane"] != "" || got.Status.NodeInfo.KubeletVersion != "v1.33.5" || got.UID == "" {
		t.Fatalf("node after patches: %+v", got)
	}

	// etcd through the port-forward, as KCP reaches it.
	etcd0 := c.etcdClient("cp-0")
	if names := memberNames(t, etcd0); joined(names) != "cp-0" {
		t.Fatalf("members: %v", names)
	}
	status, err := etcd0.Status(ctx, "etcd-cp-0")
	if err != nil || status.Leader == 0 {
		t.Fatalf("status: %+v %v", status, err)
	}
	if alarms, err := etcd0.AlarmList(ctx); err != nil || len(alarms.Alarms) != 0 {
		t.Fatalf("alarms: %+v %v", alarms, err)
	}

	// A second control plane joins: a second member.
	c.mustPut("cp-1", c.request(true, false), http.StatusCreated)
	if names := memberNames(t, etcd0); joined(names) != "cp-0,cp-1" {
		t.Fatalf("members after join: %v", names)
	}
	if names := memberNames(t, c.etcdClient("cp-1")); joined(names) != "cp-0,cp-1" {
		t.Fatalf("members seen from cp-1: %v", names)
	}

	// kubeadm reset on cp-1: its member and static pods go, its Node stays.
	c.reset("cp-1")
	if names := memberNames(t, etcd0); joined(names) != "cp-0" {
		t.Fatalf("members after reset: %v", names)
	}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "kube-apiserver-cp-1"}, &corev1.Pod{}); err == nil {
		t.Fatal("kube-apiserver-cp-1 survived the reset")
	}
	if err := cl.Get(ctx, client.ObjectKey{Name: "cp-1"}, &corev1.Node{}); err != nil {
		t.Fatalf("Node cp-1 after reset: %v", err)
	}

	// A worker joins; nodes are NotReady until a CNI (calico-node) runs.
	c.mustPut("worker-0", c.request(false, false), http.StatusCreated)
	for _, n := range []string{"cp-0", "worker-0"} {
		if r := nodeReady(t, cl, n); r != corev1.ConditionFalse {
			t.Fatalf("%s Ready=%s before the CNI", n, r)
		}
	}
	if err := cl.Create(ctx, calicoNode()); err != nil {
		t.Fatalf("create calico-node as a ClusterResourceSet does: %v", err)
	}
	for _, n := range []string{"cp-0", "worker-0"} {
		eventually(t, n+" Ready", func() bool { return nodeReady(t, cl, n) == corev1.ConditionTrue })
	}
	worker := &corev1.Node{}
	_ = cl.Get(ctx, client.ObjectKey{Name: "worker-0"}, worker)
	if slices.ContainsFunc(worker.Spec.Taints, func(t corev1.Taint) bool { return t.Key == corev1.TaintNodeNotReady }) {
		t.Fatalf("worker-0 kept the not-ready taint: %v", worker.Spec.Taints)
	}

	// The same PUT again changes nothing.
	rv := worker.ResourceVersion
	c.mustPut("worker-0", c.request(false, false), http.StatusOK)
	_ = cl.Get(ctx, client.ObjectKey{Name: "worker-0"}, worker)
	if worker.ResourceVersion != rv {
		t.Fatalf("an identical PUT rewrote the Node: %s -> %s", rv, worker.ResourceVersion)
	}
	// A new kubelet on the host: nodeInfo follows.
	c.kubeletVersion = "v1.34.1"
	c.mustPut("worker-0", c.request(false, false), http.StatusOK)
	_ = cl.Get(ctx, client.ObjectKey{Name: "worker-0"}, worker)
	if worker.Status.NodeInfo.KubeletVersion != "v1.34.1" {
		t.Fatalf("kubelet upgrade not seen: %s", worker.Status.NodeInfo.KubeletVersion)
	}
}

func TestJoinNeedsARunningCluster(t *testing.T) {
	st := startStack(t, Options{})
	c := st.newCluster("absent", "127.0.11.100")
	if code, resp := c.put("worker-0", c.request(false, false)); code != http.StatusNotFound || resp["message"] == "" {
		t.Fatalf("join without a cluster: %d %v", code, resp)
	}
	c.mustPut("cp-0", c.request(true, true), http.StatusCreated)
	// Another cluster cannot take the host while its kubelet runs for this one.
	other := st.newCluster("other", "127.0.11.101")
	if code, resp := other.put("cp-0", other.request(true, true)); code != http.StatusConflict {
		t.Fatalf("init on a busy host: %d %v", code, resp)
	}
	// A second init of the same cluster would make a second cluster.
	if code, _ := c.put("cp-1", c.request(true, true)); code != http.StatusConflict {
		t.Fatalf("second init: %d", code)
	}
	// Resetting the last control plane stops the cluster: joins fail again, the endpoint refuses.
	c.reset("cp-0")
	if code, _ := c.put("worker-0", c.request(false, false)); code != http.StatusNotFound {
		t.Fatalf("join after the last control plane was reset: %d", code)
	}
	if _, err := c.clientset().Discovery().ServerVersion(); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("endpoint still answers: %v", err)
	}
	// The host is free again: the other cluster can have it.
	other.mustPut("cp-0", other.request(true, true), http.StatusCreated)
}

// A cluster deleted and made again under the same name (a ProvisioningRequest deleted and
// created again) does not know the hosts of the earlier one: kubeadm reset on such a host
// changes nothing in it, and the host is free afterwards.
func TestResetOfAHostOfAnEarlierClusterOfTheSameName(t *testing.T) {
	st := startStack(t, Options{})
	c := st.newCluster("again", "127.0.11.110")
	c.mustPut("cp-0", c.request(true, true), http.StatusCreated)
	c.mustPut("worker-0", c.request(false, false), http.StatusCreated)
	c.reset("cp-0") // the last control plane: the cluster is gone, worker-0 not yet reset
	c.mustPut("cp-0", c.request(true, true), http.StatusCreated)
	c.reset("worker-0")
	c.mustPut("worker-0", c.request(false, false), http.StatusCreated)
}

func TestControlAPIErrors(t *testing.T) {
	st := startStack(t, Options{})
	c := st.newCluster("bad", "127.0.12.100")
	for name, body := range map[string]map[string]any{
		"no endpoint":        {"kubeletVersion": "v1.33.5"},
		"bad version":        {"endpoint": c.endpoint, "kubeletVersion": "1.33"},
		"init without pki":   {"endpoint": c.endpoint, "kubeletVersion": "v1.33.5", "kubernetesVersion": "v1.33.5", "controlPlane": true, "init": true, "clusterConfiguration": c.clusterConfig},
		"unknown field":      {"endpoint": c.endpoint, "kubeletVersion": "v1.33.5", "color": "blue"},
		"init of a worker":   {"endpoint": c.endpoint, "kubeletVersion": "v1.33.5", "init": true},
		"bad cluster config": {"endpoint": c.endpoint, "kubeletVersion": "v1.33.5", "kubernetesVersion": "v1.33.5", "controlPlane": true, "init": true, "clusterConfiguration": "kind: Nonsense"},
	} {
		if code, resp := c.put("cp-0", body); code != http.StatusBadRequest || resp["message"] == "" {
			t.Errorf("%s: %d %v", name, code, resp)
		}
	}
	if code, resp := doJSON(t, http.MethodPost, c.nodeURL("cp-0"), nil); code != http.StatusMethodNotAllowed || resp["message"] == "" {
		t.Errorf("POST: %d %v", code, resp)
	}
	if code, _ := doJSON(t, http.MethodGet, st.control+"/healthz", nil); code != http.StatusOK {
		t.Errorf("healthz: %d", code)
	}
	c.mustPut("cp-0", c.request(true, true), http.StatusCreated)
	code, resp := doJSON(t, http.MethodGet, st.control+"/v1/clusters", nil)
	clusters, _ := resp["clusters"].([]any)
	if code != http.StatusOK || len(clusters) != 1 {
		t.Fatalf("list: %d %v", code, resp)
	}
	// A join with another CA is refused, as kubeadm's discovery would.
	wrong := c.request(true, false)
	wrong["pki"] = map[string]string{"ca.crt": newTestCA(t, "other").certPEM}
	if code, _ := c.put("cp-1", wrong); code != http.StatusConflict {
		t.Fatalf("join with another CA: %d", code)
	}
}

func TestAuthentication(t *testing.T) {
	st := startStack(t, Options{})
	c := st.newCluster("auth", "127.0.13.100")
	c.mustPut("cp-0", c.request(true, true), http.StatusCreated)
	cfg := c.restConfig()
	cfg.CertData, cfg.KeyData = nil, nil
	if _, err := kubernetesFor(t, cfg).CoreV1().Nodes().List(context.Background(), metav1.ListOptions{}); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("anonymous list: %v", err)
	}
	other := newTestCA(t, "other")
	certPEM, keyPEM := other.pemBlocks(t, other.clientCert(t, "kubernetes-admin", "system:masters"))
	cfg.CertData, cfg.KeyData = certPEM, keyPEM
	if _, err := kubernetesFor(t, cfg).CoreV1().Nodes().List(context.Background(), metav1.ListOptions{}); err == nil {
		t.Fatal("a client certificate of another CA was accepted")
	}
}

func kubernetesFor(t testing.TB, cfg *rest.Config) *kubernetes.Clientset {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestListenPortGuard(t *testing.T) {
	st := startStack(t, Options{ListenPort: 6443})
	c := st.newCluster("port", "127.0.14.100") // on the stack's free port, not 6443
	if code, resp := c.put("cp-0", c.request(true, true)); code != http.StatusBadRequest || !strings.Contains(resp["message"].(string), "--listen-port") {
		t.Fatalf("endpoint on another port: %d %v", code, resp)
	}
}
