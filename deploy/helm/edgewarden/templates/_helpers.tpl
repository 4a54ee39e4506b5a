{{/*
Names are fixed, not derived from the release name: `serve --manage-certs` looks for the
Service edgewarden, the Secret edgewarden-tls and the webhook configurations
edgewarden-validating / edgewarden-mutating in its own namespace.
*/}}
{{- define "edgewarden.name" -}}edgewarden{{- end -}}

{{- define "edgewarden.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: edgewarden
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: edgewarden
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The pod selector: the same labels as the kustomize base, so either can replace the other. */}}
{{- define "edgewarden.selectorLabels" -}}
app.kubernetes.io/name: edgewarden
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "edgewarden.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end -}}
{{- end -}}

{{- define "edgewarden.failurePolicy" -}}
{{- if .Values.auditOnly -}}Ignore{{- else -}}{{ .Values.webhooks.failurePolicy }}{{- end -}}
{{- end -}}

{{- define "edgewarden.selfManagedCerts" -}}
{{- if eq .Values.certificates.mode "self-managed" -}}true{{- end -}}
{{- end -}}

{{/*
The policies ConfigMap's data: the enabled shipped policies (policies/, a copy of the
repository's policies/ kept by deploy/sync-policies.py), then the custom ones.
*/}}
{{- define "edgewarden.policiesData" -}}
{{- $enabled := .Values.policies.enabled -}}
{{- $all := has "*" $enabled -}}
{{- $shipped := list -}}
{{- $data := dict -}}
{{- range $path, $bytes := .Files.Glob "policies/*.{yaml,yml}" -}}
{{- $doc := fromYaml (toString $bytes) -}}
{{- if hasKey $doc "Error" -}}
{{- fail (printf "%s: %s" $path $doc.Error) -}}
{{- end -}}
{{- $name := $doc.metadata.name -}}
{{- $shipped = append $shipped $name -}}
{{- if or $all (has $name $enabled) -}}
{{- $_ := set $data (base $path) (toString $bytes) -}}
{{- end -}}
{{- end -}}
{{- range $enabled -}}
{{- if and (ne . "*") (not (has . $shipped)) -}}
{{- fail (printf "policies.enabled: no shipped policy is named %q (shipped: %s)" . (join ", " (sortAlpha $shipped))) -}}
{{- end -}}
{{- end -}}
{{- range $file, $text := .Values.policies.custom -}}
{{- $_ := set $data $file $text -}}
{{- end -}}
{{- if not $data -}}
{{- fail "no policy to run: policies.enabled selects none and policies.custom is empty" -}}
{{- end -}}
{{- toYaml $data -}}
{{- end -}}

{{/* Every container's securityContext (values securityContext; null keys are gone). */}}
{{- define "edgewarden.containerSecurityContext" -}}
{{- toYaml .Values.securityContext -}}
{{- end -}}

{{/*
The alert rules' runbook_url, pointed at prometheusRule.runbookBaseUrl when it is set: the
part before `#` is replaced, the section kept.
*/}}
{{- define "edgewarden.runbookBase" -}}
{{- .Values.prometheusRule.runbookBaseUrl | default "" | trimSuffix "/" -}}
{{- end -}}

{{/*
webhooks.namespaceSelector reaches the static webhook configurations only: refused where
serve registers them (webhooks.registration self) rather than silently not applied.
*/}}
{{- define "edgewarden.checkNamespaceSelector" -}}
{{- $selector := .Values.webhooks.namespaceSelector | default dict -}}
{{- if and (or $selector.matchLabels $selector.matchExpressions) (eq (.Values.webhooks.registration | default "static") "self") -}}
{{- fail "webhooks.namespaceSelector needs webhooks.registration=static: serve --register-webhooks excludes namespaces by name only (webhooks.excludeNamespaces)" -}}
{{- end -}}
{{- end -}}
