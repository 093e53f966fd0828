"""Retention with legal hold, and erasure requests.

- **Mentions outside incidents expire**: chain records captured more than
  ``evidence.retention_days`` ago are removed from the start of each chain (the cut is logged,
  and sealed when the archiver has a key, so the rest still verifies), except what an
  incident still open may need (from an hour before its onset).
- **Incident evidence is held until released**: every bundle is held when the archiver writes
  it. ``pileon evidence release INCIDENT --by NAME --reason TEXT`` releases it; a released
  bundle is deleted once its last transition is older than the retention period.
- **Changes** (deletions and edits seen since capture) expire with the mentions they are
  about, except those about a mention in a held bundle.
- **Erasure**: ``pileon evidence erase PERSON --by NAME --reason TEXT`` removes the person's
  chain, checkpoints and change log and their released bundles at once; held bundles are
  kept, and the receipt lists them (a court or the person's lawyer decides on those).

Every release, expiry and erasure writes a receipt in ``<archive>/receipts/``. These
operations change files the archiver writes, so while an archiver runs (it holds
``<archive>/archiver.lock``), the command leaves a request that the archiver carries out within
a second; otherwise the command does it itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from pileon.core.times import epoch, iso_z
from pileon.evidence.anchors import Sealer
from pileon.evidence.chain import EvidenceLog
from pileon.evidence.changes import ChangeLog

log = logging.getLogger(__name__)


def _now() -> float:
    return time.time()


class Retention:
    def __init__(self, root: Path, log_: EvidenceLog, sealer: Sealer | None = None,
                 retention_days: float | None = None, lookback_seconds: float = 3600.0) -> None:
        self.root, self.log, self.sealer = root, log_, sealer
        self.changes = ChangeLog.of_archive(root, sealer)
        self.retention_days = retention_days
        self.lookback = lookback_seconds
        self.incidents = root / "incidents"
        self.holds = root / "holds"
        self.receipts = root / "receipts"

    # -- holds -----------------------------------------------------------------------------
    def hold(self, incident_id: str) -> dict[str, Any]:
        """The incident's hold (made the first time it is asked for: bundles are held)."""
        path = self.holds / f"{incident_id}.json"
        if path.exists():
            return dict(orjson.loads(path.read_bytes()))
        state = {"incident_id": incident_id, "held_at": iso_z(_now()), "released_at": None,
                 "released_by": None, "reason": None}
        self._write(path, state)
        return state

    def release(self, incident_id: str, by: str, reason: str) -> dict[str, Any]:
        if not (self.incidents / incident_id).is_dir():
            raise ValueError(f"incident {incident_id}: no bundle in this archive")
        state = self.hold(incident_id)
        if state["released_at"] is None:
            state.update(released_at=iso_z(_now()), released_by=by, reason=reason)
            self._write(self.holds / f"{incident_id}.json", state)
        return self._receipt("release", {"incident_id": incident_id, "by": by,
                                         "reason": reason, "hold": state})

    # -- expiry ----------------------------------------------------------------------------
    def expire(self, now: float | None = None) -> dict[str, Any]:
        """Trim every chain to the retention period and delete released bundles past it."""
        if self.retention_days is None:
            return {"trimmed": {}, "deleted_bundles": []}
        now = _now() if now is None else now
        cutoff = now - self.retention_days * 86400
        protect = self._open_since()
        trimmed = {}
        for person in self.log.persons():
            keep_from = min(cutoff, protect.get(person, cutoff))

            def recent(record: dict[str, Any], since: float = keep_from) -> bool:
                return epoch(record["captured_at"]) >= since

            removed = self.log.trim(person, recent, "retention", self.sealer)
            if removed:
                trimmed[person] = removed
        held = self._held_mentions()
        changes: dict[str, int] = {}
        for person in self.changes.persons():
            since = min(cutoff, protect.get(person, cutoff))

            def wanted(entry: dict[str, Any], since: float = since) -> bool:
                return epoch(entry["seen_at"]) >= since or entry.get("of") in held

            if dropped := self.changes.keep(person, wanted):
                changes[person] = dropped
        deleted = [i for i, info in self._bundles() if info["released"] and
                   info["last_at"] < cutoff and self._delete_bundle(i)]
        if not trimmed and not deleted and not changes:
            return {"trimmed": {}, "deleted_bundles": []}
        return self._receipt("expiry", {"retention_days": self.retention_days,
                                        "trimmed": trimmed, "deleted_bundles": deleted,
                                        "changes_dropped": changes})

    # -- erasure ---------------------------------------------------------------------------
    def erase(self, person: str, by: str, reason: str) -> dict[str, Any]:
        removed = self.log.trim(person, lambda _r: False, "erasure", self.sealer)
        checkpoints = self.root / "checkpoints" / f"{person}.jsonl"
        if checkpoints.exists():
            checkpoints.unlink()
        changes = self.changes.keep(person, lambda _e: False)  # held bundles keep their copy
        deleted, kept = [], []
        for incident_id, info in self._bundles():
            if info["person"] != person:
                continue
            if info["released"]:
                self._delete_bundle(incident_id)
                deleted.append(incident_id)
            else:
                kept.append(incident_id)
        return self._receipt("erasure", {"person": person, "by": by, "reason": reason,
                                         "chain_records_removed": removed,
                                         "changes_removed": changes,
                                         "deleted_bundles": deleted, "held_bundles_kept": kept})

    # -- requests from the command line -----------------------------------------------------
    def handle_requests(self) -> int:
        """Carry out the requests a command left while this archiver held the lock."""
        folder = self.root / "requests"
        if not folder.is_dir():
            return 0
        done = 0
        for path in sorted(folder.glob("*.json")):
            request = orjson.loads(path.read_bytes())
            try:
                receipt = self.carry_out(request)
            except (ValueError, OSError) as exc:
                receipt = {"error": str(exc)}
            self._write(folder / f"{path.stem}.done", receipt)
            path.unlink()
            done += 1
        return done

    def carry_out(self, request: dict[str, Any]) -> dict[str, Any]:
        kind = request.get("kind")
        if kind == "release":
            return self.release(request["incident_id"], request["by"], request["reason"])
        if kind == "erase":
            return self.erase(request["person"], request["by"], request["reason"])
        if kind == "expire":
            return self.expire()
        raise ValueError(f"request kind {kind!r}: release, erase or expire")

    # -- internals -------------------------------------------------------------------------
    def _bundles(self) -> Iterator[tuple[str, dict[str, Any]]]:
        if not self.incidents.is_dir():
            return
        for folder in sorted(self.incidents.iterdir()):
            saved = folder / "incident.json"
            if not saved.exists():
                continue
            events = orjson.loads(saved.read_bytes())
            state = self.hold(folder.name)
            yield folder.name, {
                "person": events[-1]["person"], "last_at": epoch(events[-1]["at"]),
                "firing": events[-1]["transition"] != "resolved",
                "opened_at": epoch(events[0]["opened_at"]),
                "released": state["released_at"] is not None,
            }

    def _held_mentions(self) -> set[str]:
        """The ids of every mention in a held bundle."""
        ids: set[str] = set()
        for incident_id, info in self._bundles():
            path = self.incidents / incident_id / "mentions.jsonl"
            if info["released"] or not path.exists():
                continue
            for line in path.read_bytes().splitlines():
                with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError):
                    ids.add(str(orjson.loads(line)["mention"]["id"]))
        return ids

    def _open_since(self) -> dict[str, float]:
        """Per person, the earliest time an incident still open may export from."""
        since: dict[str, float] = {}
        for _incident, info in self._bundles():
            if info["firing"]:
                start = info["opened_at"] - self.lookback
                since[info["person"]] = min(since.get(info["person"], start), start)
        return since

    def _delete_bundle(self, incident_id: str) -> bool:
        shutil.rmtree(self.incidents / incident_id, ignore_errors=True)
        log.info("evidence: released bundle %s deleted (retention)", incident_id)
        return True

    def _receipt(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        receipt = {"kind": kind, "at": iso_z(_now()), **body}
        if self.sealer is not None:
            receipt["seal"] = self.sealer.seal({"kind": f"receipt:{kind}", **body})
        name = f"{receipt['at'].replace(':', '')}-{kind}.json"
        self._write(self.receipts / name, receipt)
        return receipt

    @staticmethod
    def _write(path: Path, data: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        os.replace(tmp, path)


@contextlib.contextmanager
def archive_lock(root: Path, wait: bool = False) -> Iterator[bool]:
    """Hold ``<root>/archiver.lock``; yields False when another process holds it."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "archiver.lock").open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def request(root: Path, body: dict[str, Any], sealer: Sealer | None = None,
            retention_days: float | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """Carry out ``body`` now when no archiver runs on ``root``; else leave it for the
    archiver and wait for its receipt."""
    with archive_lock(root) as mine:
        if mine:
            return Retention(root, EvidenceLog(root / "chains"), sealer,
                             retention_days).carry_out(body)
    folder = root / "requests"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}"
    tmp = folder / f"{name}.tmp"
    tmp.write_bytes(orjson.dumps(body))
    os.replace(tmp, folder / f"{name}.json")
    done = folder / f"{name}.done"
    deadline = time.monotonic() + timeout
    while not done.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the running archiver did not take the request in {timeout:g} s "
                               f"(left in {folder})")
        time.sleep(0.2)
    receipt = dict(orjson.loads(done.read_bytes()))
    done.unlink()
    if "error" in receipt:
        raise ValueError(receipt["error"])
    return receipt
