package main

// Writes are served here rather than by upstream's handler, which accepts creates and updates
// only as protobuf (Cluster API's ClusterResourceSet creates unstructured objects, sent as JSON),
// treats strategic merge patches as JSON merge patches, rejects JSON patches, refuses updates
// without a resourceVersion (KCP's CoreDNS migration sends them; kube-apiserver allows them for
// built-in kinds) and sets no UIDs. The object store underneath is upstream's.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apiserver/pkg/storage/names"
	inmemoryruntime "sigs.k8s.io/cluster-api/test/infrastructure/inmemory/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// maxBody is kube-apiserver's limit on request bodies (3 MiB).
const maxBody = 3 << 20

// create serves POST on a collection.
func (s *Server) create(w http.ResponseWriter, r *http.Request, t requestTarget, store inmemoryruntime.Client) {
	if t.name != "" || t.resource.Namespaced != (t.namespace != "") {
		writeStatus(w, apierrors.NewMethodNotSupported(t.gvr.GroupResource(), "create"))
		return
	}
	obj, err := s.decodeBody(r, t.gvk())
	if err != nil {
		writeStatus(w, err)
		return
	}
	if err := checkNamespace(obj, t); err != nil {
		writeStatus(w, err)
		return
	}
	if obj.GetName() == "" && obj.GetGenerateName() != "" {
		obj.SetName(names.SimpleNameGenerator.GenerateName(obj.GetGenerateName()))
	}
	if obj.GetName() == "" {
		writeStatus(w, apierrors.NewBadRequest("name or generateName is required"))
		return
	}
	if obj.GetResourceVersion() != "" {
		// kube-apiserver's storage refuses this with an internal error, so clients never do it.
		writeStatus(w, apierrors.NewInternalError(fmt.Errorf("resourceVersion should not be set on objects to be created")))
		return
	}
	if t.namespace != "" {
		// kube-apiserver's NamespaceLifecycle admission.
		if err := store.Get(r.Context(), client.ObjectKey{Name: t.namespace}, &corev1.Namespace{}); err != nil {
			writeStatus(w, err)
			return
		}
	}
	obj.SetUID(uuid.NewUUID())
	prepareForCreate(obj)
	prepareForStorage(obj)
	if err := store.Create(r.Context(), obj); err != nil {
		writeStatus(w, err)
		return
	}
	writeObject(w, http.StatusCreated, t.gvk(), obj)
}

// update serves PUT on an object. Without a resourceVersion it is unconditional.
func (s *Server) update(w http.ResponseWriter, r *http.Request, t requestTarget, store inmemoryruntime.Client) {
	obj, err := s.decodeBody(r, t.gvk())
	if err != nil {
		writeStatus(w, err)
		return
	}
	if obj.GetName() != t.name {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", obj.GetName(), t.name)))
		return
	}
	if err := checkNamespace(obj, t); err != nil {
		writeStatus(w, err)
		return
	}
	unconditional := obj.GetResourceVersion() == ""
	err = s.retryUpdate(r.Context(), store, t, func(current client.Object) (client.Object, bool, error) {
		if unconditional {
			obj.SetResourceVersion(current.GetResourceVersion())
		}
		obj.SetUID(current.GetUID())
		return obj, unconditional, nil
	})
	if err != nil {
		writeStatus(w, err)
		return
	}
	writeObject(w, http.StatusOK, t.gvk(), obj)
}

// patch serves PATCH with the three patch types kube-apiserver has for built-in kinds besides
// server-side apply, which needs field management this store does not keep.
func (s *Server) patch(w http.ResponseWriter, r *http.Request, t requestTarget, store inmemoryruntime.Client) {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	patchType := types.PatchType(mediaType)
	switch patchType {
	case types.MergePatchType, types.StrategicMergePatchType, types.JSONPatchType:
	default:
		writeStatus(w, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
			Message: fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s, %s, %s (server-side apply is not served by this in-memory API server)",
				types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType),
		}})
		return
	}
	patchData, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	var patched client.Object
	err = s.retryUpdate(r.Context(), store, t, func(current client.Object) (client.Object, bool, error) {
		out, err := s.applyPatch(patchType, patchData, current, t.gvk())
		if err != nil {
			return nil, false, err
		}
		if out.GetName() != current.GetName() || out.GetNamespace() != current.GetNamespace() {
			return nil, false, apierrors.NewBadRequest("a patch cannot change an object's name or namespace")
		}
		out.SetUID(current.GetUID())
		patched = out
		// A patch that names the resourceVersion it was computed against must fail on a newer
		// object; one that does not is reapplied to it, as kube-apiserver does.
		return out, out.GetResourceVersion() == current.GetResourceVersion(), nil
	})
	if err != nil {
		writeStatus(w, err)
		return
	}
	writeObject(w, http.StatusOK, t.gvk(), patched)
}

