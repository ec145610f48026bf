package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/client-go/rest"
)

type upOptions struct {
	dir           string
	crdDirs       stringList
	controllers   string
	timeout       time.Duration
	stdinLifeline bool
	apiserverArgs stringList
	managersDir   string
	managerArgs   stringList
	// workloadClusters is the workload-cluster simulator run with the managers.
	workloadClusters string
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func parseUpFlags(args []string) (*upOptions, error) {
	o := &upOptions{}
	fs := flag.NewFlagSet("testcluster up", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", "", "working directory for logs, PKI, etcd data and kubeconfig\n(default: a fresh temporary directory, removed on exit)")
	fs.Var(&o.crdDirs, "crds", "directory of CRD YAML files (multi-document allowed) to apply and wait\nfor before kube-controller-manager starts; repeatable")
	fs.StringVar(&o.controllers, "controllers", "garbage-collector-controller,namespace-controller",
		"kube-controller-manager --controllers; empty: no controller manager")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up when the control plane is not ready within this time")
	fs.BoolVar(&o.stdinLifeline, "stdin-lifeline", true, "shut down when stdin reaches EOF (the parent process is gone);\nuse --stdin-lifeline=false when stdin is /dev/null")
	fs.Var(&o.apiserverArgs, "apiserver-arg", "extra kube-apiserver flag, e.g. --apiserver-arg=--v=4; repeatable")
	fs.StringVar(&o.managersDir, "managers", "", "directory with the Cluster API and BYOH manager binaries (tools/capi-managers/bin):\n"+
		"run them in a network namespace of their own, with their webhooks registered (needs root)")
	fs.Var(&o.managerArgs, "manager-arg", "extra flag of one manager, <manager>=<flag>, e.g.\n"+
		"--manager-arg=controlplane-kubeadm=--kubeadmcontrolplane-concurrency=50; repeatable")
	fs.StringVar(&o.workloadClusters, "workload-clusters", defaultWorkloadClustersBinary(),
		"with --managers: the workload-cluster simulator (tools/workload-clusters/bin/workload-clusters),\n"+
			"run in the managers' namespace to serve every workload cluster on its control-plane endpoint")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: testcluster up [flags]

Starts etcd (in this process), kube-apiserver and kube-controller-manager (child processes),
writes <dir>/kubeconfig (admin token, CA embedded) and prints one line to stdout:
  READY <kubeconfig-path> <seconds-to-start>
Component logs go to <dir>/*.log. Stops everything on SIGINT/SIGTERM or when stdin closes.
With --managers, the real Cluster API managers (cluster-api, bootstrap-kubeadm,
controlplane-kubeadm) and BYOH's (byoh) run too, in a network namespace of their own, with the
workload-cluster simulator, before READY; <dir>/managers.json says how to reach them and join
their namespace.
Commands, one per line on stdin:
  restart-apiserver   stop kube-apiserver and start it again on the same port and etcd data;
                      prints RESTARTED <seconds> once it is ready again

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if len(o.managerArgs) > 0 && o.managersDir == "" {
		return nil, fmt.Errorf("--manager-arg needs --managers")
	}
	if _, err := parseManagerArgs(o.managerArgs); err != nil {
		return nil, err
	}
	if o.managersDir != "" {
		dir, err := filepath.Abs(o.managersDir)
		if err != nil {
			return nil, err
		}
		o.managersDir = dir
	}
	return o, nil
}

func runUp(args []string) int {
	started := time.Now()
	opts, err := parseUpFlags(args)
	if err == flag.ErrHelp {
		return 0
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "testcluster up:", err)
		return 2
	}

	// Signals stay caught until we return, so a second signal cannot cut the cleanup short.
	signalCtx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stopSignals()
	ctx, shutdown := context.WithCancel(signalCtx)
	defer shutdown()
	commands := make(chan string)
	if opts.stdinLifeline {
		go func() {
			lines := bufio.NewScanner(os.Stdin)
			for lines.Scan() {
				commands <- strings.TrimSpace(lines.Text())
			}
			shutdown()
		}()
	}

	dir := opts.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "testcluster-"); err != nil {
			fmt.Fprintln(os.Stderr, "testcluster up:", err)
			return 1
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "testcluster up:", err)
		return 1
	}
	if dir, err = filepath.Abs(dir); err != nil {
		fmt.Fprintln(os.Stderr, "testcluster up:", err)
		return 1
	}

	cp := &controlPlane{dir: dir}
	defer cp.stop()
	startCtx, cancelStart := context.WithTimeout(ctx, opts.timeout)
	err = cp.start(startCtx, opts)
	cancelStart()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testcluster up:", err)
		cp.dumpLogs()
		return 1
	}

	fmt.Printf("READY %s %.2f\n", cp.kubeconfig, time.Since(started).Seconds())

	for {
		select {
		case <-ctx.Done():
			return 0
		case command := <-commands:
			if command != "restart-apiserver" {
				fmt.Fprintf(os.Stderr, "testcluster up: unknown command %q (known: restart-apiserver)\n", command)
				continue
			}
			restarted := time.Now()
			restartCtx, cancelRestart := context.WithTimeout(ctx, opts.timeout)
			err := cp.restartAPIServer(restartCtx)
			cancelRestart()
			if err != nil {
				fmt.Fprintln(os.Stderr, "testcluster up: restart kube-apiserver:", err)
				cp.dumpLogs()
				return 1
			}
			fmt.Printf("RESTARTED %.2f\n", time.Since(restarted).Seconds())
			continue
		case <-cp.apiserver.exited:
			fmt.Fprintf(os.Stderr, "testcluster up: kube-apiserver exited unexpectedly (%v)\n", cp.apiserver.waitErr)
		case <-cp.controllerManagerExited():
			fmt.Fprintf(os.Stderr, "testcluster up: kube-controller-manager exited unexpectedly (%v)\n", cp.controllerManager.waitErr)
		case m := <-cp.managerExited():
			fmt.Fprintf(os.Stderr, "testcluster up: manager %s exited unexpectedly (%v)\n", m.name, m.child.waitErr)
		case <-cp.workloadClustersExited():
			fmt.Fprintf(os.Stderr, "testcluster up: %s exited unexpectedly (%v)\n", workloadClustersName, cp.workloadClusters.child.waitErr)
		case err := <-cp.etcd.Err():
			fmt.Fprintf(os.Stderr, "testcluster up: etcd failed: %v\n", err)
		}
		cp.dumpLogs()
		return 1
	}
}

// controlPlane is one running etcd + kube-apiserver + kube-controller-manager.
type controlPlane struct {
	dir               string
	kubeconfig        string
	etcd              *embed.Etcd
	apiserver         *child
	controllerManager *child
	// How the running kube-apiserver was started, to start it again the same way.
	apiserverArgs    []string
	apiserverREST    *rest.Config
	netns            *netns            // with --managers: their network namespace
	managers         *managers         // with --managers
	workloadClusters *workloadClusters // with --managers
}

func (cp *controlPlane) start(ctx context.Context, opts *upOptions) error {
	var apiserverIPs []net.IP
	if opts.managersDir != "" {
		// First, so that kube-apiserver's certificate can name the address the managers reach
		// it at.
		var err error
		if cp.netns, err = newNetns(cp.dir); err != nil {
			return err
		}
		apiserverIPs = append(apiserverIPs, cp.netns.hostIP)
	}
	p, err := newPKI(filepath.Join(cp.dir, "pki"), apiserverIPs...)
	if err != nil {
		return err
	}
	var etcdURL string
	if cp.etcd, etcdURL, err = startEtcd(ctx, cp.dir); err != nil {
		return err
	}
	server, err := cp.startAPIServer(ctx, p, etcdURL, opts.apiserverArgs)
	if err != nil {
		return err
	}
	cp.kubeconfig = filepath.Join(cp.dir, "kubeconfig")
	if err := writeKubeconfig(cp.kubeconfig, server, p); err != nil {
		return err
	}
	// CRDs first: the garbage collector re-reads discovery only every 30 s, so types that exist
	// when it starts are the ones it handles at once.
	if len(opts.crdDirs) > 0 {
		if _, err := installCRDs(ctx, adminRESTConfig(server, p), opts.crdDirs); err != nil {
			return err
		}
	}
	if opts.controllers != "" {
		cp.controllerManager, err = startChild(cp.dir, "kube-controller-manager",
			"--kubeconfig="+cp.kubeconfig,
			"--controllers="+opts.controllers,
			"--leader-elect=false",
			"--secure-port=0", // no serving, so no delegated authn/authz setup and no port to pick
		)
		if err != nil {
			return err
		}
	}
	if opts.managersDir == "" {
		return nil
	}
	if cp.workloadClusters, err = startWorkloadClusters(ctx, cp.dir, cp.netns, opts.workloadClusters); err != nil {
		return err
	}
	cp.managers, err = startManagers(ctx, cp, p, opts)
	return err
}

// startAPIServer starts kube-apiserver on a free port, retrying with another port when one was
// taken between picking and binding it. It returns the server URL once the apiserver is ready.
func (cp *controlPlane) startAPIServer(ctx context.Context, p *pki, etcdURL string, extraArgs []string) (string, error) {
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return "", err
		}
		server := "https://127.0.0.1:" + strconv.Itoa(port)
		bindAddress := "127.0.0.1"
		if cp.netns != nil {
			// Also on our end of the managers' link; clients here keep using 127.0.0.1.
			bindAddress = "0.0.0.0"
		}
		args := append([]string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=" + bindAddress,
			"--advertise-address=127.0.0.1", // also avoids needing a default route
			"--secure-port=" + strconv.Itoa(port),
			"--tls-cert-file=" + p.servingCert,
			"--tls-private-key-file=" + p.servingKey,
			"--token-auth-file=" + p.tokenAuthFile,
			"--authorization-mode=RBAC",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-signing-key-file=" + p.saSigningKey,
			"--service-account-key-file=" + p.saSigningKey,
			"--service-cluster-ip-range=10.0.0.0/24",
			// No serviceaccount-controller runs, so namespaces get no "default" ServiceAccount
			// and the admission plugin would reject every Pod.
			"--disable-admission-plugins=ServiceAccount",
			"--allow-privileged=true",
			// The loopback advertise address cannot be published in the kubernetes Endpoints.
			"--endpoint-reconciler-type=none",
			"--enable-priority-and-fairness=false",
			"--profiling=false",
		}, extraArgs...)
		cp.apiserverArgs, cp.apiserverREST = args, adminRESTConfig(server, p)
		if cp.apiserver, err = startChild(cp.dir, "kube-apiserver", args...); err != nil {
			return "", err
		}
		err = waitAPIServerReady(ctx, cp.apiserverREST, cp.apiserver)
		if err == nil {
			return server, nil
		}
		if attempt >= 3 || !cp.apiserver.hasExited() || !logContains(cp.apiserver.logPath, "address already in use") {
			return "", err
		}
		_ = os.Rename(cp.apiserver.logPath, cp.apiserver.logPath+"."+strconv.Itoa(attempt))
	}
}

// restartAPIServer stops kube-apiserver as a node's shutdown would (SIGTERM, graceful) and starts
// it again with the same flags: same port, certificates and etcd, whose data stays. Clients see
// their connections and watches end, then the same server come back.
func (cp *controlPlane) restartAPIServer(ctx context.Context) error {
	cp.apiserver.stop(20 * time.Second)
	for {
		// Each start gets a log of its own (the log is appended to), so an attempt is judged by
		// what it wrote; the earlier log is kept beside it.
		_ = os.Rename(cp.apiserver.logPath, cp.apiserver.logPath+".before-restart")
		var err error
		if cp.apiserver, err = startChild(cp.dir, "kube-apiserver", cp.apiserverArgs...); err != nil {
			return err
		}
		err = waitAPIServerReady(ctx, cp.apiserverREST, cp.apiserver)
		// The port was just released; binding it again can fail for a moment.
		if err == nil || !cp.apiserver.hasExited() || !logContains(cp.apiserver.logPath, "address already in use") || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (cp *controlPlane) managerExited() <-chan *runningManager {
	if cp.managers == nil {
		return nil // blocks forever in select
	}
	return cp.managers.exited
}

func (cp *controlPlane) workloadClustersExited() <-chan struct{} {
	if cp.workloadClusters == nil {
		return nil // blocks forever in select
	}
	return cp.workloadClusters.child.exited
}

func (cp *controlPlane) controllerManagerExited() <-chan struct{} {
	if cp.controllerManager == nil {
		return nil // blocks forever in select
	}
	return cp.controllerManager.exited
}

// stop shuts down in reverse start order so that no component loses its backend while running.
func (cp *controlPlane) stop() {
	if cp.managers != nil {
		cp.managers.stop(10 * time.Second)
	}
	if cp.workloadClusters != nil {
		cp.workloadClusters.child.stop(10 * time.Second)
	}
	if cp.netns != nil {
		cp.netns.stop()
	}
	if cp.controllerManager != nil {
		cp.controllerManager.stop(10 * time.Second)
	}
	if cp.apiserver != nil {
		cp.apiserver.stop(20 * time.Second)
	}
	if cp.etcd != nil {
		cp.etcd.Close()
	}
}

// dumpLogs copies the end of each component log to stderr, since a temporary dir is removed.
func (cp *controlPlane) dumpLogs() {
	names := []string{"etcd", "kube-apiserver", "kube-controller-manager", "netns-holder", workloadClustersName}
	for _, p := range providers {
		names = append(names, p.name)
	}
	for _, name := range names {
		lines := tail(filepath.Join(cp.dir, name+".log"), 25)
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(os.Stderr, "--- last lines of %s.log ---\n", name)
		for _, l := range lines {
			fmt.Fprintln(os.Stderr, l)
		}
	}
}

func tail(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	for scanner.Scan() {
		lines = append(lines, scanner.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines
}

func logContains(path, needle string) bool {
	data, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(data), needle)
}
