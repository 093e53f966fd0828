"""Signs of coordination in a detection window, each scored against the person's own normal.

For the mentions of one window, three shares are compared with what is usual for the person
(learned online from calm windows, exponentially weighted):

* **young accounts**: mentions from accounts younger than ``young_account_days``;
* **copies**: mentions of near-duplicate texts posted by at least three distinct accounts
  within the window (one template, many accounts: copypasta);
* **flood**: mentions by the window's most active author (a single-account flood).

Each is a binomial upper-tail test, ``-log10 P(Bin(n, q) >= k)`` with ``q`` the usual share
(floored, so a person with no young accounts so far is not infinitely surprised by one). Shares,
not counts, so an organic surge of established, diverse accounts scores low however big it is:
volume is the rate detector's job, and the pile-on score adds this evidence to it
(``pileon.streams.detection.analysis``). The score is the strongest of the three, capped at ``cap``.

**Copies have an organic twin.** When a person publishes, established accounts share the piece
with its headline and link: one text from many accounts within the hour, a window that is half
copies and busier than usual, for a person whose windows are otherwise never copies. Under the
binomial that is as improbable as a brigade. So the copies share is also learned as a *varying*
share, where its evidence is used: in the person's windows whose volume is unusual
(``coordination_gate``) but below the bar, with no young-account or single-author sign
(:meth:`learn_dispersion`). Their mean share, mean square and mean of ``1 / n`` give the
beta-binomial's mean and intra-window correlation ``rho`` by the method of moments, and the
copies test uses that tail. A person whose busier windows never hold copies keeps ``rho`` = 0
and the binomial; one whose pieces are shared learns how large their copy waves are, and a
brigade's copies then have to exceed that. A brigade of young accounts or one account teaches
nothing (its windows show those signs); one of established accounts copying a text below the
volume bar does.

Cost: three ``scipy`` tail evaluations per closed bin (the beta-binomial's is a sum over
``k..n``). State: nine floats.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Self

from pileon.streams.detection.detectors.base import share_tail_score

SIGNS = ("young", "copies", "flood")
MAX_RHO = 0.99  # below 1, where the beta-binomial degenerates


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """What the coordination signs look at in one detection window."""

    start: float
    mentions: int
    young: int  # mentions from young accounts
    copies: int  # mentions in clusters with enough distinct authors
    top_author: int  # mentions by the most active author


@dataclass(frozen=True, slots=True)
class CoordinationExplanation:
    young: float
    copies: float
    flood: float

    @property
    def score(self) -> float:
        return max(self.young, self.copies, self.flood)

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in asdict(self).items()}


class CoordinationDetector:
    """Binomial tail scores of young-account, copy and single-author shares in a window.

    >>> d = CoordinationDetector(warmup_windows=10)
    >>> for i in range(100):
    ...     d.learn_one(WindowSummary(i * 60.0, mentions=20, young=0, copies=1, top_author=2))
    >>> d.score_one(WindowSummary(6000.0, mentions=20, young=0, copies=1, top_author=2)) < 1
    True
    >>> d.score_one(WindowSummary(6000.0, mentions=60, young=40, copies=45, top_author=3)) > 8
    True
    """

    def __init__(self, warmup_windows: int = 60, memory_windows: int = 1440,
                 floors: tuple[float, float, float] = (0.02, 0.05, 0.05),
                 min_mentions: int = 0, cap: float = 20.0,
                 dispersion_windows: int = 43_200) -> None:
        """``dispersion_windows``: the memory of the copies share's variation, in the busier
        windows it learns from (a few hundred a month: a month of one-minute windows is more
        than a year of them).

        ``min_mentions``: windows with fewer mentions score nothing. None by default: the
        tail test already says how little a few mentions show, and a fixed count is a far
        higher bar for a quiet person (whose windows seldom hold ten) than for a busy one.
        What keeps a handful of replies from opening an incident is ``min_excess_coordinated``
        (extra mentions, the same number for everyone) and the volume gate. Until the
        eighteenth session it was 10 (docs/benchmarks.md has both runs)."""
        self.warmup_windows = warmup_windows
        self.memory_windows = memory_windows
        self.floors = floors
        self.min_mentions = min_mentions
        self.cap = cap
        self.dispersion_windows = dispersion_windows
        self.shares = [0.0, 0.0, 0.0]
        self.learned = 0
        self.copies_moments = [0.0, 0.0, 0.0]  # share, squared share, 1 / n
        self.copies_seen = 0

    def explain(self, x: WindowSummary) -> CoordinationExplanation:
        if self.learned < self.warmup_windows or x.mentions < self.min_mentions:
            return CoordinationExplanation(0.0, 0.0, 0.0)
        counts = (x.young, x.copies, x.top_author)
        shares, rhos = list(self.shares), [0.0, 0.0, 0.0]
        if self.copies_seen >= self.warmup_windows:
            shares[1] = max(shares[1], self.copies_moments[0])
            rhos[1] = self.copies_rho()
        scores = [share_tail_score(k, x.mentions, max(q, floor), self.cap, rho)
                  for k, q, floor, rho in zip(counts, shares, self.floors, rhos, strict=True)]
        return CoordinationExplanation(*scores)

    def copies_rho(self) -> float:
        """The intra-window correlation of the copies share in the person's ordinary windows
        (method of moments: ``Var(k / n) = q (1 - q) (rho + (1 - rho) / n)``), 0 until
        ``warmup_windows`` have been seen, at most :data:`MAX_RHO`."""
        if self.copies_seen < self.warmup_windows:
            return 0.0
        mean, square, inv_n = self.copies_moments
        spread = mean * (1.0 - mean)
        if spread <= 0.0 or inv_n >= 1.0:
            return 0.0
        rho = (square - mean * mean - spread * inv_n) / (spread * (1.0 - inv_n))
        return min(MAX_RHO, max(0.0, rho))

    def score_one(self, x: WindowSummary) -> float:
        return self.explain(x).score

    def learn_one(self, x: WindowSummary) -> None:
        """Learn the usual shares (call for calm windows only: an attack is not normal)."""
        if x.mentions <= 0:
            return
        self.learned += 1
        alpha = 1.0 / min(self.learned, self.memory_windows)
        for i, k in enumerate((x.young, x.copies, x.top_author)):
            self.shares[i] += alpha * (k / x.mentions - self.shares[i])

    def learn_dispersion(self, x: WindowSummary) -> None:
        """Learn how the copies share varies where it is used: in a window whose volume is
        unusual (the evidence counts only there) but below the bar, and whose young-account
        and single-author signs are ordinary (the analyser decides). A shared headline is
        learned there, a brigade of young accounts or one account is not."""
        if x.mentions <= 0:
            return
        self.copies_seen += 1
        alpha = 1.0 / min(self.copies_seen, self.dispersion_windows)
        share = x.copies / x.mentions
        for i, v in enumerate((share, share * share, 1.0 / x.mentions)):
            self.copies_moments[i] += alpha * (v - self.copies_moments[i])

    def to_state(self) -> dict[str, Any]:
        return {"shares": self.shares, "learned": self.learned,
                "copies_moments": self.copies_moments, "copies_seen": self.copies_seen}

    @classmethod
    def from_state(cls, state: dict[str, Any], **params: Any) -> Self:
        """A state saved before the copies' dispersion was learned starts it afresh."""
        detector = cls(**params)
        detector.shares = [float(v) for v in state["shares"]]
        detector.learned = int(state["learned"])
        detector.copies_moments = [float(v) for v in state.get("copies_moments", [0.0] * 3)]
        detector.copies_seen = int(state.get("copies_seen", 0))
        return detector
