"""The Helm chart, checked without a cluster: ``helm lint --strict``, ``helm template`` for the
default and a full-featured values file, offline validation against the Kubernetes schemas
(kubernetes-validate), restricted pod security, no secret literals, and one source for the
rules and dashboards."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.tools  # helm, built by `make tools`

CHART = REPO / "helm" / "pileon"
FULL = CHART / "ci" / "full-values.yaml"
KUBE = "1.31.0"
CRDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ScaledObject"}
POD_KINDS = {"Deployment", "StatefulSet", "Pod"}


@pytest.fixture(scope="module")
def helm() -> str:
    path = REPO / ".cache" / "bin" / "helm"
    found = str(path) if path.exists() else shutil.which("helm")
    assert found, "helm missing: `make tools` builds it with go install"
    return found


def _run(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, check=False)


def _render(helm: str, *args: str) -> list[dict[str, Any]]:
    done = _run(helm, "template", "t", str(CHART), "--kube-version", KUBE, *args)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="module", params=["default", "full"])
def rendered(request: pytest.FixtureRequest, helm: str) -> list[dict[str, Any]]:
    return _render(helm, *(["-f", str(FULL)] if request.param == "full" else []))


def _pod_specs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    specs = []
    for d in docs:
        if d["kind"] == "Pod":
            specs.append(d["spec"])
        elif d["kind"] in POD_KINDS:
            specs.append(d["spec"]["template"]["spec"])
    return specs


class TestChart:
    @pytest.mark.parametrize("values", ["default", "full"])
    def test_lint_strict(self, helm: str, values: str) -> None:
        extra = ["-f", str(FULL)] if values == "full" else []
        done = _run(helm, "lint", "--strict", str(CHART), "--kube-version", KUBE, *extra)
        assert done.returncode == 0, done.stdout + done.stderr

    def test_manifests_validate_against_kubernetes_schemas(
        self, rendered: list[dict[str, Any]]
    ) -> None:
        for doc in rendered:
            if doc["kind"] not in CRDS:
                kubernetes_validate.validate(doc, KUBE, strict=True)

    def test_every_pod_runs_restricted(self, rendered: list[dict[str, Any]]) -> None:
        specs = _pod_specs(rendered)
        assert specs
        for spec in specs:
            pod = spec["securityContext"]
            assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
            assert pod["seccompProfile"]["type"] == "RuntimeDefault"
            assert spec["automountServiceAccountToken"] is False
            for c in spec["containers"]:
                sc = c["securityContext"]
                assert sc["allowPrivilegeEscalation"] is False
                assert sc["readOnlyRootFilesystem"] is True
                assert sc["capabilities"]["drop"] == ["ALL"]

    def test_no_secret_literal_is_rendered(self, rendered: list[dict[str, Any]]) -> None:
        assert not [d for d in rendered if d["kind"] == "Secret"]
        for spec in _pod_specs(rendered):
            for c in spec["containers"]:
                for env in c.get("env", []):
                    name = env["name"]
                    if any(w in name for w in ("PASSWORD", "TOKEN", "SECRET", "KEY")):
                        assert name.endswith("_FILE"), f"{name} must be a file from a Secret"
                        assert env["value"].startswith("/etc/pileon/")
        text = json.dumps(rendered)
        assert "hooks.slack.com" not in text and "BEGIN " not in text

    def test_credentials_are_mounted_from_existing_secrets(self, helm: str) -> None:
        docs = _render(helm, "-f", str(FULL))
        secrets = {v["secret"]["secretName"] for spec in _pod_specs(docs)
                   for v in spec.get("volumes", []) if "secret" in v}
        assert secrets == {"pileon-kafka-sasl", "pileon-kafka-ca", "pileon-neardup-key",
                           "pileon-webhook-token", "pileon-slack-webhook",
                           "pileon-mastodon-amara", "pileon-webhook-tokens",
                           "pileon-console-db", "pileon-archiver-signing"}

    def test_connectors_run_pileon_connect_with_their_checkpoint_name(self, helm: str) -> None:
        docs = _render(helm, "-f", str(FULL))
        args = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["args"]
                for d in docs
                if d["kind"] == "Deployment" and "-connector-" in d["metadata"]["name"]}
        assert args["t-pileon-connector-simulator"][0] == "simulate"
        for name in ("jetstream", "mastodon-amara", "webhook"):
            a = args[f"t-pileon-connector-{name}"]
            assert a[:2] == ["connect", name.split("-")[0]]
            assert a[a.index("--name") + 1] == name
        services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
        assert "t-pileon-connector-webhook" in services
        [monitor] = [d for d in docs if d["kind"] == "PodMonitor"]
        endpoint = monitor["spec"]["podMetricsEndpoints"][0]
        assert endpoint["relabelings"][0]["replacement"] == "pileon-connector"
        labelled = [d["metadata"]["name"] for d in docs if d["kind"] == "Deployment" and
                    d["spec"]["template"]["metadata"]["labels"].get("pileon.dev/connector")]
        assert sorted(labelled) == ["t-pileon-connector-jetstream",
                                    "t-pileon-connector-mastodon-amara",
                                    "t-pileon-connector-webhook"]

    def test_console_reads_the_archive_on_its_node_and_alerts_link_to_it(
        self, helm: str
    ) -> None:
        docs = _render(helm)
        [console] = [d for d in docs if d["kind"] == "Deployment"
                     and d["metadata"]["name"] == "t-pileon-console"]
        spec = console["spec"]["template"]["spec"]
        evidence = next(v for v in spec["volumes"] if v["name"] == "evidence")
        assert evidence["persistentVolumeClaim"] == {
            "claimName": "evidence-t-pileon-archiver-0", "readOnly": True}
        affinity = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert affinity[0]["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == \
            "archiver"
        assert {d["kind"] for d in docs if d["metadata"]["name"] == "t-pileon-console"} == {
            "Deployment", "Service", "PersistentVolumeClaim"}  # SQLite on its own volume
        full = _render(helm, "-f", str(FULL))
        env = {e["name"]: e.get("value") for d in full if d["kind"] == "Deployment"
               for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
               if d["metadata"]["name"] == "t-pileon-console"}
        assert env["PILEON_CONSOLE__DATABASE_URL_FILE"] == "/etc/pileon/console-db/url"
        assert env["PILEON_CONSOLE__PUBLIC_URL"] == "https://pileon.newsroom.example"
        assert env["PILEON_CONSOLE__TRUSTED_PROXIES"] == '["10.0.12.7"]'
        [ingress] = [d for d in full if d["kind"] == "Ingress"]
        assert ingress["spec"]["tls"][0]["hosts"] == ["pileon.newsroom.example"]
        assert not [d for d in full if d["kind"] == "PersistentVolumeClaim"]  # PostgreSQL
        with_sink = _render(helm, "--set", "notify.alertmanagerUrls={http://am:9093}")
        env = {e["name"]: e.get("value") for d in with_sink
               if d["metadata"]["name"] == "t-pileon-notify" and d["kind"] == "Deployment"
               for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["PILEON_ALERTING__EVIDENCE_URL"] == "http://t-pileon-console:6070/evidence"

    def test_a_connector_without_its_token_secret_is_refused(self, helm: str) -> None:
        done = _run(helm, "template", "t", str(CHART), "--kube-version", KUBE, "--set",
                    "connectors.webhook.enabled=true")
        assert done.returncode != 0 and "connectors.webhook.existingSecret" in done.stderr

    def test_prometheus_rule_is_the_repo_rule_file(self, helm: str, tmp_path: Path) -> None:
        [rule] = [d for d in _render(helm, "-f", str(FULL)) if d["kind"] == "PrometheusRule"]
        repo = yaml.safe_load((REPO / "prometheus" / "pileon-rules.yml").read_text())
        assert rule["spec"] == repo
        assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        promtool = shutil.which("promtool")
        assert promtool, "promtool missing: `make tools`"
        path = tmp_path / "rules.yml"
        path.write_text(yaml.safe_dump(rule["spec"]))
        done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, done.stdout

    def test_dashboards_are_configmaps_for_the_grafana_sidecar(self, helm: str) -> None:
        maps = [d for d in _render(helm, "-f", str(FULL))
                if d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"]["labels"]]
        found = {name: json.loads(text) for m in maps for name, text in m["data"].items()}
        assert set(found) == {"overview.json", "person.json", "pipeline.json"}
        for name, data in found.items():
            assert data == json.loads((REPO / "dashboards" / name).read_text())

    def test_service_monitors_set_the_job_names_the_rules_use(self, helm: str) -> None:
        monitors = [d for d in _render(helm, "-f", str(FULL)) if d["kind"] == "ServiceMonitor"]
        jobs = {m["spec"]["endpoints"][0]["relabelings"][0]["replacement"] for m in monitors}
        assert jobs == {"pileon-worker", "pileon-notify", "pileon-archiver"}
        services = {d["metadata"]["name"]: d for d in _render(helm, "-f", str(FULL))
                    if d["kind"] == "Service"}
        [archiver] = [m for m in monitors if m["metadata"]["name"].endswith("-archiver")]
        service = services[archiver["metadata"]["name"]]  # the one it selects, by name here
        assert service["spec"]["ports"][0]["name"] == archiver["spec"]["endpoints"][0]["port"]

    def test_keda_scales_the_worker_on_raw_topic_lag(self, helm: str) -> None:
        docs = _render(helm, "-f", str(FULL))
        [scaled] = [d for d in docs if d["kind"] == "ScaledObject"]
        [worker] = [d for d in docs if d["kind"] == "Deployment"
                    and d["metadata"]["name"].endswith("-worker")]
        assert scaled["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
        assert "replicas" not in worker["spec"]  # KEDA owns the replica count
        assert scaled["spec"]["triggers"][0]["metadata"]["topic"] == "newsroom.mentions.raw"
        assert scaled["spec"]["maxReplicaCount"] <= 8

    def test_helm_test_hook_checks_the_worker(self, rendered: list[dict[str, Any]]) -> None:
        [pod] = [d for d in rendered if d["kind"] == "Pod"]
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        assert "/healthz" in pod["spec"]["containers"][0]["args"][0]

    def test_worker_probes_use_the_health_endpoint(self, rendered: list[dict[str, Any]]) -> None:
        [worker] = [d for d in rendered if d["kind"] == "Deployment"
                    and d["metadata"]["name"].endswith("-worker")]
        c = worker["spec"]["template"]["spec"]["containers"][0]
        assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"


class TestValuesSchema:
    @pytest.mark.parametrize(("setting", "message"), [
        ("worker.replicas=0", "/worker/replicas"),
        ("kafka.securityProtocol=TLS", "/kafka/securityProtocol"),
        ("kafka.bootstrap=not a host", "/kafka/bootstrap"),
        ("logLevel=LOUD", "/logLevel"),
        ("notify.webhook.format=xml", "/notify/webhook/format"),
        ("workers.replicas=2", "additional properties 'workers' not allowed"),
        ("console.sso.defaultRole=admin", "/console/sso/defaultRole"),
        ("console.publicUrl=pileon.example", "/console/publicUrl"),
    ])
    def test_bad_values_are_rejected_naming_the_field(
        self, helm: str, setting: str, message: str
    ) -> None:
        done = _run(helm, "template", "t", str(CHART), "--kube-version", KUBE, "--set", setting)
        assert done.returncode != 0 and message in done.stderr, done.stderr

    def test_more_workers_than_partitions_is_refused(self, helm: str) -> None:
        done = _run(helm, "template", "t", str(CHART), "--kube-version", KUBE,
                    "--set", "worker.replicas=5")
        assert done.returncode != 0
        assert "must not exceed kafka.partitions (4)" in done.stderr

    def test_sasl_without_a_secret_is_refused(self, helm: str) -> None:
        done = _run(helm, "template", "t", str(CHART), "--kube-version", KUBE,
                    "--set", "kafka.securityProtocol=SASL_SSL", "--set", "kafka.sasl.username=u")
        assert done.returncode != 0 and "kafka.sasl.existingSecret is required" in done.stderr
