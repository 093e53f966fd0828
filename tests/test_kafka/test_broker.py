from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from kafka import KafkaAdminClient

from pileon.core.settings import load_settings
from pileon.kafka.broker import (
    BrokerStartError,
    EmbeddedBroker,
    free_port,
    kafka_connection,
    tansu_binary,
)
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


class TestFixedPort:
    def test_a_configured_port_is_used(self) -> None:
        port = free_port()
        with EmbeddedBroker(port=port) as broker:
            assert broker.bootstrap == f"127.0.0.1:{port}"

    def test_a_port_in_use_is_one_clear_error(self) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with pytest.raises(BrokerStartError, match=f"port {port} on 127.0.0.1 is in use"):
                EmbeddedBroker(port=port).start()

    def test_the_setting_reaches_the_broker(self) -> None:
        port = free_port()
        settings = load_settings(kafka={"embedded_port": port})
        with kafka_connection(settings) as connection:
            assert connection.bootstrap_servers == f"127.0.0.1:{port}"


def test_sigterm_interrupts_once_then_is_ignored_while_unwinding() -> None:
    """A second SIGTERM (``timeout`` signals the process and its group) must not interrupt
    the first one's unwinding: raised inside ``queue.get``'s lock handling it broke the lock
    and `make demo` ended in a traceback."""
    import os
    import signal

    from pileon.kafka.broker import _raise_interrupt

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises at the next bytecode
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGTERM)  # ignored now
        time.sleep(0.05)
    finally:
        signal.signal(signal.SIGTERM, previous)
