{{/* Chart name, overridable. */}}
{{- define "kstream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's resources. StatefulSet pod names append "-N" and the controller
adds a hash label of ~11 characters, so keep it to 52 characters.
*/}}
{{- define "kstream.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kstream.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kstream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kstream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kstream.labels" -}}
helm.sh/chart: {{ include "kstream.chart" . }}
{{ include "kstream.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kstream.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kstream.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kstream.headlessServiceName" -}}
{{- printf "%s-headless" (include "kstream.fullname" .) }}
{{- end }}

{{- define "kstream.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The pipeline comes from a ConfigMap (ours or an existing one), else from the image. */}}
{{- define "kstream.pipelineConfigMap" -}}
{{- if and .Values.app.source .Values.app.existingConfigMap }}
{{- fail "set at most one of app.source and app.existingConfigMap" }}
{{- end }}
{{- if .Values.app.source }}
{{- printf "%s-pipeline" (include "kstream.fullname" .) }}
{{- else if .Values.app.existingConfigMap }}
{{- .Values.app.existingConfigMap }}
{{- end }}
{{- end }}

{{/* The APP argument of `kstream worker`. */}}
{{- define "kstream.appArg" -}}
{{- $path := .Values.app.path }}
{{- if include "kstream.pipelineConfigMap" . }}
{{- $path = "/app/pipeline/app.py" }}
{{- end }}
{{- if .Values.app.attr }}
{{- printf "%s:%s" $path .Values.app.attr }}
{{- else }}
{{- $path }}
{{- end }}
{{- end }}

{{/* A librdkafka value as text: whole numbers without a float's exponent. */}}
{{- define "kstream.kafkaValue" -}}
{{- if kindIs "float64" . }}
{{- . | int64 }}
{{- else }}
{{- . }}
{{- end }}
{{- end }}

{{/* Autoscaling bounds, never beyond the partition count. */}}
{{- define "kstream.maxReplicas" -}}
{{- min .max .root.Values.partitions }}
{{- end }}

{{- define "kstream.autoscaling" -}}
{{- if and .Values.autoscaling.hpa.enabled .Values.autoscaling.keda.enabled }}
{{- fail "enable at most one of autoscaling.hpa and autoscaling.keda" }}
{{- end }}
{{- if or .Values.autoscaling.hpa.enabled .Values.autoscaling.keda.enabled }}true{{ end }}
{{- end }}
