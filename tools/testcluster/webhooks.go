package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// registerWebhooks applies the provider's upstream webhook configurations
// (config/webhook/manifests.yaml of its source in the module cache) as a release installs them,
// but with each webhook calling the local manager by URL instead of a Service, and trusting the
// harness's CA instead of cert-manager's injection.
func registerWebhooks(ctx context.Context, client dynamic.Interface, ms *managers, p *provider, source string) (int, error) {
	objs, err := readManifests(filepath.Join(source, "config", "webhook", "manifests.yaml"))
	if err != nil {
		return 0, err
	}
	count := 0
	for _, obj := range objs {
		webhooks, _, err := unstructured.NestedSlice(obj.Object, "webhooks")
		if err != nil {
			return 0, fmt.Errorf("%s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
		for i, w := range webhooks {
			webhook, ok := w.(map[string]any)
			if !ok {
				return 0, fmt.Errorf("%s %s: webhook %d is not an object", obj.GetKind(), obj.GetName(), i)
			}
			path, _, _ := unstructured.NestedString(webhook, "clientConfig", "service", "path")
			webhook["clientConfig"] = map[string]any{
				"url":      ms.webhookURL(p, path),
				"caBundle": base64.StdEncoding.EncodeToString(ms.ca.pem),
			}
			count++
		}
		if err := unstructured.SetNestedSlice(obj.Object, webhooks, "webhooks"); err != nil {
			return 0, err
		}
		obj.SetName(p.namePrefix + obj.GetName())
		addLabels(obj, componentLabels(p))
		if err := apply(ctx, client, obj); err != nil {
			return 0, err
		}
	}
	return count, nil
}
