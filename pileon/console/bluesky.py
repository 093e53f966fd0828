"""Create a moderation list on the protected person's (or the team's) Bluesky account.

The responder gives the account's handle and an **app password** (Settings → Privacy and
security → App passwords); the console opens a session (``com.atproto.server.createSession``),
writes the list and its items with ``com.atproto.repo.applyWrites`` (at most 200 writes a
call, as the lexicon allows) and forgets the password and the session: neither is stored,
logged or audited. Only services in ``console.bluesky_services`` are called, so the console
cannot be made to post credentials to an arbitrary host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

MAX_WRITES = 200  # com.atproto.repo.applyWrites: writes maxLength


class BlueskyError(Exception):
    """The service refused (one line, naming the step and the service's own error)."""


@dataclass
class CreatedList:
    uri: str
    items: int


def create_modlist(service: str, identifier: str, app_password: str,
                   body: dict[str, Any], timeout: float = 20.0) -> CreatedList:
    """Write ``body`` (from :func:`pileon.console.exports.bluesky_modlist`) to the account."""
    base = service.rstrip("/") + "/xrpc/"
    with requests.Session() as http:
        session = _call(http, base + "com.atproto.server.createSession",
                        {"identifier": identifier, "password": app_password}, timeout,
                        "log-in")
        did, token = session.get("did"), session.get("accessJwt")
        if not isinstance(did, str) or not isinstance(token, str):
            raise BlueskyError("log-in: the service's answer has no did or accessJwt")
        http.headers["Authorization"] = f"Bearer {token}"
        writes = _in_repo(body["writes"], body["repo"], did)
        uri = f"at://{did}/{writes[0]['collection']}/{writes[0]['rkey']}"
        for start in range(0, len(writes), MAX_WRITES):
            _call(http, base + "com.atproto.repo.applyWrites",
                  {"repo": did, "writes": writes[start:start + MAX_WRITES]}, timeout,
                  f"writing records {start + 1}-{min(start + MAX_WRITES, len(writes))}")
    return CreatedList(uri, len(writes) - 1)


def _in_repo(writes: list[dict[str, Any]], placeholder: str, did: str) -> list[dict[str, Any]]:
    """The writes with the list's URI in the account's repository."""
    old = f"at://{placeholder}/"
    out = []
    for w in writes:
        value = dict(w["value"])
        if isinstance(value.get("list"), str) and value["list"].startswith(old):
            value["list"] = f"at://{did}/" + value["list"][len(old):]
        out.append({**w, "value": value})
    return out


def _call(http: requests.Session, url: str, body: dict[str, Any], timeout: float,
          step: str) -> dict[str, Any]:
    try:
        reply = http.post(url, json=body, timeout=timeout)
    except requests.RequestException as exc:
        raise BlueskyError(f"{step}: {type(exc).__name__} reaching the service") from None
    if not reply.ok:
        try:
            err = reply.json()
            detail = f"{err.get('error', '')}: {err.get('message', '')}".strip(": ")
        except ValueError:
            detail = reply.reason
        raise BlueskyError(f"{step}: HTTP {reply.status_code} {detail}"[:300])
    try:
        data = reply.json()
    except ValueError:
        raise BlueskyError(f"{step}: the service's answer is not JSON") from None
    return data if isinstance(data, dict) else {}
