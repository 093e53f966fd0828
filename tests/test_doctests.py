"""Docstring examples are part of the documentation: they must run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["connectors.matching", "connectors.mastodon", "streams.neardup.normalize",
           "streams.watchdog",
           "streams.detectors.rate", "streams.detectors.coordination"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
