package main

// The eviction of a pod (POST pods/<name>/eviction, a policy/v1 Eviction), as kube-apiserver's
// eviction REST does it (kubernetes pkg/registry/core/pod/storage/eviction.go, read at v1.36.3;
// a refusal by a budget short of healthy pods reads the same in older releases): a pod that is Pending, finished or being
// deleted goes at once; otherwise the one PodDisruptionBudget of its namespace that selects it
// (an empty selector selects every pod) must allow a disruption, which the eviction takes from
// the budget's status (checkAndDecrement) before deleting the pod; a budget that allows none
// answers 429 TooManyRequests "Cannot evict pod as it would violate the pod's disruption
// budget." with the budget's reason as a DisruptionBudget cause, which Cluster API's drain
// retries until the Machine's nodeDrainTimeout. A pod that is not Ready is deleted without
// taking a disruption when its budget's unhealthyPodEvictionPolicy is AlwaysAllow, or when the
// budget has the healthy pods it needs. The pod gets the DisruptionTarget condition, then is
// deleted at once (no graceful termination here).

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	inmemoryruntime "sigs.k8s.io/cluster-api/test/infrastructure/inmemory/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// evictionRefused is kube-apiserver's message, which Cluster API's drain looks for.
	evictionRefused = "Cannot evict pod as it would violate the pod's disruption budget."
	// maxDisruptedPods bounds a budget's status.disruptedPods (MaxDisruptedPodSize).
	maxDisruptedPods = 2000
)

var podsResource = corev1.SchemeGroupVersion.WithResource("pods")

// evict serves pods/<name>/eviction.
func (s *Server) evict(w http.ResponseWriter, r *http.Request, t requestTarget, store inmemoryruntime.Client) {
	if t.gvr != podsResource || t.namespace == "" {
		writeStatus(w, notServed(r))
		return
	}
	obj, err := s.decodeBody(r, policyv1.SchemeGroupVersion.WithKind("Eviction"))
	if err != nil {
		writeStatus(w, err)
		return
	}
	eviction := obj.(*policyv1.Eviction)
	if eviction.Name != t.name {
		writeStatus(w, apierrors.NewBadRequest("name in URL does not match name in Eviction object"))
		return
	}
	if err := checkNamespace(eviction, t); err != nil {
		writeStatus(w, err)
		return
	}
	options := eviction.DeleteOptions
	if options == nil {
		options = &metav1.DeleteOptions{}
	}
	// kube-apiserver's create handler answers 201 with the Status the eviction returns, even
	// one that reports a failure (which clients read as the error its code says).
	status, err := s.evictPod(r.Context(), store, t.namespace, t.name, options, isDryRun(r, options))
	if err != nil {
		writeStatus(w, err)
		return
	}
	status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	if status.Code == 0 {
		status.Code = http.StatusCreated
	}
	writeJSON(w, http.StatusCreated, status)
}

func isDryRun(r *http.Request, options *metav1.DeleteOptions) bool {
	return slices.Contains(r.URL.Query()["dryRun"], metav1.DryRunAll) || slices.Contains(options.DryRun, metav1.DryRunAll)
}

func (s *Server) evictPod(ctx context.Context, store inmemoryruntime.Client, namespace, name string, options *metav1.DeleteOptions, dryRun bool) (*metav1.Status, error) {
	success := &metav1.Status{Status: metav1.StatusSuccess}
	pod := &corev1.Pod{}
	var err error
	for range maxConflictRetries {
		if err = store.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, pod); err != nil {
			return nil, err
		}
		if !budgetIgnored(pod) {
			break
		}
		deleteOptions := options
		if pod.Status.Phase == corev1.PodPending && pod.DeletionTimestamp == nil && !resourceVersionSet(options) {
			// Not racing a pod that turns Ready meanwhile (shouldEnforceResourceVersion).
			deleteOptions = withResourceVersion(options, pod.ResourceVersion)
		}
		if err = disruptAndDelete(ctx, store, pod, deleteOptions, dryRun); err == nil {
			return success, nil
		}
		if !apierrors.IsConflict(err) || resourceVersionSet(options) {
			return nil, err
		}
	}
	if budgetIgnored(pod) {
		return nil, err // conflicts all along
	}
	budgets, err := budgetsOf(ctx, store, pod)
	if err != nil {
		return nil, err
	}
	switch len(budgets) {
	case 0:
		return success, disruptAndDelete(ctx, store, pod, options, dryRun)
	case 1:
	default:
		return &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError,
			Message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."}, nil
	}
	pdb := &budgets[0]
	unhealthyGoes := !podReady(pod) && (deref(pdb.Spec.UnhealthyPodEvictionPolicy) == policyv1.AlwaysAllow ||
		pdb.Status.CurrentHealthy >= pdb.Status.DesiredHealthy && pdb.Status.DesiredHealthy > 0)
	if !unhealthyGoes {
		if err := takeDisruption(ctx, store, pdb, pod.Name, dryRun); err != nil {
			return nil, err
		}
	}
	deleteOptions := options
	if unhealthyGoes {
		// The pod must still be the unready one the budget let go.
		deleteOptions = withResourceVersion(options, pod.ResourceVersion)
	}
	err = disruptAndDelete(ctx, store, pod, deleteOptions, dryRun)
	if apierrors.IsConflict(err) && unhealthyGoes && !resourceVersionSet(options) {
		return nil, budgetBeingProcessed(pdb.Name)
	}
	if err != nil {
		return nil, err
	}
	return success, nil
}

