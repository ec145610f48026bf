package main

// What runs inside a real workload cluster besides what the host agents drive, each as the
// upstream component it stands for does it:
//   - node readiness: a kubelet reports Ready only once a CNI is installed (here: the calico-node
//     DaemonSet exists, or the cluster's owner brings a CNI), and kube-controller-manager's node
//     lifecycle controller turns a Node Unknown when its kubelet stops posting status;
//   - pod garbage collection: kube-controller-manager's podgc deletes the Pods bound to a Node
//     that is gone, after a quarantine (pkg/controller/podgc, gcOrphaned);
//   - etcd leader election: the remaining members elect a leader when the leader goes;
//   - the disruption controller: each PodDisruptionBudget's status (disruption.go).

import (
	"context"
	"strings"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/workqueue"
	inmemoryruntime "sigs.k8s.io/cluster-api/test/infrastructure/inmemory/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

type nodeKey struct {
	cluster clusterKey
	node    string
}

type controllers struct {
	s       *Server
	nodes   workqueue.TypedDelayingInterface[clusterKey]
	podGC   workqueue.TypedDelayingInterface[nodeKey]
	etcd    workqueue.TypedInterface[clusterKey]
	budgets workqueue.TypedDelayingInterface[namespaceKey]
}

func newControllers(s *Server) *controllers {
	return &controllers{
		s:       s,
		nodes:   workqueue.NewTypedDelayingQueue[clusterKey](),
		podGC:   workqueue.NewTypedDelayingQueue[nodeKey](),
		etcd:    workqueue.NewTyped[clusterKey](),
		budgets: workqueue.NewTypedDelayingQueue[namespaceKey](),
	}
}

// start subscribes to the object store's events; its handlers run inside the store's writes, so
// they only queue work.
func (c *controllers) start(ctx context.Context) error {
	subscriptions := map[schema.GroupVersionKind]*eventHandler{
		appsv1.SchemeGroupVersion.WithKind("DaemonSet"): {change: func(k clusterKey, o client.Object) {
			if client.ObjectKeyFromObject(o) == cniDaemonSet {
				c.nodes.Add(k)
			}
		}},
		corev1.SchemeGroupVersion.WithKind("Node"): {deleted: func(k clusterKey, o client.Object) {
			c.podGC.AddAfter(nodeKey{k, o.GetName()}, c.s.opts.PodGCQuarantine)
		}},
		corev1.SchemeGroupVersion.WithKind("Pod"): {change: func(k clusterKey, o client.Object) {
			if o.GetNamespace() == metav1.NamespaceSystem && o.GetLabels()["component"] == "etcd" {
				c.etcd.Add(k)
			}
			c.budgets.Add(namespaceKey{k, o.GetNamespace()})
		}},
		policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"): {change: func(k clusterKey, o client.Object) {
			c.budgets.Add(namespaceKey{k, o.GetNamespace()})
		}},
		// A budget counting a Deployment's pods expects its replicas.
		appsv1.SchemeGroupVersion.WithKind("Deployment"): {change: func(k clusterKey, o client.Object) {
			c.budgets.Add(namespaceKey{k, o.GetNamespace()})
		}},
	}
	for gvk, h := range subscriptions {
		informer, err := c.s.manager.GetCache().GetInformerForKind(ctx, gvk)
		if err != nil {
			return err
		}
		if err := informer.AddEventHandler(h); err != nil {
			return err
		}
	}
	log := c.s.log.WithName("controllers")
	go runQueue(ctx, c.nodes, log.WithName("node-readiness"), c.reconcileNodes)
	go runQueue(ctx, c.podGC, log.WithName("podgc"), c.collectPods)
	go runQueue(ctx, c.etcd, log.WithName("etcd-election"), c.electLeader)
	go runQueue(ctx, c.budgets, log.WithName("disruption"), c.syncBudgets)
	return nil
}

