package main

// What a host's kubelet writes: its Node (registration and status) and the mirror Pods of the
// static pods kubeadm put in /etc/kubernetes/manifests.

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	labelControlPlane    = "node-role.kubernetes.io/control-plane"
	labelExcludeFromLB   = "node.kubernetes.io/exclude-from-external-load-balancers"
	mirrorPodAnnotation  = "kubernetes.io/config.mirror" // Cluster API's drain skips pods that carry it
	nodeArch, nodeOS     = "amd64", "linux"              // BYOH supports x86-64 Linux hosts only
	notReadyNetworkError = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
)

// staticComponents are the control-plane static pods kubeadm writes, etcd last.
var staticComponents = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"}

// registrationLabels are the labels a kubelet registers its Node with (its own well-known labels
// plus --node-labels), plus those `kubeadm init/join --control-plane` marks control planes with.
func registrationLabels(n *node, extra map[string]string) map[string]string {
	labels := map[string]string{
		corev1.LabelHostname: n.name, corev1.LabelOSStable: nodeOS, corev1.LabelArchStable: nodeArch,
		"beta.kubernetes.io/os": nodeOS, "beta.kubernetes.io/arch": nodeArch,
	}
	maps.Copy(labels, extra)
	if n.controlPlane {
		labels[labelControlPlane] = ""
		labels[labelExcludeFromLB] = ""
	}
	return labels
}

// registrationTaints follows kubeadm's nodeRegistration.taints: unset means the control-plane
// taint on control planes and none on workers, an empty list means none.
func registrationTaints(n *node, given *[]corev1.Taint) []corev1.Taint {
	if given != nil {
		return slices.Clone(*given)
	}
	if n.controlPlane {
		return []corev1.Taint{{Key: labelControlPlane, Effect: corev1.TaintEffectNoSchedule}}
	}
	return nil
}

func newNode(n *node, labels map[string]string, taints []corev1.Taint) *corev1.Node {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: labels}, Spec: corev1.NodeSpec{Taints: taints}}
	setKubeletStatus(node, n)
	return node
}

// setKubeletStatus writes what a running kubelet reports about its host; it tells whether anything changed.
func setKubeletStatus(node *corev1.Node, n *node) bool {
	before := node.Status.DeepCopy()
	node.Status.NodeInfo.KubeletVersion = n.kubeletVersion
	node.Status.NodeInfo.OperatingSystem = nodeOS
	node.Status.NodeInfo.Architecture = nodeArch
	addresses := []corev1.NodeAddress{}
	if n.ip != nil {
		addresses = append(addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: n.ip.String()})
	}
	node.Status.Addresses = append(addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: n.name})
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = 10250
	return !equality.Semantic.DeepEqual(before, &node.Status)
}

// readiness is what the Node's conditions say.
type readiness int

const (
	ready           readiness = iota // kubelet runs, a CNI is installed
	networkNotReady                  // kubelet runs, no CNI yet
	unknown                          // kubelet stopped posting status (node lifecycle controller)
)

