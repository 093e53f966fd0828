"""Run ``pileon worker`` as a real process against a broker, for integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from pileon.core.process import terminate
from pileon.kafka.broker import free_port
from tests.procs import wait_ready


class WorkerProcess:
    """A ``pileon worker`` subprocess with its own app id, topic prefix and web port."""

    def __init__(self, bootstrap: str | None, tmp: Path, prefix: str, app_id: str) -> None:
        self.port = free_port()
        self.log_path = tmp / f"worker-{self.port}.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PILEON_")},
            "PILEON_KAFKA__TOPIC_PREFIX": prefix,
            "PILEON_WORKER__APP_ID": app_id,
            "PILEON_WORKER__WEB_PORT": str(self.port),
            "PILEON_WORKER__DATA_DIR": str(tmp / "data"),
            "PILEON_WORKER__SESSION_TIMEOUT_SECONDS": "10",
            "PILEON_WORKER__LAG_INTERVAL_SECONDS": "1",
        }
        if bootstrap:
            self.env["PILEON_KAFKA__BOOTSTRAP"] = bootstrap
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout: float = 90.0) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pileon", "worker"], env=self.env, stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_ready(self.proc, f"{self.url}/healthz", self.log_path, "worker", ready_timeout)
        return self

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as r:  # noqa: S310
            return str(r.read().decode())

    def stop(self, timeout: float = 30.0) -> int | None:
        return terminate(self.proc, timeout) if self.proc is not None else None

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include ``labels`` (0 if absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def read_topic(bootstrap: str, topic: str, until: int = 0, timeout: float = 0.0) -> list[Any]:
    """Records of a topic from its start, without a consumer group (no join delay); keeps
    reading until ``until`` records arrived or ``timeout`` seconds passed."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=2000)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    records = list(consumer)
    deadline = time.monotonic() + timeout
    while len(records) < until and time.monotonic() < deadline:
        records.extend(consumer)
    consumer.close()
    return records
