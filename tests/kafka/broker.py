"""Apache Kafka for the test suite: one KRaft node (broker and controller) on loopback.

The jars come from Maven Central through ``pom.xml`` beside this file (``kafka_2.13`` with its
runtime dependencies and a log4j binding), copied once into ``.cache/kafka/<version>`` by a
pinned maven-dependency-plugin. :class:`ApacheKafka` formats a data directory
(``kafka.tools.StorageTool format --standalone``) and runs ``kafka.Kafka``; the data directory
survives :meth:`ApacheKafka.stop`, so a test can restart the broker with its data.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

from pileon.kafka.broker import free_port

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
VERSION = re.search(r"<kafka.version>([^<]+)<", POM.read_text()).group(1)  # type: ignore[union-attr]
CACHE = HERE.parent.parent / ".cache" / "kafka" / VERSION
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


def ensure_jars() -> Path:
    """The directory of Kafka's jars, fetched with Maven on first use."""
    done = CACHE / ".complete"
    if done.exists():
        return CACHE
    if shutil.which("mvn") is None or shutil.which("java") is None:
        raise RuntimeError("Apache Kafka tests need java and mvn on PATH")
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mvn", "-B", "-q", "-f", str(POM), f"{DEPENDENCY_PLUGIN}:copy-dependencies",
         f"-DoutputDirectory={CACHE}", "-DincludeScope=runtime"],
        check=True, timeout=600,
    )
    done.touch()
    return CACHE


class ApacheKafka:
    """A single-node KRaft cluster; ``bootstrap`` stays the same across restarts."""

    def __init__(self, data_dir: Path) -> None:
        self.jars = ensure_jars()
        self.data_dir = data_dir
        self.port, self.controller_port = free_port(), free_port()
        self.config = data_dir / "server.properties"
        self.log_path = data_dir / "kafka.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._formatted = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, main: str, *args: str) -> list[str]:
        return ["java", "-Xms128m", "-Xmx512m", "-XX:+UseSerialGC",
                "-cp", f"{self.jars}/*", main, *args]

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "\n".join([
                "process.roles=broker,controller",
                "node.id=1",
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                f"CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}",
                f"log.dirs={self.data_dir / 'logs'}",
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=true",
                "num.partitions=1",
                "",
            ])
        )

    def start(self, timeout: float = 90.0) -> ApacheKafka:
        if not self._formatted:
            self._write_config()
            cluster_id = _cluster_id()
            subprocess.run(
                self._java("kafka.tools.StorageTool", "format", "-t", cluster_id,
                           "-c", str(self.config), "--standalone"),
                check=True, capture_output=True, timeout=120,
            )
            self._formatted = True
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            self._java("kafka.Kafka", str(self.config)), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        from kafka import KafkaAdminClient

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"Kafka exited: {self.log_path.read_text()[-3000:]}")
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap,
                                         bootstrap_timeout_ms=2000)
                admin.list_topics()
                admin.close()
                return
            except Exception:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Kafka did not serve metadata within {timeout}s")

    def stop(self, timeout: float = 60.0) -> None:
        """Stop cleanly (SIGTERM); the data directory is kept."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _cluster_id() -> str:
    """A random KRaft cluster id. Like Kafka's own ``Uuid.randomUuid``, never one that begins
    with "-": StorageTool would read it as an option (1 start in 64 failed that way)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
