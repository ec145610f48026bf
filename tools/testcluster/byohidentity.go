package main

import (
	"context"
	"fmt"
	"path/filepath"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// BYOH's ByoHost webhook (apis/infrastructure/v1beta1/byohost_webhook.go) lets only this
// ServiceAccount update ByoHosts, and users byoh:host:<name> write their own, so the manager
// must run as it: upstream's config/default puts its ServiceAccount "controller-manager" in
// namespace byoh-system with the name prefix byoh-.
const (
	byohNamespace      = "byoh-system"
	byohServiceAccount = "byoh-controller-manager"
	// A token that outlives any test run; no controller here would refresh a bound one.
	byohTokenSeconds = 7 * 24 * 3600
)

// byohRBACFiles are the files of BYOH's config/rbac/kustomization.yaml that apply here: the
// manager's account and ClusterRole, and the roles its host agents get through the groups
// byoh:hosts and system:bootstrappers:byoh. Left out: leader election (off) and
// kube-rbac-proxy's (no proxy runs in front of /metrics).
var byohRBACFiles = []string{
	"service_account.yaml", "role.yaml", "role_binding.yaml",
	"byohost_editor_role.yaml", "byohost_editor_clusterrolebinding.yaml",
	"byoh_csr_creator_clusterrole.yaml", "byoh_csr_creator_clusterrolebinding.yaml",
	"secret_reader_clusterrole.yaml", "secret_reader_clusterrolebinding.yaml",
}

// installBYOHIdentity creates BYOH's namespace and RBAC from its upstream files, transformed as
// its config/default does (namespace byoh-system, name prefix byoh-, provider label), and returns
// a token of the manager's ServiceAccount.
func installBYOHIdentity(ctx context.Context, client dynamic.Interface, p *provider, source string) (string, error) {
	namespace := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": byohNamespace},
	}}
	addLabels(namespace, componentLabels(p))
	if err := apply(ctx, client, namespace); err != nil {
		return "", err
	}
	for _, file := range byohRBACFiles {
		objs, err := readManifests(filepath.Join(source, "config", "rbac", file))
		if err != nil {
			return "", err
		}
		for _, obj := range objs {
			if err := kustomizeBYOH(obj, p); err != nil {
				return "", fmt.Errorf("%s: %w", file, err)
			}
			if err := apply(ctx, client, obj); err != nil {
				return "", err
			}
		}
	}
	return serviceAccountToken(ctx, client, byohNamespace, byohServiceAccount)
}

// kustomizeBYOH does what BYOH's config/default kustomization does to an RBAC object: the
// placeholder namespace "system" becomes byoh-system, names and the ClusterRoles and
// ServiceAccounts they refer to get the prefix byoh-.
func kustomizeBYOH(obj *unstructured.Unstructured, p *provider) error {
	obj.SetName(p.namePrefix + obj.GetName())
	if obj.GetNamespace() != "" {
		obj.SetNamespace(byohNamespace)
	}
	addLabels(obj, componentLabels(p))
	if obj.GetKind() != "ClusterRoleBinding" {
		return nil
	}
	roleRef, _, err := unstructured.NestedString(obj.Object, "roleRef", "name")
	if err != nil {
		return err
	}
	if err := unstructured.SetNestedField(obj.Object, p.namePrefix+roleRef, "roleRef", "name"); err != nil {
		return err
	}
	subjects, _, err := unstructured.NestedSlice(obj.Object, "subjects")
	if err != nil {
		return err
	}
	for _, s := range subjects {
		if subject, ok := s.(map[string]any); ok && subject["kind"] == "ServiceAccount" {
			subject["name"] = p.namePrefix + fmt.Sprint(subject["name"])
			subject["namespace"] = byohNamespace
		}
	}
	return unstructured.SetNestedSlice(obj.Object, subjects, "subjects")
}

// serviceAccountToken asks the TokenRequest API for a token of the account (no Pod binds it).
func serviceAccountToken(ctx context.Context, client dynamic.Interface, namespace, name string) (string, error) {
	request := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
		// The dynamic client takes the account's name for the subresource from here.
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"expirationSeconds": int64(byohTokenSeconds)},
	}}
	created, err := client.Resource(resources["ServiceAccount"]).Namespace(namespace).
		Create(ctx, request, metav1.CreateOptions{}, "token")
	if err != nil {
		return "", fmt.Errorf("token of ServiceAccount %s/%s: %w", namespace, name, err)
	}
	token, _, _ := unstructured.NestedString(created.Object, "status", "token")
	if token == "" {
		return "", fmt.Errorf("token of ServiceAccount %s/%s: empty", namespace, name)
	}
	return token, nil
}