// budgetIgnored: a Pending or finished pod, or one being deleted, disrupts nothing (canIgnorePDB).
func budgetIgnored(pod *corev1.Pod) bool {
	switch pod.Status.Phase {
	case corev1.PodPending, corev1.PodSucceeded, corev1.PodFailed:
		return true
	}
	return pod.DeletionTimestamp != nil
}

// budgetsOf are the budgets of the pod's namespace whose selector matches it; an invalid
// selector matches nothing (getPodDisruptionBudgets).
func budgetsOf(ctx context.Context, store inmemoryruntime.Client, pod *corev1.Pod) ([]policyv1.PodDisruptionBudget, error) {
	list := &policyv1.PodDisruptionBudgetList{}
	if err := store.List(ctx, list, client.InNamespace(pod.Namespace)); err != nil {
		return nil, err
	}
	var out []policyv1.PodDisruptionBudget
	for _, pdb := range list.Items {
		selector, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err == nil && selector.Matches(labels.Set(pod.Labels)) {
			out = append(out, pdb)
		}
	}
	return out, nil
}

// takeDisruption takes one of the disruptions pdb allows, recording the pod as disrupted so
// that the disruption controller does not count it healthy meanwhile, or refuses
// (checkAndDecrement). A budget written meanwhile is read again.
func takeDisruption(ctx context.Context, store inmemoryruntime.Client, pdb *policyv1.PodDisruptionBudget, podName string, dryRun bool) error {
	var err error
	for range maxConflictRetries {
		if err = checkAndDecrement(ctx, store, pdb, podName, dryRun); !apierrors.IsConflict(err) {
			return err
		}
		if err = store.Get(ctx, client.ObjectKeyFromObject(pdb), pdb); err != nil {
			return err
		}
	}
	return apierrors.NewTimeoutError(fmt.Sprintf("couldn't update PodDisruptionBudget %q due to conflicts", pdb.Name), 10)
}

func checkAndDecrement(ctx context.Context, store inmemoryruntime.Client, pdb *policyv1.PodDisruptionBudget, podName string, dryRun bool) error {
	status := *pdb.Status.DeepCopy()
	switch {
	case status.ObservedGeneration < pdb.Generation:
		return budgetBeingProcessed(pdb.Name)
	case status.DisruptionsAllowed < 0:
		return apierrors.NewForbidden(budgetsResource, pdb.Name, fmt.Errorf("pdb disruptions allowed is negative"))
	case len(status.DisruptedPods) > maxDisruptedPods:
		return apierrors.NewForbidden(budgetsResource, pdb.Name, fmt.Errorf("DisruptedPods map too big - too many evictions not confirmed by PDB controller"))
	case status.DisruptionsAllowed == 0:
		return refused(pdb)
	}
	status.DisruptionsAllowed--
	if status.DisruptionsAllowed == 0 {
		setDisruptionAllowed(&status)
	}
	if dryRun {
		return nil
	}
	if status.DisruptedPods == nil {
		status.DisruptedPods = map[string]metav1.Time{}
	}
	status.DisruptedPods[podName] = metav1.Now()
	return writeBudgetStatus(ctx, store, pdb, status)
}

var budgetsResource = schema.GroupResource{Group: policyv1.GroupName, Resource: "poddisruptionbudget"}

