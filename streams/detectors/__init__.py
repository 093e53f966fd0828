"""Online anomaly detectors: each learns from and scores closed event-time windows."""

from streams.detectors.base import BinObservation, Detector
from streams.detectors.coordination import (
    CoordinationDetector,
    CoordinationExplanation,
    WindowSummary,
)
from streams.detectors.rate import RateDetector, RateExplanation

__all__ = [
    "BinObservation",
    "CoordinationDetector",
    "CoordinationExplanation",
    "Detector",
    "RateDetector",
    "RateExplanation",
    "WindowSummary",
]
