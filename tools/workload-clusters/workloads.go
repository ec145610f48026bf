package main

// A cluster user's workload on a host (control API: PUT .../nodes/{node}/pods/{pod}): a plain
// Pod bound to the host's Node, as the scheduler binds one, running and Ready, as its kubelet
// reports it, and optionally the PodDisruptionBudget that protects it. Cluster API's drain
// skips mirror and DaemonSet pods, so such a pod is what a drain has to evict.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// workloadImage is the workload's only container.
const workloadImage = "registry.k8s.io/pause:3.10"

// podRequest is the body of PUT /v1/clusters/{namespace}/{name}/nodes/{node}/pods/{pod}.
type podRequest struct {
	Namespace        string            `json:"namespace"`
	Labels           map[string]string `json:"labels"`
	DisruptionBudget *budgetRequest    `json:"disruptionBudget"`
}

// budgetRequest is the spec of the pod's PodDisruptionBudget: at most one of the two.
type budgetRequest struct {
	MinAvailable   *intstr.IntOrString `json:"minAvailable"`
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable"`
}

// podView is the answer: where the pod runs and the budget that protects it ("" for none).
type podView struct {
	Namespace        string `json:"namespace"`
	Name             string `json:"name"`
	Node             string `json:"node"`
	DisruptionBudget string `json:"disruptionBudget"`
}

func (r *podRequest) validate() error {
	if r.Namespace == "" {
		r.Namespace = metav1.NamespaceDefault
	}
	if errs := validation.IsDNS1123Label(r.Namespace); len(errs) > 0 {
		return fmt.Errorf("namespace %q: %s", r.Namespace, strings.Join(errs, "; "))
	}
	for k, v := range r.Labels {
		if errs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(errs) > 0 {
			return fmt.Errorf("label %s=%s: %s", k, v, strings.Join(errs, "; "))
		}
	}
	b := r.DisruptionBudget
	if b == nil {
		return nil
	}
	if len(r.Labels) == 0 {
		return fmt.Errorf("a disruptionBudget selects its pod by the pod's labels: give labels")
	}
	if b.MinAvailable != nil && b.MaxUnavailable != nil {
		return fmt.Errorf("disruptionBudget: minAvailable and maxUnavailable cannot be both set")
	}
	for field, v := range map[string]*intstr.IntOrString{"minAvailable": b.MinAvailable, "maxUnavailable": b.MaxUnavailable} {
		if v == nil {
			continue
		}
		if n, err := intstr.GetScaledValueFromIntOrPercent(v, 100, true); err != nil || n < 0 || n > 100 && v.Type == intstr.String {
			return fmt.Errorf("disruptionBudget.%s: %s must be a non-negative integer or a percentage up to 100%%", field, v.String())
		}
	}
	return nil
}

func (s *Server) servePod(w http.ResponseWriter, r *http.Request) {
	key := clusterKey{r.PathValue("namespace"), r.PathValue("name")}
	node, name := r.PathValue("node"), r.PathValue("pod")
	for _, v := range []string{key.namespace, key.name, node, name} {
		if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
			writeError(w, failf(http.StatusBadRequest, "%q: %s", v, strings.Join(errs, "; ")))
			return
		}
	}
	if r.Method != http.MethodPut {
		writeError(w, failf(http.StatusMethodNotAllowed, "%s is not allowed", r.Method))
		return
	}
	req := &podRequest{}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		writeError(w, failf(http.StatusBadRequest, "body: %v", err))
		return
	}
	if err := req.validate(); err != nil {
		writeError(w, failf(http.StatusBadRequest, "%v", err))
		return
	}
	view, created, err := s.putPod(r.Context(), key, node, name, req)
	if err != nil {
		writeError(w, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	writeJSON(w, code, view)
}

// putPod runs the workload on host node unless it runs there already, with its budget unless it
// has one. It reports whether it created anything.
func (s *Server) putPod(ctx context.Context, key clusterKey, node, name string, req *podRequest) (podView, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clusters[key]
	if c == nil {
		return podView{}, false, failf(http.StatusNotFound, "no workload cluster %s", key)
	}
	n := c.nodes[node]
	if n == nil || !n.running {
		return podView{}, false, failf(http.StatusNotFound, "host %s runs no kubelet of cluster %s", node, key)
	}
	store := s.client(c)
	if err := store.Get(ctx, client.ObjectKey{Name: req.Namespace}, &corev1.Namespace{}); err != nil {
		return podView{}, false, failf(http.StatusNotFound, "namespace %s of cluster %s: %v", req.Namespace, key, err)
	}
	view := podView{Namespace: req.Namespace, Name: name, Node: node}
	created := false
	pod := &corev1.Pod{}
	err := store.Get(ctx, client.ObjectKey{Namespace: req.Namespace, Name: name}, pod)
	switch {
	case err == nil && pod.Spec.NodeName != node:
		return podView{}, false, failf(http.StatusConflict, "pod %s/%s runs on %s", req.Namespace, name, pod.Spec.NodeName)
	case apierrors.IsNotFound(err):
		if err := store.Create(ctx, workloadPod(n, req.Namespace, name, req.Labels, time.Now())); err != nil {
			return podView{}, false, failf(http.StatusInternalServerError, "creating pod %s: %v", name, err)
		}
		created = true
	case err != nil:
		return podView{}, false, failf(http.StatusInternalServerError, "reading pod %s: %v", name, err)
	}
	if req.DisruptionBudget == nil {
		return view, created, nil
	}
	view.DisruptionBudget = name
	budget := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: req.Namespace, Name: name, UID: uuid.NewUUID()},
		Spec: policyv1.PodDisruptionBudgetSpec{
			Selector:     &metav1.LabelSelector{MatchLabels: req.Labels},
			MinAvailable: req.DisruptionBudget.MinAvailable, MaxUnavailable: req.DisruptionBudget.MaxUnavailable,
		},
	}
	err = store.Create(ctx, budget)
	switch {
	case err == nil:
		created = true
	case !apierrors.IsAlreadyExists(err):
		return podView{}, false, failf(http.StatusInternalServerError, "creating PodDisruptionBudget %s: %v", name, err)
	}
	return view, created, nil
}

// workloadPod is a pod the scheduler bound to n and its kubelet runs: on the host's network, so
// that it runs before a CNI does, with the tolerations kube-apiserver's DefaultTolerationSeconds
// admission gives every pod.
func workloadPod(n *node, namespace, name string, labels map[string]string, now time.Time) *corev1.Pod {
	grace := int64(300)
	tolerations := []corev1.Toleration{}
	for _, key := range []string{corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable} {
		tolerations = append(tolerations, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &grace})
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels, UID: uuid.NewUUID()},
		Spec: corev1.PodSpec{
			NodeName: n.name, HostNetwork: true, Tolerations: tolerations,
			Containers: []corev1.Container{{Name: "app", Image: workloadImage}},
		},
		Status: runningStatus(n, "app", workloadImage, corev1.PodQOSBestEffort, now),
	}
}
