"""An incident's evidence as the console shows it, read from the archive's bundle.

The bundle (``<evidence_dir>/incidents/<id>/``) is verified on every read (:func:`verify_bundle`)
and its verdict shown beside it. Near-duplicate membership is the bundle's own
(:mod:`pileon.evidence.clusters`): the worker's assignment is MinHash-estimated and not kept per
mention, so the console says "re-computed" where it shows it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import orjson

from pileon.console.db import ChainHeadRecord
from pileon.evidence import check_bundle
from pileon.evidence.chain import ChainError, EvidenceLog, verify_records
from pileon.evidence.chart import volume_svg
from pileon.evidence.clusters import cluster_members
from pileon.evidence.rollup import AuthorRow
from pileon.evidence.rollup import author_rollup as rollup
from pileon.schema.alert import AlertEvent


@dataclass
class MentionRow:
    seq: int
    record_hash: str
    mention_sha256: str
    captured_at: str
    mention: dict[str, Any]
    cluster: str | None = None

    @property
    def created(self) -> datetime:
        return _dt(self.mention["created_at"])

    @property
    def author_id(self) -> str:
        return str(self.mention.get("author", {}).get("id", ""))


@dataclass
class ClusterRow:
    template_id: str
    text: str | None
    members: int
    authors: int
    in_window: int
    size: int


@dataclass
class Evidence:
    """What the bundle holds for one incident, and whether it verifies."""

    folder: Path
    found: bool
    verified: bool
    verdict: str
    mentions: list[MentionRow]
    manifest: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    marks: dict[str, list[str]] = field(default_factory=dict)  # platform signature, deletions

    def in_incident(self, start: datetime) -> list[MentionRow]:
        return [m for m in self.mentions if m.created >= start]


def load_evidence(evidence_dir: Path, incident_id: str) -> Evidence:
    folder = evidence_dir / "incidents" / incident_id
    if not (folder / "manifest.json").exists():
        return Evidence(folder, False, False, "the archiver has not written this incident's "
                        "bundle yet (is `pileon archive` running on this archive?)", [], {})
    notes: list[str] = []
    try:
        check = check_bundle(folder)
        verified, notes = True, check.notes
        verdict = (f"verified: {check.records} hash-chained mentions; every file matches the "
                   "manifest and what the alert events and the chain give")
    except (ChainError, OSError, ValueError, KeyError, TypeError) as exc:
        verified, verdict = False, f"DOES NOT VERIFY: {exc}"
    mentions: list[MentionRow] = []
    manifest: dict[str, Any] = {}
    try:
        manifest = orjson.loads((folder / "manifest.json").read_bytes())
        for line in (folder / "mentions.jsonl").read_bytes().splitlines():
            if line.strip():
                r = orjson.loads(line)
                mentions.append(MentionRow(r["seq"], r["hash"], r["mention_sha256"],
                                           r["captured_at"], r["mention"]))
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        verified, verdict = False, f"DOES NOT VERIFY: unreadable ({type(exc).__name__})"
    return Evidence(folder, True, verified, verdict, mentions, manifest, notes,
                    _marks(folder))


@dataclass(frozen=True)
class HeadCheck:
    """One chain head a page carried, and what the chain in the archive says of it now."""

    head: ChainHeadRecord
    ok: bool | None  # None: not checkable against this archive
    text: str


_INDEX_EVERY = 1024  # records between two remembered offsets of a verified prefix


@dataclass
class _Verified:
    """How far a person's chain file was verified: its first ``seq`` and ``prev`` then, the
    byte length and SHA-256 state of the verified prefix, its last record, and the offset of
    every ``_INDEX_EVERY``-th record's line."""

    start: tuple[int, str]
    length: int
    digest: Any  # hashlib state after ``length`` bytes (``copy()`` to go on)
    seq: int
    hash: str
    index: list[tuple[int, int]]


_verified: dict[Path, _Verified] = {}
_verified_lock = threading.Lock()


