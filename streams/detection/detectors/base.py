"""The contract every detector keeps (after river's ``learn_one`` / ``score_one``).

A detector sees one closed event-time observation at a time (a bin, or a window summary), in
order, and never looks ahead. Its score is higher for more anomalous observations, and
:meth:`Detector.explain` says what the score compared, for the alert; deciding what is an
incident is a separate step (:mod:`pileon.streams.detection.incidents`). State must be small
and round-trip through ``to_state`` / ``from_state`` so it can live in a Faust table.

:class:`Detector` is generic in its observation and its explanation; the rate, coordination and
focus detectors all fit it (``BUILTIN`` in :mod:`.` is typed with it, so mypy checks that), and
:mod:`.checks` holds the contract checks any new detector must pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

import numpy as np
from scipy.special import logsumexp
from scipy.stats import betabinom, binom


@dataclass(frozen=True, slots=True)
class BinObservation:
    """Mentions of one person in one closed bin ``[start, start + bin_seconds)``."""

    start: float
    count: int


def share_tail_score(k: int, n: int, q: float, cap: float, rho: float = 0.0) -> float:
    """``-log10 P(Bin(n, q) >= k)``, capped at ``cap``: how improbable ``k`` of ``n`` is for a
    usual share ``q``; 0 when ``k`` is no more than the usual ``n * q``.

    With ``rho`` > 0 the share itself varies from window to window: the tail is the
    beta-binomial's of mean ``q`` and intra-window correlation ``rho`` (variance
    ``n q (1 - q) (1 + (n - 1) rho)``), which is the binomial's at ``rho`` = 0."""
    if k <= n * q:
        return 0.0
    q = min(q, 0.999)
    if rho > 0.0:
        size = 1.0 / rho - 1.0
        # Summed in logs from k up: 1 - cdf loses the far tail to rounding.
        log_sf = float(logsumexp(betabinom.logpmf(np.arange(k, n + 1), n, q * size,
                                                  (1.0 - q) * size)))
    else:
        log_sf = float(binom.logsf(k - 1, n, q))
    return min(cap, max(0.0, -log_sf / math.log(10)))


class Explanation(Protocol):
    """What a detector's score compared; ``score`` is the score itself."""

    @property
    def score(self) -> float: ...


X = TypeVar("X", contravariant=True)
E = TypeVar("E", bound=Explanation, covariant=True)


@runtime_checkable
class Detector(Protocol[X, E]):
    """An online detector of observations ``X`` whose scores are explained by ``E``."""

    def learn_one(self, x: X) -> None:
        """Update the baseline with an observation (after :meth:`score_one` for it)."""

    def score_one(self, x: X) -> float:
        """How anomalous ``x`` is, >= 0; higher is more anomalous. Does not change state."""

    def explain(self, x: X) -> E:
        """The score of ``x`` with what it compared. Does not change state."""

    def to_state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot of the detector's state."""

    @classmethod
    def from_state(cls, state: dict[str, Any], **params: Any) -> Self:
        """Rebuild a detector from :meth:`to_state` output."""
