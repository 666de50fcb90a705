{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "modelguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource-name prefix: "<release>-modelguard", or the release name if it holds the chart
name. Component suffixes ("-predictor", "-monitor") are appended, so keep room for them. */}}
{{- define "modelguard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "modelguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "modelguard.predictorName" -}}{{ include "modelguard.fullname" . }}-predictor{{- end }}
{{- define "modelguard.monitorName" -}}{{ include "modelguard.fullname" . }}-monitor{{- end }}

{{/* Roles with a bearer token of their own (docs/monitor.md#trust-boundary). */}}
{{- define "modelguard.roles" -}}predictor labels operator reader{{- end }}

{{/* Name of the Secret with one role's token (chart-made or the user's). The predictor's keeps
the name of the one shared registration token of earlier releases, so an upgrade keeps it.
Call with (dict "ctx" $ "role" "labels"). */}}
{{- define "modelguard.roleSecretName" -}}
{{- $auth := .ctx.Values.monitor.auth }}
{{- if eq .role "predictor" }}
{{- default (printf "%s-token" (include "modelguard.monitorName" .ctx)) $auth.existingSecret }}
{{- else }}
{{- default (printf "%s-%s-token" (include "modelguard.monitorName" .ctx) .role) (index $auth.existingSecrets .role) }}
{{- end }}
{{- end }}

{{/* The user's existing Secret for a role ("" = the chart makes one). Same call. */}}
{{- define "modelguard.roleExistingSecret" -}}
{{- $auth := .ctx.Values.monitor.auth }}
{{- if eq .role "predictor" }}{{ $auth.existingSecret }}{{ else }}{{ index $auth.existingSecrets .role }}{{ end }}
{{- end }}

{{/* Labels every object carries. Call with (dict "ctx" $ "component" "predictor"). */}}
{{- define "modelguard.labels" -}}
helm.sh/chart: {{ include "modelguard.chart" .ctx }}
{{ include "modelguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: modelguard
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels: the component label keeps predictor, monitor and test pods apart. */}}
{{- define "modelguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelguard.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* "repo@digest" when a digest is given, else "repo:tag". Call with an image values map. */}}
{{- define "modelguard.image" -}}
{{- if .digest }}
{{- printf "%s@%s" .repository .digest }}
{{- else }}
{{- printf "%s:%s" .repository .tag }}
{{- end }}
{{- end }}

{{/* Pod-level security context for Pod Security "restricted". Call with (dict "uid" n "gid" n). */}}
{{- define "modelguard.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .gid }}
fsGroup: {{ .gid }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container-level security context for Pod Security "restricted". */}}
{{- define "modelguard.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .gid }}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* checkov skip annotation for pods whose image is pinned by tag only (CKV_K8S_43). */}}
{{- define "modelguard.digestSkip" -}}
{{- if not .image.digest }}
checkov.io/skip{{ .n }}: "CKV_K8S_43=The image is pinned by an immutable release tag; set {{ .key }}.image.digest to pin it by digest."
{{- end }}
{{- end }}

{{/* Pull policy: the explicit value, else IfNotPresent for digests and Always for tags. */}}
{{- define "modelguard.pullPolicy" -}}
{{- if .pullPolicy }}{{ .pullPolicy }}{{ else if .digest }}IfNotPresent{{ else }}Always{{ end }}
{{- end }}

{{/* "true" when the monitor keeps its data on PostgreSQL (monitor.database.existingSecret),
"" on SQLite. PostgreSQL brings leader election, RollingUpdate and no PVC. */}}
{{- define "modelguard.monitorOnPostgres" -}}
{{- if .Values.monitor.database.existingSecret }}true{{ end }}
{{- end }}

{{/* Name of the Lease the monitor pods elect their leader on. */}}
{{- define "modelguard.leaseName" -}}
{{- default (include "modelguard.monitorName" .) .Values.monitor.leaderElection.leaseName }}
{{- end }}

{{/* The one PromQL of the progressive-delivery templates (Argo Rollouts AnalysisTemplate,
Flagger MetricTemplate, docs/progressive-delivery.md): the worst cumulative same-rows
estimated ROC AUC gap (version - known-good) of this model's versions that are not the
known-good (the gauge exists only for those), whose version matches `version` (a regex; ""
= any), that have at least progressiveDelivery.minRows rows behind the gap and received
records in the last progressiveDelivery.recentSeconds. Empty when no version qualifies
(Argo: Inconclusive; Flagger: no values found). NaN never comes out: `> -Inf` drops it.
Per-version recency reads the records counter: modelguard_last_record_timestamp_seconds
carries only `model`. Call with (dict "ctx" $ "namespace" "<namespace or a placeholder>"
"version" "<regex, a placeholder, or empty>"). */}}
{{- define "modelguard.estimatedGapQuery" -}}
{{- $pd := .ctx.Values.progressiveDelivery }}
{{- $sel := printf "model=\"%s\"" .ctx.Values.predictor.model.name }}
{{- if $pd.namespaceLabel }}
{{- $sel = printf "%s=\"%s\",%s" $pd.namespaceLabel .namespace $sel }}
{{- end }}
{{- $gap := $sel }}
{{- if .version }}
{{- $gap = printf "%s,version=~\"%s\"" $sel .version }}
{{- end }}
{{- printf "min((modelguard_estimated_gap_cumulative{%s} > -Inf) and on (model, version) (modelguard_estimated_gap_rows{%s} >= %d) and on (model, version) (increase(modelguard_records_ingested_total{%s}[%ds]) > 0))" $gap $sel (int $pd.minRows) $sel (int $pd.recentSeconds) }}
{{- end }}

{{/* The Argo Rollouts query: this release's namespace, the canary-version argument. */}}
{{- define "modelguard.argoRolloutsQuery" -}}
{{- include "modelguard.estimatedGapQuery" (dict "ctx" . "namespace" .Release.Namespace "version" "{{args.canary-version}}") }}
{{- end }}

{{/* The Flagger query: the Canary's namespace ({{ namespace }}), any version of the model
that is not the known-good and is receiving records (the canary). */}}
{{- define "modelguard.flaggerQuery" -}}
{{- include "modelguard.estimatedGapQuery" (dict "ctx" . "namespace" "{{ namespace }}" "version" "") }}
{{- end }}
