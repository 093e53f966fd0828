"""One person's analysis state: what is saved in the ``state`` table, and its in-memory view.

A saved state is one small JSON value per person (detector baselines, the open incident, the
last closed bin, the alert outbox, the near-duplicate key id), written when a bin closes. The
in-memory :class:`PersonRuntime` adds what is derived from the window records (recent mentions,
bins not yet closed), which the analyser rebuilds after a restart. States saved by older
versions load: a missing coordination or focus baseline starts fresh.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from pileon.core.settings import DetectionSettings
from pileon.schema.alert import AlertEvent
from pileon.streams.detection.detectors import CoordinationDetector, FocusDetector, RateDetector
from pileon.streams.detection.incidents import IncidentState
from pileon.streams.detection.window_stats import RecentMention

STATE_VERSION = 1


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
    recent: deque[RecentMention] = field(default_factory=deque)
    watermark: float = -math.inf
    outbox: list[AlertEvent] = field(default_factory=list)
    # Mentions that arrived after their bin had closed, per bin start: folded into detection
    # when the next bin closes (see PersonAnalyser._fold_late).
    late: Counter[float] = field(default_factory=Counter)


def detector_params(cfg: DetectionSettings) -> dict[str, Any]:
    """The rate detector's parameters for one person's detection settings."""
    return {
        "bin_seconds": cfg.bin_seconds,
        "window_bins": cfg.window_bins,
        "dispersion": cfg.dispersion,
        "warmup_bins": int(cfg.warmup_hours * 3600 / cfg.bin_seconds),
        "false_alarms_per_month": cfg.false_alarms_per_month,
        "min_bar": cfg.open_score,
        "pileon_multiple": cfg.pileon_multiple,
    }


def new_runtime(params: dict[str, Any]) -> PersonRuntime:
    """A person never seen before (``params`` are the rate detector's)."""
    return PersonRuntime(
        RateDetector(**params), CoordinationDetector(), FocusDetector(), IncidentState(), None,
        {"n": 0.0, "distinct_authors": 0.0, "young_share": 0.0},
    )


def dump_state(rt: PersonRuntime, key_id: str) -> bytes:
    return orjson.dumps({
        "v": STATE_VERSION,
        "detector": rt.detector.to_state(),
        "coordination": rt.coordination.to_state(),
        "focus": rt.focus.to_state(),
        "incident": rt.incident.to_state(),
        "closed_until": rt.closed_until,
        "baselines": rt.baselines,
        "outbox": [event.to_dict() for event in rt.outbox],
        "late": [[start, n] for start, n in sorted(rt.late.items())],
        "key_id": key_id,
    })


def load_state(raw: bytes, params: dict[str, Any]) -> tuple[PersonRuntime, str | None]:
    """The runtime a saved state describes, and the near-duplicate key id it was saved with."""
    saved = orjson.loads(raw)
    rt = PersonRuntime(
        RateDetector.from_state(saved["detector"], **params),
        CoordinationDetector.from_state(saved["coordination"])
        if "coordination" in saved else CoordinationDetector(),
        FocusDetector.from_state(saved["focus"]) if "focus" in saved else FocusDetector(),
        IncidentState.from_state(saved["incident"]),
        saved["closed_until"],
        saved["baselines"],
        outbox=[AlertEvent.from_json(e) for e in saved.get("outbox", [])],
        late=Counter({float(start): int(n) for start, n in saved.get("late", [])}),
    )
    return rt, saved.get("key_id")
