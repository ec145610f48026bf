package main

// The control API: plain HTTP and JSON for the host agents (README.md, "Control API").

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/blang/semver/v4"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// nodeRequest is the body of PUT /v1/clusters/{namespace}/{name}/nodes/{node}.
type nodeRequest struct {
	Endpoint             string            `json:"endpoint"`
	ControlPlane         bool              `json:"controlPlane"`
	Init                 bool              `json:"init"`
	KubeletVersion       string            `json:"kubeletVersion"`
	KubernetesVersion    string            `json:"kubernetesVersion"`
	PKI                  map[string]string `json:"pki"`
	ClusterConfiguration string            `json:"clusterConfiguration"`
	Labels               map[string]string `json:"labels"`
	Taints               *[]corev1.Taint   `json:"taints"`
	NodeIP               string            `json:"nodeIP"`
	CNIPreinstalled      bool              `json:"cniPreinstalled"`
	SkipPhases           []string          `json:"skipPhases"`
	BootstrapToken       string            `json:"bootstrapToken"`
}

func (r *nodeRequest) validate() (netip.AddrPort, error) {
	endpoint, err := netip.ParseAddrPort(r.Endpoint)
	if err != nil {
		return endpoint, fmt.Errorf("endpoint must be <ip>:<port>: %w", err)
	}
	if !strings.HasPrefix(r.KubeletVersion, "v") {
		return endpoint, errors.New("kubeletVersion must be a version like v1.33.5")
	}
	if _, err := semver.ParseTolerant(r.KubeletVersion); err != nil {
		return endpoint, fmt.Errorf("kubeletVersion: %w", err)
	}
	if r.ControlPlane {
		if _, err := semver.ParseTolerant(r.KubernetesVersion); err != nil || !strings.HasPrefix(r.KubernetesVersion, "v") {
			return endpoint, errors.New("kubernetesVersion (like v1.33.5) is required for a control plane")
		}
	}
	if r.Init {
		if !r.ControlPlane {
			return endpoint, errors.New("init is a control plane's: set controlPlane")
		}
		if r.ClusterConfiguration == "" {
			return endpoint, errors.New("clusterConfiguration is required for init")
		}
	}
	if r.NodeIP != "" {
		if _, err := netip.ParseAddr(r.NodeIP); err != nil {
			return endpoint, fmt.Errorf("nodeIP: %w", err)
		}
	}
	return normalize(endpoint), nil
}

// nodeView and clusterView are the answers of the control API.
type nodeView struct {
	Name              string `json:"name"`
	ControlPlane      bool   `json:"controlPlane"`
	KubeletVersion    string `json:"kubeletVersion"`
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	Running           bool   `json:"running"`
	Ready             string `json:"ready"` // the Node's Ready condition: True, False, Unknown, or "" without a Node
}

type clusterView struct {
	Namespace       string     `json:"namespace"`
	Name            string     `json:"name"`
	Endpoint        string     `json:"endpoint"`
	CNIPreinstalled bool       `json:"cniPreinstalled"`
	Nodes           []nodeView `json:"nodes"`
}

type errorBody struct {
	Message string `json:"message"`
}

// controlHandler serves the control API.
func (s *Server) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			writeError(w, failf(http.StatusMethodNotAllowed, "%s is not allowed", r.Method))
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/v1/clusters", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			writeError(w, failf(http.StatusMethodNotAllowed, "%s is not allowed", r.Method))
			return
		}
		writeJSON(w, http.StatusOK, map[string][]clusterView{"clusters": s.listClusters(r.Context())})
	})
	mux.HandleFunc("/v1/clusters/{namespace}/{name}/nodes/{node}", s.serveNode)
	mux.HandleFunc("/v1/clusters/{namespace}/{name}/nodes/{node}/pods/{pod}", s.servePod)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, failf(http.StatusNotFound, "no such path: %s", r.URL.Path))
	})
	return mux
}

func (s *Server) serveNode(w http.ResponseWriter, r *http.Request) {
	key := clusterKey{r.PathValue("namespace"), r.PathValue("name")}
	name := r.PathValue("node")
	for _, v := range []string{key.namespace, key.name, name} {
		if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
			writeError(w, failf(http.StatusBadRequest, "%q: %s", v, strings.Join(errs, "; ")))
			return
		}
	}
	switch r.Method {
	case http.MethodPut:
		req := &nodeRequest{}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(req); err != nil {
			writeError(w, failf(http.StatusBadRequest, "body: %v", err))
			return
		}
		view, started, err := s.putNode(r.Context(), key, name, req)
		if err != nil {
			writeError(w, err)
			return
		}
		code := http.StatusOK
		if started {
			code = http.StatusCreated
		}
		writeJSON(w, code, view)
	case http.MethodDelete:
		if err := s.resetNode(r.Context(), key, name); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, failf(http.StatusMethodNotAllowed, "%s is not allowed", r.Method))
	}
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var op *opError
	if errors.As(err, &op) {
		code = op.code
	}
	writeJSON(w, code, errorBody{Message: err.Error()})
}

func (s *Server) listClusters(ctx context.Context) []clusterView {
	s.mu.RLock()
	defer s.mu.RUnlock()
	views := []clusterView{}
	for _, c := range s.clusters {
		v := clusterView{Namespace: c.key.namespace, Name: c.key.name, Endpoint: c.endpoint.String(), CNIPreinstalled: c.cniPreinstalled, Nodes: []nodeView{}}
		for _, n := range c.sortedNodes() {
			v.Nodes = append(v.Nodes, s.nodeViewLocked(ctx, c, n))
		}
		views = append(views, v)
	}
	slices.SortFunc(views, func(a, b clusterView) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return views
}

// nodeViewLocked needs s.mu held.
func (s *Server) nodeViewLocked(ctx context.Context, c *cluster, n *node) nodeView {
	v := nodeView{Name: n.name, ControlPlane: n.controlPlane, KubeletVersion: n.kubeletVersion, KubernetesVersion: n.kubernetesVersion, Running: n.running}
	obj := &corev1.Node{}
	if err := s.client(c).Get(ctx, client.ObjectKey{Name: n.name}, obj); err == nil {
		for _, cond := range obj.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				v.Ready = string(cond.Status)
			}
		}
	}
	return v
}