def check_heads(evidence_dir: Path, person: str,
                heads: Sequence[ChainHeadRecord]) -> list[HeadCheck]:
    """Check each head a page carried (record number and hash, from ``evidence.heads``)
    against the person's chain in the archive, as ``pileon verify --head`` does: the chain
    must verify from its start (after any retention trim) up to the newest of those records,
    and each record must still have the hash the page carried. A copy of the head is in
    every page sent, outside the archive, so a chain rewritten after the page shows here.

    A prefix verified by an earlier view is not verified again record by record: its bytes
    are hashed (SHA-256, about twenty times cheaper than parsing and re-hashing each record)
    and compared with the hash taken when it was verified, so a change anywhere in it, of any
    byte, sends the check back to the chain's start."""
    if not heads:
        return []
    log = EvidenceLog(evidence_dir / "chains")
    if "/" in person or person.startswith(".") or not log.path(person).is_file():
        return [HeadCheck(h, None, "the archive here has no chain for this person")
                for h in heads]
    first_seq, first_prev = log.start(person)
    newest = max(h.seq for h in heads)
    found: dict[int, str] = {first_seq - 1: first_prev}  # the record before a trim: its hash
    wanted = {h.seq for h in heads}
    path = log.path(person)
    broken = ""
    with path.open("rb") as f:
        known = _resume(path, f, (first_seq, first_prev))
        for seq in sorted(s for s in wanted if first_seq <= s <= known.seq):
            found[seq] = _hash_at(f, known, seq)
        f.seek(known.length)
        hasher, index = known.digest.copy(), list(known.index)
        # The last record verify_records passed: its seq, the end of its line, its hash.
        last, end, last_hash = known.seq, known.length, known.hash

        def onward() -> Iterator[dict[str, Any]]:
            nonlocal last, end, last_hash
            if last >= newest:
                return
            for line in f:
                at = end
                if not line.strip():
                    hasher.update(line)
                    end += len(line)
                    continue
                record = orjson.loads(line)
                seq = record.get("seq") if isinstance(record, dict) else None
                if isinstance(seq, int) and seq in wanted:
                    found[seq] = str(record.get("hash"))
                yield record
                # Asked for the next record: verify_records passed this one.
                hasher.update(line)
                last, end, last_hash = int(record["seq"]), at + len(line), str(record["hash"])
                if (last - first_seq) % _INDEX_EVERY == 0:
                    index.append((last, at))
                if last >= newest:
                    return

        try:
            verify_records(onward(), known.hash, known.seq + 1)
        except (ChainError, orjson.JSONDecodeError) as exc:
            broken = str(exc)
    if last > known.seq:
        with _verified_lock:
            _verified[path] = _Verified((first_seq, first_prev), end, hasher, last, last_hash,
                                        index)
    out = []
    for h in heads:
        if h.seq < first_seq - 1:
            out.append(HeadCheck(h, None, f"record {h.seq} was trimmed by retention (the chain "
                                          f"now starts at {first_seq}): not checkable here"))
        elif broken and h.seq > last:
            out.append(HeadCheck(h, False, f"DOES NOT VERIFY: the chain is broken after record "
                                           f"{last}, before the page's head {h.seq} ({broken})"))
        elif h.seq > last:
            out.append(HeadCheck(h, False, f"DOES NOT VERIFY: the chain ends at record {last}, "
                                           f"the page's head is {h.seq}: records were cut off"))
        elif found.get(h.seq) != h.head_hash:
            out.append(HeadCheck(h, False, f"DOES NOT VERIFY: record {h.seq} now has hash "
                                           f"{found.get(h.seq)}: the chain was rewritten after "
                                           "the page"))
        else:
            out.append(HeadCheck(h, True, f"matches: nothing up to record {h.seq} has changed "
                                          "since the page"))
    return out


def _resume(path: Path, f: BinaryIO, start: tuple[int, str]) -> _Verified:
    """What an earlier check verified of ``path``, if its bytes are still exactly those and
    the chain still starts where it did; else nothing verified (the start of the file)."""
    with _verified_lock:
        known = _verified.get(path)
    fresh = _Verified(start, 0, hashlib.sha256(), start[0] - 1, start[1], [])
    if known is None or known.start != start:
        return fresh
    hasher, left = hashlib.sha256(), known.length
    while left:
        chunk = f.read(min(left, 1 << 20))
        if not chunk:
            return fresh
        hasher.update(chunk)
        left -= len(chunk)
    return known if hasher.digest() == known.digest.digest() else fresh


def _hash_at(f: BinaryIO, known: _Verified, seq: int) -> str:
    """The hash of record ``seq`` in a verified prefix, read from the nearest remembered
    offset before it."""
    at = max(((s, o) for s, o in known.index if s <= seq), default=(known.start[0], 0))[1]
    f.seek(at)
    for line in f:
        if line.strip():
            record = orjson.loads(line)
            if record["seq"] == seq:
                return str(record["hash"])
    return ""


def _marks(folder: Path) -> dict[str, list[str]]:
    """What the bundle says of each post beyond its capture: a verified platform signature,
    a deletion or an edit seen later."""
    marks: dict[str, list[str]] = {}
    try:
        if (folder / "platform.json").exists():
            for e in orjson.loads((folder / "platform.json").read_bytes()).get("entries", []):
                status = str(e.get("status", ""))
                if e.get("platform") == "mastodon":
                    marks.setdefault(f"mastodon:{e['uri']}", []).append(
                        "origin copy kept (unsigned)" if status.startswith("unsigned: its "
                                                                          "Activity") else status)
                    continue
                marks.setdefault(f"bluesky:{e['uri']}", []).append(
                    "signed ✓" if status == "verified" else f"signature: {status}")
        if (folder / "changes.json").exists():
            for c in orjson.loads((folder / "changes.json").read_bytes()).get("entries", []):
                if c.get("state") in ("deleted", "edited"):
                    marks.setdefault(str(c["of"]), []).append(
                        f"{c['state']} (seen {str(c.get('seen_at', ''))[:16]})")
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return marks
    return marks


