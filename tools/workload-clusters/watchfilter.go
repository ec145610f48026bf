package main

import (
	"encoding/json"
	"net/http"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
)

// watchFilter drops the watch events a request did not ask for. Upstream's watch sends every
// event of the kind in the cluster, whatever the namespace, label selector or field selector
// of the request (its initial list honours them); informers with selectors, such as KCP's cache
// of kube-system static pods, would otherwise fill with other objects. Upstream writes each
// event with one Write of its JSON encoding.
type watchFilter struct {
	http.ResponseWriter
	namespace string
	labels    labels.Selector
	fields    fields.Selector
}

// newWatchFilter returns w itself when the request selects nothing.
func newWatchFilter(w http.ResponseWriter, r *http.Request, namespace string) (http.ResponseWriter, error) {
	q := r.URL.Query()
	ls, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		return nil, err
	}
	fs, err := fields.ParseSelector(q.Get("fieldSelector"))
	if err != nil {
		return nil, err
	}
	if namespace == "" && ls.Empty() && fs.Empty() {
		return w, nil
	}
	return &watchFilter{ResponseWriter: w, namespace: namespace, labels: ls, fields: fs}, nil
}

type watchEvent struct {
	Object struct {
		Metadata struct {
			Name      string            `json:"name"`
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			NodeName string `json:"nodeName"`
		} `json:"spec"`
	} `json:"object"`
}

func (f *watchFilter) Write(p []byte) (int, error) {
	var ev watchEvent
	if err := json.Unmarshal(p, &ev); err != nil {
		return f.ResponseWriter.Write(p) // not an event (an error text): pass it on
	}
	m := ev.Object.Metadata
	// The fields kube-apiserver indexes for every kind, and the Pod field Cluster API's drain selects on.
	set := fields.Set{"metadata.name": m.Name, "metadata.namespace": m.Namespace, "spec.nodeName": ev.Object.Spec.NodeName}
	if f.namespace != "" && m.Namespace != f.namespace || !f.labels.Matches(labels.Set(m.Labels)) || !f.fields.Matches(set) {
		return len(p), nil
	}
	return f.ResponseWriter.Write(p)
}

func (f *watchFilter) Flush() {
	if fl, ok := f.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}
