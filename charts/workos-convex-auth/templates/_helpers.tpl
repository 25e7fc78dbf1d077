{{/* Full name: the release name when it already contains the chart name. */}}
{{- define "wca.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels: `component: operator` keeps them apart from the mirror pods the
operator creates (app.kubernetes.io/name=workos-convex-auth, component=jwks-mirror). */}}
{{- define "wca.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "wca.labels" -}}
{{ include "wca.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: workos-convex-auth
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "wca.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "wca.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "wca.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The leader-election Lease: one name, which the Lease Role grants (resourceNames). */}}
{{- define "wca.leaseName" -}}
{{- default (include "wca.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/* The watched namespace, or "" for all namespaces. */}}
{{- define "wca.watchNamespace" -}}
{{- if gt (len .Values.watchNamespaces) 1 -}}
{{- fail "watchNamespaces: at most one namespace (the controller watches one namespace or all)" -}}
{{- end -}}
{{- first .Values.watchNamespaces | default "" -}}
{{- end -}}

{{/* The operator's RBAC rules. Each one is used by the operator: the chart_rbac test fails on
a rule the operator never exercised, and on any request it made that was denied. */}}
{{- define "wca.rules" -}}
# The custom resources: the controller's watch, and its start-up check (list limit=1).
- apiGroups: ["workos-convex.io"]
  resources: ["workosconvexauths"]
  verbs: ["list", "watch"]
# Status has its own rule: written with server-side apply.
- apiGroups: ["workos-convex.io"]
  resources: ["workosconvexauths/status"]
  verbs: ["patch"]
# The children: created (create; never adopting a same-named object), then server-side applied
# (patch); read from the watch caches (list, watch), and from the apiserver only when a create
# meets an object the cache did not know (get); removed when no longer wanted (delete).
# ConfigMaps also serve spec.clientIdFrom.configMapKeyRef.
- apiGroups: [""]
  resources: ["configmaps", "services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses", "networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# spec.httpRoute: the mirror's HTTPRoute. Without the Gateway API CRDs these rules grant
# nothing, and the operator runs without watching HTTPRoutes.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The mirror's pods, listed only while a mirror is not fully available, so that status can say
# why (image not pulled, crash loop, no keys from the upstream).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
# Events: the recorder creates an event, then patches it when it repeats.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- if .Values.rbac.secrets }}
# spec.clientIdFrom.secretKeyRef: read by name only, never listed or watched.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- with .Values.rbac.secretNames }}
  resourceNames: {{ toJson . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The helm test Pod's labels: not the operator's selector labels, so neither the metrics
Service nor the PodDisruptionBudget counts it as an operator pod. */}}
{{- define "wca.testSelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: helm-test
{{- end -}}
