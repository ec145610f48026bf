package main

// The disruption controller of kube-controller-manager (kubernetes
// pkg/controller/disruption/disruption.go): it keeps each PodDisruptionBudget's status, which
// the eviction of a pod reads (eviction.go). For a budget: the pods it selects in its namespace;
// the pods expected and the healthy ones it needs (getExpectedPodCount): an integer minAvailable
// counts the selected pods and needs that many; maxUnavailable and a percentage minAvailable
// count the replicas of the selected pods' controllers, where a pod without a controller counts
// for nothing (getExpectedScale); the healthy pods are the selected ones that are Ready, not
// being deleted and not evicted within the last two minutes (countHealthyPods,
// buildDisruptedPodMap); disruptionsAllowed = healthy - needed, 0 when negative or no pod is
// expected (updatePdbStatus). A budget it cannot compute allows no disruption (failSafe).

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	inmemoryruntime "sigs.k8s.io/cluster-api/test/infrastructure/inmemory/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// disruptedPodTimeout is how long an evicted pod that is still there is not counted healthy
// (the disruption controller's DeletionTimeout).
const disruptedPodTimeout = 2 * time.Minute

// namespaceKey names the budgets of one namespace of one cluster.
type namespaceKey struct {
	cluster   clusterKey
	namespace string
}

// syncBudgets brings the status of every budget of a namespace in line with its pods.
func (c *controllers) syncBudgets(ctx context.Context, k namespaceKey) error {
	store, ok := c.s.storeOf(k.cluster)
	if !ok {
		return nil
	}
	budgets := &policyv1.PodDisruptionBudgetList{}
	if err := store.List(ctx, budgets, client.InNamespace(k.namespace)); err != nil || len(budgets.Items) == 0 {
		return err
	}
	pods := &corev1.PodList{}
	if err := store.List(ctx, pods, client.InNamespace(k.namespace)); err != nil {
		return err
	}
	now := time.Now()
	for i := range budgets.Items {
		pdb := &budgets.Items[i]
		recheck, err := syncBudget(ctx, store, pdb, pods.Items, now)
		if apierrors.IsConflict(err) {
			c.budgets.Add(k) // an eviction wrote it meanwhile: compute it again
			continue
		}
		if err != nil {
			return err
		}
		if recheck > 0 {
			c.budgets.AddAfter(k, recheck)
		}
	}
	return nil
}

// syncBudget writes pdb's status when it changed; it tells when an evicted pod's grace runs out.
func syncBudget(ctx context.Context, store inmemoryruntime.Client, pdb *policyv1.PodDisruptionBudget, all []corev1.Pod, now time.Time) (time.Duration, error) {
	pods, expected, desired, err := budgetedPods(ctx, store, pdb, all)
	if err != nil {
		return 0, failSafe(ctx, store, pdb, err)
	}
	disrupted, recheck := disruptedPods(pdb, pods, now)
	healthy := int32(0)
	for _, pod := range pods {
		if _, evicted := disrupted[pod.Name]; pod.DeletionTimestamp == nil && !evicted && podReady(pod) {
			healthy++
		}
	}
	allowed := healthy - desired
	if expected <= 0 || allowed <= 0 {
		allowed = 0
	}
	have := pdb.Status
	if have.CurrentHealthy == healthy && have.DesiredHealthy == desired && have.ExpectedPods == expected &&
		have.DisruptionsAllowed == allowed && equality.Semantic.DeepEqual(have.DisruptedPods, disrupted) &&
		have.ObservedGeneration == pdb.Generation && conditionUpToDate(pdb) {
		return recheck, nil
	}
	status := policyv1.PodDisruptionBudgetStatus{
		CurrentHealthy: healthy, DesiredHealthy: desired, ExpectedPods: expected, DisruptionsAllowed: allowed,
		DisruptedPods: disrupted, ObservedGeneration: pdb.Generation, Conditions: have.Conditions,
	}
	setDisruptionAllowed(&status)
	return recheck, writeBudgetStatus(ctx, store, pdb, status)
}

// budgetedPods are the pods pdb selects, how many are expected and how many must be healthy
// (getPodsForPdb, getExpectedPodCount).
func budgetedPods(ctx context.Context, store inmemoryruntime.Client, pdb *policyv1.PodDisruptionBudget, all []corev1.Pod) ([]*corev1.Pod, int32, int32, error) {
	selector, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		return nil, 0, 0, err
	}
	var pods []*corev1.Pod
	for i := range all {
		if selector.Matches(labels.Set(all[i].Labels)) {
			pods = append(pods, &all[i])
		}
	}
	var expected, desired int32
	switch {
	case pdb.Spec.MaxUnavailable != nil:
		if expected, err = expectedScale(ctx, store, pods); err != nil {
			return nil, 0, 0, err
		}
		unavailable, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(expected), true)
		if err != nil {
			return nil, 0, 0, err
		}
		desired = max(expected-int32(unavailable), 0)
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int:
		expected, desired = int32(len(pods)), pdb.Spec.MinAvailable.IntVal
	case pdb.Spec.MinAvailable != nil:
		if expected, err = expectedScale(ctx, store, pods); err != nil {
			return nil, 0, 0, err
		}
		available, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(expected), true)
		if err != nil {
			return nil, 0, 0, err
		}
		desired = int32(available)
	}
	return pods, expected, desired, nil
}

