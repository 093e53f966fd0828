"""Deletions and edits, seen by looking again.

Harassers delete posts once a target reacts; a post that is gone later is still evidence,
and its deletion is a fact worth recording. For each post of an incident the archiver looks
again at its origin ``evidence.recheck_hours`` after the incident opened (1 h, 24 h, 7 days):

- a Bluesky post: its signed record from the author's PDS (``getRecord``): gone means deleted;
  a verified record whose text differs means edited;
- a Mastodon post: its ActivityPub object at its URI (``Accept: application/activity+json``),
  kept with the response's status, headers and time: 404 or 410 (or a Tombstone) means
  deleted; an ``updated`` time or other text means edited. Mastodon signs nothing an outsider
  can check, and the record says so.

Each look is an evidence event appended to the change log (:mod:`pileon.evidence.changes`,
beside the deletions and edits the platforms' streams announced), linked to the mention by its
id and never replacing it: the chain keeps what was captured. Bundles carry the events of
their posts (``changes.json``) and the report marks deleted and edited posts with when that
was seen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import requests

from pileon.core.html_text import plain_text
from pileon.core.times import epoch, iso_z
from pileon.evidence.anchors import Sealer
from pileon.evidence.changes import ChangeLog
from pileon.evidence.platform import (
    PlatformError,
    PlatformRecords,
    mastodon_uri,
    post_ref,
    verify_car,
)

log = logging.getLogger(__name__)


class Rechecks:
    def __init__(self, root: Path, platform: PlatformRecords, sealer: Sealer | None = None,
                 hours: Sequence[float] = (1.0, 24.0, 168.0),
                 log_: ChangeLog | None = None) -> None:
        self.root, self.platform, self.sealer = root, platform, sealer
        self.hours = sorted(hours)
        self.log = log_ if log_ is not None else ChangeLog(root / "changes", sealer)

    def schedule(self, incident_id: str, opened_at: str, mentions: list[Mapping[str, Any]]
                 ) -> None:
        """Look again at these posts ``hours`` after the opening (a later call adds posts)."""
        path = self.root / "schedule" / f"{incident_id}.json"
        state: dict[str, Any] = (orjson.loads(path.read_bytes()) if path.exists() else
                                 {"opened_at": opened_at, "done": [], "posts": {}})
        for m in mentions:
            if m.get("platform") in ("bluesky", "mastodon"):
                state["posts"].setdefault(str(m["id"]), {
                    "person": m["person"], "platform": m["platform"],
                    "text": m.get("text", "")})
        self._write(path, state)

    def run_due(self, now: float | None = None) -> list[str]:
        """Every look that is due; returns the incidents whose posts were looked at."""
        now = time.time() if now is None else now
        looked: list[str] = []
        folder = self.root / "schedule"
        if not folder.is_dir():
            return looked
        for path in sorted(folder.glob("*.json")):
            state = orjson.loads(path.read_bytes())
            opened = epoch(state["opened_at"])
            due = [h for h in self.hours if h not in state["done"] and now >= opened + h * 3600]
            if not due:
                continue
            for mention_id, post in state["posts"].items():
                self.record(mention_id, post, f"{max(due):g} h after the opening")
            looked.append(path.stem)
            state["done"] = sorted({*state["done"], *due})
            if len(state["done"]) == len(self.hours):
                path.unlink()
            else:
                self._write(path, state)
        return looked

    def record(self, mention_id: str, post: Mapping[str, Any], when: str) -> dict[str, Any]:
        if post["platform"] == "bluesky":
            found = self._bluesky(mention_id, str(post["text"]))
        else:
            found = self._mastodon(mention_id, str(post["text"]))
        event: dict[str, Any] = {"of": mention_id, "seen_at": iso_z(time.time()), "look": when,
                                 **found}
        return self.log.append(str(post["person"]), event) or event

    def _bluesky(self, mention_id: str, text: str) -> dict[str, Any]:
        ref = post_ref({"id": mention_id})
        if ref is None:
            return {"state": "not checked", "detail": "not an at:// post of a DID"}
        did, rkey = ref
        try:
            doc, reply = self.platform.get_record(did, rkey)
            if reply.status_code in (400, 404):
                return {"state": "deleted", "detail": f"the author's PDS answers "
                        f"{reply.status_code}: no such record"}
            reply.raise_for_status()
            record = verify_car(reply.content, did, rkey, doc.key)
        except PlatformError as exc:
            return {"state": "unknown", "detail": f"the record does not verify: {exc}"}
        except (requests.RequestException, ValueError, KeyError) as exc:
            return {"state": "unknown", "detail": f"not reachable: {type(exc).__name__}"}
        if record.get("text") != text:
            return {"state": "edited", "detail": "the signed record's text is now: "
                    f"{record.get('text', '')}"}
        return {"state": "unchanged", "detail": "the signed record is as captured"}

    def _mastodon(self, mention_id: str, text: str) -> dict[str, Any]:
        uri = mastodon_uri({"id": mention_id})
        if uri is None:
            return {"state": "not checked", "detail": "no ActivityPub URI"}
        try:
            reply, kept = self.platform.get_activity(uri)
        except requests.RequestException as exc:
            return {"state": "unknown", "detail": f"not reachable: {type(exc).__name__}"}
        kept["signed"] = False
        if reply.status_code in (404, 410):
            return {"state": "deleted", "detail": f"its origin answers {reply.status_code}",
                    "response": kept}
        try:
            obj = reply.json()
        except ValueError:
            return {"state": "unknown", "detail": "not ActivityPub JSON", "response": kept}
        kept["body"] = obj
        if not reply.ok or not isinstance(obj, dict):
            return {"state": "unknown", "detail": f"HTTP {reply.status_code}", "response": kept}
        if obj.get("type") == "Tombstone":
            return {"state": "deleted", "detail": "its origin serves a Tombstone",
                    "response": kept}
        now_text = plain_text(str(obj.get("content", "")))
        if obj.get("updated") or now_text != text:
            return {"state": "edited", "detail": f"updated {obj.get('updated') or '?'}; the "
                    f"text is now: {now_text}", "response": kept}
        return {"state": "unchanged", "detail": "as captured (unsigned: Mastodon signs "
                "nothing an outsider can check)", "response": kept}

    def changes(self, person: str, ids: set[str]) -> list[dict[str, Any]]:
        return self.log.changes(person, ids)

    @staticmethod
    def _write(path: Path, data: Mapping[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(data))
        tmp.replace(path)
