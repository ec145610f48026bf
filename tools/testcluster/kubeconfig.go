package main

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeKubeconfig writes an admin kubeconfig with the CA embedded, so it works from anywhere.
func writeKubeconfig(path, server string, p *pki) error {
	return writeTokenKubeconfig(path, server, p.caPEM, "admin", p.adminToken)
}

// writeTokenKubeconfig writes a kubeconfig that authenticates user with a bearer token.
func writeTokenKubeconfig(path, server string, caPEM []byte, user, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["testcluster"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["testcluster"] = &clientcmdapi.Context{Cluster: "testcluster", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = "testcluster"
	return clientcmd.WriteToFile(*cfg, path)
}

func adminRESTConfig(server string, p *pki) *rest.Config {
	return &rest.Config{
		Host:            server,
		BearerToken:     p.adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: p.caPEM},
		QPS:             100,
		Burst:           200,
		Timeout:         10 * time.Second,
	}
}

// waitAPIServerReady polls until /readyz is ok and the default namespace exists (the apiserver
// creates it from a post-start hook shortly after it starts serving). It gives up early when the
// apiserver process exits, so the caller can look at its log.
func waitAPIServerReady(ctx context.Context, cfg *rest.Config, api *child) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var lastErr error
	for {
		lastErr = checkReady(ctx, cs)
		if lastErr == nil {
			return nil
		}
		select {
		case <-api.exited:
			return fmt.Errorf("kube-apiserver exited (%v) before it was ready", api.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready: %w (last error: %v)", ctx.Err(), lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func checkReady(ctx context.Context, cs *kubernetes.Clientset) error {
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("/readyz: %w: %s", err, body)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("namespace default does not exist yet")
		}
		return err
	}
	return nil
}
