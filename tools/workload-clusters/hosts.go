package main

// The operations the host agents drive: `kubeadm init`, `kubeadm join` and `kubeadm reset` as
// they change a workload cluster.

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	bootstrapv1 "sigs.k8s.io/cluster-api/bootstrap/kubeadm/api/v1beta1"
	kubeadmtypes "sigs.k8s.io/cluster-api/bootstrap/kubeadm/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// opError is a control operation that failed: the status the control API answers, and why.
type opError struct {
	code int
	msg  string
}

func (e *opError) Error() string { return e.msg }

func failf(code int, format string, args ...any) error {
	return &opError{code: code, msg: fmt.Sprintf(format, args...)}
}

// putNode runs `kubeadm init` (creating the cluster) or `kubeadm join` on host name. It reports
// the host as the control API shows it, and whether its kubelet newly started for the cluster.
func (s *Server) putNode(ctx context.Context, key clusterKey, name string, req *nodeRequest) (nodeView, bool, error) {
	endpoint, err := req.validate()
	if err != nil {
		return nodeView{}, false, failf(http.StatusBadRequest, "%v", err)
	}
	if s.opts.ListenPort != 0 && endpoint.Port() != s.opts.ListenPort {
		return nodeView{}, false, failf(http.StatusBadRequest, "endpoint %s: this server serves API servers on port %d only (--listen-port)", endpoint, s.opts.ListenPort)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if owner, ok := s.hosts[name]; ok && owner != key {
		return nodeView{}, false, failf(http.StatusConflict, "host %s runs a kubelet of cluster %s: kubeadm's preflight checks fail (port 10250 is in use) until it is reset", name, owner)
	}
	c := s.clusters[key]
	created := false
	switch {
	case req.Init && c == nil:
		if c, err = s.initCluster(ctx, key, endpoint, req); err != nil {
			return nodeView{}, false, err
		}
		created = true
	case req.Init:
		if n := c.nodes[name]; n == nil || !n.running || !n.controlPlane || c.endpoint != endpoint {
			return nodeView{}, false, failf(http.StatusConflict, "cluster %s is already initialized on %s: another kubeadm init would make a second cluster", key, c.endpoint)
		}
	case c == nil || c.endpoint != endpoint:
		return nodeView{}, false, failf(http.StatusNotFound, "no workload cluster %s answers on %s: kubeadm join cannot reach its API server", key, endpoint)
	}
	if err := c.checkPKI(req.PKI); err != nil {
		return nodeView{}, false, err
	}
	if req.BootstrapToken != "" {
		if err := checkBootstrapToken(ctx, s.client(c), req.BootstrapToken); err != nil {
			return nodeView{}, false, err
		}
	}
	started, err := s.joinNode(ctx, c, name, req)
	if err != nil {
		if created { // kubeadm init failed: no API server came up
			delete(s.hosts, name)
			s.removeCluster(c, "its init failed")
		}
		return nodeView{}, false, err
	}
	return s.nodeViewLocked(ctx, c, c.nodes[name]), started, nil
}

// initCluster starts a cluster's API server on its endpoint with what `kubeadm init` uploads.
func (s *Server) initCluster(ctx context.Context, key clusterKey, endpoint netip.AddrPort, req *nodeRequest) (*cluster, error) {
	if other, ok := s.byAddr[endpoint]; ok {
		return nil, failf(http.StatusConflict, "endpoint %s is cluster %s's", endpoint, other.key)
	}
	cfg, cfgYAML, err := uploadedClusterConfiguration(req.ClusterConfiguration, endpoint, req.KubernetesVersion)
	if err != nil {
		return nil, failf(http.StatusBadRequest, "%v", err)
	}
	c := &cluster{
		key: key, endpoint: endpoint, cniPreinstalled: req.CNIPreinstalled || s.opts.CNIPreinstalled,
		etcdClusterID: nonZeroUint32(), etcdTLS: map[string]*tls.Config{}, nodes: map[string]*node{},
	}
	if c.ca, err = parseAuthority(req.PKI["ca.crt"], req.PKI["ca.key"]); err != nil {
		return nil, failf(http.StatusBadRequest, "pki ca.crt/ca.key: %v", err)
	}
	if cfg.Etcd.External == nil {
		if c.etcdCA, err = parseAuthority(req.PKI["etcd/ca.crt"], req.PKI["etcd/ca.key"]); err != nil {
			return nil, failf(http.StatusBadRequest, "pki etcd/ca.crt/etcd/ca.key: %v", err)
		}
	}
	if c.network, err = networkOf(cfg); err != nil {
		return nil, failf(http.StatusBadRequest, "%v", err)
	}
	if c.apiTLS, err = apiServerTLS(c, cfg); err != nil {
		return nil, failf(http.StatusBadRequest, "signing the API server certificate: %v", err)
	}
	l, err := net.Listen("tcp", endpoint.String())
	if err != nil {
		return nil, failf(http.StatusInternalServerError, "serving %s: %v (is the address local in this network namespace?)", endpoint, err)
	}
	c.listener = newVIPListener(l)
	s.manager.AddResourceGroup(key.String())
	store := s.client(c)
	for _, obj := range initObjects(c, cfg, cfgYAML, req.SkipPhases) {
		obj.SetUID(uuid.NewUUID())
		if err := store.Create(ctx, obj); err != nil {
			c.listener.closeAll()
			s.manager.DeleteResourceGroup(key.String())
			return nil, failf(http.StatusInternalServerError, "creating %T %s: %v", obj, obj.GetName(), err)
		}
	}
	s.clusters[key], s.byAddr[endpoint] = c, c
	go s.serve(c.listener)
	s.log.Info("Workload cluster created", "cluster", key.String(), "endpoint", endpoint.String())
	return c, nil
}

// apiServerTLS is the serving certificate of the cluster's API servers, one for all of them as
// they all answer on the endpoint, with the names kubeadm's apiserver.crt has (but the nodes').
func apiServerTLS(c *cluster, cfg *bootstrapv1.ClusterConfiguration) (*tls.Config, error) {
	dns := []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + c.network.dnsDomain}
	ips := []net.IP{net.IP(c.endpoint.Addr().AsSlice()), c.network.serviceIP}
	for _, san := range cfg.APIServer.CertSANs {
		if ip := net.ParseIP(san); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, san)
		}
	}
	cert, err := c.ca.issue(certSpec{commonName: "kube-apiserver", dnsNames: dns, ips: ips})
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert}, ClientCAs: c.ca.pool, ClientAuth: tls.VerifyClientCertIfGiven,
		NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12,
	}, nil
}

