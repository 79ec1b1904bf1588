{{- define "stacked-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "stacked-operator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "stacked-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "stacked-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "stacked-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "stacked-operator.leaseNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace -}}
{{- end -}}

{{- /*
An image reference from {repository, tag, digest}: repository@digest when a digest is set (it pins
the content, so it wins over the tag), else repository:tag, the tag defaulting to the appVersion.
*/ -}}
{{- define "stacked-operator.imageRef" -}}
{{- $image := index . 0 -}}
{{- $appVersion := index . 1 -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default $appVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "stacked-operator.image" -}}
{{- include "stacked-operator.imageRef" (list .Values.image .Chart.AppVersion) -}}
{{- end -}}

{{- /*
The agent's or the router's image: the operator's (digest included) when none of repository, tag and
digest is set; else its own, the repository defaulting to the operator's.
*/ -}}
{{- define "stacked-operator.componentImage" -}}
{{- $root := index . 0 -}}
{{- $image := index . 1 -}}
{{- if or $image.repository $image.tag $image.digest -}}
{{- $own := dict "repository" (default $root.Values.image.repository $image.repository) "tag" $image.tag "digest" $image.digest -}}
{{- include "stacked-operator.imageRef" (list $own $root.Chart.AppVersion) -}}
{{- else -}}
{{- include "stacked-operator.image" $root -}}
{{- end -}}
{{- end -}}

{{/*
The principal-auth allow-list as the operator's flag takes it: <namespace>=<ocid>|<ocid>,<ns>=*.
*/}}
{{- define "stacked-operator.principalAuthAllow" -}}
{{- $entries := list -}}
{{- range . -}}
{{- $entries = append $entries (printf "%s=%s" .namespace (join "|" .compartments)) -}}
{{- end -}}
{{- join "," $entries -}}
{{- end -}}
