package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
)

// managers are the real Cluster API and BYOH managers `up --managers` runs, inside their own
// network namespace (see netns.go), against this control plane.
type managers struct {
	dir     string // <dir>/managers: each manager's home (kubeconfig, certificates, $TMPDIR)
	ns      *netns
	ca      *webhookCA
	running []*runningManager
	exited  chan *runningManager // receives each manager that exits, expected or not
}

type runningManager struct {
	*provider
	binary, module, home, kubeconfig string
	args                             []string
	child                            *child
}

// parseManagerArgs turns --manager-arg values "<manager>=<flag>" into flags per manager.
func parseManagerArgs(values []string) (map[string][]string, error) {
	args := map[string][]string{}
	for _, v := range values {
		name, flag, ok := strings.Cut(v, "=")
		if !ok || !strings.HasPrefix(flag, "-") {
			return nil, fmt.Errorf("--manager-arg %q: want <manager>=<flag>, e.g. controlplane-kubeadm=--kubeadmcontrolplane-concurrency=50", v)
		}
		if findProvider(name) == nil {
			return nil, fmt.Errorf("--manager-arg %q: no manager %q (cluster-api, bootstrap-kubeadm, controlplane-kubeadm, byoh)", v, name)
		}
		args[name] = append(args[name], flag)
	}
	return args, nil
}

// startManagers prepares what a clusterctl install of the four providers would have made (CRD
// labels, BYOH's identity, webhook configurations), starts the managers in the namespace and
// returns once each is ready and its webhooks are registered. On error too it returns the
// managers, for the caller to stop those that started.
func startManagers(ctx context.Context, cp *controlPlane, p *pki, opts *upOptions) (*managers, error) {
	ms := &managers{dir: filepath.Join(cp.dir, "managers"), ns: cp.netns, exited: make(chan *runningManager, len(providers))}
	return ms, ms.start(ctx, cp, p, opts)
}

func (ms *managers) start(ctx context.Context, cp *controlPlane, p *pki, opts *upOptions) error {
	extraArgs, err := parseManagerArgs(opts.managerArgs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(ms.dir, 0o755); err != nil {
		return err
	}
	sources := map[*provider]source{}
	for _, pr := range providers {
		if sources[pr], err = providerSource(filepath.Join(opts.managersDir, pr.name), pr.mainPackage); err != nil {
			return err
		}
	}
	if ms.ca, err = newWebhookCA(ms.dir); err != nil {
		return err
	}
	admin := cp.apiserverREST
	if _, err := prepareProviderCRDs(ctx, admin, ms); err != nil {
		return err
	}
	client, err := dynamic.NewForConfig(admin)
	if err != nil {
		return err
	}
	// From inside the namespace, kube-apiserver is at our end of the link, same port.
	apiURL, err := url.Parse(admin.Host)
	if err != nil {
		return err
	}
	server := "https://" + net.JoinHostPort(ms.ns.hostIP.String(), apiURL.Port())

	for _, pr := range providers {
		m := &runningManager{provider: pr, binary: filepath.Join(opts.managersDir, pr.name), home: filepath.Join(ms.dir, pr.name)}
		m.module = sources[pr].module
		m.kubeconfig = filepath.Join(m.home, "kubeconfig")
		if err := ms.ca.issue(pr.certDir(m.home), pr.name+"-webhook", ms.ns.namespaceIP); err != nil {
			return err
		}
		// The Cluster API managers act as the admin (system:masters); each has its own file and
		// tells itself apart by its User-Agent. BYOH's must be its ServiceAccount (see
		// byohidentity.go).
		user, token := "admin", p.adminToken
		if pr.byoh {
			user = "system:serviceaccount:" + byohNamespace + ":" + byohServiceAccount
			if token, err = installBYOHIdentity(ctx, client, pr, sources[pr].dir); err != nil {
				return err
			}
		}
		if err := writeTokenKubeconfig(m.kubeconfig, server, p.caPEM, user, token); err != nil {
			return err
		}
		m.args = append(pr.flags(pr.certDir(m.home)), extraArgs[pr.name]...)
		if err := ms.run(m); err != nil {
			return err
		}
	}
	for _, m := range ms.running {
		if err := ms.waitReady(ctx, m); err != nil {
			return err
		}
	}
	// Registered once every manager serves, so no write is refused for want of a webhook.
	for _, m := range ms.running {
		if _, err := registerWebhooks(ctx, client, ms, m.provider, sources[m.provider].dir); err != nil {
			return err
		}
	}
	return ms.writeState(cp.dir, server, cp.workloadClusters.state())
}

// run starts the manager in the namespace.
func (ms *managers) run(m *runningManager) error {
	cmd := ms.ns.command(m.binary, m.args...)
	cmd.Env = managerEnv("KUBECONFIG=" + m.kubeconfig)
	if m.byoh {
		if err := os.MkdirAll(m.tmpDir(m.home), 0o700); err != nil {
			return err
		}
		cmd.Env = append(cmd.Env, "TMPDIR="+m.tmpDir(m.home))
	}
	c, err := startProcess(filepath.Dir(ms.dir), m.name, cmd)
	if err != nil {
		return err
	}
	m.child = c
	ms.running = append(ms.running, m)
	go func() {
		<-c.exited
		ms.exited <- m
	}()
	return nil
}

// managerEnv is our environment for a manager, without proxy settings (nothing outside the
// namespace but kube-apiserver is reachable from it) and with the given variables.
func managerEnv(set ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "KUBECONFIG", "TMPDIR":
			continue
		}
		env = append(env, kv)
	}
	return append(env, set...)
}

