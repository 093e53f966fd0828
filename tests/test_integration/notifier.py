"""Run ``pileon notify`` as a real process, for integration tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from pileon.core.process import terminate
from pileon.kafka.broker import free_port
from tests.procs import wait_ready


class NotifierProcess:
    def __init__(self, bootstrap: str, tmp: Path, prefix: str, *, alertmanager: str | None = None,
                 webhook: str | None = None) -> None:
        self.port = free_port()
        self.log_path = tmp / f"notify-{self.port}.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PILEON_")},
            "PILEON_KAFKA__BOOTSTRAP": bootstrap,
            "PILEON_KAFKA__TOPIC_PREFIX": prefix,
            "PILEON_ALERTING__GROUP_ID": f"notify-{prefix}",
            "PILEON_ALERTING__METRICS_PORT": str(self.port),
            "PILEON_ALERTING__RESEND_SECONDS": "2",
        }
        if alertmanager:
            self.env["PILEON_ALERTING__ALERTMANAGER_URLS"] = json.dumps([alertmanager])
        if webhook:
            self.env["PILEON_ALERTING__WEBHOOK_URL"] = webhook
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> NotifierProcess:
        self.proc = subprocess.Popen([sys.executable, "-m", "pileon", "notify"], env=self.env,
                                     stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT)
        wait_ready(self.proc, f"http://127.0.0.1:{self.port}/metrics", self.log_path,
                   "notifier", timeout)
        return self

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
            return str(r.read().decode())

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc, 20)