// checkPKI refuses CA certificates other than the cluster's: kubeadm join would not trust the
// cluster (its discovery pins the CA) and an init would have made another cluster.
func (c *cluster) checkPKI(pki map[string]string) error {
	for file, ca := range map[string]*authority{"ca.crt": c.ca, "etcd/ca.crt": c.etcdCA} {
		given, ok := pki[file]
		if !ok || ca == nil {
			continue
		}
		block, _ := pem.Decode([]byte(given))
		if block == nil || !slices.Equal(block.Bytes, ca.cert.Raw) {
			return failf(http.StatusConflict, "pki %s is not the CA of cluster %s", file, c.key)
		}
	}
	return nil
}

// checkBootstrapToken fails a join whose token the cluster does not hold (Cluster API's
// bootstrap provider creates it there) or holds expired, as kubeadm's token discovery does.
func checkBootstrapToken(ctx context.Context, store clientReader, token string) error {
	id, secret, ok := strings.Cut(token, ".")
	if !ok {
		return failf(http.StatusBadRequest, "bootstrapToken must be <id>.<secret>")
	}
	s := &corev1.Secret{}
	if err := store.Get(ctx, client.ObjectKey{Namespace: metav1.NamespaceSystem, Name: "bootstrap-token-" + id}, s); err != nil {
		return failf(http.StatusForbidden, "bootstrap token %s: %v", id, err)
	}
	if string(s.Data["token-secret"]) != secret {
		return failf(http.StatusForbidden, "bootstrap token %s: wrong secret", id)
	}
	if exp, ok := s.Data["expiration"]; ok {
		t, err := time.Parse(time.RFC3339, string(exp))
		if err != nil || time.Now().After(t) {
			return failf(http.StatusForbidden, "bootstrap token %s has expired", id)
		}
	}
	return nil
}

type clientReader interface {
	Get(ctx context.Context, key client.ObjectKey, obj client.Object) error
}

