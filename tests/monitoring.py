"""Real Prometheus and Alertmanager (Debian packages) as processes on loopback, for tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from pileon.core.process import terminate
from pileon.kafka.broker import free_port
from tests.procs import wait_ready


def _binary(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} missing: `make tools` installs it from Debian packages"
    return path


class _Server:
    name = "server"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> _Server:
        self.proc = subprocess.Popen(self.command(), stdout=self.log.open("ab"),
                                     stderr=subprocess.STDOUT)
        wait_ready(self.proc, f"{self.url}/-/ready", self.log, self.name, timeout)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc, 10)

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310
            return json.loads(r.read())

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class PrometheusServer(_Server):
    """Scrapes the given targets every second and evaluates ``rule_files``."""

    name = "prometheus"

    def __init__(self, tmp: Path, jobs: dict[str, list[str]], rule_files: list[Path]) -> None:
        super().__init__(tmp)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}
                               for job, targets in jobs.items()],
        }
        self.config = tmp / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config))

    def command(self) -> list[str]:
        return [_binary("prometheus"), f"--config.file={self.config}",
                f"--storage.tsdb.path={self.tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}"]

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def query_range(self, expr: str, seconds: float = 120, step: str = "5s") -> list[Any]:
        now = time.time()
        body = self.get("/api/v1/query_range", query=expr, start=str(now - seconds),
                        end=str(now), step=step)
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def wait_scraped(self, job: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.get("/api/v1/query", query=f'up{{job="{job}"}} == 1')["data"]["result"]
            if result:
                return
            time.sleep(0.5)
        raise AssertionError(f"Prometheus never scraped {job}")


class AlertmanagerServer(_Server):
    """Routes every alert to ``webhook_url``, grouped by person, clustering off."""

    name = "alertmanager"

    def __init__(self, tmp: Path, webhook_url: str) -> None:
        super().__init__(tmp)
        config = {
            "route": {"receiver": "test", "group_by": ["person"], "group_wait": "1s",
                      "group_interval": "2s", "repeat_interval": "1h"},
            "receivers": [{"name": "test", "webhook_configs": [
                {"url": webhook_url, "send_resolved": True}]}],
        }
        self.config = tmp / "alertmanager.yml"
        self.config.write_text(yaml.safe_dump(config))

    def command(self) -> list[str]:
        return [_binary("prometheus-alertmanager"), f"--config.file={self.config}",
                f"--storage.path={self.tmp / 'am'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="]

    def __enter__(self) -> AlertmanagerServer:
        self.start()
        return self
