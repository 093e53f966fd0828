"""The change log: what happened to captured posts since (deleted, edited, unchanged).

Two sources write it, both linked to the mention by its id (``of``) and never replacing it
(the chain keeps what was captured):

- the platforms' streams, through the connectors (``pileon.change/v1`` events on
  ``mentions.changes``: Jetstream delete/update commits, Mastodon delete/status.update);
- the archiver's looks again at an incident's posts (:mod:`pileon.evidence.rechecks`).

One JSON line per event in ``<archive>/rechecks/changes/<person>.jsonl``, sealed with the
archiver's key when it has one (the seal covers ``{"kind": "change", **entry}``). A stream
event delivered twice (a connector replaying after a restart) is kept once. Bundles carry
the entries of their posts (``changes.json``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from pileon.evidence.anchors import Sealer


class ChangeLog:
    @classmethod
    def of_archive(cls, archive: Path, sealer: Sealer | None = None) -> ChangeLog:
        return cls(archive / "rechecks" / "changes", sealer)

    def __init__(self, root: Path, sealer: Sealer | None = None) -> None:
        self.root, self.sealer = root, sealer
        self._lock = threading.Lock()  # the rechecks thread appends, the archiver reads
        self._keys: dict[str, set[str]] = {}  # person: digests of the entries kept

    def path(self, person: str) -> Path:
        return self.root / f"{person}.jsonl"

    def append(self, person: str, entry: dict[str, Any]) -> dict[str, Any] | None:
        """Seal and append ``entry``; None if the same entry is already there."""
        key = _digest(entry)
        with self._lock:
            keys = self._keys.get(person)
            if keys is None:
                keys = self._keys[person] = {_digest(e) for e in self._read(person)}
            if key in keys:
                return None
            if self.sealer is not None:
                entry = {**entry, "seal": self.sealer.seal({"kind": "change", **entry})}
            path = self.path(person)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("ab") as f:
                f.write(orjson.dumps(entry) + b"\n")
            keys.add(key)
        return entry

    def changes(self, person: str, ids: set[str]) -> list[dict[str, Any]]:
        """The entries about these mentions, in the order they were written."""
        with self._lock:
            return [e for e in self._read(person) if e.get("of") in ids]

    def keep(self, person: str, wanted: Callable[[dict[str, Any]], bool]) -> int:
        """Drop the entries ``wanted`` refuses (retention, erasure); returns how many."""
        with self._lock:
            entries = self._read(person)
            kept = [e for e in entries if wanted(e)]
            path = self.path(person)
            if len(kept) == len(entries):
                return 0
            if kept:
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in kept))
                tmp.replace(path)
            elif path.exists():
                path.unlink()
            self._keys.pop(person, None)
            return len(entries) - len(kept)

    def persons(self) -> Iterable[str]:
        return sorted(p.stem for p in self.root.glob("*.jsonl")) if self.root.is_dir() else []

    def _read(self, person: str) -> list[dict[str, Any]]:
        path = self.path(person)
        if not path.exists():
            return []
        return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]


def _digest(entry: dict[str, Any]) -> str:
    """What makes two entries the same event: everything but the seal; for a platform's
    stream event, also not when it was received (a replay receives it again)."""
    stream = str(entry.get("look", "")).startswith("stream:")
    body = {k: v for k, v in entry.items() if k != "seal" and not (stream and k == "seen_at")}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
