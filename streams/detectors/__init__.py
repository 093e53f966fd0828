"""Online anomaly detectors: each learns from and scores closed event-time windows."""

from streams.detectors.base import BinObservation, Detector
from streams.detectors.coordination import (
    CoordinationDetector,
    CoordinationExplanation,
    WindowSummary,
)
from streams.detectors.focus import FocusDetector, FocusExplanation, FocusSummary
from streams.detectors.rate import RateDetector, RateExplanation

__all__ = [
    "BinObservation",
    "CoordinationDetector",
    "CoordinationExplanation",
    "Detector",
    "FocusDetector",
    "FocusExplanation",
    "FocusSummary",
    "RateDetector",
    "RateExplanation",
    "WindowSummary",
]
