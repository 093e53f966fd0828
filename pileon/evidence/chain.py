"""Per-person append-only logs where each record commits to the one before it.

Every record holds the SHA-256 of its canonical JSON (sorted keys, no whitespace) taken
without its own ``hash`` field, and the hash of the previous record in ``prev`` (a hash chain,
as in Haber & Stornetta 1991). Changing any byte changes that record's hash; deleting or
reordering records breaks ``seq`` continuity or a ``prev`` link. Truncating the tail is only
detectable against a head hash kept elsewhere, which is why bundles record it in their
manifest (and seals sign it). One log per person keeps one victim's evidence apart from
another's. Retention removes records from the start only (:meth:`EvidenceLog.trim`), logging
where the chain now starts, so what is left still verifies.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from pileon.core.times import iso_z
from pileon.evidence.metrics import TORN_TAILS

GENESIS = "0" * 64

log = logging.getLogger(__name__)


class ChainError(Exception):
    """The chain does not verify: evidence was altered, lost or reordered."""


def canonical(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


@dataclass
class _Head:
    seq: int
    hash: str
    ids: set[str]


class EvidenceLog:
    """Append-only hash-chained JSONL files, ``<root>/<person>/chain.jsonl``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._heads: dict[str, _Head] = {}

    def path(self, person: str) -> Path:
        return self.root / person / "chain.jsonl"

    def append(
        self, mention: dict[str, Any], origin: dict[str, Any], captured_at: float | None = None
    ) -> dict[str, Any] | None:
        """Append a clean mention; returns the record, or None if its id is already logged."""
        appended = self.append_many([(mention, origin)], captured_at)
        return appended[0] if appended else None

    def append_many(
        self, entries: Iterable[tuple[dict[str, Any], dict[str, Any]]],
        captured_at: float | None = None,
    ) -> list[dict[str, Any]]:
        """Append clean mentions (each with its origin) in their order; returns the records
        written, person by person, leaving out any whose id is already logged (or earlier in
        ``entries``).

        A group commit: each person's new records are written with one write and made durable
        with one fsync, not one each, which is what an append costs (about 0.2 ms on a local
        disk, nearly all of it the fsync). Nothing is durable before this returns, so a caller
        acknowledges its input (commits offsets) only afterwards, as for one record."""
        at = iso_z(captured_at if captured_at is not None else _now())
        by_person: dict[str, list[dict[str, Any]]] = {}
        written: list[dict[str, Any]] = []
        durable: set[str] = set()
        try:
            for mention, origin in entries:
                person = str(mention["person"])
                head = self._head(person)
                by_person.setdefault(person, [])
                if mention["id"] in head.ids:
                    continue
                record: dict[str, Any] = {
                    "seq": head.seq + 1,
                    "prev": head.hash,
                    "captured_at": at,
                    "origin": origin,
                    "mention_sha256": hashlib.sha256(canonical(mention)).hexdigest(),
                    "mention": mention,
                }
                record["hash"] = record_hash(record)
                head.seq, head.hash = record["seq"], record["hash"]
                head.ids.add(mention["id"])
                by_person[person].append(record)
            for person, records in by_person.items():
                if records:
                    with self.path(person).open("ab") as f:
                        f.write(b"".join(orjson.dumps(r) + b"\n" for r in records))
                        f.flush()
                        os.fsync(f.fileno())
                durable.add(person)
                written.extend(records)
        except BaseException:
            # Not built, not written or not durable: those heads are read again from the files
            # on next use (a torn write set aside), so a retry chains from what is on disk.
            for person in set(by_person) - durable:
                self._heads.pop(person, None)
            raise
        return written

    def head(self, person: str) -> tuple[int, str]:
        """The person's last sequence number and head hash (0 and the genesis when empty)."""
        head = self._head(person)
        return head.seq, head.hash

    def persons(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / "chain.jsonl").exists()) \
            if self.root.exists() else []

    def trim(self, person: str, keep: Callable[[dict[str, Any]], bool], reason: str,
             sealer: Any = None) -> int:
        """Remove the records before the first one ``keep`` accepts (all of them when none
        is), atomically; the cut is logged in ``trims.jsonl`` with the first kept record's
        ``seq`` and ``prev``, so the rest still verifies. Returns how many were removed."""
        path = self.path(person)
        if not path.exists():
            return 0
        head = self._head(person)  # first: a torn last line is set aside, not parsed
        lines = path.read_bytes().splitlines(keepends=True)
        cut = next((i for i, line in enumerate(lines)
                    if line.strip() and keep(orjson.loads(line))), len(lines))
        if cut == 0:
            return 0
        removed = [orjson.loads(line) for line in lines[:cut] if line.strip()]
        kept = lines[cut:]
        entry: dict[str, Any] = {
            "at": iso_z(_now()), "reason": reason, "removed": len(removed),
            "removed_seq": [removed[0]["seq"], removed[-1]["seq"]],
            "first_seq": orjson.loads(kept[0])["seq"] if kept else head.seq + 1,
            "first_prev": orjson.loads(kept[0])["prev"] if kept else head.hash,
        }
        if sealer is not None:
            entry["seal"] = sealer.seal({"kind": "trim", "person": person, **entry})
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            f.writelines(kept)
            f.flush()
            os.fsync(f.fileno())
        with (path.parent / "trims.jsonl").open("ab") as f:
            f.write(orjson.dumps(entry) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        head.ids -= {r["mention"]["id"] for r in removed}
        return len(removed)

    def start(self, person: str) -> tuple[int, str]:
        """The ``seq`` and ``prev`` the person's chain file starts at (after any trim)."""
        trims = self.path(person).parent / "trims.jsonl"
        if trims.exists():
            last = orjson.loads(trims.read_bytes().splitlines()[-1])
            return int(last["first_seq"]), str(last["first_prev"])
        return 1, GENESIS

    def records(self, person: str) -> Iterator[dict[str, Any]]:
        """The person's records, oldest first: whole lines only. A last line with no newline is
        a write still under way (another thread or process reading while the archiver writes
        a poll's records) or torn by a crash; it is not a record yet."""
        path = self.path(person)
        if not path.exists():
            return
        with path.open("rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    return
                if line.strip():
                    yield orjson.loads(line)

    def _head(self, person: str) -> _Head:
        head = self._heads.get(person)
        if head is None:
            self.path(person).parent.mkdir(parents=True, exist_ok=True)
            self._set_torn_tail_aside(person)
            first_seq, first_prev = self.start(person)  # after a trim, where it goes on
            head = _Head(first_seq - 1, first_prev, set())
            for record in self.records(person):
                head.seq, head.hash = record["seq"], record["hash"]
                head.ids.add(record["mention"]["id"])
            self._heads[person] = head
        return head

    def _set_torn_tail_aside(self, person: str) -> None:
        """A chain file that does not end with a newline was cut by a crash in mid-write:
        those bytes were never fsynced, so what they held was never acknowledged and will be
        read again from its topic. They are moved, unchanged, to ``torn-<offset>.bin`` beside
        the chain (the chain itself stays what was durable), and the next record is written
        on a line of its own rather than onto the torn one."""
        path = self.path(person)
        if not path.exists():
            return
        with path.open("r+b") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            keep = size - 1  # the end of the last whole line: search back for its newline
            while keep > 0:
                start = max(0, keep - (1 << 16))
                f.seek(start)
                newline = f.read(keep - start).rfind(b"\n")
                if newline >= 0:
                    keep = start + newline + 1
                    break
                keep = start
            f.seek(keep)
            torn = f.read()
            aside = path.parent / f"torn-{keep}.bin"
            with aside.open("wb") as out:
                out.write(torn)
                out.flush()
                os.fsync(out.fileno())
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        TORN_TAILS.inc()
        log.warning("evidence chain of %s: %d bytes of an unfinished write after byte %d set "
                    "aside in %s; they are re-read from the topic", person, len(torn), keep,
                    aside.name)


def verify_records(
    records: Iterable[dict[str, Any]], first_prev: str = GENESIS, first_seq: int = 1
) -> tuple[int, str]:
    """Check a contiguous run of records; return (count, head hash) or raise ChainError."""
    prev, seq, count = first_prev, first_seq, 0
    for record in records:
        if not isinstance(record, dict) or not {"seq", "prev", "hash", "mention",
                                                  "mention_sha256"} <= record.keys():
            raise ChainError(f"record {count + 1}: not a chain record (seq, prev, hash, "
                             "mention, mention_sha256)")
        if record.get("seq") != seq:
            raise ChainError(f"record {count + 1}: seq {record.get('seq')} where {seq} expected")
        if record.get("prev") != prev:
            raise ChainError(f"record seq {seq}: prev does not match the record before it")
        if record_hash(record) != record.get("hash"):
            raise ChainError(f"record seq {seq}: content does not match its hash")
        if hashlib.sha256(canonical(record["mention"])).hexdigest() != record["mention_sha256"]:
            raise ChainError(f"record seq {seq}: mention does not match mention_sha256")
        prev, seq, count = record["hash"], seq + 1, count + 1
    return count, prev


def check_head(records: list[dict[str, Any]], head: str) -> str:
    """Check a head a page carried (``SEQ:HASH``) against verified records; a line saying what
    was found, or :class:`ChainError` when the record at SEQ has another hash."""
    seq_text, _, want = head.partition(":")
    if not seq_text.isdigit() or len(want) != 64:
        raise ChainError(f"--head {head!r}: expected SEQ:HASH (the page's evidence_head)")
    seq = int(seq_text)
    found = next((r for r in records if r.get("seq") == seq), None)
    if found is not None:
        if found.get("hash") != want:
            raise ChainError(f"record seq {seq} has hash {found.get('hash')}, the page's head "
                             f"says {want}: the chain was rewritten after the page")
        return f"head {seq} from the page: matches (nothing up to it was changed since)"
    if records and seq > records[-1]["seq"]:
        raise ChainError(f"the page's head is record {seq}, the records end at "
                         f"{records[-1]['seq']}: records were cut off")
    return f"head {seq} from the page: before these records (not checkable here)"


def _now() -> float:
    return datetime.now(UTC).timestamp()
