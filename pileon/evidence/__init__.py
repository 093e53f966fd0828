"""Tamper-evident evidence: per-person hash-chained logs and incident bundles."""

from pileon.evidence.bundle import BundleCheck, check_bundle, export_bundle, verify_bundle
from pileon.evidence.chain import ChainError, EvidenceLog, verify_records

__all__ = ["BundleCheck", "ChainError", "EvidenceLog", "check_bundle", "export_bundle",
           "verify_bundle", "verify_records"]
