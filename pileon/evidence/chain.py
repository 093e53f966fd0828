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
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from pileon.core.times import iso_z

GENESIS = "0" * 64


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
        person = str(mention["person"])
        head = self._head(person)
        if mention["id"] in head.ids:
            return None
        record: dict[str, Any] = {
            "seq": head.seq + 1,
            "prev": head.hash,
            "captured_at": iso_z(captured_at if captured_at is not None else _now()),
            "origin": origin,
            "mention_sha256": hashlib.sha256(canonical(mention)).hexdigest(),
            "mention": mention,
        }
        record["hash"] = record_hash(record)
        path = self.path(person)
        with path.open("ab") as f:
            f.write(orjson.dumps(record) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        head.seq, head.hash = record["seq"], record["hash"]
        head.ids.add(mention["id"])
        return record

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
        lines = path.read_bytes().splitlines(keepends=True)
        cut = next((i for i, line in enumerate(lines)
                    if line.strip() and keep(orjson.loads(line))), len(lines))
        if cut == 0:
            return 0
        head = self._head(person)
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
        path = self.path(person)
        if not path.exists():
            return
        with path.open("rb") as f:
            for line in f:
                if line.strip():
                    yield orjson.loads(line)

    def _head(self, person: str) -> _Head:
        head = self._heads.get(person)
        if head is None:
            self.path(person).parent.mkdir(parents=True, exist_ok=True)
            first_seq, first_prev = self.start(person)  # after a trim, where it goes on
            head = _Head(first_seq - 1, first_prev, set())
            for record in self.records(person):
                head.seq, head.hash = record["seq"], record["hash"]
                head.ids.add(record["mention"]["id"])
            self._heads[person] = head
        return head


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
