"""Run ``pileon worker`` as a real process against a broker, for integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
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
    """Records of a topic from its start, without a consumer group (no join delay): every
    record until none came for 2 s, then more until ``until`` records arrived or ``timeout``
    seconds passed.

    kafka-python 3.0.x can block forever inside a consumer call (its ``net.run`` waits on an
    event without a timeout: dpkp/kafka-python#3121, fixed on master after 3.0.12). The read
    runs in a daemon thread that is abandoned after a bound and tried again with a new
    consumer, so a hung client fails one attempt, not the test (a CI run hung here for 300 s).
    """
    bound = timeout + 60.0
    for _attempt in range(3):
        box: dict[str, Any] = {}

        thread = threading.Thread(target=_read_into, name=f"read-{topic}", daemon=True,
                                  args=(box, bootstrap, topic, until, timeout))
        thread.start()
        thread.join(bound)
        if "error" in box:
            raise box["error"]
        if "records" in box:
            return list(box["records"])
    raise TimeoutError(f"reading {topic} hung {_attempt + 1} times for {bound:.0f} s each")


def _read_into(box: dict[str, Any], *args: Any) -> None:
    try:
        box["records"] = _read_topic(*args)
    except BaseException as e:  # handed to the caller's thread
        box["error"] = e


def _read_topic(bootstrap: str, topic: str, until: int, timeout: float) -> list[Any]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        records: list[Any] = []
        # Done when nothing came for 2 s and the end offsets are reached; Tansu 0.6 can report
        # an end offset below the last record's, so the quiet spell is what ends a read there.
        quiet_since = time.monotonic()
        deadline = time.monotonic() + timeout
        while True:
            batch = consumer.poll(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
            now = time.monotonic()
            if batch:
                quiet_since = now
            at_end = all(consumer.position(tp) >= end[tp] for tp in partitions)
            finished = (at_end and now - quiet_since >= 2.0) or now - quiet_since >= 10.0
            if finished and (len(records) >= until or now > deadline):
                return records
    finally:
        consumer.close()
