package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
)

const fieldManager = "testcluster"

// installCRDs server-side-applies every CRD found in the YAML/JSON files of dirs and waits until
// all of them are Established. It returns how many CRDs it installed.
func installCRDs(ctx context.Context, cfg *rest.Config, dirs []string) (int, error) {
	client, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return 0, err
	}
	crds := client.ApiextensionsV1().CustomResourceDefinitions()
	var names []string
	for _, dir := range dirs {
		docs, err := readCRDDocuments(dir)
		if err != nil {
			return 0, err
		}
		for _, doc := range docs {
			force := true
			if _, err := crds.Patch(ctx, doc.name, types.ApplyPatchType, doc.json,
				metav1.PatchOptions{FieldManager: fieldManager, Force: &force}); err != nil {
				return 0, fmt.Errorf("apply CRD %s from %s: %w", doc.name, doc.file, err)
			}
			names = append(names, doc.name)
		}
	}
	return len(names), waitEstablished(ctx, client, names)
}

type crdDocument struct {
	file, name string
	json       []byte
}

// readCRDDocuments reads *.yaml, *.yml and *.json files in dir (sorted, not recursive); a file
// may hold several YAML documents. Anything that is not a CRD is an error: silently skipping it
// would hide a typo in a test fixture.
func readCRDDocuments(dir string) ([]crdDocument, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--crds: %w", err)
	}
	var docs []crdDocument
	for _, entry := range entries {
		ext := strings.ToLower(filepath.Ext(entry.Name()))
		if entry.IsDir() || !slices.Contains([]string{".yaml", ".yml", ".json"}, ext) {
			continue
		}
		file := filepath.Join(dir, entry.Name())
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var obj map[string]any
			if err := decoder.Decode(&obj); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			if len(obj) == 0 { // empty document, e.g. a leading "---"
				continue
			}
			doc, err := toCRDDocument(file, obj)
			if err != nil {
				return nil, err
			}
			docs = append(docs, doc)
		}
	}
	return docs, nil
}

func toCRDDocument(file string, obj map[string]any) (crdDocument, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if apiVersion != "apiextensions.k8s.io/v1" || kind != "CustomResourceDefinition" {
		return crdDocument{}, fmt.Errorf("%s: not an apiextensions.k8s.io/v1 CustomResourceDefinition (%s %s)", file, apiVersion, kind)
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if name == "" {
		return crdDocument{}, fmt.Errorf("%s: CRD without metadata.name", file)
	}
	data, err := json.Marshal(obj)
	return crdDocument{file: file, name: name, json: data}, err
}

func waitEstablished(ctx context.Context, client apiextensionsclient.Interface, names []string) error {
	pending := slices.Clone(names)
	for len(pending) > 0 {
		var still []string
		for _, name := range pending {
			crd, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if cond := findCondition(crd, apiextensionsv1.NamesAccepted); cond != nil && cond.Status == apiextensionsv1.ConditionFalse {
				return fmt.Errorf("CRD %s: names not accepted: %s", name, cond.Message)
			}
			if cond := findCondition(crd, apiextensionsv1.Established); cond == nil || cond.Status != apiextensionsv1.ConditionTrue {
				still = append(still, name)
			}
		}
		pending = still
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRDs not Established: %v: %w", pending, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

func findCondition(crd *apiextensionsv1.CustomResourceDefinition, typ apiextensionsv1.CustomResourceDefinitionConditionType) *apiextensionsv1.CustomResourceDefinitionCondition {
	for i := range crd.Status.Conditions {
		if crd.Status.Conditions[i].Type == typ {
			return &crd.Status.Conditions[i]
		}
	}
	return nil
}
