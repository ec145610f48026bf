package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The workload-cluster simulator (tools/workload-clusters) serves every workload cluster of the
// stack on its control-plane endpoint. It runs in the managers' network namespace, where those
// endpoints (VIPs in the local routes) are local and where the managers connect to them; the
// host agents, in our namespace, tell it through its control API what kubeadm did on a host.
const (
	// workloadClustersName is its log's and managers.json's name.
	workloadClustersName = "workload-clusters"
	// workloadClustersControlPort is its control API's port, on the namespace's end of the link.
	workloadClustersControlPort = 7070
	// workloadAPIServerPort is the only port control-plane endpoints may use (kubeadm's default,
	// what the project's clusters use).
	workloadAPIServerPort = 6443
)

type workloadClusters struct {
	binary     string
	child      *child
	controlURL string // reachable from our namespace
}

// defaultWorkloadClustersBinary is where tools/workload-clusters/build.sh puts it, beside this
// binary's own tools/testcluster/bin.
func defaultWorkloadClustersBinary() string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	return filepath.Join(filepath.Dir(self), "..", "..", "workload-clusters", "bin", "workload-clusters")
}

// startWorkloadClusters runs the simulator in the namespace and returns once its control API
// answers from our namespace. On error it returns what started, for the caller to stop.
func startWorkloadClusters(ctx context.Context, dir string, ns *netns, binary string) (*workloadClusters, error) {
	binary, err := filepath.Abs(binary)
	if err != nil {
		return nil, err
	}
	if info, err := os.Stat(binary); err != nil || info.IsDir() {
		return nil, fmt.Errorf("--workload-clusters %s: not a binary (build it with tools/workload-clusters/build.sh)", binary)
	}
	control := net.JoinHostPort(ns.namespaceIP.String(), strconv.Itoa(workloadClustersControlPort))
	cmd := ns.command(binary,
		"--control-address="+control,
		"--listen-port="+strconv.Itoa(workloadAPIServerPort),
		"--stdin-lifeline=false", // its stdin is /dev/null; it stops with us through SIGTERM or Pdeathsig
	)
	cmd.Env = managerEnv()
	c, err := startProcess(dir, workloadClustersName, cmd)
	if err != nil {
		return nil, err
	}
	w := &workloadClusters{binary: binary, child: c, controlURL: "http://" + control}
	return w, w.waitReady(ctx)
}

// waitReady waits until GET /healthz answers 200.
func (w *workloadClusters) waitReady(ctx context.Context) error {
	httpClient := &http.Client{Timeout: 2 * time.Second}
	var lastErr error
	for {
		resp, err := httpClient.Get(w.controlURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/healthz: %s", resp.Status)
		}
		lastErr = err
		select {
		case <-w.child.exited:
			return fmt.Errorf("%s exited (%v) before it was ready; see %s", workloadClustersName, w.child.waitErr, w.child.logPath)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last error: %v)", workloadClustersName, ctx.Err(), lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// workloadClustersState is its entry in managers.json.
type workloadClustersState struct {
	Pid        int    `json:"pid"`
	Binary     string `json:"binary"`
	Log        string `json:"log"`
	ControlURL string `json:"controlURL"` // the control API, as reached from outside the namespace
	ListenPort int    `json:"listenPort"` // the port of every control-plane endpoint
}

func (w *workloadClusters) state() *workloadClustersState {
	return &workloadClustersState{
		Pid: w.child.cmd.Process.Pid, Binary: w.binary, Log: w.child.logPath,
		ControlURL: w.controlURL, ListenPort: workloadAPIServerPort,
	}
}
