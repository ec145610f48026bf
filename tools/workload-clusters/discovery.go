package main

// Discovery of the kinds served here beyond upstream's fixed list (server/api/const.go), which
// has no policy group: PodDisruptionBudgets, which the eviction of a Pod honours (eviction.go).

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"

	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ownResources are served wholly here: discovery, reads, watches, deletes and writes. The
// verbs are kube-apiserver's but deletecollection, which nothing here serves; the status
// subresource is not served either (a budget's status is the disruption controller's and the
// eviction's: disruption.go).
var ownResources = []metav1.APIResourceList{{
	GroupVersion: policyv1.SchemeGroupVersion.String(),
	APIResources: []metav1.APIResource{{
		Name: "poddisruptionbudgets", SingularName: "poddisruptionbudget", Namespaced: true,
		Kind: "PodDisruptionBudget", ShortNames: []string{"pdb"},
		Verbs: []string{"create", "delete", "get", "list", "patch", "update", "watch"},
	}},
}}

var errUpstreamDiscovery = errors.New("upstream's group list could not be read")

// serveDiscovery answers the discovery paths of the own resources' groups, and /apis with them
// added to upstream's list; it reports false for any other path.
func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	if r.URL.Path == "/apis" || r.URL.Path == "/apis/" {
		s.serveGroupList(w, r)
		return true
	}
	gv, ok := groupVersionPath(r.URL.Path)
	if !ok {
		return false
	}
	for _, list := range ownResources {
		if list.GroupVersion == gv.String() {
			out := list
			out.TypeMeta = metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}
			writeJSON(w, http.StatusOK, &out)
			return true
		}
	}
	return false
}

// serveGroupList is upstream's group list with the own resources' groups.
func (s *Server) serveGroupList(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	s.upstream.ServeHTTP(rec, r)
	groups := metav1.APIGroupList{}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &groups) != nil {
		writeStatus(w, apierrors.NewInternalError(errUpstreamDiscovery))
		return
	}
	for _, list := range ownResources {
		gv, _ := schema.ParseGroupVersion(list.GroupVersion)
		version := metav1.GroupVersionForDiscovery{GroupVersion: list.GroupVersion, Version: gv.Version}
		groups.Groups = append(groups.Groups, metav1.APIGroup{Name: gv.Group, Versions: []metav1.GroupVersionForDiscovery{version}, PreferredVersion: version})
	}
	groups.TypeMeta = metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}
	writeJSON(w, http.StatusOK, &groups)
}
