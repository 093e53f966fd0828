"""Online anomaly detectors: each learns from and scores closed event-time windows."""

from typing import Any

from pileon.streams.detection.detectors.base import BinObservation, Detector, Explanation
from pileon.streams.detection.detectors.coordination import (
    CoordinationDetector,
    CoordinationExplanation,
    WindowSummary,
)
from pileon.streams.detection.detectors.focus import FocusDetector, FocusExplanation, FocusSummary
from pileon.streams.detection.detectors.rate import RateDetector, RateExplanation, with_evidence

# The built-in detectors, typed with the contract so that mypy checks each one fits it.
BUILTIN: dict[str, type[Detector[Any, Any]]] = {
    "rate": RateDetector,
    "coordination": CoordinationDetector,
    "focus": FocusDetector,
}

__all__ = [
    "BUILTIN",
    "BinObservation",
    "CoordinationDetector",
    "CoordinationExplanation",
    "Detector",
    "Explanation",
    "FocusDetector",
    "FocusExplanation",
    "FocusSummary",
    "RateDetector",
    "RateExplanation",
    "WindowSummary",
    "with_evidence",
]
