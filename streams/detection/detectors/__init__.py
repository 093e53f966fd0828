"""Online anomaly detectors: each learns from and scores closed event-time windows."""

from pileon.streams.detection.detectors.base import BinObservation, Detector
from pileon.streams.detection.detectors.coordination import (
    CoordinationDetector,
    CoordinationExplanation,
    WindowSummary,
)
from pileon.streams.detection.detectors.focus import FocusDetector, FocusExplanation, FocusSummary
from pileon.streams.detection.detectors.rate import RateDetector, RateExplanation

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