// joinNode starts host name's kubelet for c: its Node and, on control planes, its static pods
// and etcd member. A host already running for c is updated (a new kubelet version) or left as is.
func (s *Server) joinNode(ctx context.Context, c *cluster, name string, req *nodeRequest) (bool, error) {
	n := c.nodes[name]
	if n != nil && n.running && n.controlPlane != req.ControlPlane {
		return false, failf(http.StatusConflict, "host %s runs as %s of cluster %s: reset it first", name, role(n.controlPlane), c.key)
	}
	if n != nil && n.running {
		// A host still running whose Node is gone: its Machine was deleted and the host claimed
		// again without a reset, where kubeadm's preflight checks fail (ports and files in use).
		if err := s.client(c).Get(ctx, client.ObjectKey{Name: name}, &corev1.Node{}); apierrors.IsNotFound(err) {
			return false, failf(http.StatusConflict, "host %s still runs the kubelet and static pods of a deleted Node of cluster %s: kubeadm's preflight checks fail until it is reset", name, c.key)
		}
	}
	started := n == nil || !n.running
	if n == nil {
		n = &node{name: name}
		c.nodes[name] = n
	}
	n.controlPlane, n.kubeletVersion, n.running = req.ControlPlane, req.KubeletVersion, true
	if n.controlPlane {
		n.kubernetesVersion = req.KubernetesVersion
	}
	if ip := net.ParseIP(req.NodeIP); ip != nil {
		n.ip = ip
	}
	s.hosts[name] = c.key
	if err := s.registerNode(ctx, c, n, req); err != nil {
		return false, failf(http.StatusInternalServerError, "registering Node %s: %v", name, err)
	}
	if n.controlPlane {
		if err := s.runStaticPods(ctx, c, n); err != nil {
			return false, failf(http.StatusInternalServerError, "static pods of %s: %v", name, err)
		}
	}
	if started {
		s.log.Info("Host joined", "cluster", c.key.String(), "node", name, "controlPlane", n.controlPlane, "kubeletVersion", n.kubeletVersion)
	}
	return started, nil
}

func role(controlPlane bool) string {
	if controlPlane {
		return "a control plane"
	}
	return "a worker"
}

// registerNode is the kubelet registering (a new Node) or starting again on an existing one: then
// it refreshes only its status and its own labels, as the kubelet does; kubeadm's
// mark-control-plane phase adds the control-plane labels and any missing registration taint.
func (s *Server) registerNode(ctx context.Context, c *cluster, n *node, req *nodeRequest) error {
	store := s.client(c)
	r, err := s.readinessOf(ctx, c)
	if err != nil {
		return err
	}
	now := time.Now()
	obj := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name}}
	err = mutate(ctx, store, obj, func() bool {
		changed := setKubeletStatus(obj, n)
		for k, v := range registrationLabels(n, nil) {
			if cur, ok := obj.Labels[k]; !ok || cur != v {
				obj.Labels = setKey(obj.Labels, k, v)
				changed = true
			}
		}
		if n.controlPlane {
			for _, t := range registrationTaints(n, req.Taints) {
				if !slices.ContainsFunc(obj.Spec.Taints, func(have corev1.Taint) bool { return have.MatchTaint(&t) }) {
					obj.Spec.Taints = append(obj.Spec.Taints, t)
					changed = true
				}
			}
		}
		return setReadiness(obj, r, now) || changed
	})
	if !apierrors.IsNotFound(err) {
		return err
	}
	obj = newNode(n, registrationLabels(n, req.Labels), registrationTaints(n, req.Taints))
	setReadiness(obj, r, now)
	obj.SetUID(uuid.NewUUID())
	return store.Create(ctx, obj)
}

