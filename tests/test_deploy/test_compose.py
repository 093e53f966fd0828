"""docker-compose.yml and the image, checked without a container runtime: the compose file
against the Compose Specification schema, every mounted config file present and valid (with
promtool and amtool), loopback-only ports, and the Kafka version the tests use."""

from __future__ import annotations

import importlib.resources
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import REPO
from tests.kafka.broker import VERSION as KAFKA_VERSION

COMPOSE = REPO / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def _mounts(compose: dict[str, Any]) -> list[tuple[str, Path, str]]:
    found = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("./"):
                found.append((name, REPO / source, target))
    return found


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} missing: `make tools` installs it"
    return path


class TestCompose:
    def test_valid_against_the_compose_specification(self, compose: dict[str, Any]) -> None:
        schema_file = (importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
                       / "compose-spec.json")
        schema = json.loads(schema_file.read_text())
        jsonschema.Draft7Validator(schema).validate(compose)  # the spec is draft 7

    def test_has_every_service_of_the_stack(self, compose: dict[str, Any]) -> None:
        assert {"kafka", "topics", "worker", "simulator", "notify", "archiver", "console",
                "prometheus", "alertmanager", "grafana"} <= set(compose["services"])

    def test_console_reads_the_evidence_read_only_and_alerts_link_to_it(
        self, compose: dict[str, Any]
    ) -> None:
        console = compose["services"]["console"]
        assert "evidence:/var/lib/pileon:ro" in console["volumes"]
        assert console["environment"]["PILEON_CONSOLE__EVIDENCE_DIR"] == \
            "/var/lib/pileon/evidence"  # where the archiver writes (archive --out)
        assert compose["services"]["archiver"]["command"][-1] == "/var/lib/pileon/evidence"
        link = compose["services"]["notify"]["environment"]["PILEON_ALERTING__EVIDENCE_URL"]
        assert link == console["environment"]["PILEON_CONSOLE__PUBLIC_URL"] + "/evidence"

    def test_kafka_is_the_version_the_tests_run(self, compose: dict[str, Any]) -> None:
        assert compose["services"]["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"

    def test_every_mounted_file_exists_and_parses(self, compose: dict[str, Any]) -> None:
        mounts = _mounts(compose)
        assert len(mounts) >= 5
        for service, source, _ in mounts:
            assert source.exists(), f"{service} mounts missing {source}"
            for path in [source] if source.is_file() else sorted(source.rglob("*.*")):
                text = path.read_text()
                loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
                assert loaded, f"{path} is empty"

    @pytest.mark.tools
    def test_prometheus_config_passes_promtool(self, tmp_path: Path) -> None:
        config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
        config["rule_files"] = [str(REPO / "prometheus" / "pileon-rules.yml")]
        path = tmp_path / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        done = subprocess.run([_tool("promtool"), "check", "config", str(path)],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr

    def test_prometheus_scrapes_the_job_names_the_rules_use(self, compose: dict[str, Any]) -> None:
        config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
        assert {j["job_name"] for j in config["scrape_configs"]} == {
            "pileon-worker", "pileon-notify", "pileon-archiver", "pileon-connector"}
        # Each target is a compose service that serves its metrics beyond its own loopback.
        for job in config["scrape_configs"]:
            [target] = job["static_configs"][0]["targets"]
            service = compose["services"][target.split(":")[0]]
            said = " ".join(service["command"]) + " " + " ".join(
                f"{k}={v}" for k, v in (service.get("environment") or {}).items())
            assert "0.0.0.0" in said, job["job_name"]  # noqa: S104 - the container port

    def test_the_live_bluesky_connector_is_opt_in(self, compose: dict[str, Any]) -> None:
        jetstream = compose["services"]["jetstream"]
        assert jetstream["profiles"] == ["bluesky"]
        assert jetstream["command"][:2] == ["connect", "jetstream"]

    @pytest.mark.tools
    def test_alertmanager_config_passes_amtool(self) -> None:
        done = subprocess.run(
            [_tool("amtool"), "check-config", str(REPO / "deploy/alertmanager/alertmanager.yml")],
            capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr

    def test_grafana_gets_the_dashboards_and_a_default_prometheus(self) -> None:
        sources = yaml.safe_load(
            (REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
        [ds] = sources["datasources"]
        assert ds["type"] == "prometheus" and ds["isDefault"] is True
        providers = yaml.safe_load(
            (REPO / "deploy/grafana/provisioning/dashboards/pileon.yml").read_text())
        assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/pileon"

    def test_ports_are_published_on_loopback_only(self, compose: dict[str, Any]) -> None:
        for name, service in compose["services"].items():
            for port in service.get("ports", []):
                assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port}"

    def test_no_secret_in_the_file(self) -> None:
        text = COMPOSE.read_text()
        assert "${GRAFANA_ADMIN_PASSWORD:?" in text  # required from the environment
        literal = re.search(r"^\s+\w*(PASSWORD|TOKEN|SECRET)\w*:\s*(?!\$\{)\S", text, re.M)
        assert not literal, literal

    def test_pileon_services_run_read_only_without_privileges(
        self, compose: dict[str, Any]
    ) -> None:
        for name in ("worker", "simulator", "notify", "archiver", "console"):
            service = compose["services"][name]
            assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
            assert "no-new-privileges:true" in service["security_opt"]


class TestDockerfile:
    def test_base_is_pinned_and_user_is_not_root(self) -> None:
        text = (REPO / "Dockerfile").read_text()
        bases = re.findall(r"^FROM (\S+)", text, re.M)
        assert bases and all(re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:\w+)?", b)
                             for b in bases)
        users = re.findall(r"^USER (\S+)", text, re.M)
        assert users and users[-1].split(":")[0] not in ("root", "0")

    def test_every_copied_path_exists(self) -> None:
        text = (REPO / "Dockerfile").read_text()
        for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M):
            for source in line.split()[:-1]:
                assert (REPO / source).exists(), source
