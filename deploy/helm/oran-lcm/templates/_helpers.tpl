{{/*
Labels. Called with (list $ "<component>"); the component is the operator an object belongs to.
*/}}
{{- define "oran-lcm.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: oran-lcm
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "oran-lcm.labels" -}}
{{- $root := index . 0 -}}
{{ include "oran-lcm.selectorLabels" . }}
app.kubernetes.io/part-of: oran-lcm
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
{{- end }}

{{/*
An operator's ServiceAccount, Deployment and metrics Service. Called with a dict:
  root: $, name: the operator (also its ServiceAccount, Lease and component), namespace, replicas,
  command: optional, env: extra environment variables (a YAML list as a string).
Optional, for a server that is not an operator (the O2ims API):
  leaderElected: false (no --leader-elect, no Lease, every replica serves: any number of
  replicas, rolling updates), container: its name (default operator), ports, volumeMounts,
  volumes: YAML lists as strings (ports before the `http` port of /metrics and the probes).
*/}}
{{- define "oran-lcm.operator" -}}
{{- $root := .root -}}
{{- $values := $root.Values -}}
{{- $component := list $root .name -}}
{{- $elected := ternary .leaderElected true (hasKey . "leaderElected") -}}
{{- $container := .container | default "operator" -}}
{{- if and $elected (not $values.leaderElection.enabled) (gt (int .replicas) 1) -}}
{{- fail (printf "%s: %v replicas without leader election would all reconcile; set replicas to 1 or leaderElection.enabled=true" .name .replicas) -}}
{{- end -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .name }}
  namespace: {{ .namespace }}
  labels:
    {{- include "oran-lcm.labels" $component | nindent 4 }}
automountServiceAccountToken: true
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  namespace: {{ .namespace }}
  labels:
    {{- include "oran-lcm.labels" $component | nindent 4 }}
spec:
  replicas: {{ .replicas }}
  {{- if and $elected (not $values.leaderElection.enabled) }}
  # Without leader election two replicas must never run at once, not even during a rollout.
  strategy:
    type: Recreate
  {{- end }}
  selector:
    matchLabels:
      {{- include "oran-lcm.selectorLabels" $component | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "oran-lcm.selectorLabels" $component | nindent 8 }}
      annotations:
        kubectl.kubernetes.io/default-container: {{ $container }}
    spec:
      serviceAccountName: {{ .name }}
      terminationGracePeriodSeconds: 30
      {{- with $values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $values.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ $container }}
          image: {{ printf "%s:%s" $values.image.repository ($values.image.tag | default $root.Chart.AppVersion) }}
          imagePullPolicy: {{ $values.image.pullPolicy }}
          {{- with .command }}
          command:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          args:
            - run
            {{- if and $elected $values.leaderElection.enabled }}
            - --leader-elect
            {{- end }}
          env:
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            {{- if $elected }}
            - name: LEASE_NAME
              value: {{ .name }}
            {{- end }}
            - name: LOG_FORMAT
              value: {{ $values.logging.format }}
            - name: RUST_LOG
              value: {{ $values.logging.filter | quote }}
            {{- with .env }}
            {{- . | nindent 12 }}
            {{- end }}
          ports:
            {{- with .ports }}
            {{- . | nindent 12 }}
            {{- end }}
            - name: http
              containerPort: 8080
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 20
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: 10
          resources:
            {{- toYaml $values.resources | nindent 12 }}
          securityContext:
            {{- toYaml $values.securityContext | nindent 12 }}
          {{- with .volumeMounts }}
          volumeMounts:
            {{- . | nindent 12 }}
          {{- end }}
      {{- with .volumes }}
      volumes:
        {{- . | nindent 8 }}
      {{- end }}
      {{- with $values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
---
# /metrics, /healthz and /readyz.
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}-metrics
  namespace: {{ .namespace }}
  labels:
    {{- include "oran-lcm.labels" $component | nindent 4 }}
spec:
  selector:
    {{- include "oran-lcm.selectorLabels" $component | nindent 4 }}
  ports:
    - name: http
      port: 8080
      targetPort: http
{{- $monitor := $values.monitoring.serviceMonitor }}
{{- if $monitor.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ .name }}
  namespace: {{ .namespace }}
  labels:
    {{- include "oran-lcm.labels" $component | nindent 4 }}
    {{- with $monitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "oran-lcm.selectorLabels" $component | nindent 6 }}
  endpoints:
    - port: http
      path: /metrics
      interval: {{ $monitor.interval }}
{{- end }}
{{- end }}

{{/* A Role granting the leader-election Lease `name` in `namespace` to the ServiceAccount `name`. */}}
{{- define "oran-lcm.leaseRules" -}}
# Leader election (kube-lease-manager): the Lease is created once, then read and renewed by
# server-side apply. create cannot be limited to a name; the rest is limited to the operator's Lease.
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [create]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  resourceNames: [{{ . }}]
  verbs: [get, patch]
{{- end }}
