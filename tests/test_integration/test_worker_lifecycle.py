"""``pileon worker`` with no broker configured runs and stops the embedded broker."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import pytest

from pileon.kafka.broker import tansu_binary
from tests.procs import alive, children
from tests.test_integration.worker import WorkerProcess

pytestmark = pytest.mark.slow


def _tansu_child(pid: int) -> int:
    for child in children(pid):
        if Path(f"/proc/{child}/exe").resolve() == tansu_binary().resolve():
            return child
    raise AssertionError("no embedded broker child process")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_embedded_broker_stops_with_the_worker(tmp_path: Path, sig: signal.Signals) -> None:
    worker = WorkerProcess(None, tmp_path, f"lc{uuid.uuid4().hex[:6]}.", "pileon-lc").start()
    assert worker.proc is not None
    broker = _tansu_child(worker.proc.pid)
    log = worker.log_path.read_text()
    assert "EMBEDDED broker" in log and "memory-only" in log
    worker.proc.send_signal(sig)
    worker.proc.wait(timeout=60)
    deadline = time.monotonic() + 10
    while alive(broker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(broker)
