"""pileon: early, explainable detection of harassment pile-ons, with tamper-evident evidence."""

__version__ = "0.1.0"