def assign_clusters(
    mentions: list[MentionRow], events: list[AlertEvent], threshold: float = 0.5
) -> list[ClusterRow]:
    """Mark each mention with its cluster (:func:`pileon.evidence.clusters.cluster_members`,
    as the bundle's CSV does); the clusters, largest first."""
    members = cluster_members((m.mention for m in mentions), events, threshold)
    latest: dict[str, Any] = {}
    for event in events:
        for c in event.signals.near_duplicate_clusters:
            latest[c.template_id] = c
    texts = {m.mention["id"]: m.mention.get("text", "") for m in mentions}
    for m in mentions:
        m.cluster = members.get(m.mention["id"])
    rows = []
    for tid, c in latest.items():
        inside = [m for m in mentions if m.cluster == tid]
        rows.append(ClusterRow(tid, texts.get(tid), len(inside),
                               len({m.author_id for m in inside}), c.in_window, c.size))
    return sorted(rows, key=lambda r: -r.members)


def author_rollup(mentions: list[MentionRow]) -> list[AuthorRow]:
    """One row per account (:func:`pileon.evidence.rollup.author_rollup`)."""
    return rollup([m.mention for m in mentions],
                  {m.mention["id"]: m.cluster for m in mentions if m.cluster})


def mastodon_address(mention: dict[str, Any]) -> str | None:
    """``user@domain`` as Mastodon's import takes it (``Account address``), or None.

    A Mastodon ``acct`` is ``user`` for an account local to the server the connector reads and
    ``user@domain`` for a remote one; the domain of a local one comes from the account's URI,
    else from the post's URL (a post is served by its author's server)."""
    if mention.get("platform") != "mastodon":
        return None
    author = mention.get("author", {})
    handle = str(author.get("handle") or "").lstrip("@")
    if not handle:
        return None
    if "@" in handle:
        return handle
    for url in (author.get("id"), mention.get("url")):
        host = urlsplit(str(url or "")).hostname
        if host:
            return f"{handle}@{host}"
    return None


def bluesky_did(mention: dict[str, Any]) -> str | None:
    aid = str(mention.get("author", {}).get("id", ""))
    return aid if mention.get("platform") == "bluesky" and aid.startswith("did:") else None


def volume_chart(mentions: list[MentionRow], events: list[AlertEvent]) -> str:
    """The incident's chart (:func:`pileon.evidence.chart.volume_svg`), as the report has it."""
    return volume_svg([m.created.timestamp() for m in mentions], events)


@dataclass
class Volume:
    hours: list[tuple[datetime, int]]
    total: int
    svg: str


def person_volume(evidence_dir: Path, person: str, hours: int = 48,
                  tail_bytes: int = 16 << 20) -> Volume | None:
    """Mentions per hour over the person's last ``hours`` (from the end of their chain in the
    archive: counts only, no text), or None when the archive has no chain for them."""
    path = evidence_dir / "chains" / person / "chain.jsonl"
    if "/" in person or person.startswith(".") or not path.is_file():
        return None
    with path.open("rb") as f:
        size = f.seek(0, 2)
        f.seek(max(size - tail_bytes, 0))
        data = f.read()
    lines = data.splitlines()[1 if size > tail_bytes else 0:]
    times = []
    for line in lines:
        try:
            times.append(_dt(orjson.loads(line)["mention"]["created_at"]).timestamp())
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    if not times:
        return Volume([], 0, "")
    end = int(max(times) // 3600)
    counts = [0] * hours
    for t in times:
        i = int(t // 3600) - end + hours - 1
        if 0 <= i < hours:
            counts[i] += 1
    rows = [(datetime.fromtimestamp((end - hours + 1 + i) * 3600, UTC), c)
            for i, c in enumerate(counts)]
    width, height, top = 720, 120, max(max(counts), 1)
    bar = width / hours
    rects = "".join(
        f'<rect class="bar" x="{i * bar:.1f}" y="{height - 20 - c / top * (height - 30):.1f}" '
        f'width="{bar - 1:.1f}" height="{c / top * (height - 30):.1f}"/>'
        for i, c in enumerate(counts) if c)
    svg = (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
           f'xmlns="http://www.w3.org/2000/svg" aria-label="mentions per hour">{rects}'
           f'<text class="axis" x="0" y="{height - 4}">{rows[0][0]:%Y-%m-%d %H:00} UTC</text>'
           f'<text class="axis" x="{width}" y="{height - 4}" text-anchor="end">peak {top}/h'
           f'</text></svg>')
    return Volume(rows, sum(counts), svg)


def local(dt: datetime, tz: str) -> str:
    try:
        zone = ZoneInfo(tz)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return dt.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def utc(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _dt(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


__all__ = ["Evidence", "HeadCheck", "assign_clusters", "author_rollup", "check_heads",
           "load_evidence", "volume_chart"]
