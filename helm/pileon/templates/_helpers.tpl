{{- define "pileon.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "pileon.labels" -}}
app.kubernetes.io/name: pileon
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "pileon.selector" -}}
app.kubernetes.io/name: pileon
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "pileon.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Restricted Pod Security Standard: pod level. */}}
{{- define "pileon.podSecurity" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Restricted Pod Security Standard: container level. */}}
{{- define "pileon.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Settings shared by every pileon process, as PILEON_ env vars (no secret values). */}}
{{- define "pileon.env" -}}
- name: PILEON_KAFKA__BOOTSTRAP
  value: {{ .Values.kafka.bootstrap | quote }}
- name: PILEON_KAFKA__TOPIC_PREFIX
  value: {{ .Values.kafka.topicPrefix | quote }}
- name: PILEON_KAFKA__PARTITIONS
  value: {{ .Values.kafka.partitions | quote }}
- name: PILEON_KAFKA__REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | quote }}
- name: PILEON_KAFKA__SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
{{- if hasPrefix "SASL" .Values.kafka.securityProtocol }}
- name: PILEON_KAFKA__SASL_MECHANISM
  value: {{ .Values.kafka.sasl.mechanism | quote }}
- name: PILEON_KAFKA__SASL_USERNAME
  value: {{ required "kafka.sasl.username is required with SASL" .Values.kafka.sasl.username | quote }}
- name: PILEON_KAFKA__SASL_PASSWORD_FILE
  value: /etc/pileon/kafka-sasl/password
{{- end }}
{{- if .Values.kafka.tls.existingSecret }}
- name: PILEON_KAFKA__SSL_CAFILE
  value: /etc/pileon/kafka-tls/ca.crt
{{- end }}
- name: PILEON_WATCHLIST
  value: /etc/pileon/watchlist/watchlist.yaml
- name: PILEON_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: PILEON_WORKER__APP_ID
  value: {{ .Values.worker.appId | quote }}
- name: PILEON_WORKER__DATA_DIR
  value: /var/lib/pileon
{{- end -}}

{{- define "pileon.volumeMounts" -}}
- name: watchlist
  mountPath: /etc/pileon/watchlist
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if hasPrefix "SASL" .Values.kafka.securityProtocol }}
- name: kafka-sasl
  mountPath: /etc/pileon/kafka-sasl
  readOnly: true
{{- end }}
{{- if .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  mountPath: /etc/pileon/kafka-tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "pileon.volumes" -}}
- name: watchlist
  configMap:
    name: {{ include "pileon.fullname" . }}-watchlist
- name: tmp
  emptyDir: {}
{{- if hasPrefix "SASL" .Values.kafka.securityProtocol }}
- name: kafka-sasl
  secret:
    secretName: {{ required "kafka.sasl.existingSecret is required with SASL" .Values.kafka.sasl.existingSecret }}
    items:
      - key: {{ .Values.kafka.sasl.passwordKey }}
        path: password
{{- end }}
{{- if .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ .Values.kafka.tls.existingSecret }}
    items:
      - key: {{ .Values.kafka.tls.caKey }}
        path: ca.crt
{{- end }}
{{- end -}}

{{- define "pileon.podCommon" -}}
serviceAccountName: {{ include "pileon.fullname" . }}
automountServiceAccountToken: false
securityContext:
  {{- include "pileon.podSecurity" . | nindent 2 }}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* "true" when pileon notify runs: enabled and at least one sink configured. */}}
{{- define "pileon.notify" -}}
{{- $w := .Values.notify.webhook -}}
{{- if and .Values.notify.enabled (or .Values.notify.alertmanagerUrls $w.url $w.urlSecret) -}}true{{- end -}}
{{- end -}}

{{/* Where responders reach the console: console.publicUrl, else the Ingress host, else the
in-cluster Service (alerts' evidence links point here). */}}
{{- define "pileon.consoleUrl" -}}
{{- $c := .Values.console -}}
{{- if $c.publicUrl -}}{{ trimSuffix "/" $c.publicUrl }}
{{- else if $c.ingress.enabled -}}https://{{ $c.ingress.host }}
{{- else -}}http://{{ include "pileon.fullname" . }}-console:{{ $c.service.port }}
{{- end -}}
{{- end -}}
