"""One HTTP POST with the status codes mapped to the sink contract's outcomes."""

from __future__ import annotations

from typing import Any

import orjson
import requests

from pileon.alerting.base import DeliveryFailed, Rejected

_RETRIABLE = {408, 425, 429}


def post_json(
    session: requests.Session, url: str, body: Any, timeout: float,
    headers: dict[str, str] | None = None,
) -> None:
    """POST ``body`` as JSON; 2xx returns, 408/425/429/5xx and network errors raise
    DeliveryFailed (honouring Retry-After), any other status raises Rejected."""
    try:
        response = session.post(
            url, data=orjson.dumps(body), timeout=timeout,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
    except requests.RequestException as exc:
        raise DeliveryFailed(f"{type(exc).__name__} posting to receiver") from exc
    status = response.status_code
    if 200 <= status < 300:
        return
    if status in _RETRIABLE or status >= 500:
        raise DeliveryFailed(f"HTTP {status}", _retry_after(response))
    raise Rejected(f"HTTP {status}: {response.text[:200]}")


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date or nothing: use our own backoff