// expectedScale sums the replicas of the pods' controllers (getExpectedScale). A pod without a
// controller counts for nothing. Of the controllers the disruption controller knows, only a
// Deployment can own a pod here (this store holds no ReplicaSets, StatefulSets or
// ReplicationControllers, and refuses owners that do not exist); it counts through its scale.
// Any other controller fails the budget, as one without a scale subresource does upstream.
func expectedScale(ctx context.Context, store inmemoryruntime.Client, pods []*corev1.Pod) (int32, error) {
	scales := map[string]int32{}
	for _, pod := range pods {
		ref := metav1.GetControllerOf(pod)
		if ref == nil {
			continue
		}
		if _, seen := scales[string(ref.UID)]; seen {
			continue
		}
		deployment := &appsv1.Deployment{}
		key := client.ObjectKey{Namespace: pod.Namespace, Name: ref.Name}
		if ref.Kind != "Deployment" || ref.APIVersion != appsv1.SchemeGroupVersion.String() ||
			store.Get(ctx, key, deployment) != nil || deployment.UID != ref.UID {
			return 0, fmt.Errorf("found no controllers for pod %q", pod.Name)
		}
		scales[string(ref.UID)] = 1
		if deployment.Spec.Replicas != nil {
			scales[string(ref.UID)] = *deployment.Spec.Replicas
		}
	}
	var expected int32
	for _, n := range scales {
		expected += n
	}
	return expected, nil
}

// disruptedPods keeps the evictions of pods that are still there and within their grace, and
// says when the first grace runs out (buildDisruptedPodMap).
func disruptedPods(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod, now time.Time) (map[string]metav1.Time, time.Duration) {
	kept := map[string]metav1.Time{}
	var recheck time.Duration
	for _, pod := range pods {
		at, ok := pdb.Status.DisruptedPods[pod.Name]
		if !ok || pod.DeletionTimestamp != nil {
			continue
		}
		left := at.Add(disruptedPodTimeout).Sub(now)
		if left <= 0 {
			continue
		}
		kept[pod.Name] = at
		if recheck == 0 || left < recheck {
			recheck = left
		}
	}
	return kept, recheck
}

// failSafe makes a budget that could not be computed allow no disruption, saying why.
func failSafe(ctx context.Context, store inmemoryruntime.Client, pdb *policyv1.PodDisruptionBudget, cause error) error {
	status := *pdb.Status.DeepCopy()
	status.DisruptionsAllowed = 0
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{
		Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionFalse, Reason: policyv1.SyncFailedReason,
		Message: cause.Error(), ObservedGeneration: status.ObservedGeneration,
	})
	if equality.Semantic.DeepEqual(status, pdb.Status) {
		return nil
	}
	return writeBudgetStatus(ctx, store, pdb, status)
}

// setDisruptionAllowed sets the DisruptionAllowed condition from disruptionsAllowed
// (k8s.io/component-helpers apps/poddisruptionbudget, UpdateDisruptionAllowedCondition).
func setDisruptionAllowed(status *policyv1.PodDisruptionBudgetStatus) {
	c := metav1.Condition{Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionFalse,
		Reason: policyv1.InsufficientPodsReason, ObservedGeneration: status.ObservedGeneration}
	if status.DisruptionsAllowed > 0 {
		c.Status, c.Reason = metav1.ConditionTrue, policyv1.SufficientPodsReason
	}
	if status.Conditions == nil {
		status.Conditions = []metav1.Condition{}
	}
	meta.SetStatusCondition(&status.Conditions, c)
}

// conditionUpToDate: the condition says what disruptionsAllowed does, for the current
// generation (ConditionsAreUpToDate).
func conditionUpToDate(pdb *policyv1.PodDisruptionBudget) bool {
	c := meta.FindStatusCondition(pdb.Status.Conditions, policyv1.DisruptionAllowedCondition)
	if c == nil || pdb.Status.ObservedGeneration != pdb.Generation {
		return false
	}
	if pdb.Status.DisruptionsAllowed > 0 {
		return c.Status == metav1.ConditionTrue && c.Reason == policyv1.SufficientPodsReason
	}
	return c.Status == metav1.ConditionFalse && c.Reason == policyv1.InsufficientPodsReason
}

// writeBudgetStatus stores status as pdb's, failing on a newer pdb (a conflict). kube-apiserver
// changes a budget's generation only with its spec, and its status subresource leaves it; this
// store bumps it with every write, this one too. So that a status that observed the current
// generation still does after its own write, it names the generation the write makes.
func writeBudgetStatus(ctx context.Context, store inmemoryruntime.Client, pdb *policyv1.PodDisruptionBudget, status policyv1.PodDisruptionBudgetStatus) error {
	if status.ObservedGeneration == pdb.Generation {
		status.ObservedGeneration++
		for i := range status.Conditions {
			if status.Conditions[i].ObservedGeneration == pdb.Generation {
				status.Conditions[i].ObservedGeneration++
			}
		}
	}
	out := pdb.DeepCopy()
	out.Status = status
	return store.Update(ctx, out)
}

// podReady is the disruption controller's and the eviction's "healthy": condition Ready True.
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