func (s *Server) applyPatch(patchType types.PatchType, patchData []byte, current client.Object, gvk schema.GroupVersionKind) (client.Object, error) {
	original, err := json.Marshal(current)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	var result []byte
	switch patchType {
	case types.MergePatchType:
		result, err = jsonpatch.MergePatch(original, patchData)
	case types.JSONPatchType:
		var p jsonpatch.Patch
		if p, err = jsonpatch.DecodePatch(patchData); err == nil {
			result, err = p.Apply(original)
		}
	case types.StrategicMergePatchType:
		var schemaObj any
		if schemaObj, err = s.scheme.New(gvk); err == nil {
			result, err = strategicpatch.StrategicMergePatch(original, patchData, schemaObj)
		}
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the patch cannot be applied: %v", err))
	}
	out, err := s.scheme.New(gvk)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if err := json.Unmarshal(result, out); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the patched object is invalid: %v", err))
	}
	return out.(client.Object), nil
}

// retryUpdate reads the target, lets next compute the object to store, and stores it; a conflict
// with a concurrent writer is retried when next says the write does not depend on the version read.
func (s *Server) retryUpdate(ctx context.Context, store inmemoryruntime.Client, t requestTarget, next func(current client.Object) (client.Object, bool, error)) error {
	var err error
	for range maxConflictRetries {
		var current runtime.Object
		if current, err = s.scheme.New(t.gvk()); err != nil {
			return apierrors.NewInternalError(err)
		}
		currentObj := current.(client.Object)
		if err = store.Get(ctx, client.ObjectKey{Namespace: t.namespace, Name: t.name}, currentObj); err != nil {
			return err
		}
		var obj client.Object
		var retryable bool
		if obj, retryable, err = next(currentObj); err != nil {
			return err
		}
		prepareForUpdate(currentObj, obj)
		prepareForStorage(obj)
		if err = store.Update(ctx, obj); !isConflict(err) || !retryable {
			return err
		}
	}
	return err
}

// portForward lets upstream forward to a pod only if the pod exists and runs: upstream forwards
// any name back to this server, so without this check KCP would reach the etcd of a reset host.
func (s *Server) portForward(w http.ResponseWriter, r *http.Request, t requestTarget, store inmemoryruntime.Client) {
	if t.gvr != corev1.SchemeGroupVersion.WithResource("pods") {
		writeStatus(w, notServed(r))
		return
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: t.namespace, Name: t.name}}
	if err := store.Get(r.Context(), client.ObjectKeyFromObject(pod), pod); err != nil {
		writeStatus(w, err)
		return
	}
	if pod.Status.Phase != corev1.PodRunning {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("pod %s is not running", t.name)))
		return
	}
	s.upstream.ServeHTTP(w, r)
}

// decodeBody reads a JSON, YAML or protobuf body into the target's kind.
func (s *Server) decodeBody(r *http.Request, gvk schema.GroupVersionKind) (client.Object, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	into, err := s.scheme.New(gvk)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	obj, got, err := s.codecs.UniversalDeserializer().Decode(data, &gvk, into)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if *got != gvk {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the body is a %s, the path names %s", got, gvk))
	}
	return obj.(client.Object), nil
}

// checkNamespace takes the namespace from the path, as kube-apiserver does, refusing a body that names another.
func checkNamespace(obj client.Object, t requestTarget) error {
	if obj.GetNamespace() != "" && obj.GetNamespace() != t.namespace {
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	obj.SetNamespace(t.namespace)
	return nil
}

// prepareForStorage does what kube-apiserver's registry strategies do before storing that
// clients can observe: a Secret's stringData is merged into data.
func prepareForStorage(obj client.Object) {
	secret, ok := obj.(*corev1.Secret)
	if !ok || secret.StringData == nil {
		return
	}
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	for k, v := range secret.StringData {
		secret.Data[k] = []byte(v)
	}
	secret.StringData = nil
}

// prepareForCreate and prepareForUpdate keep the status of the kinds whose status only their
// controllers write here: a PodDisruptionBudget's, which the disruption controller and the
// eviction keep (kube-apiserver's podDisruptionBudgetStrategy: its status subresource alone
// writes the status).
func prepareForCreate(obj client.Object) {
	if pdb, ok := obj.(*policyv1.PodDisruptionBudget); ok {
		pdb.Status = policyv1.PodDisruptionBudgetStatus{}
	}
}

func prepareForUpdate(current, obj client.Object) {
	pdb, ok := obj.(*policyv1.PodDisruptionBudget)
	if have, isBudget := current.(*policyv1.PodDisruptionBudget); ok && isBudget {
		pdb.Status = *have.Status.DeepCopy()
	}
}

// writeObject answers with a copy: the store hands the object it was given to its watchers,
// which encode it concurrently.
func writeObject(w http.ResponseWriter, code int, gvk schema.GroupVersionKind, obj client.Object) {
	out := obj.DeepCopyObject()
	out.GetObjectKind().SetGroupVersionKind(gvk)
	writeJSON(w, code, out)
}

func isConflict(err error) bool { return apierrors.IsConflict(err) }
