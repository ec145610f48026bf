// Command testcluster runs a real Kubernetes control plane (etcd, kube-apiserver and a
// kube-controller-manager with only the garbage-collector and namespace controllers) for
// integration tests. It is a multi-call binary: the component subcommands are the upstream
// commands, unchanged, so `up` can run each of them as a child process of itself.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	_ "time/tzdata" // CronJob time zones, as in the upstream mains

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json, as upstream
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

// kubernetesVersion is set by build.sh from go.mod.
var kubernetesVersion = "unknown"

const usage = `testcluster: a real Kubernetes control plane for integration tests

Usage:
  testcluster up [flags]                    start etcd + kube-apiserver + kube-controller-manager
  testcluster kube-apiserver [flags]        the upstream kube-apiserver
  testcluster kube-controller-manager [...] the upstream kube-controller-manager
  testcluster etcd [flags]                  the upstream etcd
  testcluster version                       print the Kubernetes version built in

The component names also work as argv[0] (symlinks), e.g. for envtest's KUBEBUILDER_ASSETS.
Run 'testcluster up --help' for the orchestrator's flags.
`

func main() {
	name, args := filepath.Base(os.Args[0]), os.Args[1:]
	if !isComponent(name) {
		if len(args) == 0 {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	switch name {
	case "up":
		os.Exit(runUp(args))
	case "kube-apiserver":
		// One per process: the constructor installs process-wide signal handling.
		cmd := apiserverapp.NewAPIServerCommand()
		cmd.SetArgs(args)
		os.Exit(cli.Run(cmd))
	case "kube-controller-manager":
		cmd := kcmapp.NewControllerManagerCommand()
		cmd.SetArgs(args)
		os.Exit(cli.Run(cmd))
	case "etcd":
		etcdmain.Main(append([]string{"etcd"}, args...))
	case "version", "--version":
		fmt.Println(kubernetesVersion)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "testcluster: unknown command %q\n\n%s", name, usage)
		os.Exit(2)
	}
}

func isComponent(name string) bool {
	switch name {
	case "kube-apiserver", "kube-controller-manager", "etcd":
		return true
	}
	return false
}
