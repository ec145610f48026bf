package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	utilkubeconfig "sigs.k8s.io/cluster-api/util/kubeconfig"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// testCA is a CA as Cluster API's KCP makes them for a cluster (there RSA; ECDSA here, faster).
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM string
	keyPEM  string
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return &testCA{
		cert: cert, key: key,
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		keyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})),
	}
}

// clientCert is a client certificate; serial 0 as KCP's etcd client certificates have
// (controlplane/kubeadm/internal/workload_cluster.go, newClientCert).
func (ca *testCA) clientCert(t testing.TB, cn string, orgs ...string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0), Subject: pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (ca *testCA) pemBlocks(t testing.TB, cert tls.Certificate) (certPEM, keyPEM []byte) {
	keyDER, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// stack is a running server with its control API.
type stack struct {
	t       testing.TB
	s       *Server
	control string // base URL
	port    int    // the clusters' API port
}

func testLogger(t testing.TB) logr.Logger {
	if os.Getenv("WORKLOAD_CLUSTERS_TEST_LOG") != "" {
		return logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.Level(-4)}))
	}
	return logr.Discard()
}

func startStack(t testing.TB, opts Options) *stack {
	t.Helper()
	if opts.NodeMonitorGracePeriod == 0 {
		opts.NodeMonitorGracePeriod = time.Hour
	}
	if opts.PodGCQuarantine == 0 {
		opts.PodGCQuarantine = time.Hour
	}
	s, err := NewServer(testLogger(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	control := httptest.NewServer(s.controlHandler())
	t.Cleanup(func() {
		control.Close()
		s.Shutdown()
		cancel()
	})
	return &stack{t: t, s: s, control: control.URL, port: freePort(t)}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testCluster is a cluster as its owner knows it: endpoint and CAs.
type testCluster struct {
	st             *stack
	namespace      string
	name           string
	endpoint       string
	ca, etcdCA     *testCA
	kubeVersion    string
	clusterConfig  string
	kubeletVersion string
}

func (st *stack) newCluster(name, vip string) *testCluster {
	endpoint := net.JoinHostPort(vip, fmt.Sprint(st.port))
	return &testCluster{
		st: st, namespace: "pr-" + name, name: name, endpoint: endpoint,
		ca: newTestCA(st.t, "kubernetes"), etcdCA: newTestCA(st.t, "etcd-ca"),
		kubeVersion: "v1.33.5", kubeletVersion: "v1.33.5",
		// As Cluster API's bootstrap provider renders it into /run/kubeadm/kubeadm.yaml.
		clusterConfig: fmt.Sprintf(`apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: %s
controlPlaneEndpoint: %s
kubernetesVersion: v1.33.5
networking:
  podSubnet: 192.168.0.0/16
  serviceSubnet: 10.128.0.0/12
  dnsDomain: cluster.local
apiServer:
  certSANs: [localhost, 127.0.0.1]
`, name, endpoint),
	}
}

func (c *testCluster) nodeURL(node string) string {
	return fmt.Sprintf("%s/v1/clusters/%s/%s/nodes/%s", c.st.control, c.namespace, c.name, node)
}

// request is the control API body for host node.
func (c *testCluster) request(controlPlane, init bool) map[string]any {
	body := map[string]any{
		"endpoint": c.endpoint, "controlPlane": controlPlane, "init": init,
		"kubeletVersion": c.kubeletVersion,
	}
	if controlPlane {
		body["kubernetesVersion"] = c.kubeVersion
	}
	if init {
		body["clusterConfiguration"] = c.clusterConfig
		body["pki"] = map[string]string{"ca.crt": c.ca.certPEM, "ca.key": c.ca.keyPEM, "etcd/ca.crt": c.etcdCA.certPEM, "etcd/ca.key": c.etcdCA.keyPEM}
	}
	return body
}

func (c *testCluster) put(node string, body map[string]any) (int, map[string]any) {
	return doJSON(c.st.t, http.MethodPut, c.nodeURL(node), body)
}

func (c *testCluster) mustPut(node string, body map[string]any, want int) {
	c.st.t.Helper()
	if code, resp := c.put(node, body); code != want {
		c.st.t.Fatalf("PUT %s: %d %v, want %d", node, code, resp, want)
	}
}

func (c *testCluster) reset(node string) {
	c.st.t.Helper()
	if code, resp := doJSON(c.st.t, http.MethodDelete, c.nodeURL(node), nil); code != http.StatusNoContent {
		c.st.t.Fatalf("DELETE %s: %d %v", node, code, resp)
	}
}

func doJSON(t testing.TB, method, url string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// restConfig is what Cluster API builds from the <cluster>-kubeconfig Secret, written by its own
// util/kubeconfig as KCP writes it.
func (c *testCluster) restConfig() *rest.Config {
	t := c.st.t
	t.Helper()
	kubeconfig, err := utilkubeconfig.New(c.name, "https://"+c.endpoint, c.ca.cert, c.ca.key)
	if err != nil {
		t.Fatal(err)
	}
	data, err := clientcmd.Write(*kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 10 * time.Second
	return cfg
}

func (c *testCluster) clientset() *kubernetes.Clientset {
	cs, err := kubernetes.NewForConfig(c.restConfig())
	if err != nil {
		c.st.t.Fatal(err)
	}
	return cs
}

// ctrlClient is a controller-runtime client as Cluster API's managers use: protobuf for
// built-in kinds, JSON for unstructured objects.
func (c *testCluster) ctrlClient() client.Client {
	cl, err := client.New(c.restConfig(), client.Options{Scheme: newScheme()})
	if err != nil {
		c.st.t.Fatal(err)
	}
	return cl
}

// etcdClient reaches the etcd member of node as KCP does: a port-forward to kube-system/etcd-<node>
// port 2379 through the API server, TLS with the server name etcd-<node> and a client certificate
// of the etcd CA.
func (c *testCluster) etcdClient(node string) *clientv3.Client {
	t := c.st.t
	t.Helper()
	cfg := c.restConfig()
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pfURL, _ := url.Parse(fmt.Sprintf("%s/api/v1/namespaces/kube-system/pods/etcd-%s/portforward", cfg.Host, node))
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, pfURL)
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:2379"}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 1)
	go func() { errs <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-errs:
		t.Fatalf("port-forward to etcd-%s: %v", node, err)
	}
	ports, _ := fw.GetPorts()
	local := fmt.Sprintf("127.0.0.1:%d", ports[0].Local)
	roots := x509.NewCertPool()
	roots.AddCert(c.etcdCA.cert)
	cl, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{"etcd-" + node},
		DialTimeout: 5 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", local)
		})},
		TLS: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{c.etcdCA.clientCert(t, "cluster-api.x-k8s.io")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cl.Close()
		close(stop)
	})
	return cl
}

// memberNames lists the etcd members as KCP reads them (etcd.Client.Members).
func memberNames(t testing.TB, cl *clientv3.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.MemberList(ctx)
	if err != nil {
		t.Fatalf("MemberList: %v", err)
	}
	var names []string
	for _, m := range resp.Members {
		names = append(names, m.Name)
	}
	slices.Sort(names) // upstream answers in the store's map order
	return names
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func joined(names []string) string { return strings.Join(names, ",") }
