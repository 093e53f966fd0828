"""Per-person analysis of clean mentions: near-duplicate clusters, rate detection, incidents.

State lives in two changelog-backed mappings (Faust tables in the worker):

* ``window``: one compact record per mention in the sliding window
  (:class:`~pileon.streams.detection.neardup.window.NearDupWindow`), from which the cluster
  index and the open bins are rebuilt after a restart;
* ``state``: one small value per person (detector baseline, open incident, closed bins),
  written when a bin closes.

Event time drives everything: a bin closes once the person's watermark (latest event time
seen) passes its end plus the lateness allowance. Mentions for an already-closed bin (a
connector's backfill, a delayed batch) are kept as evidence and in clusters at once, and folded
into detection when the person's next bin closes: their bins' counts are recomputed from the
window store and the windows since the earliest of them are scored again (see
:meth:`PersonAnalyser._fold_late`); a pile-on found there opens an incident that says it was
found late, with its true onset.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from collections.abc import MutableMapping

from pileon.core.settings import DetectionSettings, NearDupSettings
from pileon.core.watchlist import Watchlist
from pileon.schema.alert import AlertEvent, ClusterSummary, LateFinding
from pileon.schema.mention import Mention, post_key
from pileon.schema.verdict import Verdict
from pileon.streams.detection import metrics
from pileon.streams.detection.alert import (
    INDICATOR_SCORE,
    Scored,
    build_alert,
    evidence_counts,
    iso,
)
from pileon.streams.detection.detectors import (
    BinObservation,
    CoordinationExplanation,
    FocusExplanation,
    FocusSummary,
    RateDetector,
    RateExplanation,
    WindowSummary,
    with_evidence,
)
from pileon.streams.detection.gauges import export_gauges
from pileon.streams.detection.incidents import Decision, IncidentState, decide, open_bar
from pileon.streams.detection.neardup import NearDupWindow, Signer
from pileon.streams.detection.person_state import (
    PersonRuntime,
    detector_params,
    dump_state,
    load_state,
    new_runtime,
)
from pileon.streams.detection.window_stats import RecentMention, WindowStats, window_stats

log = logging.getLogger(__name__)

_MAX_CATCHUP_BINS = 24 * 60


def pileon_score(
    rate: RateExplanation, coordination: CoordinationExplanation, focus: FocusExplanation,
    cfg: DetectionSettings,
) -> float:
    """The pile-on score: the volume evidence (``-log10 p`` of the window's count) plus the
    strongest of the coordination signs and the focus on one post, which count only once
    volume itself is unusual (``coordination_gate``): copies, young accounts or a reply thread
    at normal volume are not a pile-on. The maximum, not the sum: they are not independent (a
    brigade's copies are its replies to one post), and each is already a tail probability."""
    return with_evidence(rate.score, max(coordination.score, focus.score),
                         cfg.coordination_gate)


def _coordinated(scored: Scored, detector: RateDetector, cfg: DetectionSettings) -> bool:
    """Whether the window's coordination signs (not its focus on one post: a viral post
    gathers replies as a brigade does) count towards its score and are on their own as
    improbable as the false-alarm budget's model bar: the lower ``min_excess_coordinated``
    floor applies (:func:`~pileon.streams.detection.incidents.decide`)."""
    return evidence_counts(scored.rate, cfg) and scored.coordination.score >= detector.floor()


def _ordinary_but_copies(scored: Scored, cfg: DetectionSettings) -> bool:
    """Whether the window teaches how the person's copies share varies where the copies count
    (:meth:`CoordinationDetector.learn_dispersion`): its volume is unusual but alone below
    the bar, and it shows no young-account or single-author sign, whatever its copies (a
    shared headline, which can put the window's pile-on score at the bar)."""
    c = scored.coordination
    return (evidence_counts(scored.rate, cfg) and scored.rate.score < open_bar(scored.rate, cfg)
            and max(c.young, c.flood) < INDICATOR_SCORE)


def _summaries(x: BinObservation, window: WindowStats) -> tuple[WindowSummary, FocusSummary]:
    """What the coordination and focus detectors see of the window ``x`` closes."""
    return (WindowSummary(x.start, window.mentions, window.young, window.copies,
                          window.top_author),
            FocusSummary(x.start, window.mentions, window.top_post[1]))


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
        buffered: bool = False,
    ) -> None:
        """``buffered``: table writes wait for :meth:`flush` (the worker's batches): the
        window's records, then each changed person's state, once per flush."""
        self._watchlist = watchlist
        self._cfg = {p.key: p.detection(detection) for p in watchlist.persons}
        self._timezones = {p.key: p.timezone for p in watchlist.persons}
        self._signer = signer
        self._neardup = NearDupWindow(neardup, signer, window, buffered=buffered)
        self._state = state
        self._persons: dict[str, PersonRuntime] = {}
        self._buffered = buffered
        self._unsaved: dict[str, None] = {}

    # -- public -------------------------------------------------------------------------
    def process(self, mention: Mention) -> list[AlertEvent]:
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

    def outbox(self, person: str) -> list[AlertEvent]:
        """The person's alerts not yet delivered, oldest first."""
        return list(self._runtime(person).outbox)

    def delivered(self, person: str, count: int) -> None:
        """The broker acknowledged the first ``count`` alerts of the person's outbox."""
        if count:
            rt = self._runtime(person)
            del rt.outbox[:count]
            self._save(person, rt)

    def flush(self) -> int:
        """Write what changed since the last flush: the window's records first, then the
        states that count them (with their alert outboxes); returns the table writes."""
        writes = self._neardup.flush()
        for person in self._unsaved:
            rt = self._persons.get(person)
            if rt is not None:
                self._write(person, rt)
                writes += 1
        self._unsaved.clear()
        return writes

    def verdict(self, verdict: Verdict) -> int:
        """A responder's disposition of one of the person's incidents: a ``coordinated`` attack
        no longer counts as one of their ordinary bursts in the calibration of their bars (the
        crossings counted from an hour before its first window to its last transition); any
        other disposition counts it again if an earlier verdict took it back. Idempotent (a
        redelivered verdict changes nothing). Returns the crossings taken back (negative:
        counted again)."""
        person = verdict.person
        rt = self._runtime(person)
        cfg = self._cfg[person]
        detector = rt.detector
        before = [detector.bar(i) for i in range(len(detector.scales))]
        if verdict.attack:
            lead = detector.scales[-1] * cfg.bin_seconds  # the long window: its ramp
            changed = detector.take_back(verdict.start.timestamp() - lead,
                                         verdict.end.timestamp(), verdict.incident_id)
        else:
            changed = -detector.give_back(verdict.incident_id)
        metrics.VERDICTS.labels(person, verdict.disposition).inc()
        if changed > 0:
            metrics.CROSSINGS_TAKEN_BACK.labels(person).inc(changed)
        if changed:
            self._save(person, rt)
        after = [detector.bar(i) for i in range(len(detector.scales))]
        log.info("%s: verdict on %s (%s): %d calibration crossings %s; bars %s -> %s", person,
                 verdict.incident_id, verdict.disposition, abs(changed),
                 "taken back" if changed >= 0 else "counted again",
                 "/".join(f"{b:.1f}" for b in before), "/".join(f"{b:.1f}" for b in after))
        return changed

    def forget_cache(self) -> None:
        """Drop in-memory state after a rebalance; it is rebuilt from the tables on use."""
        self._persons.clear()
        self._unsaved.clear()
        self._neardup.forget_cache()

    def runtime(self, person: str) -> PersonRuntime:
        return self._runtime(person)

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
        rt.recent.append(RecentMention(t, mention.author.id, young, cluster_id, post))
        if rt.closed_until is None:
            rt.closed_until = self._bin_start(t, cfg)
        if t < rt.closed_until:
            metrics.LATE_MENTIONS.labels(person).inc()
            rt.late[self._bin_start(t, cfg)] += 1
        else:
            rt.pending[self._bin_start(t, cfg)] += 1
        rt.watermark = max(rt.watermark, t)
        if not self._close_bins(person, rt, cfg) and t < rt.closed_until:
            self._save(person, rt)  # the late count survives a restart
        self._neardup.expire(person, rt.watermark)

    # -- bins, detection, incidents -----------------------------------------------------
    @staticmethod
    def _bin_start(t: float, cfg: DetectionSettings) -> float:
        return math.floor(t / cfg.bin_seconds) * cfg.bin_seconds

    def _close_bins(self, person: str, rt: PersonRuntime, cfg: DetectionSettings) -> bool:
        """Close every bin the watermark has passed; whether any closed (and state was saved)."""
        assert rt.closed_until is not None  # noqa: S101 - set before the first call
        closable_until = self._bin_start(rt.watermark - cfg.lateness_seconds, cfg)
        if closable_until <= rt.closed_until:
            return False
        if rt.late:
            self._fold_late(person, rt, cfg)
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
        return True

    def _fold_late(self, person: str, rt: PersonRuntime, cfg: DetectionSettings) -> None:
        """Fold the late mentions into the bins they belong to and score those windows again.

        Every bin from the earliest late one to the last closed one is recounted from the
        window store (which holds every mention of the last ``neardup.window_hours``, late or
        not) and scored again in order by a copy of the person's rate detector, with a scratch
        incident state. If the person's detector had not finished its warm-up (a person just
        added, whose history a connector then backfills), the copy starts from nothing, learns
        the recounted bins and replaces it: the backfill is their baseline. Otherwise the copy
        starts from today's baseline and is dropped (those bins were learned once already).
        An incident the re-scoring opens while none is open is reported as found late: its
        opening, at its true onset, and its resolution if it is over; if it is still going on,
        the live detector carries it on.
        """
        assert rt.closed_until is not None  # noqa: S101 - set before folding
        records = [r for _, r in self._neardup.records(person)]
        horizon = rt.closed_until - _MAX_CATCHUP_BINS * cfg.bin_seconds
        if records:
            horizon = max(horizon, self._bin_start(float(records[0]["t"]), cfg))
        arrived = sum(rt.late.values())
        late = sum(n for b, n in rt.late.items() if b >= horizon)  # the store still holds them
        start = max(min(rt.late), horizon)
        rt.late.clear()
        counts: Counter[float] = Counter(self._bin_start(float(r["t"]), cfg) for r in records)
        params = detector_params(cfg)
        young = rt.detector.learned < params["warmup_bins"]
        if young:  # no baseline yet: learn the backfill from its first bin
            start = horizon
            detector = RateDetector(**params)
        else:
            detector = RateDetector.from_state(rt.detector.to_state(), **params)
            detector.recent.clear()
            first = start - (detector.scales[-1] - 1) * cfg.bin_seconds
            detector.recent.extend(int(counts[first + i * cfg.bin_seconds])
                                   for i in range(detector.scales[-1] - 1))
        recent = deque(RecentMention(float(r["t"]), r["a"], bool(r["y"]), r["c"], r.get("p"))
                       for r in records)
        incident = rt.incident if rt.incident.is_open else IncidentState()
        found: list[AlertEvent] = []
        b = start
        while b < rt.closed_until:
            x = BinObservation(b, int(counts[b]))
            scored = self._score_bin(rt, cfg, detector, recent, x)
            decision = None
            if not rt.incident.is_open:
                decision = decide(incident, person, b + cfg.bin_seconds, scored.score,
                                  scored.rate, cfg, _coordinated(scored, detector, cfg))
            if decision:
                event = self._alert(person, rt, cfg, b + cfg.bin_seconds, incident.opened_at,
                                    decision, scored)
                found.append(event.model_copy(update={"found_late": LateFinding(
                    found_at=iso(rt.watermark), late_mentions=late)}))
            detector.learn_one(x, held=scored.score >= open_bar(scored.rate, cfg))
            b += cfg.bin_seconds
        if young:
            rt.detector = detector
        if found:
            rt.incident = incident
            rt.outbox.extend(found)
            metrics.LATE_INCIDENTS.labels(person).inc()
        metrics.LATE_FOLDED.labels(person).inc(late)
        log.info(
            "%s: %d late mentions folded into detection (%d more were older than the window "
            "store's horizon: kept as evidence, not counted); windows from %s to %s scored "
            "again%s; %s", person, late, arrived - late, iso(start), iso(rt.closed_until),
            " from no baseline (the late mentions became the baseline)" if young else "",
            f"incident {found[0].incident_id} found late, opened at {found[0].opened_at}"
            if found else "no incident found in them",
        )

    def _score_bin(self, rt: PersonRuntime, cfg: DetectionSettings, detector: RateDetector,
                   recent: deque[RecentMention], x: BinObservation) -> Scored:
        """The pile-on score of the window ``x`` closes, from ``recent`` (no learning)."""
        end = x.start + cfg.bin_seconds
        window = window_stats(recent, end - cfg.window_bins * cfg.bin_seconds, end,
                              cfg.lateness_seconds)
        summary, focused = _summaries(x, window)
        coordination = rt.coordination.explain(summary)
        focus = rt.focus.explain(focused)
        # The window length is chosen on the pile-on score, the one the bar is asked of.
        rate = detector.explain(x, max(coordination.score, focus.score), cfg.coordination_gate)
        return Scored(pileon_score(rate, coordination, focus, cfg), rate, coordination, focus,
                      window)

    def _alert(self, person: str, rt: PersonRuntime, cfg: DetectionSettings, at: float,
               opened_at: float, decision: Decision, scored: Scored) -> AlertEvent:
        """The alert event of ``decision`` at ``at``, counted in the transitions metric."""
        metrics.INCIDENT_TRANSITIONS.labels(person, decision.transition).inc()
        return build_alert(person, at, opened_at, decision, scored, rt.baselines,
                           self._top_clusters(person, scored.window), cfg,
                           self._timezones[person])

    def _close_bin(
        self, person: str, rt: PersonRuntime, cfg: DetectionSettings, x: BinObservation
    ) -> AlertEvent | None:
        end = x.start + cfg.bin_seconds
        scored = self._score_bin(rt, cfg, rt.detector, rt.recent, x)
        decision = decide(rt.incident, person, end, scored.score, scored.rate, cfg,
                          _coordinated(scored, rt.detector, cfg))
        event = None
        if decision:
            event = self._alert(person, rt, cfg, end, rt.incident.opened_at, decision, scored)
        # At the bar, whatever made the score: no baseline learns from the window.
        at_bar = scored.score >= open_bar(scored.rate, cfg)
        summary, focused = _summaries(x, scored.window)
        if not at_bar:
            self._learn_baselines(rt, scored.window)
            rt.coordination.learn_one(summary)
            rt.focus.learn_one(focused)
        if _ordinary_but_copies(scored, cfg):
            rt.coordination.learn_dispersion(summary)
        short = rt.detector.window(x)  # the panels plot one window length, whichever scores
        rt.detector.learn_one(x, held=at_bar)
        export_gauges(person, rt, scored, short, self._neardup.index(person))
        return event

    def _learn_baselines(self, rt: PersonRuntime, window: WindowStats) -> None:
        n = rt.baselines["n"] = rt.baselines["n"] + 1
        alpha = 1.0 / min(n, 720)
        rt.baselines["distinct_authors"] += alpha * (
            window.distinct_authors - rt.baselines["distinct_authors"])
        rt.baselines["young_share"] += alpha * (window.young_share - rt.baselines["young_share"])

    def _top_clusters(self, person: str, window: WindowStats) -> list[ClusterSummary]:
        clusters = self._neardup.index(person).clusters
        top = []
        for cluster_id, in_window in window.clusters.most_common(3):
            cluster = clusters.get(cluster_id)
            if cluster is None or cluster.size < 2:
                continue
            top.append(ClusterSummary(
                template_id=cluster.id, in_window=in_window, size=cluster.size,
                distinct_authors=cluster.distinct_authors,
                young_share=round(cluster.young_share, 3), first_seen=iso(cluster.first_seen),
            ))
        return top

    # -- persistence --------------------------------------------------------------------
    def _save(self, person: str, rt: PersonRuntime) -> None:
        if self._buffered:
            self._unsaved[person] = None
        else:
            self._write(person, rt)

    def _write(self, person: str, rt: PersonRuntime) -> None:
        self._state[person.encode()] = dump_state(rt, self._signer.key_id)

    def _runtime(self, person: str) -> PersonRuntime:
        rt = self._persons.get(person)
        if rt is None:
            rt = self._persons[person] = self._load(person)
        return rt

    def _load(self, person: str) -> PersonRuntime:
        cfg = self._cfg[person]
        params = detector_params(cfg)
        raw = self._state.get(person.encode())
        if raw is None:
            rt = new_runtime(params)
        else:
            rt, key_id = load_state(raw, params)
            self._check_key(person, key_id)
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
            rt.recent.append(RecentMention(t, r["a"], bool(r["y"]), r["c"], r.get("p")))
            if rt.closed_until is not None and t >= rt.closed_until:
                rt.pending[self._bin_start(t, cfg)] += 1
            rt.watermark = max(rt.watermark, t)
        horizon = cfg.window_bins * cfg.bin_seconds + cfg.lateness_seconds
        while rt.recent and rt.recent[0].t < rt.watermark - horizon:
            rt.recent.popleft()


__all__ = ["PersonAnalyser", "pileon_score"]
