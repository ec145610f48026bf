package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// resourceMap is the set of resources served: those of the upstream in-memory API server, read
// from its own discovery answers so that the write paths handled here accept exactly what its
// read paths serve, and those served wholly here (ownResources).
type resourceMap struct {
	byGVR         map[schema.GroupVersionResource]metav1.APIResource
	groupVersions map[schema.GroupVersion]bool
	// ownGVR are the resources whose reads are served here too: upstream's handler has a fixed
	// list of kinds (server/api/const.go) and answers 500 for any other.
	ownGVR map[schema.GroupVersionResource]bool
}

func discoverResources(upstream http.Handler) (*resourceMap, error) {
	m := &resourceMap{
		byGVR: map[schema.GroupVersionResource]metav1.APIResource{}, groupVersions: map[schema.GroupVersion]bool{},
		ownGVR: map[schema.GroupVersionResource]bool{},
	}
	paths := []string{"/api/v1"}
	var groups metav1.APIGroupList
	if err := getJSON(upstream, "/apis", &groups); err != nil {
		return nil, err
	}
	for _, g := range groups.Groups {
		for _, v := range g.Versions {
			paths = append(paths, "/apis/"+v.GroupVersion)
		}
	}
	// Served under /apis but not listed there (clients that know the version ask directly).
	paths = append(paths, "/apis/storage.k8s.io/v1")
	for _, p := range paths {
		var list metav1.APIResourceList
		if err := getJSON(upstream, p, &list); err != nil {
			return nil, err
		}
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			return nil, err
		}
		m.groupVersions[gv] = true
		for _, r := range list.APIResources {
			m.byGVR[gv.WithResource(r.Name)] = r
		}
	}
	for _, list := range ownResources {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			return nil, err
		}
		m.groupVersions[gv] = true
		for _, r := range list.APIResources {
			m.byGVR[gv.WithResource(r.Name)] = r
			m.ownGVR[gv.WithResource(r.Name)] = true
		}
	}
	return m, nil
}

func getJSON(h http.Handler, path string, into any) error {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		return fmt.Errorf("upstream discovery %s: %d %s", path, rec.Code, rec.Body.String())
	}
	return json.Unmarshal(rec.Body.Bytes(), into)
}

// requestTarget is what a Kubernetes API path names.
type requestTarget struct {
	gvr         schema.GroupVersionResource
	resource    metav1.APIResource
	known       bool // the resource is served
	own         bool // its reads are served here, not by upstream's handler
	namespace   string
	name        string
	subresource string
}

// gvk is the kind the target's resource holds.
func (t requestTarget) gvk() schema.GroupVersionKind {
	return t.gvr.GroupVersion().WithKind(t.resource.Kind)
}

// parseResourcePath reads /api/v1/... and /apis/<group>/<version>/... paths. ok is false for
// paths that name no resource (discovery, "/").
func (m *resourceMap) parseResourcePath(path string) (t requestTarget, ok bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var gv schema.GroupVersion
	switch {
	case len(parts) >= 3 && parts[0] == "api" && parts[1] == "v1":
		gv, parts = schema.GroupVersion{Version: "v1"}, parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		gv, parts = schema.GroupVersion{Group: parts[1], Version: parts[2]}, parts[3:]
	default:
		return t, false
	}
	// namespaces/<ns>/<resource>/... is namespaced; namespaces and namespaces/<name> are the Namespace objects.
	if parts[0] == "namespaces" && len(parts) >= 3 {
		t.namespace, parts = parts[1], parts[2:]
	}
	t.gvr = gv.WithResource(parts[0])
	if len(parts) > 1 {
		t.name = parts[1]
	}
	if len(parts) > 2 {
		t.subresource = strings.Join(parts[2:], "/")
	}
	t.resource, t.known = m.byGVR[t.gvr]
	t.own = m.ownGVR[t.gvr]
	return t, true
}
