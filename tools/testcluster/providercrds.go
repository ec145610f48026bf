package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// contractLabel names the API version of each CRD that implements Cluster API's v1beta1
// contract; util/conversion.UpdateReferenceAPIContract fails without it.
const contractLabel = "cluster.x-k8s.io/v1beta1"

// prepareProviderCRDs does to the installed CRDs what a clusterctl install of the providers'
// release YAML would have done: the upstream CRD files are kept byte-identical, so their
// release-time labels are added here. A CRD that converts through a webhook gets its provider's
// manager as the webhook (the files in ../shared have no conversion stanza, so none does today).
func prepareProviderCRDs(ctx context.Context, cfg *rest.Config, ms *managers) (int, error) {
	client, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return 0, err
	}
	crds := client.ApiextensionsV1().CustomResourceDefinitions()
	list, err := crds.List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	labelled := 0
	for _, crd := range list.Items {
		p := providerOfGroup(crd.Spec.Group)
		if p == nil {
			continue // this project's own CRDs
		}
		labels := componentLabels(p)
		if p.contract {
			labels[contractLabel] = "v1beta1"
		}
		patch := map[string]any{"metadata": map[string]any{"labels": labels}}
		if conv := crd.Spec.Conversion; conv != nil && conv.Strategy == apiextensionsv1.WebhookConverter {
			patch["spec"] = map[string]any{"conversion": map[string]any{"webhook": map[string]any{
				"clientConfig": map[string]any{
					"service":  nil,
					"url":      ms.webhookURL(p, "/convert"),
					"caBundle": ms.ca.pem, // []byte: base64 in JSON, as the API wants it
				},
			}}}
		}
		data, err := json.Marshal(patch)
		if err != nil {
			return 0, err
		}
		if _, err := crds.Patch(ctx, crd.Name, types.MergePatchType, data, metav1.PatchOptions{FieldManager: fieldManager}); err != nil {
			return 0, fmt.Errorf("label CRD %s: %w", crd.Name, err)
		}
		labelled++
	}
	return labelled, nil
}

func providerOfGroup(group string) *provider {
	for _, p := range providers {
		if slices.Contains(p.crdGroups, group) {
			return p
		}
	}
	return nil
}
