"""Shared fixtures: a small watchlist, settings, and a real embedded broker on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pileon.core.settings import Settings, load_settings
from pileon.core.watchlist import Watchlist, load_watchlist
from pileon.kafka.broker import EmbeddedBroker
from tests.kafka.broker import ApacheKafka

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_WATCHLIST = REPO / "pileon" / "core" / "watchlist.example.yaml"


@pytest.fixture
def watchlist() -> Watchlist:
    return load_watchlist(EXAMPLE_WATCHLIST)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in [n for n in __import__("os").environ if n.startswith("PILEON_")]:
        monkeypatch.delenv(name)
    return load_settings(worker={"data_dir": tmp_path / "data"})


@pytest.fixture(scope="session")
def embedded_broker() -> Iterator[EmbeddedBroker]:
    """One Tansu broker for the session (it starts in milliseconds, memory only)."""
    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture(scope="session")
def apache_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    """One Apache Kafka (KRaft) node for the session, fetched from Maven Central once."""
    kafka = ApacheKafka(tmp_path_factory.mktemp("kafka")).start()
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture(scope="module", params=["tansu", "apache-kafka"])
def bootstrap(request: pytest.FixtureRequest) -> str:
    """Each integration test module runs against both brokers."""
    name = "embedded_broker" if request.param == "tansu" else "apache_kafka"
    broker = request.getfixturevalue(name)
    return str(broker.bootstrap)
