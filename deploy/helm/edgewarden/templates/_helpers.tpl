{{/*
Names are not derived from the release name: by default every object is edgewarden or
edgewarden-<part>, as the kustomize base names them. fullnameOverride (else nameOverride)
replaces that base name in every object name, and the Deployment, the certificate init
container and the uninstall hook are then told the names serve looks objects up by
(edgewarden.nameArgs). nameOverride is also the app.kubernetes.io/name label.
*/}}
{{- define "edgewarden.name" -}}
{{- .Values.nameOverride | default "edgewarden" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "edgewarden.fullname" -}}
{{- .Values.fullnameOverride | default .Values.nameOverride | default "edgewarden" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "edgewarden.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "edgewarden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: edgewarden
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The pod selector: the same labels as the kustomize base, so either can replace the other. */}}
{{- define "edgewarden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "edgewarden.name" . }}
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
webhooks.namespaceSelector as the JSON of `serve --webhook-namespace-selector` (self
registration), only the parts that are set; empty when it selects nothing more.
*/}}
{{- define "edgewarden.namespaceSelectorJson" -}}
{{- $selector := .Values.webhooks.namespaceSelector | default dict -}}
{{- $set := dict -}}
{{- with $selector.matchLabels }}{{ $_ := set $set "matchLabels" . }}{{ end -}}
{{- with $selector.matchExpressions }}{{ $_ := set $set "matchExpressions" . }}{{ end -}}
{{- if $set }}{{ toJson $set }}{{ end -}}
{{- end -}}

{{/*
`serve` args naming the objects it looks up, when they are not the defaults (the fullname
is not edgewarden): the Service, the webhook configurations, the certificate Secret, the
leader Lease.
*/}}
{{- define "edgewarden.serveNameArgs" -}}
{{- $name := include "edgewarden.fullname" . -}}
{{- if ne $name "edgewarden" -}}
{{- toJson (list "--webhook-service" $name "--webhook-validating-name" (printf "%s-validating" $name) "--webhook-mutating-name" (printf "%s-mutating" $name) "--cert-secret" (printf "%s-tls" $name) "--leader-election-lease" (printf "%s-leader" $name)) -}}
{{- else -}}
[]
{{- end -}}
{{- end -}}

{{/*
native.enabled (hybrid mode, docs/native.md): which generated native files to render and
which policies serve must keep judging (`--keep-on-webhook`), as JSON
{"files": [path...], "keep": [policy...]}. A shipped policy is rendered when it is enabled,
not replaced by a custom file of the same name and not in native.keep; its file is the
flavour's variant where internalLoadBalancerFlavour changes it. Kept on the webhook: the
native.keep names, every custom policy (the chart cannot export them: `edgewarden export`
them yourself and add them to your cluster, or leave them here) and, with auditOnly, every
policy with a MutatingAdmissionPolicy (it cannot report a patch without making it).
*/}}
{{- define "edgewarden.native" -}}
{{- $enabled := .Values.policies.enabled -}}
{{- $all := has "*" $enabled -}}
{{- $files := list -}}
{{- $keep := list -}}
{{- range .Values.native.keep -}}
{{- $keep = append $keep . -}}
{{- end -}}
{{- range $file, $text := .Values.policies.custom -}}
{{- range regexSplit "(?m)^---\\s*$" (toString $text) -1 -}}
{{- $doc := fromYaml . -}}
{{- if and (eq (toString $doc.kind) "Policy") $doc.metadata -}}
{{- $keep = append $keep $doc.metadata.name -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $path, $bytes := .Files.Glob "policies/*.{yaml,yml}" -}}
{{- $name := (fromYaml (toString $bytes)).metadata.name -}}
{{- $native := printf "files/native/%s.yaml" $name -}}
{{- with $.Values.internalLoadBalancerFlavour -}}
{{- $variant := printf "files/native/flavours/%s/%s.yaml" . $name -}}
{{- if $.Files.Get $variant -}}
{{- $native = $variant -}}
{{- end -}}
{{- end -}}
{{- $text := $.Files.Get $native -}}
{{- if and $text (or $all (has $name $enabled)) (not (hasKey $.Values.policies.custom (base $path))) (not (has $name $keep)) -}}
{{- if and $.Values.auditOnly (contains "\nkind: MutatingAdmissionPolicy\n" $text) -}}
{{- $keep = append $keep $name -}}
{{- else -}}
{{- $files = append $files $native -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- dict "files" $files "keep" (uniq $keep) | toJson -}}
{{- end -}}
