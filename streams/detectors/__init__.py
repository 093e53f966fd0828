"""Online anomaly detectors: each learns from and scores closed event-time bins."""

from streams.detectors.base import BinObservation, Detector
from streams.detectors.rate import RateDetector, RateExplanation

__all__ = ["BinObservation", "Detector", "RateDetector", "RateExplanation"]