// refused is the 429 of a budget that allows no disruption, with its reason.
func refused(pdb *policyv1.PodDisruptionBudget) error {
	err := apierrors.NewTooManyRequests(evictionRefused, 0)
	c := meta.FindStatusCondition(pdb.Status.Conditions, policyv1.DisruptionAllowedCondition)
	var why string
	switch {
	case c != nil && c.Status == metav1.ConditionFalse && c.Message != "" && c.Reason == policyv1.SyncFailedReason:
		why = fmt.Sprintf("The disruption budget %s does not allow evicting pods currently because it failed sync: %s", pdb.Name, c.Message)
	case pdb.Status.CurrentHealthy <= pdb.Status.DesiredHealthy:
		why = fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently", pdb.Name, pdb.Status.DesiredHealthy, pdb.Status.CurrentHealthy)
	case c != nil && c.Status == metav1.ConditionFalse && c.Message != "":
		why = fmt.Sprintf("The disruption budget %s does not allow evicting pods currently (%s): %s", pdb.Name, c.Reason, c.Message)
	default:
		why = fmt.Sprintf("The disruption budget %s does not allow evicting pods currently", pdb.Name)
	}
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{Type: policyv1.DisruptionBudgetCause, Message: why})
	return err
}

// budgetBeingProcessed is the 429 of a budget whose status is older than its spec; clients
// retry after 10 s (createTooManyRequestsError).
func budgetBeingProcessed(name string) error {
	err := apierrors.NewTooManyRequests(evictionRefused, 10)
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
		Type: policyv1.DisruptionBudgetCause, Message: fmt.Sprintf("The disruption budget %s is still being processed by the server.", name),
	})
	return err
}

// disruptAndDelete gives the pod the DisruptionTarget condition, then deletes it
// (addConditionAndDeletePod). The options' preconditions must hold for the latest pod.
func disruptAndDelete(ctx context.Context, store inmemoryruntime.Client, pod *corev1.Pod, options *metav1.DeleteOptions, dryRun bool) error {
	latest := &corev1.Pod{}
	if err := store.Get(ctx, client.ObjectKeyFromObject(pod), latest); err != nil {
		return err
	}
	if p := options.Preconditions; p != nil {
		if p.UID != nil && *p.UID != "" && *p.UID != latest.UID {
			return apierrors.NewConflict(podsResource.GroupResource(), pod.Name, fmt.Errorf("the UID in the precondition (%s) does not match the UID in record (%s). The object might have been deleted and then recreated", *p.UID, latest.UID))
		}
		if p.ResourceVersion != nil && *p.ResourceVersion != "" && *p.ResourceVersion != latest.ResourceVersion {
			return apierrors.NewConflict(podsResource.GroupResource(), pod.Name, fmt.Errorf("the ResourceVersion in the precondition (%s) does not match the ResourceVersion in record (%s). The object might have been modified", *p.ResourceVersion, latest.ResourceVersion))
		}
	}
	if dryRun {
		return nil
	}
	if setDisruptionTarget(latest, time.Now()) {
		if err := store.Update(ctx, latest); err != nil {
			return err
		}
	}
	return store.Delete(ctx, latest)
}

// setDisruptionTarget sets the condition the eviction API gives a pod it evicts.
func setDisruptionTarget(pod *corev1.Pod, now time.Time) bool {
	want := corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "EvictionByEvictionAPI",
		Message: "Eviction API: evicting", LastTransitionTime: metav1.NewTime(now)}
	i := slices.IndexFunc(pod.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == want.Type })
	if i < 0 {
		pod.Status.Conditions = append(pod.Status.Conditions, want)
		return true
	}
	have := pod.Status.Conditions[i]
	if have.Status == want.Status && have.Reason == want.Reason && have.Message == want.Message {
		return false
	}
	if have.Status == want.Status {
		want.LastTransitionTime = have.LastTransitionTime
	}
	pod.Status.Conditions[i] = want
	return true
}

func withResourceVersion(options *metav1.DeleteOptions, rv string) *metav1.DeleteOptions {
	out := options.DeepCopy()
	if out.Preconditions == nil {
		out.Preconditions = &metav1.Preconditions{}
	}
	out.Preconditions.ResourceVersion = &rv
	return out
}

func resourceVersionSet(options *metav1.DeleteOptions) bool {
	return options.Preconditions != nil && options.Preconditions.ResourceVersion != nil
}
