"""Shared fixtures: a small watchlist, settings, and a real embedded broker on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pileon.broker import EmbeddedBroker
from pileon.settings import Settings, load_settings
from pileon.watchlist import Watchlist, load_watchlist

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_WATCHLIST = REPO / "config" / "watchlist.example.yaml"


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
