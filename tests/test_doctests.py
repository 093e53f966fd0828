"""Docstring examples are part of the documentation: they must run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "pileon.connectors.matching",
    "pileon.core.html_text",
    "pileon.core.csvsafe",
    "pileon.streams.detection.neardup.normalize",
    "pileon.streams.worker.watchdog",
    "pileon.core.textfold",
    "pileon.core.wording",
    "pileon.streams.detection.detectors.rate",
    "pileon.streams.detection.detectors.coordination",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
