"""Tamper-evident evidence: per-person hash-chained logs and incident bundles."""

from pileon.evidence.bundle import export_bundle, verify_bundle
from pileon.evidence.chain import ChainError, EvidenceLog, verify_records

__all__ = ["ChainError", "EvidenceLog", "export_bundle", "verify_bundle", "verify_records"]