func runQueue[T comparable](ctx context.Context, q workqueue.TypedInterface[T], log logr.Logger, reconcile func(context.Context, T) error) {
	go func() {
		<-ctx.Done()
		q.ShutDown()
	}()
	for {
		item, shutdown := q.Get()
		if shutdown {
			return
		}
		if err := reconcile(ctx, item); err != nil {
			// The cluster went away under the reconcile, the only way it fails.
			log.V(1).Info("Reconcile failed", "item", item, "err", err.Error())
		}
		q.Done(item)
	}
}

// reconcileNodes writes each Node's readiness: that of its running kubelet, or Unknown once its
// stopped kubelet has been silent for the node monitor grace period.
func (c *controllers) reconcileNodes(ctx context.Context, key clusterKey) error {
	s := c.s
	s.mu.RLock()
	cl, ok := s.clusters[key]
	var nodes []node
	if ok {
		for _, n := range cl.sortedNodes() {
			nodes = append(nodes, *n)
		}
	}
	s.mu.RUnlock()
	if !ok {
		return nil
	}
	running, err := s.readinessOf(ctx, cl)
	if err != nil {
		return err
	}
	store := s.client(cl)
	now := time.Now()
	for _, n := range nodes {
		want := running
		if !n.running {
			if wait := n.stoppedAt.Add(s.opts.NodeMonitorGracePeriod).Sub(now); wait > 0 {
				c.nodes.AddAfter(key, wait)
				continue
			}
			want = unknown
		}
		obj := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name}}
		if err := mutate(ctx, store, obj, func() bool { return setReadiness(obj, want, now) }); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// collectPods deletes the Pods bound to a Node that is still gone after the quarantine.
func (c *controllers) collectPods(ctx context.Context, k nodeKey) error {
	store, ok := c.s.storeOf(k.cluster)
	if !ok {
		return nil
	}
	node := &corev1.Node{}
	err := store.Get(ctx, client.ObjectKey{Name: k.node}, node)
	switch {
	case err == nil && node.DeletionTimestamp != nil:
		c.podGC.AddAfter(k, c.s.opts.PodGCQuarantine) // finalizers hold it: look again later
		return nil
	case err == nil:
		return nil // it came back
	case !apierrors.IsNotFound(err):
		return err
	}
	pods := &corev1.PodList{}
	if err := store.List(ctx, pods, client.MatchingFields{"spec.nodeName": k.node}); err != nil {
		return err
	}
	for i := range pods.Items {
		if err := store.Delete(ctx, &pods.Items[i]); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

func (c *controllers) electLeader(ctx context.Context, key clusterKey) error {
	store, ok := c.s.storeOf(key)
	if !ok {
		return nil
	}
	return electLeader(ctx, store)
}

// storeOf is the object store of a cluster that exists.
func (s *Server) storeOf(key clusterKey) (inmemoryruntime.Client, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.clusters[key]
	if !ok {
		return nil, false
	}
	return s.client(c), true
}

// eventHandler adapts the object store's events, which name the resource group, to clusters.
type eventHandler struct {
	change  func(clusterKey, client.Object) // created, updated or deleted
	deleted func(clusterKey, client.Object)
}

func keyOf(group string) clusterKey {
	ns, name, _ := strings.Cut(group, "/")
	return clusterKey{ns, name}
}

func (h *eventHandler) OnCreate(group string, o client.Object) { h.onChange(group, o) }

func (h *eventHandler) OnUpdate(group string, _, o client.Object) { h.onChange(group, o) }

func (h *eventHandler) OnDelete(group string, o client.Object) {
	h.onChange(group, o)
	if h.deleted != nil {
		h.deleted(keyOf(group), o)
	}
}

func (h *eventHandler) OnGeneric(string, client.Object) {}

func (h *eventHandler) onChange(group string, o client.Object) {
	if h.change != nil {
		h.change(keyOf(group), o)
	}
}
