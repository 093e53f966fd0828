"""The ceiling on kafka-python 3.0's cross-thread wait (dpkp/kafka-python#3121)."""

from __future__ import annotations

import threading
import time

import pytest
from kafka.errors import KafkaTimeoutError
from kafka.net import selector as kafka_selector
from kafka.net.selector import NetworkSelector

import pileon.kafka  # noqa: F401 - installs the ceiling
from pileon.kafka import client_waits


def test_installed_on_import_and_idempotent() -> None:
    assert kafka_selector.threading.Event is client_waits.BoundedEvent
    assert client_waits.install()
    assert kafka_selector.threading.current_thread is threading.current_thread


def test_a_call_whose_network_thread_never_answers_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reproduction from #3121: the I/O thread never runs the coroutine."""
    monkeypatch.setattr(client_waits.BoundedEvent, "ceiling", 0.3)
    net = NetworkSelector()
    net._io_thread = object()  # "running", but on another thread that never answers
    net.call_soon_threadsafe = lambda waiter: None  # type: ignore[method-assign]

    async def never() -> None:  # pragma: no cover - never scheduled
        return None

    started = time.monotonic()
    with pytest.raises(KafkaTimeoutError, match="did not complete within"):
        net.run(never)
    assert time.monotonic() - started < 5


def test_a_wait_with_its_own_timeout_is_left_alone() -> None:
    event = client_waits.BoundedEvent()
    assert event.wait(0.01) is False
    event.set()
    assert event.wait() is True


@pytest.mark.parametrize(("version", "expected"), [("3.0.12", True), ("3.0.7", True),
                                                   ("3.1.0", False), ("2.3.3", False)])
def test_only_the_3_0_series(version: str, expected: bool) -> None:
    assert client_waits.applies(version) is expected
