package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func (c *testCluster) podURL(node, pod string) string {
	return c.nodeURL(node) + "/pods/" + pod
}

// runWorkload puts pod on node through the control API, protected by a budget when one is given.
func (c *testCluster) runWorkload(node, pod string, labels map[string]string, budget map[string]any, want int) {
	c.st.t.Helper()
	body := map[string]any{"labels": labels}
	if budget != nil {
		body["disruptionBudget"] = budget
	}
	if code, resp := doJSON(c.st.t, http.MethodPut, c.podURL(node, pod), body); code != want {
		c.st.t.Fatalf("PUT pod %s on %s: %d %v, want %d", pod, node, code, resp, want)
	}
}

// evict asks for the eviction as Cluster API's drain does (internal/controllers/machine/drain/drain.go, evictPod).
func evict(cl client.Client, namespace, name string) error {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	eviction := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, DeleteOptions: &metav1.DeleteOptions{}}
	return cl.SubResource("eviction").Create(context.Background(), pod, eviction)
}

// budgetStatus waits until the disruption controller has computed the budget's current generation.
func budgetStatus(t *testing.T, cl client.Client, namespace, name string) policyv1.PodDisruptionBudgetStatus {
	t.Helper()
	pdb := &policyv1.PodDisruptionBudget{}
	eventually(t, "the status of budget "+name, func() bool {
		err := cl.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, pdb)
		return err == nil && pdb.Status.ObservedGeneration == pdb.Generation
	})
	return pdb.Status
}

func refusedByBudget(err error, cause string) bool {
	status, ok := err.(apierrors.APIStatus)
	if !ok || !apierrors.IsTooManyRequests(err) || status.Status().Message != evictionRefused || status.Status().Details == nil {
		return false
	}
	for _, c := range status.Status().Details.Causes {
		if c.Type == policyv1.DisruptionBudgetCause && c.Message == cause {
			return true
		}
	}
	return false
}

func podGone(cl client.Client, namespace, name string) bool {
	return apierrors.IsNotFound(cl.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &corev1.Pod{}))
}

// TestEvictionHonoursDisruptionBudgets: a drain's eviction of a pod a budget protects is refused
// with kube-apiserver's 429 while the budget allows no disruption, and granted once it allows one.
func TestEvictionHonoursDisruptionBudgets(t *testing.T) {
	st := startStack(t, Options{CNIPreinstalled: true})
	c := st.newCluster("budgets", "127.0.30.100")
	c.mustPut("cp-0", c.request(true, true), http.StatusCreated)
	c.mustPut("worker-0", c.request(false, false), http.StatusCreated)
	cl := c.ctrlClient()
	app := map[string]string{"app": "guarded"}
	c.runWorkload("worker-0", "guarded", app, map[string]any{"minAvailable": 1}, http.StatusCreated)
	c.runWorkload("worker-0", "guarded", app, map[string]any{"minAvailable": 1}, http.StatusOK)
	c.runWorkload("cp-0", "guarded", app, nil, http.StatusConflict)

	pod := &corev1.Pod{}
	if err := cl.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "guarded"}, pod); err != nil {
		t.Fatal(err)
	}
	if pod.Spec.NodeName != "worker-0" || pod.Status.Phase != corev1.PodRunning || !podReady(pod) {
		t.Fatalf("the workload does not run on worker-0: %s %s %v", pod.Spec.NodeName, pod.Status.Phase, pod.Status.Conditions)
	}
	status := budgetStatus(t, cl, "default", "guarded")
	if status.ExpectedPods != 1 || status.CurrentHealthy != 1 || status.DesiredHealthy != 1 || status.DisruptionsAllowed != 0 {
		t.Fatalf("budget status: %+v", status)
	}
	start := time.Now()
	err := evict(cl, "default", "guarded")
	if !refusedByBudget(err, "The disruption budget guarded needs 1 healthy pods and has 1 currently") {
		t.Fatalf("eviction of the only pod a minAvailable 1 budget protects: %v", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("the refusal took %s: a Retry-After made the client retry", elapsed)
	}
	if podGone(cl, "default", "guarded") {
		t.Fatal("the refused eviction deleted the pod")
	}

	// A second healthy pod the budget selects lets one go.
	c.runWorkload("cp-0", "guarded-2", app, nil, http.StatusCreated)
	eventually(t, "one disruption allowed", func() bool { return budgetStatus(t, cl, "default", "guarded").DisruptionsAllowed == 1 })
	if err := evict(cl, "default", "guarded"); err != nil {
		t.Fatalf("eviction the budget allows: %v", err)
	}
	if !podGone(cl, "default", "guarded") {
		t.Fatal("the evicted pod is still there")
	}
	eventually(t, "the budget to count the pod left", func() bool {
		s := budgetStatus(t, cl, "default", "guarded")
		return s.CurrentHealthy == 1 && s.DisruptionsAllowed == 0 && len(s.DisruptedPods) == 0
	})
	if err := evict(cl, "default", "guarded-2"); !refusedByBudget(err, "The disruption budget guarded needs 1 healthy pods and has 1 currently") {
		t.Fatalf("eviction of the last pod: %v", err)
	}

	// A budget written by a client keeps the status the controller wrote; deleting it frees the pod.
	pdb := &policyv1.PodDisruptionBudget{}
	if err := cl.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "guarded"}, pdb); err != nil {
		t.Fatal(err)
	}
	pdb.Labels = map[string]string{"edited": "yes"}
	pdb.Status = policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 5}
	if err := cl.Update(context.Background(), pdb); err != nil || pdb.Status.DisruptionsAllowed == 5 {
		t.Fatalf("update of the budget: %v, status %+v", err, pdb.Status)
	}
	if err := cl.Delete(context.Background(), pdb); err != nil {
		t.Fatal(err)
	}
	if err := evict(cl, "default", "guarded-2"); err != nil || !podGone(cl, "default", "guarded-2") {
		t.Fatalf("eviction without a budget: %v", err)
	}
}

