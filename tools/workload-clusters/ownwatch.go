package main

// Watches of the kinds served wholly here (ownResources), as upstream's handler watches its own
// kinds (server/api/watch.go): an event handler on the object store's informer of the kind, the
// objects listed first (all as ADDED without a resourceVersion, else those newer than it), then
// the store's events newer than that list. Unlike upstream's, a watcher that falls 1000 events
// behind is ended (kube-apiserver ends slow watchers too; clients list and watch again) rather
// than blocking the store's writes.

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// defaultWatchTimeout is kube-apiserver's --min-request-timeout, the least a watch without
// timeoutSeconds lasts there.
const defaultWatchTimeout = 30 * time.Minute

// ownWatchEvent is one line of a JSON watch stream.
type ownWatchEvent struct {
	Type   watch.EventType `json:"type"`
	Object client.Object   `json:"object"`
}

// ownWatcher receives the store's events of one kind for one cluster.
type ownWatcher struct {
	group   string
	gvk     schema.GroupVersionKind
	events  chan ownWatchEvent
	overrun chan struct{}
	once    sync.Once
}

func (o *ownWatcher) send(group string, t watch.EventType, obj client.Object) {
	if group != o.group {
		return
	}
	out := obj.DeepCopyObject().(client.Object)
	out.GetObjectKind().SetGroupVersionKind(o.gvk)
	select {
	case o.events <- ownWatchEvent{Type: t, Object: out}:
	default:
		o.once.Do(func() { close(o.overrun) })
	}
}

func (o *ownWatcher) OnCreate(group string, obj client.Object) { o.send(group, watch.Added, obj) }
func (o *ownWatcher) OnUpdate(group string, _, obj client.Object) {
	o.send(group, watch.Modified, obj)
}
func (o *ownWatcher) OnDelete(group string, obj client.Object) { o.send(group, watch.Deleted, obj) }
func (o *ownWatcher) OnGeneric(string, client.Object)          {}

func (s *Server) watchOwn(w http.ResponseWriter, r *http.Request, t requestTarget) {
	ctx := r.Context()
	q := r.URL.Query()
	timeout := defaultWatchTimeout
	if v := q.Get("timeoutSeconds"); v != "" {
		seconds, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			writeStatus(w, apierrors.NewBadRequest("timeoutSeconds: "+err.Error()))
			return
		}
		timeout = time.Duration(seconds) * time.Second
	}
	var since uint64
	if v := q.Get("resourceVersion"); v != "" {
		var err error
		if since, err = strconv.ParseUint(v, 10, 64); err != nil {
			writeStatus(w, apierrors.NewBadRequest("resourceVersion: "+err.Error()))
			return
		}
	}
	group, err := s.resolve(r.Host)
	if err != nil {
		writeStatus(w, apierrors.NewServiceUnavailable(err.Error()))
		return
	}
	informer, err := s.manager.GetCache().GetInformerForKind(ctx, t.gvk())
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	watcher := &ownWatcher{group: group, gvk: t.gvk(), events: make(chan ownWatchEvent, 1000), overrun: make(chan struct{})}
	if err := informer.AddEventHandler(watcher); err != nil {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	defer func() { _ = informer.RemoveEventHandler(watcher) }()
	list, err := s.listOwn(ctx, r, t, s.manager.GetResourceGroup(group).GetClient())
	if err != nil {
		writeStatus(w, err)
		return
	}
	listed, _ := strconv.ParseUint(list.GetResourceVersion(), 10, 64)
	out, err := newWatchFilter(w, r, t.namespace)
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	for i := range list.Items {
		item := &list.Items[i]
		if rv, _ := strconv.ParseUint(item.GetResourceVersion(), 10, 64); since != 0 && rv <= since {
			continue
		}
		eventType := watch.Added
		if since != 0 && item.GetGeneration() > 1 {
			eventType = watch.Modified
		}
		writeWatchEvent(out, ownWatchEvent{Type: eventType, Object: item})
	}
	flush(w)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-watcher.overrun:
			return
		case ev := <-watcher.events:
			if rv, _ := strconv.ParseUint(ev.Object.GetResourceVersion(), 10, 64); rv <= listed {
				continue
			}
			writeWatchEvent(out, ev)
			if len(watcher.events) == 0 {
				flush(w)
			}
		}
	}
}

// writeWatchEvent writes one event with one Write, as watchFilter expects.
func writeWatchEvent(w http.ResponseWriter, ev ownWatchEvent) {
	data, err := json.Marshal(ev)
	if err != nil {
		return
	}
	_, _ = w.Write(append(data, '\n'))
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}
