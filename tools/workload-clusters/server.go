package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	inmemoryruntime "sigs.k8s.io/cluster-api/test/infrastructure/inmemory/pkg/runtime"
	inmemoryapi "sigs.k8s.io/cluster-api/test/infrastructure/inmemory/pkg/server/api"
	inmemoryetcd "sigs.k8s.io/cluster-api/test/infrastructure/inmemory/pkg/server/etcd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options are the behaviours a test stack may tune.
type Options struct {
	// CNIPreinstalled makes every node Ready as soon as its kubelet runs, for clusters whose
	// owner brings the CNI with the hosts.
	CNIPreinstalled bool
	// NodeMonitorGracePeriod is how long after a host's kubelet stops its Node turns Unknown
	// (kube-controller-manager --node-monitor-grace-period, 50s by default since Kubernetes 1.32).
	NodeMonitorGracePeriod time.Duration
	// PodGCQuarantine is how long the pod garbage collector waits after a Node disappears
	// before it deletes the Pods bound to it (kube-controller-manager's podgc quarantineTime, 40s).
	PodGCQuarantine time.Duration
	// ListenPort, when not 0, is the only port control-plane endpoints may use.
	ListenPort uint16
}

// Server serves the workload clusters of one test stack: each cluster's API server and etcd
// members on the cluster's control-plane endpoint, and the control API the host agents drive.
type Server struct {
	log      logr.Logger
	opts     Options
	scheme   *runtime.Scheme
	codecs   serializer.CodecFactory
	manager  inmemoryruntime.Manager
	upstream http.Handler // upstream's API server handler: discovery, reads, watches, deletes, port-forward
	etcd     http.Handler // upstream's etcd gRPC handler
	res      *resourceMap
	http     *http.Server // one server for every cluster listener
	ctrl     *controllers

	// mu guards the registry below. Control operations hold it for their whole length, so they
	// are serialized; request paths take it only to look a cluster up.
	mu       sync.RWMutex
	clusters map[clusterKey]*cluster
	byAddr   map[netip.AddrPort]*cluster
	hosts    map[string]clusterKey // host (node) name -> the cluster its kubelet runs for
}

// newScheme registers the kinds the upstream in-memory API server serves, and policy/v1
// (PodDisruptionBudgets and Evictions), served here.
func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, rbacv1.AddToScheme, storagev1.AddToScheme, policyv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// NewServer builds a server; Start runs it.
func NewServer(log logr.Logger, opts Options) (*Server, error) {
	s := &Server{
		log:      log,
		opts:     opts,
		scheme:   newScheme(),
		clusters: map[clusterKey]*cluster{},
		byAddr:   map[netip.AddrPort]*cluster{},
		hosts:    map[string]clusterKey{},
	}
	s.codecs = serializer.NewCodecFactory(s.scheme)
	s.manager = inmemoryruntime.NewManager(s.scheme)
	s.upstream = inmemoryapi.NewAPIServerHandler(s.manager, log.WithName("api"), s.resolve)
	s.etcd = inmemoryetcd.NewEtcdServerHandler(s.manager, log.WithName("etcd"), s.resolve)
	res, err := discoverResources(s.upstream)
	if err != nil {
		return nil, err
	}
	s.res = res
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.serveCluster),
		ReadHeaderTimeout: 30 * time.Second,
		TLSConfig:         &tls.Config{GetConfigForClient: s.tlsConfigFor, MinVersion: tls.VersionTLS12},
		ErrorLog:          newStdLogger(log.WithName("http")),
	}
	s.ctrl = newControllers(s)
	return s, nil
}

// Start starts the object store and the in-cluster controllers; it returns at once.
func (s *Server) Start(ctx context.Context) error {
	if err := s.manager.Start(ctx); err != nil {
		return err
	}
	return s.ctrl.start(ctx)
}

// Shutdown stops serving every cluster.
func (s *Server) Shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clusters {
		c.listener.closeAll()
	}
	_ = s.http.Close()
}

// client is the object store of one cluster.
func (s *Server) client(c *cluster) inmemoryruntime.Client {
	return s.manager.GetResourceGroup(c.key.String()).GetClient()
}

// resolve maps the endpoint a connection reached ("ip:port") to the cluster's resource group;
// upstream's handlers call it with the request's Host, which serveCluster sets to that endpoint.
func (s *Server) resolve(hostPort string) (string, error) {
	ap, err := netip.ParseAddrPort(hostPort)
	if err != nil {
		return "", err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.byAddr[normalize(ap)]
	if !ok {
		return "", fmt.Errorf("no workload cluster serves %s", hostPort)
	}
	return c.key.String(), nil
}

// tlsConfigFor picks the cluster by the address the connection reached and, within it, an etcd
// member's certificate when the client names one (KCP's etcd client sets the server name to
// etcd-<node>), else the API server's.
func (s *Server) tlsConfigFor(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	ap, err := addrPortOf(hello.Conn.LocalAddr())
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.byAddr[ap]
	if !ok {
		return nil, fmt.Errorf("no workload cluster serves %s", ap)
	}
	if cfg, ok := c.etcdTLS[hello.ServerName]; ok {
		return cfg, nil
	}
	return c.apiTLS, nil
}

func addrPortOf(a net.Addr) (netip.AddrPort, error) {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("not a TCP address: %v", a)
	}
	return normalize(tcp.AddrPort()), nil
}

// normalize unmaps IPv4-in-IPv6 addresses, as a dual-stack socket reports them.
func normalize(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// serve runs the HTTPS server on a cluster's listener until the listener closes.
func (s *Server) serve(l *vipListener) {
	if err := s.http.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		s.log.Error(err, "Serving a workload cluster endpoint failed", "address", l.Addr().String())
	}
}

// maxConflictRetries bounds the retries of a write that lost a race with another writer.
const maxConflictRetries = 10

// mutate reads an object, applies change and writes it back when change reports a difference,
// retrying when another writer got there first.
func mutate(ctx context.Context, c inmemoryruntime.Client, obj client.Object, change func() bool) error {
	var err error
	for range maxConflictRetries {
		if err = c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		if !change() {
			return nil
		}
		if err = c.Update(ctx, obj); !isConflict(err) {
			return err
		}
	}
	return err
}
