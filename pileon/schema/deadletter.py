"""Dead letters: what could not be processed, kept whole with the reason, never dropped.

The original key and value are kept base64-encoded (they may not be valid UTF-8), with where
they came from, so an operator can fix and replay them (e.g. ``pileon replay-dead-letters``).
The detail never quotes message text.

A value over ``KEEP_WHOLE_BYTES`` would not fit in a Kafka record once base64-encoded (the
broker's default limit is 1 MiB), so its letter keeps the first ``HEAD_BYTES``, its SHA-256 and
its length; the whole original stays at ``origin`` in the source topic.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass

import orjson

from pileon.schema.mention import Reason

KEEP_WHOLE_BYTES = 512 * 1024
HEAD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Origin:
    topic: str
    partition: int
    offset: int
    timestamp: float | None = None


def dead_letter(
    key: bytes | None,
    value: bytes | None,
    reason: Reason,
    detail: str,
    origin: Origin,
    error_class: str | None = None,
) -> bytes:
    """The JSON body of a dead letter on ``mentions.invalid``."""
    truncated = value is not None and len(value) > KEEP_WHOLE_BYTES
    kept = value[:HEAD_BYTES] if value is not None and truncated else value
    return orjson.dumps(
        {
            "schema": "pileon.dead_letter/v1",
            "reason": str(reason),
            "detail": detail,
            "error_class": error_class,
            "origin": {
                "topic": origin.topic,
                "partition": origin.partition,
                "offset": origin.offset,
                "timestamp": origin.timestamp,
            },
            "dead_lettered_at": time.time(),
            "key_b64": base64.b64encode(key).decode() if key is not None else None,
            "value_b64": base64.b64encode(kept).decode() if kept is not None else None,
            "value_bytes": len(value) if value is not None else None,
            "value_sha256": hashlib.sha256(value).hexdigest() if value is not None else None,
            "value_truncated": truncated,
        }
    )


def shrunk(letter: bytes, keep: int = 1024) -> bytes | None:
    """``letter`` keeping only the first ``keep`` bytes of its original (its digest, length and
    origin unchanged), for a dead-letter topic whose record limit refused it; None if it keeps
    no more than that already."""
    body = orjson.loads(letter)
    encoded = body.get("value_b64")
    if encoded is None:
        return None
    value = base64.b64decode(encoded)
    if len(value) <= keep:
        return None
    body["value_b64"] = base64.b64encode(value[:keep]).decode()
    body["value_truncated"] = True
    body["detail"] = (f"{body.get('detail', '')} (letter cut to the original's first {keep} "
                      "bytes: the dead-letter topic refused it as too large)")
    return orjson.dumps(body)


def original_value(letter: bytes) -> bytes | None:
    """The original message bytes carried by a dead letter (its head if truncated)."""
    encoded = orjson.loads(letter)["value_b64"]
    return base64.b64decode(encoded) if encoded is not None else None
