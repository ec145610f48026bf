package main

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	inmemoryruntime "sigs.k8s.io/cluster-api/test/infrastructure/inmemory/pkg/runtime"
)

// serveCluster is every cluster's API server and etcd members. Reads, watches, deletes,
// discovery and port-forwards go to upstream's handlers; writes are served here (see writes.go),
// and so is all of the kinds upstream's handler does not know (ownResources).
func (s *Server) serveCluster(w http.ResponseWriter, r *http.Request) {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		writeStatus(w, apierrors.NewInternalError(errors.New("no local address")))
		return
	}
	ap, err := addrPortOf(local)
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		// Upstream's etcd handler finds the cluster by the connection's local address, and the
		// member by the request's :authority (its Host), which must stay etcd-<node>.
		s.serveEtcd(w, r, ap)
		return
	}
	// Upstream's API handler resolves the cluster from the request's Host, and its port-forward
	// dials that Host back: make it the endpoint the connection reached, whatever name the client used.
	r.Host = ap.String()
	// kube-apiserver authenticates client certificates signed by the cluster CA; the TLS layer
	// verified any certificate given, so a request without one is anonymous.
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		writeStatus(w, apierrors.NewUnauthorized("Unauthorized"))
		return
	}
	t, isResource := s.res.parseResourcePath(r.URL.Path)
	if !isResource {
		if s.serveDiscovery(w, r) {
			return
		}
		if gv, isGroup := groupVersionPath(r.URL.Path); isGroup && !s.res.groupVersions[gv] {
			// Upstream answers 500 for group versions it does not know; kube-apiserver 404, which
			// clients' REST mappers read as "no such kind".
			writeStatus(w, notServed(r))
			return
		}
		s.upstream.ServeHTTP(w, r)
		return
	}
	if !t.known {
		writeStatus(w, notServed(r))
		return
	}
	store, err := s.storeFor(r.Host)
	if err != nil {
		writeStatus(w, apierrors.NewServiceUnavailable(err.Error()))
		return
	}
	switch {
	case t.subresource == "portforward":
		s.portForward(w, r, t, store)
	case t.subresource == "eviction" && r.Method == http.MethodPost:
		s.evict(w, r, t, store)
	case t.subresource != "":
		writeStatus(w, notServed(r))
	case t.own && (r.Method == http.MethodGet || r.Method == http.MethodDelete):
		s.serveOwnRead(w, r, t, store)
	case r.Method == http.MethodPost:
		s.create(w, r, t, store)
	case r.Method == http.MethodPut:
		s.update(w, r, t, store)
	case r.Method == http.MethodPatch:
		s.patch(w, r, t, store)
	case r.Method == http.MethodGet && r.URL.Query().Get("watch") == "true":
		filtered, err := newWatchFilter(w, r, t.namespace)
		if err != nil {
			writeStatus(w, apierrors.NewBadRequest(err.Error()))
			return
		}
		// Upstream writes JSON events without a content type; net/http would sniff the first one
		// as text/plain, which client-go refuses to decode.
		w.Header().Set("Content-Type", "application/json")
		s.upstream.ServeHTTP(filtered, r)
	default:
		s.upstream.ServeHTTP(w, r)
	}
}

// serveEtcd serves gRPC only on connections that named one of the cluster's etcd members: their
// TLS layer required a client certificate of the cluster's etcd CA, as etcd's --client-cert-auth does.
func (s *Server) serveEtcd(w http.ResponseWriter, r *http.Request, ap netip.AddrPort) {
	s.mu.RLock()
	c, ok := s.byAddr[ap]
	member := ok && r.TLS != nil && c.etcdTLS[r.TLS.ServerName] != nil
	s.mu.RUnlock()
	if !member || len(r.TLS.VerifiedChains) == 0 {
		writeStatus(w, apierrors.NewUnauthorized("etcd is served only to the clients of an etcd member"))
		return
	}
	s.etcd.ServeHTTP(w, r)
}

func (s *Server) storeFor(hostPort string) (inmemoryruntime.Client, error) {
	group, err := s.resolve(hostPort)
	if err != nil {
		return nil, err
	}
	return s.manager.GetResourceGroup(group).GetClient(), nil
}

// groupVersionPath recognizes /apis/<group>/<version>.
func groupVersionPath(path string) (schema.GroupVersion, bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) != 3 || parts[0] != "apis" {
		return schema.GroupVersion{}, false
	}
	return schema.GroupVersion{Group: parts[1], Version: parts[2]}, true
}

// notServed is kube-apiserver's answer for a path it has no handler for.
func notServed(r *http.Request) error {
	return apierrors.NewGenericServerResponse(http.StatusNotFound, r.Method, schema.GroupResource{}, "", "", 0, false)
}

// writeStatus answers an error as kube-apiserver does: a v1 Status with the error's code.
func writeStatus(w http.ResponseWriter, err error) {
	var apiStatus apierrors.APIStatus
	if !errors.As(err, &apiStatus) {
		apiStatus = apierrors.NewInternalError(err)
	}
	status := apiStatus.Status()
	status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	// As kube-apiserver's responsewriters.ErrorNegotiated: clients wait this long and retry.
	if status.Details != nil && status.Details.RetryAfterSeconds > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(status.Details.RetryAfterSeconds)))
	}
	writeJSON(w, int(status.Code), &status)
}

func writeJSON(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