func setKey(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

// readinessOf is what a running kubelet of c reports: Ready once a CNI is installed.
func (s *Server) readinessOf(ctx context.Context, c *cluster) (readiness, error) {
	if c.cniPreinstalled {
		return ready, nil
	}
	ds := &appsv1.DaemonSet{}
	err := s.client(c).Get(ctx, cniDaemonSet, ds)
	switch {
	case err == nil:
		return ready, nil
	case apierrors.IsNotFound(err):
		return networkNotReady, nil
	}
	return networkNotReady, err
}

// cniDaemonSet stands for "a CNI runs": Calico's node agent.
var cniDaemonSet = client.ObjectKey{Namespace: metav1.NamespaceSystem, Name: "calico-node"}

// runStaticPods starts kubeadm's static pods on control-plane host n at its Kubernetes version,
// with the images the cluster's kubeadm-config names (kubeadm join reads it from the cluster),
// making n an etcd member when it was not.
func (s *Server) runStaticPods(ctx context.Context, c *cluster, n *node) error {
	store := s.client(c)
	cfg, err := readClusterConfiguration(ctx, store)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, component := range staticComponents {
		if component == "etcd" && c.etcdCA == nil {
			continue // external etcd
		}
		image := componentImage(cfg, component, n.kubernetesVersion)
		want := staticPod(c, n, component, image, now)
		have := &corev1.Pod{ObjectMeta: want.ObjectMeta}
		err := mutate(ctx, store, have, func() bool {
			if have.Spec.Containers[0].Image == image {
				return false
			}
			// kubeadm upgrade rewrote the manifest: the kubelet restarts the pod with the new image.
			have.Spec.Containers, have.Status.ContainerStatuses = want.Spec.Containers, want.Status.ContainerStatuses
			maps.Copy(have.Annotations, want.Annotations)
			return true
		})
		if !apierrors.IsNotFound(err) {
			if err != nil {
				return err
			}
			continue
		}
		if component == "etcd" {
			members, err := listEtcdPods(ctx, store)
			if err != nil {
				return err
			}
			annotateNewMember(c, want, members)
		}
		want.SetUID(uuid.NewUUID())
		if err := store.Create(ctx, want); err != nil {
			return err
		}
	}
	if c.etcdCA == nil {
		return nil
	}
	if _, ok := c.etcdTLS["etcd-"+n.name]; !ok {
		cfg, err := etcdMemberTLS(c, n)
		if err != nil {
			return err
		}
		c.etcdTLS["etcd-"+n.name] = cfg
	}
	return electLeader(ctx, store)
}

func readClusterConfiguration(ctx context.Context, store clientReader) (*bootstrapv1.ClusterConfiguration, error) {
	cm := &corev1.ConfigMap{}
	if err := store.Get(ctx, client.ObjectKey{Namespace: metav1.NamespaceSystem, Name: "kubeadm-config"}, cm); err != nil {
		return nil, err
	}
	return kubeadmtypes.UnmarshalClusterConfiguration(cm.Data["ClusterConfiguration"])
}

// componentImage is the image kubeadm puts in a static pod manifest.
func componentImage(cfg *bootstrapv1.ClusterConfiguration, component, version string) string {
	repo := cfg.ImageRepository
	if repo == "" {
		repo = "registry.k8s.io"
	}
	if component != "etcd" {
		return fmt.Sprintf("%s/%s:%s", repo, component, version)
	}
	tag := defaultEtcdTag
	if local := cfg.Etcd.Local; local != nil {
		if local.ImageRepository != "" {
			repo = local.ImageRepository
		}
		if local.ImageTag != "" {
			tag = local.ImageTag
		}
	}
	return fmt.Sprintf("%s/etcd:%s", repo, tag)
}

// resetNode runs `kubeadm reset` on host name: its kubelet stops, its static pods and etcd member
// go (the Node object stays). When the last control plane goes, so does the cluster: its etcd data
// went with the host.
func (s *Server) resetNode(ctx context.Context, key clusterKey, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if owner, ok := s.hosts[name]; !ok || owner != key {
		return nil // kubeadm reset of a host that runs nothing of this cluster changes nothing in it
	}
	delete(s.hosts, name)
	c, ok := s.clusters[key]
	if !ok {
		return nil
	}
	n, ok := c.nodes[name]
	if !ok {
		return nil // the host ran a node of an earlier cluster of this name, gone with it
	}
	n.running, n.stoppedAt = false, time.Now()
	s.log.Info("Host reset", "cluster", key.String(), "node", name)
	if n.controlPlane {
		delete(c.etcdTLS, "etcd-"+name)
		if len(c.runningControlPlanes()) == 0 {
			s.removeCluster(c, "its last control plane was reset")
			return nil
		}
		store := s.client(c)
		for _, component := range staticComponents {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: component + "-" + name}}
			if err := store.Delete(ctx, pod); err != nil && !apierrors.IsNotFound(err) {
				return failf(http.StatusInternalServerError, "removing %s: %v", pod.Name, err)
			}
		}
		if err := electLeader(ctx, store); err != nil {
			return failf(http.StatusInternalServerError, "etcd leader election: %v", err)
		}
	}
	s.ctrl.nodes.AddAfter(key, s.opts.NodeMonitorGracePeriod)
	return nil
}

// removeCluster stops serving c and drops its objects.
func (s *Server) removeCluster(c *cluster, why string) {
	c.listener.closeAll()
	delete(s.clusters, c.key)
	delete(s.byAddr, c.endpoint)
	s.manager.DeleteResourceGroup(c.key.String())
	s.log.Info("Workload cluster removed", "cluster", c.key.String(), "reason", why)
}
