package main

// Reads and deletes of the kinds served wholly here (ownResources): upstream's handler serves
// only the kinds of its fixed list (server/api/handler.go, requestToGVK). They read upstream's
// object store as its handler does, and add what kube-apiserver does that it does not: the
// field selectors every kind has (metadata.name, metadata.namespace), a Status for a delete.
// Watches: ownwatch.go.

import (
	"context"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	inmemoryruntime "sigs.k8s.io/cluster-api/test/infrastructure/inmemory/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// serveOwnRead serves GET (one object, a list or a watch) and DELETE of an own resource.
func (s *Server) serveOwnRead(w http.ResponseWriter, r *http.Request, t requestTarget, store inmemoryruntime.Client) {
	if t.name != "" && t.resource.Namespaced && t.namespace == "" {
		writeStatus(w, notServed(r))
		return
	}
	switch {
	case r.Method == http.MethodGet && t.name == "" && r.URL.Query().Get("watch") == "true":
		s.watchOwn(w, r, t)
	case r.Method == http.MethodGet && t.name == "":
		list, err := s.listOwn(r.Context(), r, t, store)
		if err != nil {
			writeStatus(w, err)
			return
		}
		writeJSON(w, http.StatusOK, list)
	case r.Method == http.MethodGet:
		obj, err := s.getOwn(r.Context(), t, store)
		if err != nil {
			writeStatus(w, err)
			return
		}
		writeObject(w, http.StatusOK, t.gvk(), obj)
	case r.Method == http.MethodDelete && t.name != "":
		s.deleteOwn(w, r, t, store)
	default:
		writeStatus(w, apierrors.NewMethodNotSupported(t.gvr.GroupResource(), r.Method))
	}
}

func (s *Server) getOwn(ctx context.Context, t requestTarget, store inmemoryruntime.Client) (client.Object, error) {
	newObj, err := s.scheme.New(t.gvk())
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	obj := newObj.(client.Object)
	if err := store.Get(ctx, client.ObjectKey{Namespace: t.namespace, Name: t.name}, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// listOwn lists in the target's namespace (all for none) by the request's selectors.
func (s *Server) listOwn(ctx context.Context, r *http.Request, t requestTarget, store inmemoryruntime.Client) (*unstructured.UnstructuredList, error) {
	sel, err := parseSelectors(r)
	if err != nil {
		return nil, err
	}
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion(t.gvr.GroupVersion().String())
	list.SetKind(t.resource.Kind + "List")
	if err := store.List(ctx, list, client.InNamespace(t.namespace), client.MatchingLabelsSelector{Selector: sel.labels}); err != nil {
		return nil, err
	}
	kept := list.Items[:0]
	for _, item := range list.Items {
		if sel.fields.Matches(metadataFields(item.GetNamespace(), item.GetName())) {
			kept = append(kept, item)
		}
	}
	list.Items = kept
	return list, nil
}

// deleteOwn deletes at once (no finalizers are set on these kinds here) and answers as
// kube-apiserver's registry does for kinds that do not return the deleted object.
func (s *Server) deleteOwn(w http.ResponseWriter, r *http.Request, t requestTarget, store inmemoryruntime.Client) {
	obj, err := s.getOwn(r.Context(), t, store)
	if err != nil {
		writeStatus(w, err)
		return
	}
	if err := store.Delete(r.Context(), obj); err != nil {
		writeStatus(w, err)
		return
	}
	writeJSON(w, http.StatusOK, &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess,
		Details: &metav1.StatusDetails{Name: t.name, Group: t.gvr.Group, Kind: t.gvr.Resource, UID: obj.GetUID()},
	})
}

type selectors struct {
	labels labels.Selector
	fields fields.Selector
}

// parseSelectors reads labelSelector and fieldSelector, refusing fields kube-apiserver does not
// index for these kinds, as it does.
func parseSelectors(r *http.Request) (selectors, error) {
	q := r.URL.Query()
	ls, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		return selectors{}, apierrors.NewBadRequest(err.Error())
	}
	fs, err := fields.ParseSelector(q.Get("fieldSelector"))
	if err != nil {
		return selectors{}, apierrors.NewBadRequest(err.Error())
	}
	for _, req := range fs.Requirements() {
		if req.Field != "metadata.name" && req.Field != "metadata.namespace" {
			return selectors{}, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field))
		}
	}
	return selectors{labels: ls, fields: fs}, nil
}

func metadataFields(namespace, name string) fields.Set {
	return fields.Set{"metadata.name": name, "metadata.namespace": namespace}
}
