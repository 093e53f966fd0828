"""Retry delays shared by every component that retries (alert sinks, connectors).

Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter",
2015): the n-th wait is uniform in [0, min(cap, base * 2**n)], so many clients retrying the same
broken receiver spread out instead of arriving together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff: ``delay(n)`` for the n-th retry (0-based)."""

    base: float = 1.0
    cap: float = 60.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap, self.base * 2.0**attempt))
