"""The one polling helper of the tests: wait for a condition, fail the test if it never holds."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    cond: Callable[[], object], timeout: float = 30.0, interval: float = 0.05,
    what: str = "the condition",
) -> None:
    """Poll ``cond`` until it is truthy; an ``AssertionError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        time.sleep(interval)