// waitReady waits until the manager's /readyz answers 200 and its webhook server presents a
// certificate of our CA (BYOH's /readyz does not look at its webhook server).
func (ms *managers) waitReady(ctx context.Context, m *runningManager) error {
	httpClient := &http.Client{Timeout: 2 * time.Second}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ms.ca.pem)
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second}, Config: &tls.Config{RootCAs: roots}}
	readyz := ms.httpURL(m.healthPort, "/readyz")
	webhook := net.JoinHostPort(ms.ns.namespaceIP.String(), strconv.Itoa(m.webhookPort))
	var lastErr error
	for {
		lastErr = func() error {
			resp, err := httpClient.Get(readyz)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", readyz, resp.Status)
			}
			conn, err := dialer.DialContext(ctx, "tcp", webhook)
			if err != nil {
				return fmt.Errorf("webhook server %s: %w", webhook, err)
			}
			return conn.Close()
		}()
		if lastErr == nil {
			return nil
		}
		select {
		case <-m.child.exited:
			return fmt.Errorf("manager %s exited (%v) before it was ready; see %s", m.name, m.child.waitErr, m.child.logPath)
		case <-ctx.Done():
			return fmt.Errorf("manager %s not ready: %w (last error: %v)", m.name, ctx.Err(), lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (ms *managers) webhookURL(p *provider, path string) string {
	return "https://" + net.JoinHostPort(ms.ns.namespaceIP.String(), strconv.Itoa(p.webhookPort)) + path
}

func (ms *managers) httpURL(port int, path string) string {
	return "http://" + net.JoinHostPort(ms.ns.namespaceIP.String(), strconv.Itoa(port)) + path
}

// stop ends every manager at once (SIGTERM, then SIGKILL after the grace period).
func (ms *managers) stop(grace time.Duration) {
	var wg sync.WaitGroup
	for _, m := range ms.running {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.child.stop(grace)
		}()
	}
	wg.Wait()
}

// managersState is <dir>/managers.json: how to reach the managers and join their namespace.
type managersState struct {
	Netns struct {
		Pid           int      `json:"pid"`  // the holder; the namespace lives as long as it does
		Path          string   `json:"path"` // /proc/<pid>/ns/net, for nsenter --net= or setns(2)
		HostInterface string   `json:"hostInterface"`
		HostIP        string   `json:"hostIP"`      // our end: kube-apiserver as seen from inside
		NamespaceIP   string   `json:"namespaceIP"` // inside: the managers' webhooks, health, metrics
		PrefixLength  int      `json:"prefixLength"`
		LocalRoutes   []string `json:"localRoutes"` // AnyIP inside: any address there is local
	} `json:"netns"`
	APIServer        string                 `json:"apiServer"` // kube-apiserver's URL from inside the namespace
	WebhookCA        string                 `json:"webhookCA"` // PEM of the CA of every webhook certificate
	Managers         []managerState         `json:"managers"`
	WorkloadClusters *workloadClustersState `json:"workloadClusters"`
}

type managerState struct {
	Name       string   `json:"name"`
	Pid        int      `json:"pid"`
	Binary     string   `json:"binary"`
	Module     string   `json:"module"`
	Args       []string `json:"args"`
	Log        string   `json:"log"`
	Kubeconfig string   `json:"kubeconfig"`
	WebhookURL string   `json:"webhookURL"`
	HealthURL  string   `json:"healthURL"`
	MetricsURL string   `json:"metricsURL"`
}

func (ms *managers) writeState(dir, server string, workloadClusters *workloadClustersState) error {
	var s managersState
	s.WorkloadClusters = workloadClusters
	s.Netns.Pid, s.Netns.Path, s.Netns.HostInterface = ms.ns.pid(), ms.ns.path(), ms.ns.hostLink
	s.Netns.HostIP, s.Netns.NamespaceIP, s.Netns.PrefixLength = ms.ns.hostIP.String(), ms.ns.namespaceIP.String(), 30
	s.Netns.LocalRoutes = localRoutes
	s.APIServer, s.WebhookCA = server, filepath.Join(ms.dir, "webhook-ca.crt")
	for _, m := range ms.running {
		s.Managers = append(s.Managers, managerState{
			Name: m.name, Pid: m.child.cmd.Process.Pid, Binary: m.binary, Module: m.module, Args: m.args,
			Log: m.child.logPath, Kubeconfig: m.kubeconfig,
			WebhookURL: ms.webhookURL(m.provider, ""),
			HealthURL:  ms.httpURL(m.healthPort, "/readyz"),
			MetricsURL: ms.httpURL(m.metricsPort, "/metrics"),
		})
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "managers.json")
	if err := os.WriteFile(path+".tmp", append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path) // whoever reads it sees it whole
}