// TestBudgetsCountOnlyWhatUpstreamCounts: maxUnavailable counts the replicas of the pods'
// controllers, so pods without one are not expected and the budget allows nothing, as the
// disruption controller computes it; a pod that is not Ready goes while the budget has the
// healthy pods it needs.
func TestBudgetsCountOnlyWhatUpstreamCounts(t *testing.T) {
	st := startStack(t, Options{CNIPreinstalled: true})
	c := st.newCluster("unmanaged", "127.0.30.101")
	c.mustPut("cp-0", c.request(true, true), http.StatusCreated)
	cl := c.ctrlClient()
	ctx := context.Background()
	app := map[string]string{"app": "loose"}
	c.runWorkload("cp-0", "loose-1", app, map[string]any{"maxUnavailable": 1}, http.StatusCreated)
	c.runWorkload("cp-0", "loose-2", app, nil, http.StatusCreated)
	eventually(t, "two healthy pods", func() bool { return budgetStatus(t, cl, "default", "loose-1").CurrentHealthy == 2 })
	status := budgetStatus(t, cl, "default", "loose-1")
	if status.ExpectedPods != 0 || status.DisruptionsAllowed != 0 {
		t.Fatalf("maxUnavailable over unmanaged pods: %+v", status)
	}
	if err := evict(cl, "default", "loose-1"); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("eviction under a budget expecting no pod: %v", err)
	}

	// minAvailable 1 of two: loose-2 turns unready; the budget still has its one healthy pod, so
	// loose-2 goes without taking a disruption.
	pdb := &policyv1.PodDisruptionBudget{}
	_ = cl.Get(ctx, client.ObjectKey{Namespace: "default", Name: "loose-1"}, pdb)
	one := intstr.FromInt32(1)
	pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable = nil, &one
	if err := cl.Update(ctx, pdb); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{}
	_ = cl.Get(ctx, client.ObjectKey{Namespace: "default", Name: "loose-2"}, pod)
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			pod.Status.Conditions[i].Status = corev1.ConditionFalse
		}
	}
	if err := cl.Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	eventually(t, "one healthy pod of one needed", func() bool {
		s := budgetStatus(t, cl, "default", "loose-1")
		return s.CurrentHealthy == 1 && s.DesiredHealthy == 1 && s.ExpectedPods == 2
	})
	if err := evict(cl, "default", "loose-2"); err != nil || !podGone(cl, "default", "loose-2") {
		t.Fatalf("eviction of an unready pod under a satisfied budget: %v", err)
	}
	if err := evict(cl, "default", "loose-1"); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("eviction of the last healthy pod: %v", err)
	}
}

