{{/* Names, labels and the list of service instances. */}}

{{- define "estafette.fullname" -}}
{{- if contains "estafette" .Release.Name -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}{{- else -}}{{ printf "%s-estafette" .Release.Name | trunc 40 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "estafette.platform" -}}
{{- .Files.Get "files/platform.yaml" -}}
{{- end -}}

{{- define "estafette.labels" -}}
app.kubernetes.io/part-of: estafette
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/*
The service instances as JSON {"items": [...]}: national services once; matching and notifications
once per region of the values (perRegion true) or once for every region (perRegion false).
Each item: name (resource name), service, region ("" = every region).
*/}}
{{- define "estafette.instances" -}}
{{- $platform := include "estafette.platform" . | fromYaml -}}
{{- $full := include "estafette.fullname" . -}}
{{- $items := list -}}
{{- range $svc := keys $platform.services | sortAlpha -}}
{{- $spec := get $platform.services $svc -}}
{{- $vals := get $.Values.services $svc | default dict -}}
{{- if and $spec.regional (ne (toString $vals.perRegion) "false") -}}
{{- range $r := $.Values.regions -}}
{{- $items = append $items (dict "name" (printf "%s-%s-%s" $full $svc $r.id) "service" $svc "region" $r.id) -}}
{{- end -}}
{{- else -}}
{{- $items = append $items (dict "name" (printf "%s-%s" $full $svc) "service" $svc "region" "") -}}
{{- end -}}
{{- end -}}
{{- dict "items" $items | toJson -}}
{{- end -}}

{{/* Selector labels of one instance (argument: the instance dict). */}}
{{- define "estafette.selector" -}}
app.kubernetes.io/name: {{ .service }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "estafette.kafkaBootstrap" -}}
{{- if .Values.kafka.bootstrap -}}{{ .Values.kafka.bootstrap }}{{- else -}}{{ printf "%s-kafka-bootstrap:%v" .Values.kafka.strimzi.clusterName .Values.kafka.port }}{{- end -}}
{{- end -}}

{{/* The Secret holding a principal's password (argument: dict "root" $ "user" NAME). */}}
{{- define "estafette.userSecretName" -}}
{{- replace "{user}" .user .root.Values.kafka.userSecret.name -}}
{{- end -}}

{{- define "estafette.pgHost" -}}
{{- printf "%s-rw" .Values.postgres.cnpg.clusterName -}}
{{- end -}}

{{- define "estafette.regionIds" -}}
{{- $ids := list -}}{{- range .Values.regions -}}{{- $ids = append $ids .id -}}{{- end -}}{{- join "," $ids -}}
{{- end -}}
