{{/* Names and labels. */}}
{{- define "olo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "olo.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "olo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "olo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "olo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "olo.labels" -}}
helm.sh/chart: {{ include "olo.chart" . }}
{{ include "olo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: control-plane
{{- end }}

{{- define "olo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "olo.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "olo.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The chart's secrets: environment variable -> value, for every non-empty secret value (YAML).
*/}}
{{- define "olo.secretValues" -}}
{{- $v := .Values -}}
{{- $s := dict -}}
{{- $pairs := list
  (list "OLO_STATE__DATABASE" $v.postgresql.url)
  (list "OLO_GIT_TOKEN" $v.source.token)
  (list "OLO_GITHUB_WEBHOOK_SECRET" $v.github.webhookSecret)
  (list "OLO_GITHUB_TOKEN" $v.github.token)
  (list "OLO_AIRFLOW_PASSWORD" $v.airflow.password)
  (list "OLO_ICEBERG_TOKEN" $v.icebergRest.token)
  (list "OLO_ICEBERG_CREDENTIAL" $v.icebergRest.credential)
  (list "OLO_S3_ACCESS_KEY" $v.s3.accessKey)
  (list "OLO_S3_SECRET_KEY" $v.s3.secretKey)
  (list "OLO_LAKEHOUSE__SQL_DATABASE" $v.lakehouse.sqlDatabaseUrl)
  (list "OLO_TRINO_PASSWORD" $v.trino.password)
  (list "OLO_TRINO_TOKEN" $v.trino.token)
  (list "OLO_OIDC_CLIENT_SECRET" $v.oidc.clientSecret)
-}}
{{- range $pairs }}
{{- if index . 1 }}
{{- $_ := set $s (index . 0) (index . 1) }}
{{- end }}
{{- end }}
{{- toYaml $s }}
{{- end }}

{{/*
"true" when olo's environment will hold the variable (the argument): from the chart's Secret, or
listed in existingSecret.keys. Usage: include "olo.hasSecret" (list . "OLO_AIRFLOW_PASSWORD")
*/}}
{{- define "olo.hasSecret" -}}
{{- $root := index . 0 -}}
{{- $var := index . 1 -}}
{{- $values := include "olo.secretValues" $root | fromYaml -}}
{{- if or (hasKey $values $var) (has $var $root.Values.existingSecret.keys) -}}
true
{{- end -}}
{{- end }}

{{/* The state store is PostgreSQL (given by value or by a Secret of the user's). */}}
{{- define "olo.hasPostgres" -}}
{{- $pg := .Values.postgresql -}}
{{- if or (regexMatch "^postgres(ql)?://" $pg.url) (and $pg.existingSecret.name $pg.existingSecret.key) (has "OLO_STATE__DATABASE" .Values.existingSecret.keys) -}}
true
{{- end -}}
{{- end }}

{{- define "olo.lakehouseCatalog" -}}
{{- if .Values.lakehouse.catalog }}{{ .Values.lakehouse.catalog }}{{ else if .Values.icebergRest.uri }}rest{{ else }}sql{{ end }}
{{- end }}

{{- define "olo.lakehouseWarehouse" -}}
{{- if .Values.lakehouse.warehouse }}{{ .Values.lakehouse.warehouse }}{{ else if .Values.s3.endpoint }}s3{{ else }}local{{ end }}
{{- end }}

{{/*
Checks across values that a JSON Schema cannot express well; each stops the render with a message
saying what to set.
*/}}
{{- define "olo.validate" -}}
{{- $v := .Values -}}
{{- if and (gt (int $v.replicaCount) 1) (not (include "olo.hasPostgres" .)) -}}
{{- fail (printf "replicaCount is %d: several replicas elect a leader through PostgreSQL, so state.database must be a PostgreSQL URL. Set postgresql.url (postgres://USER:PASSWORD@HOST:5432/DB) or postgresql.existingSecret.name and .key, or use replicaCount: 1." (int $v.replicaCount)) -}}
{{- end -}}
{{- if and $v.airflow.url (not (include "olo.hasSecret" (list . "OLO_AIRFLOW_PASSWORD"))) -}}
{{- fail "airflow.url is set: set airflow.password, or list OLO_AIRFLOW_PASSWORD in existingSecret.keys" -}}
{{- end -}}
{{- if and $v.icebergRest.token $v.icebergRest.credential -}}
{{- fail "icebergRest: set token or credential, not both" -}}
{{- end -}}
{{- if and $v.trino.token (or $v.trino.username $v.trino.password) -}}
{{- fail "trino: set username and password, or token, not both" -}}
{{- end -}}
{{- if and $v.trino.username (not (include "olo.hasSecret" (list . "OLO_TRINO_PASSWORD"))) -}}
{{- fail "trino.username is set: set trino.password too (or list OLO_TRINO_PASSWORD in existingSecret.keys)" -}}
{{- end -}}
{{- if and (eq $v.trino.catalogs "dynamic") (not $v.trino.url) -}}
{{- fail "trino.catalogs is \"dynamic\": set trino.url (the coordinator olo sends CREATE CATALOG to)" -}}
{{- end -}}
{{- if and $v.existingSecret.keys (not $v.existingSecret.name) -}}
{{- fail "existingSecret.keys is set: set existingSecret.name (the Secret holding them)" -}}
{{- end -}}
{{- $values := include "olo.secretValues" . | fromYaml -}}
{{- range $v.existingSecret.keys -}}
{{- if hasKey $values . -}}
{{- fail (printf "%s is given twice: as a chart value and in existingSecret.keys; keep one" .) -}}
{{- end -}}
{{- end -}}
{{- if and $v.persistence.enabled (gt (int $v.replicaCount) 1) (not (has "ReadWriteMany" $v.persistence.accessModes)) -}}
{{- fail "persistence.enabled with several replicas: the pods share one claim, so it needs accessModes [ReadWriteMany]; or turn persistence off (the state is in PostgreSQL)" -}}
{{- end -}}
{{- if and $v.postgresql.url $v.postgresql.existingSecret.name -}}
{{- fail "postgresql: set url or existingSecret, not both" -}}
{{- end -}}
{{- end }}