// TestBudgetsAreServed: discovery names policy/v1 PodDisruptionBudgets; they are listed,
// watched and selected as kube-apiserver serves them.
func TestBudgetsAreServed(t *testing.T) {
	st := startStack(t, Options{CNIPreinstalled: true})
	c := st.newCluster("served", "127.0.30.102")
	c.mustPut("cp-0", c.request(true, true), http.StatusCreated)
	cs := c.clientset()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resources, err := cs.Discovery().ServerResourcesForGroupVersion("policy/v1")
	if err != nil || len(resources.APIResources) != 1 || resources.APIResources[0].Kind != "PodDisruptionBudget" {
		t.Fatalf("policy/v1 discovery: %v %v", resources, err)
	}
	groups, err := cs.Discovery().ServerGroups()
	if err != nil || !strings.Contains(groupNames(groups), "policy") || !strings.Contains(groupNames(groups), "apps") {
		t.Fatalf("groups: %v %v", groups, err)
	}
	list, err := cs.PolicyV1().PodDisruptionBudgets("").List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 0 {
		t.Fatalf("list: %v %v", list, err)
	}
	w, err := cs.PolicyV1().PodDisruptionBudgets("default").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion, FieldSelector: "metadata.name=watched"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	one := intstr.FromInt32(1)
	for _, name := range []string{"other", "watched"} {
		pdb := &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}},
		}
		if _, err := cs.PolicyV1().PodDisruptionBudgets("default").Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The disruption controller writes the status of a budget that selects no pod.
	computed := false
	for ev := range w.ResultChan() {
		pdb, ok := ev.Object.(*policyv1.PodDisruptionBudget)
		if !ok || pdb.Name != "watched" {
			t.Fatalf("event of another budget: %s %v", ev.Type, ev.Object)
		}
		if computed = ev.Type == watch.Modified && pdb.Status.ObservedGeneration == pdb.Generation && pdb.Status.DesiredHealthy == 1; computed {
			break
		}
	}
	if !computed {
		t.Fatal("the watch ended without the budget's status")
	}
	if _, err := cs.PolicyV1().PodDisruptionBudgets("").List(ctx, metav1.ListOptions{FieldSelector: "spec.minAvailable=1"}); !apierrors.IsBadRequest(err) {
		t.Fatalf("a field selector kube-apiserver does not index: %v", err)
	}
	if err := cs.PolicyV1().PodDisruptionBudgets("default").Delete(ctx, "other", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "other", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("deleted budget: %v", err)
	}
}

func groupNames(groups *metav1.APIGroupList) string {
	var names []string
	for _, g := range groups.Groups {
		names = append(names, g.Name)
	}
	return strings.Join(names, ",")
}

func TestWorkloadControlAPIErrors(t *testing.T) {
	st := startStack(t, Options{})
	c := st.newCluster("workloads", "127.0.30.103")
	labels := map[string]string{"app": "x"}
	c.runWorkload("cp-0", "x", labels, nil, http.StatusNotFound) // no cluster
	c.mustPut("cp-0", c.request(true, true), http.StatusCreated)
	c.runWorkload("worker-9", "x", labels, nil, http.StatusNotFound) // no such host
	for name, body := range map[string]map[string]any{
		"both bounds":      {"labels": labels, "disruptionBudget": map[string]any{"minAvailable": 1, "maxUnavailable": 1}},
		"budget no labels": {"disruptionBudget": map[string]any{"minAvailable": 1}},
		"bad percentage":   {"labels": labels, "disruptionBudget": map[string]any{"minAvailable": "150%"}},
		"negative":         {"labels": labels, "disruptionBudget": map[string]any{"maxUnavailable": -1}},
		"bad label":        {"labels": map[string]string{"a b": "c"}},
		"unknown field":    {"labels": labels, "replicas": 2},
		"bad namespace":    {"namespace": "Not_A_Label"},
	} {
		if code, resp := doJSON(t, http.MethodPut, c.podURL("cp-0", "x"), body); code != http.StatusBadRequest || resp["message"] == "" {
			t.Errorf("%s: %d %v", name, code, resp)
		}
	}
	if code, _ := doJSON(t, http.MethodPut, c.podURL("cp-0", "x"), map[string]any{"namespace": "nowhere"}); code != http.StatusNotFound {
		t.Errorf("missing namespace: %d", code)
	}
	if code, _ := doJSON(t, http.MethodDelete, c.podURL("cp-0", "x"), nil); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d", code)
	}
	// A reset host runs no kubelet that could start the pod.
	c.mustPut("worker-0", c.request(false, false), http.StatusCreated)
	c.reset("worker-0")
	c.runWorkload("worker-0", "x", labels, nil, http.StatusNotFound)
}

// TestRefusalsTellClientsWhetherToRetry: a budget whose status is older than its spec asks
// clients to come back in 10 s (client-go retries a 429 with Retry-After by itself); a budget
// that allows no disruption does not, so the drain decides when to try again.
func TestRefusalsTellClientsWhetherToRetry(t *testing.T) {
	stale := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "b", Generation: 2}}
	stale.Status.ObservedGeneration = 1
	for _, tc := range []struct {
		err        error
		retryAfter string
	}{
		{checkAndDecrement(context.Background(), nil, stale, "p", true), "10"},
		{refused(&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "b"}}), ""},
	} {
		rec := httptest.NewRecorder()
		writeStatus(rec, tc.err)
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != tc.retryAfter {
			t.Errorf("%v: %d, Retry-After %q, want 429, %q", tc.err, rec.Code, rec.Header().Get("Retry-After"), tc.retryAfter)
		}
	}
}