// setReadiness writes the conditions of r and the taints kube-controller-manager's node lifecycle
// controller keeps in line with them (node.kubernetes.io/not-ready or unreachable, NoSchedule and
// NoExecute); it tells whether anything changed.
func setReadiness(node *corev1.Node, r readiness, now time.Time) bool {
	type cond struct {
		status          corev1.ConditionStatus
		reason, message string
	}
	want := map[corev1.NodeConditionType]cond{
		corev1.NodeMemoryPressure: {corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"},
		corev1.NodeDiskPressure:   {corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"},
		corev1.NodePIDPressure:    {corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"},
		corev1.NodeReady:          {corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"},
	}
	taintKey := ""
	switch r {
	case networkNotReady:
		want[corev1.NodeReady] = cond{corev1.ConditionFalse, "KubeletNotReady", notReadyNetworkError}
		taintKey = corev1.TaintNodeNotReady
	case unknown:
		for t := range want {
			want[t] = cond{corev1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status."}
		}
		taintKey = corev1.TaintNodeUnreachable
	}
	changed := false
	for _, t := range []corev1.NodeConditionType{corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure, corev1.NodeReady} {
		w := want[t]
		i := slices.IndexFunc(node.Status.Conditions, func(c corev1.NodeCondition) bool { return c.Type == t })
		if i >= 0 && node.Status.Conditions[i].Status == w.status && node.Status.Conditions[i].Reason == w.reason {
			continue
		}
		c := corev1.NodeCondition{Type: t, Status: w.status, Reason: w.reason, Message: w.message,
			LastHeartbeatTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now)}
		if i >= 0 {
			if node.Status.Conditions[i].Status == w.status {
				c.LastTransitionTime = node.Status.Conditions[i].LastTransitionTime
			}
			node.Status.Conditions[i] = c
		} else {
			node.Status.Conditions = append(node.Status.Conditions, c)
		}
		changed = true
	}
	return setLifecycleTaints(node, taintKey, now) || changed
}

// setLifecycleTaints keeps exactly the lifecycle taints of key (none for "").
func setLifecycleTaints(node *corev1.Node, key string, now time.Time) bool {
	isLifecycle := func(t corev1.Taint) bool {
		return t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable
	}
	var have []corev1.Taint
	for _, t := range node.Spec.Taints {
		if isLifecycle(t) {
			have = append(have, t)
		}
	}
	if key == "" && len(have) == 0 ||
		len(have) == 2 && have[0].Key == key && have[1].Key == key {
		return false
	}
	taints := slices.DeleteFunc(slices.Clone(node.Spec.Taints), isLifecycle)
	if key != "" {
		added := metav1.NewTime(now)
		taints = append(taints,
			corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule},
			corev1.Taint{Key: key, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added})
	}
	node.Spec.Taints = taints
	return true
}

// staticPod is the mirror Pod a kubelet posts for one of kubeadm's static pods, running and ready
// (KCP's ControlPlaneComponentsHealthy reads phase Running and condition Ready).
func staticPod(c *cluster, n *node, component, image string, now time.Time) *corev1.Pod {
	hash := fnv.New32a()
	_, _ = fmt.Fprintf(hash, "%s/%s/%s", n.name, component, image)
	configHash := fmt.Sprintf("%08x", hash.Sum32())
	annotations := map[string]string{
		mirrorPodAnnotation: configHash, "kubernetes.io/config.hash": configHash,
		"kubernetes.io/config.source": "file", "kubernetes.io/config.seen": now.UTC().Format(time.RFC3339Nano),
	}
	if n.ip != nil {
		switch component {
		case "kube-apiserver":
			annotations["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"] = fmt.Sprintf("%s:%d", n.ip, c.endpoint.Port())
		case "etcd":
			annotations["kubeadm.kubernetes.io/etcd.advertise-client-urls"] = fmt.Sprintf("https://%s:2379", n.ip)
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: metav1.NamespaceSystem, Name: component + "-" + n.name,
			Labels:      map[string]string{"component": component, "tier": "control-plane"},
			Annotations: annotations,
		},
		Spec: corev1.PodSpec{
			NodeName: n.name, HostNetwork: true, PriorityClassName: "system-node-critical", Priority: ptrTo(int32(2000001000)),
			Containers:  []corev1.Container{{Name: component, Image: image}},
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
		},
		Status: runningStatus(n, component, image, corev1.PodQOSBurstable, now),
	}
	return pod
}

// runningStatus is what a kubelet reports of a host-network pod of one container it started:
// Running and Ready.
func runningStatus(n *node, container, image string, qos corev1.PodQOSClass, now time.Time) corev1.PodStatus {
	started := metav1.NewTime(now)
	conditions := []corev1.PodCondition{}
	for _, t := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled} {
		conditions = append(conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: started})
	}
	status := corev1.PodStatus{
		Phase: corev1.PodRunning, Conditions: conditions, StartTime: &started, QOSClass: qos,
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: container, Image: image, Ready: true, Started: ptrTo(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
		}},
	}
	if n.ip != nil {
		status.HostIP, status.PodIP = n.ip.String(), n.ip.String()
	}
	return status
}
