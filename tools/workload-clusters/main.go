// Command workload-clusters serves every workload cluster of a test stack: each cluster's API
// server and etcd members on the cluster's own control-plane endpoint, built on Cluster API's
// in-memory API server (sigs.k8s.io/cluster-api/test, test/infrastructure/inmemory/pkg), and a
// control API through which the host agents play kubeadm and the kubelet. See README.md.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

type flags struct {
	controlAddress string
	logFile        string
	verbosity      int
	stdinLifeline  bool
	opts           Options
}

func parseFlags(args []string) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("workload-clusters", flag.ContinueOnError)
	fs.StringVar(&f.controlAddress, "control-address", "127.0.0.1:7070", "address of the control API (plain HTTP) the host agents call")
	fs.StringVar(&f.logFile, "log-file", "", "write the JSON log here instead of to stderr")
	fs.IntVar(&f.verbosity, "v", 0, "log verbosity; 4 logs every request")
	fs.BoolVar(&f.stdinLifeline, "stdin-lifeline", true, "stop when stdin reaches EOF (the parent process is gone);\nuse --stdin-lifeline=false when stdin is /dev/null")
	fs.BoolVar(&f.opts.CNIPreinstalled, "cni-preinstalled", false, "every cluster's owner brings a CNI: nodes are Ready as soon as their kubelet runs")
	fs.DurationVar(&f.opts.NodeMonitorGracePeriod, "node-monitor-grace-period", 50*time.Second, "how long after a host is reset its Node turns Unknown (kube-controller-manager's default)")
	fs.Func("listen-port", "accept only control-plane endpoints on this port, e.g. 6443 (default: any; each cluster is served on the <ip>:<port> its init names)", func(v string) error {
		port, err := strconv.ParseUint(v, 10, 16)
		f.opts.ListenPort = uint16(port)
		return err
	})
	fs.DurationVar(&f.opts.PodGCQuarantine, "pod-gc-quarantine", 40*time.Second, "how long after a Node is deleted the Pods bound to it are (kube-controller-manager's podgc)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: workload-clusters [flags]

Serves each workload cluster on its control-plane endpoint <ip>:<port> once a host agent ran
kubeadm init for it through the control API; the endpoint's address must be local (an AnyIP
route such as "ip route add local 172.16.0.0/12 dev lo" in this network namespace).
Prints "READY <control-address>" on stdout once the control API listens.
Stops on SIGINT/SIGTERM, or when stdin closes.

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
	return f, nil
}

func run(args []string) int {
	f, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	logger, closeLog, err := newLogger(f.logFile, f.verbosity)
	if err != nil {
		fmt.Fprintln(os.Stderr, "workload-clusters:", err)
		return 1
	}
	defer closeLog()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if f.stdinLifeline {
		go func() {
			_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
			logger.Info("stdin closed: stopping")
			stop()
		}()
	}

	s, err := NewServer(logger, f.opts)
	if err == nil {
		err = s.Start(ctx)
	}
	if err != nil {
		logger.Error(err, "Starting failed")
		return 1
	}
	l, err := net.Listen("tcp", f.controlAddress)
	if err != nil {
		logger.Error(err, "Control API cannot listen", "address", f.controlAddress)
		return 1
	}
	control := &http.Server{Handler: s.controlHandler(), ReadHeaderTimeout: 30 * time.Second, ErrorLog: newStdLogger(logger.WithName("control"))}
	go func() { _ = control.Serve(l) }()
	logger.Info("Control API listening", "address", l.Addr().String())
	fmt.Printf("READY %s\n", l.Addr())

	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = control.Shutdown(shutdownCtx)
	s.Shutdown()
	logger.Info("Stopped")
	return 0
}

// newLogger logs JSON through slog, and hands the same logger to controller-runtime and klog,
// which upstream's packages and client-go log through.
func newLogger(file string, verbosity int) (logr.Logger, func(), error) {
	out, closeOut := io.Writer(os.Stderr), func() {}
	if file != "" {
		f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return logr.Logger{}, nil, err
		}
		out, closeOut = f, func() { _ = f.Close() }
	}
	handler := slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.Level(-verbosity)})
	logger := logr.FromSlogHandler(handler)
	ctrllog.SetLogger(logger)
	klog.SetLogger(logger)
	return logger, closeOut, nil
}

// newStdLogger feeds net/http's error log (mostly TLS handshakes clients abandon) into logger at V(1).
func newStdLogger(logger logr.Logger) *log.Logger {
	return log.New(writerFunc(func(p []byte) (int, error) {
		logger.V(1).Info(strings.TrimSpace(string(p)))
		return len(p), nil
	}), "", 0)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
