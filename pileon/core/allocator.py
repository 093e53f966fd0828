"""glibc malloc tuning for a long-running worker.

A worker's near-duplicate window churns small allocations all day (signatures, records, index
entries: a few hundred bytes each). glibc keeps freed memory at the top of its heaps until 128
KiB collects there (``M_TRIM_THRESHOLD``), and the dynamic threshold grows with every larger
block freed, so over a day RSS drifts far above live data: 505 MB at the end of the 24-hour
benchmark (bench/neardup.py) against 421 MB half-way with the same 100,000 mentions held.
Trimming from 64 KiB, as ``MALLOC_TRIM_THRESHOLD_=65536`` would, keeps that run at 474 MB.
Setting it with ``mallopt`` at start-up does the same for every way pileon is run (image,
compose, Helm, a shell) without relying on the environment. Elsewhere than glibc it does
nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # from glibc's <malloc.h>
TRIM_THRESHOLD_BYTES = 64 * 1024


def trim_freed_memory(threshold: int = TRIM_THRESHOLD_BYTES) -> bool:
    """Return freed heap memory to the system from ``threshold`` bytes; True if applied."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        applied = bool(libc.mallopt(M_TRIM_THRESHOLD, threshold))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    log.debug("malloc trim threshold %d bytes: %s", threshold, applied)
    return applied
