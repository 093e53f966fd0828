from __future__ import annotations

import subprocess
import sys
import time

from kafka import KafkaAdminClient

from pileon.kafka.broker import EmbeddedBroker, tansu_binary
from tests.procs import alive, children


class TestEmbeddedBroker:
    def test_binary_ships_in_the_wheel(self) -> None:
        assert tansu_binary().is_file()

    def test_answers_kafka_on_loopback_then_stops(self) -> None:
        broker = EmbeddedBroker().start()
        pid = broker.pid
        assert pid is not None
        assert broker.bootstrap.startswith("127.0.0.1:")
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        assert admin.list_topics() == []
        admin.close()
        broker.stop()
        assert not alive(pid)

    def test_stop_is_idempotent(self) -> None:
        broker = EmbeddedBroker().start()
        broker.stop()
        broker.stop()

    def test_dies_with_a_killed_parent(self) -> None:
        script = (
            "from pileon.kafka.broker import EmbeddedBroker; import time, sys\n"
            "b = EmbeddedBroker().start(); print(b.pid, flush=True); time.sleep(60)\n"
        )
        parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert child in children(parent.pid)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 5
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child)
