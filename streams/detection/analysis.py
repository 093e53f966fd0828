"""Per-person analysis of clean mentions: near-duplicate clusters, rate detection, incidents.

State lives in two changelog-backed mappings (Faust tables in the worker):

* ``window``: one compact record per mention in the sliding window
  (:class:`~pileon.streams.detection.neardup.window.NearDupWindow`), from which the cluster
  index and the open bins are rebuilt after a restart;
* ``state``: one small value per person (detector baseline, open incident, closed bins),
  written when a bin closes.

Event time drives everything: a bin closes once the person's watermark (latest event time
seen) passes its end plus the lateness allowance; mentions for an already-closed bin are kept
as evidence and in clusters but not counted in rates (``pileon_late_mentions_total``).
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from pileon.core.settings import DetectionSettings, NearDupSettings
from pileon.core.watchlist import Watchlist
from pileon.schema.mention import Mention, post_key
from pileon.streams.detection import metrics
from pileon.streams.detection.detectors import (
    BinObservation,
    CoordinationDetector,
    CoordinationExplanation,
    FocusDetector,
    FocusExplanation,
    FocusSummary,
    RateDetector,
    RateExplanation,
    WindowSummary,
)
from pileon.streams.detection.incidents import (
    Confirmation,
    Decision,
    IncidentState,
    Severity,
    Transition,
    decide,
)
from pileon.streams.detection.neardup import NearDupWindow, Signer

log = logging.getLogger(__name__)

ALERT_SCHEMA = "pileon.alert/v1"
_MAX_CATCHUP_BINS = 24 * 60
_MIN_COPY_AUTHORS = 3  # a text posted by this many accounts in one window is copypasta
_INDICATOR_SCORE = 3.0  # -log10 p of a coordination sign that is reported as an indicator


def pileon_score(
    rate: RateExplanation, coordination: CoordinationExplanation, focus: FocusExplanation,
    cfg: DetectionSettings,
) -> float:
    """The pile-on score: the volume evidence (``-log10 p`` of the window's count) plus the
    strongest of the coordination signs and the focus on one post, which count only once
    volume itself is unusual (``coordination_gate``): copies, young accounts or a reply thread
    at normal volume are not a pile-on. The maximum, not the sum: they are not independent (a
    brigade's copies are its replies to one post), and each is already a tail probability."""
    if rate.score < cfg.coordination_gate:
        return rate.score
    return rate.score + max(coordination.score, focus.score)


@dataclass
class _Recent:
    t: float
    author: str
    young: bool
    cluster: str | None
    post: int | None = None  # key of the post it replies to or quotes


@dataclass
class PersonRuntime:
    """In-memory view of one person: persisted state plus indexes derived from the window."""

    detector: RateDetector
    coordination: CoordinationDetector
    focus: FocusDetector
    incident: IncidentState
    closed_until: float | None
    baselines: dict[str, float]
    pending: Counter[float] = field(default_factory=Counter)
    recent: deque[_Recent] = field(default_factory=deque)
    watermark: float = -math.inf
    outbox: list[dict[str, Any]] = field(default_factory=list)


class PersonAnalyser:
    """Processes one clean mention at a time; returns the alert events it causes."""

    def __init__(
        self,
        watchlist: Watchlist,
        detection: DetectionSettings,
        neardup: NearDupSettings,
        signer: Signer,
        window: MutableMapping[bytes, bytes],
        state: MutableMapping[bytes, bytes],
    ) -> None:
        self._watchlist = watchlist
        self._cfg = {p.key: p.detection(detection) for p in watchlist.persons}
        self._signer = signer
        self._neardup = NearDupWindow(neardup, signer, window)
        self._state = state
        self._persons: dict[str, PersonRuntime] = {}

    # -- public -------------------------------------------------------------------------
    def process(self, mention: Mention) -> list[dict[str, Any]]:
        """Analyse one mention; return every alert of its person not yet delivered.

        Alerts go to an outbox saved in the same table record as the state that caused them,
        so a crash between saving the state and sending the alert cannot lose the alert: it
        is returned again (same idempotency key) until :meth:`delivered` confirms it.
        """
        person = mention.person
        rt = self._runtime(person)
        if not self._neardup.seen(person, mention.id):  # else redelivered: already analysed
            self._analyse(mention, rt)
        return list(rt.outbox)

    def delivered(self, person: str, count: int) -> None:
        """The broker acknowledged the first ``count`` alerts of the person's outbox."""
        if count:
            rt = self._runtime(person)
            del rt.outbox[:count]
            self._save(person, rt)

    def _analyse(self, mention: Mention, rt: PersonRuntime) -> None:
        person = mention.person
        cfg = self._cfg[person]
        t = mention.event_time
        age = mention.author_age_days()
        young = age is not None and age < cfg.young_account_days
        tokens = self._neardup.tokens(mention.text)
        signature = self._signer.signature(tokens) if tokens is not None else None
        post = post_key(mention.answers) if mention.answers else None
        cluster_id = self._neardup.add(person, mention.id, t, mention.author.id, young, signature,
                                       post=post)
        rt.recent.append(_Recent(t, mention.author.id, young, cluster_id, post))
        if rt.closed_until is None:
            rt.closed_until = self._bin_start(t, cfg)
        if t < rt.closed_until:
            metrics.LATE_MENTIONS.labels(person).inc()
        else:
            rt.pending[self._bin_start(t, cfg)] += 1
        rt.watermark = max(rt.watermark, t)
        self._close_bins(person, rt, cfg)
        self._neardup.expire(person, rt.watermark)

    def forget_cache(self) -> None:
        """Drop in-memory state after a rebalance; it is rebuilt from the tables on use."""
        self._persons.clear()
        self._neardup.forget_cache()

    def runtime(self, person: str) -> PersonRuntime:
        return self._runtime(person)

    # -- bins, detection, incidents -----------------------------------------------------
    @staticmethod
    def _bin_start(t: float, cfg: DetectionSettings) -> float:
        return math.floor(t / cfg.bin_seconds) * cfg.bin_seconds

    def _close_bins(self, person: str, rt: PersonRuntime, cfg: DetectionSettings) -> None:
        assert rt.closed_until is not None  # noqa: S101 - set before the first call
        closable_until = self._bin_start(rt.watermark - cfg.lateness_seconds, cfg)
        if closable_until <= rt.closed_until:
            return
        gap_bins = (closable_until - rt.closed_until) / cfg.bin_seconds
        if gap_bins > _MAX_CATCHUP_BINS:  # a long silence: learn only the last day of zeros
            rt.closed_until = closable_until - _MAX_CATCHUP_BINS * cfg.bin_seconds
        while rt.closed_until < closable_until:
            start = rt.closed_until
            observation = BinObservation(start, rt.pending.pop(start, 0))
            event = self._close_bin(person, rt, cfg, observation)
            if event is not None:
                rt.outbox.append(event)
            rt.closed_until = start + cfg.bin_seconds
        self._save(person, rt)

    def _close_bin(
        self, person: str, rt: PersonRuntime, cfg: DetectionSettings, x: BinObservation
    ) -> dict[str, Any] | None:
        rate = rt.detector.explain(x)
        window = self._window_stats(person, rt, cfg, x.start + cfg.bin_seconds)
        summary = WindowSummary(x.start, window["mentions"], window["young"], window["copies"],
                                window["top_author"])
        coordination = rt.coordination.explain(summary)
        focused = FocusSummary(x.start, window["mentions"], window["top_post"][1])
        focus = rt.focus.explain(focused)
        score = pileon_score(rate, coordination, focus, cfg)
        decision = decide(rt.incident, person, x.start + cfg.bin_seconds, score, rate, cfg)
        event = (self._alert(person, rt, cfg, decision, score, rate, coordination, focus, window)
                 if decision else None)
        if score < cfg.open_score:
            self._learn_baselines(rt, window)
            rt.coordination.learn_one(summary)
            rt.focus.learn_one(focused)
        short = rt.detector.window(x)  # the panels plot one window length, whichever scores
        rt.detector.learn_one(x)
        self._export_metrics(person, rt, score, short, focus, window)
        return event

    def _window_stats(
        self, person: str, rt: PersonRuntime, cfg: DetectionSettings, end: float
    ) -> dict[str, Any]:
        start = end - cfg.window_bins * cfg.bin_seconds
        while rt.recent and rt.recent[0].t < start - cfg.lateness_seconds:
            rt.recent.popleft()
        inside = [r for r in rt.recent if start <= r.t < end]
        per_author = Counter(r.author for r in inside)
        per_cluster = Counter(r.cluster for r in inside if r.cluster is not None)
        # Copies: mentions of texts that several accounts posted within this window (a
        # cluster's all-day size grows with ordinary chatter, so it is not the measure).
        cluster_authors: dict[str, set[str]] = {}
        for r in inside:
            if r.cluster is not None:
                cluster_authors.setdefault(r.cluster, set()).add(r.author)
        copies = sum(per_cluster[cid] for cid, authors in cluster_authors.items()
                     if len(authors) >= _MIN_COPY_AUTHORS)
        young = sum(r.young for r in inside)
        per_post = Counter(r.post for r in inside if r.post is not None)
        top_post = per_post.most_common(1)[0] if per_post else (None, 0)
        return {
            "mentions": len(inside),
            "distinct_authors": len(per_author),
            "young": young,
            "young_share": young / len(inside) if inside else 0.0,
            "copies": copies,
            "top_author": max(per_author.values(), default=0),
            "top_post": top_post,
            "clusters": per_cluster,
        }

    def _learn_baselines(self, rt: PersonRuntime, window: dict[str, Any]) -> None:
        n = rt.baselines["n"] = rt.baselines["n"] + 1
        alpha = 1.0 / min(n, 720)
        for name in ("distinct_authors", "young_share"):
            rt.baselines[name] += alpha * (float(window[name]) - rt.baselines[name])

    def _alert(
        self,
        person: str,
        rt: PersonRuntime,
        cfg: DetectionSettings,
        decision: Decision,
        score: float,
        rate: RateExplanation,
        coordination: CoordinationExplanation,
        focus: FocusExplanation,
        window: dict[str, Any],
    ) -> dict[str, Any]:
        at = rt.closed_until + cfg.bin_seconds if rt.closed_until is not None else 0.0
        top = self._top_clusters(person, window["clusters"])
        indicators = _coordination_indicators(window, coordination)
        metrics.INCIDENT_TRANSITIONS.labels(person, decision.transition).inc()
        return {
            "schema": ALERT_SCHEMA,
            "idempotency_key": decision.idempotency_key,
            "incident_id": decision.incident_id,
            "transition": str(decision.transition),
            "person": person,
            "severity": str(decision.severity),
            "at": _iso(at),
            "opened_at": _iso(rt.incident.opened_at or at),
            "score": round(score, 2),
            "confirmation": _confirmation(decision.confirmation),
            "signals": {
                "rate": {
                    "window_minutes": rate.window_bins * cfg.bin_seconds / 60,
                    "mentions": rate.count,
                    "expected": round(rate.expected, 2),
                    "ratio": round(rate.ratio, 1) if math.isfinite(rate.ratio) else None,
                    "score": round(rate.score, 2),
                },
                "distinct_authors": {
                    "value": window["distinct_authors"],
                    "baseline": round(rt.baselines["distinct_authors"], 1),
                },
                "young_account_share": {
                    "value": round(window["young_share"], 3),
                    "baseline": round(rt.baselines["young_share"], 3),
                    "young_means_days": cfg.young_account_days,
                },
                "near_duplicate_clusters": top,
                "reply_focus": {
                    # the post most of the window answers, by key (the bundle resolves it)
                    "post_key": f"{window['top_post'][0]:08x}" if window["top_post"][1] else None,
                    "mentions": window["top_post"][1],
                    **focus.to_dict(),
                    "counted": rate.score >= cfg.coordination_gate,
                },
                "coordination": {
                    **coordination.to_dict(),
                    "score": round(coordination.score, 2),
                    "counted": rate.score >= cfg.coordination_gate,
                },
            },
            "assessment": "looks coordinated" if indicators else "looks organic",
            "indicators": indicators,
            "exemplar_ids": [c["template_id"] for c in top],
            "evidence": {
                "person": person,
                "from": _iso(at - cfg.window_bins * cfg.bin_seconds),
                "to": _iso(at),
            },
        }

    def _top_clusters(self, person: str, per_cluster: Counter[str]) -> list[dict[str, Any]]:
        clusters = self._neardup.index(person).clusters
        top = []
        for cluster_id, in_window in per_cluster.most_common(3):
            cluster = clusters.get(cluster_id)
            if cluster is None or cluster.size < 2:
                continue
            top.append(
                {
                    "template_id": cluster.id,
                    "in_window": in_window,
                    "size": cluster.size,
                    "distinct_authors": cluster.distinct_authors,
                    "young_share": round(cluster.young_share, 3),
                    "first_seen": _iso(cluster.first_seen),
                }
            )
        return top

    def _export_metrics(
        self, person: str, rt: PersonRuntime, score: float, short: tuple[int, float],
        focus: FocusExplanation, window: dict[str, Any],
    ) -> None:
        count, expected = short
        metrics.SCORE.labels(person).set(score)
        metrics.WINDOW_MENTIONS.labels(person).set(count)
        metrics.WINDOW_EXPECTED.labels(person).set(expected)
        r = rt.detector.size(0)  # the person's learned over-dispersion, as the test uses
        sd = math.sqrt(expected + expected**2 / r)  # NB(r) variance
        metrics.WINDOW_EXPECTED_UPPER.labels(person).set(expected + 3 * sd)
        metrics.WINDOW_AUTHORS.labels(person).set(window["distinct_authors"])
        metrics.WINDOW_AUTHORS_BASELINE.labels(person).set(rt.baselines["distinct_authors"])
        metrics.WINDOW_YOUNG_SHARE.labels(person).set(window["young_share"])
        metrics.WINDOW_FOCUS_SHARE.labels(person).set(focus.share)
        index = self._neardup.index(person)
        largest = index.largest(1)
        metrics.NEARDUP_LARGEST_SIZE.labels(person).set(largest[0].size if largest else 0)
        metrics.NEARDUP_CLUSTERS.labels(person).set(index.copied)
        metrics.NEARDUP_TOP_AUTHORS.labels(person).set(index.most_authors())
        for severity in Severity:
            is_open = rt.incident.is_open and rt.incident.severity is severity
            metrics.INCIDENTS_OPEN.labels(person, severity).set(int(is_open))

    # -- persistence --------------------------------------------------------------------
    def _save(self, person: str, rt: PersonRuntime) -> None:
        self._state[person.encode()] = orjson.dumps(
            {
                "v": 1,
                "detector": rt.detector.to_state(),
                "coordination": rt.coordination.to_state(),
                "focus": rt.focus.to_state(),
                "incident": rt.incident.to_state(),
                "closed_until": rt.closed_until,
                "baselines": rt.baselines,
                "outbox": rt.outbox,
                "key_id": self._signer.key_id,
            }
        )

    def _runtime(self, person: str) -> PersonRuntime:
        rt = self._persons.get(person)
        if rt is None:
            rt = self._persons[person] = self._load(person)
        return rt

    def _detector_params(self, cfg: DetectionSettings) -> dict[str, Any]:
        return {
            "bin_seconds": cfg.bin_seconds,
            "window_bins": cfg.window_bins,
            "dispersion": cfg.dispersion,
            "warmup_bins": int(cfg.warmup_hours * 3600 / cfg.bin_seconds),
        }

    def _load(self, person: str) -> PersonRuntime:
        cfg = self._cfg[person]
        params = self._detector_params(cfg)
        raw = self._state.get(person.encode())
        if raw is None:
            rt = PersonRuntime(
                RateDetector(**params), CoordinationDetector(), FocusDetector(), IncidentState(),
                None,
                {"n": 0.0, "distinct_authors": 0.0, "young_share": 0.0},
            )
        else:
            saved = orjson.loads(raw)
            self._check_key(person, saved.get("key_id"))
            rt = PersonRuntime(
                RateDetector.from_state(saved["detector"], **params),
                CoordinationDetector.from_state(saved["coordination"])
                if "coordination" in saved else CoordinationDetector(),
                FocusDetector.from_state(saved["focus"]) if "focus" in saved else FocusDetector(),
                IncidentState.from_state(saved["incident"]),
                saved["closed_until"],
                saved["baselines"],
                outbox=saved.get("outbox", []),
            )
        self._rebuild_from_window(person, rt, cfg)
        return rt

    def _check_key(self, person: str, saved_key_id: str | None) -> None:
        mismatch = saved_key_id is not None and saved_key_id != self._signer.key_id
        metrics.NEARDUP_KEY_MISMATCH.labels(person).set(int(mismatch))
        if mismatch:
            log.error(
                "near-duplicate state of %s was signed with another key (id %s, ours %s): "
                "every worker replica must use the same neardup.key_file", person,
                saved_key_id, self._signer.key_id,
            )

    def _rebuild_from_window(self, person: str, rt: PersonRuntime, cfg: DetectionSettings) -> None:
        """Recent mentions and not-yet-closed bins, from the window's records."""
        records = list(self._neardup.records(person))
        if rt.closed_until is None and records:  # no bin closed yet: count them all
            rt.closed_until = self._bin_start(float(records[0][1]["t"]), cfg)
        for _, r in records:
            t = float(r["t"])
            rt.recent.append(_Recent(t, r["a"], bool(r["y"]), r["c"], r.get("p")))
            if rt.closed_until is not None and t >= rt.closed_until:
                rt.pending[self._bin_start(t, cfg)] += 1
            rt.watermark = max(rt.watermark, t)
        horizon = cfg.window_bins * cfg.bin_seconds + cfg.lateness_seconds
        while rt.recent and rt.recent[0].t < rt.watermark - horizon:
            rt.recent.popleft()


def _coordination_indicators(
    window: dict[str, Any], coordination: CoordinationExplanation
) -> list[str]:
    """Signs that a surge is coordinated rather than organic; none means 'looks organic'.

    A sign counts when its share in the window is improbable for this person (p < 0.001):
    young accounts, copies of one text by many accounts, or one account posting much of it.
    """
    indicators = []
    if coordination.young >= _INDICATOR_SCORE:
        indicators.append("young_accounts")
    if coordination.copies >= _INDICATOR_SCORE:
        indicators.append("copypasta")
    if coordination.flood >= _INDICATOR_SCORE or (
        window["distinct_authors"] < 0.3 * max(1, window["mentions"])
    ):
        indicators.append("few_sources")
    return indicators


def _confirmation(c: Confirmation | None) -> dict[str, Any] | None:
    """Why an opening came when it did: the alarm, and what the minutes since added."""
    if c is None:
        return None
    return {"alarm_at": _iso(c.alarm_at), "mentions_since": c.mentions,
            "expected_since": round(c.expected, 2), "score": round(c.score, 2),
            "critical_window": c.critical}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


__all__ = ["ALERT_SCHEMA", "PersonAnalyser", "Transition"]
