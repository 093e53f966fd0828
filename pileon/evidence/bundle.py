"""Incident evidence bundles: what a lawyer, the police or a platform's trust team receives.

A bundle folder holds ``incident.json`` (the alert events, i.e. the signals and why they
fired), ``mentions.jsonl`` (a contiguous run of the person's hash chain, raw payloads included),
``mentions.csv`` (one row per post with URL, ids, UTC post and capture times, SHA-256: the
fields evidence guides such as PEN America's and the Berkeley Protocol ask for),
``report.html`` (self-contained, with a volume chart) and ``manifest.json`` with the SHA-256 of
every file and the chain segment's first ``prev`` and head hash. :func:`verify_bundle`
re-checks all of it.
"""

from __future__ import annotations

import base64
import bisect
import csv
import hashlib
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from pileon import __version__
from pileon.core.csvsafe import safe_cell
from pileon.core.times import epoch
from pileon.evidence.anchors import Sealer, check_seal, key_id, parse_roots, raw_public
from pileon.evidence.chain import ChainError, EvidenceLog, verify_records
from pileon.evidence.changes import ChangeLog
from pileon.evidence.clusters import cluster_members
from pileon.evidence.platform import PlatformError, PlatformRecords, check_entries
from pileon.evidence.report import report_html
from pileon.schema.alert import ALERT_SCHEMA, AlertEvent

FORMAT = "pileon.bundle/v2"
# The version of render(): verify derives the CSV and report again only for bundles made by
# this one (an older bundle's files are still checked by hash and seal, and a note says so).
RENDERER = 2
_FILES = ("incident.json", "mentions.jsonl", "mentions.csv", "report.html")
_CSV_FIELDS = [
    "seq", "post_id", "platform", "url", "author_id", "author_handle", "author_created_at",
    "text", "created_at_utc", "captured_at_utc", "matched_by", "in_reply_to", "quote_of",
    "near_duplicate_of", "mention_sha256", "record_hash",
]


def export_bundle(
    log: EvidenceLog,
    events: list[AlertEvent],
    out_dir: Path,
    lookback_seconds: float = 3600.0,
    cluster_threshold: float = 0.5,
    sealer: Sealer | None = None,
    checkpoints: Sequence[dict[str, Any]] = (),
    platform: PlatformRecords | None = None,
    changes: ChangeLog | None = None,
) -> Path:
    """Write the bundle of one incident (its alert events, oldest first) into ``out_dir``;
    with a ``sealer``, sealed, with the person's ``checkpoints`` that fall in the segment."""
    person = events[0].person
    opened = epoch(events[0].opened_at)
    segment = _segment(list(log.records(person)), opened - lookback_seconds)
    derivation = {"lookback_seconds": lookback_seconds, "cluster_threshold": cluster_threshold,
                  "renderer": RENDERER}
    entries = None
    if platform is not None:
        entries = [e for r in segment if (e := platform.stored_for(r["mention"])) is not None]
    found = None
    if changes is not None:
        found = changes.changes(person, {r["mention"]["id"] for r in segment})
    files = render(events, segment, derivation, entries, found)
    if found is not None:
        files["changes.json"] = orjson.dumps({"entries": found}, option=orjson.OPT_INDENT_2)
    if entries is not None:
        files["platform.json"] = orjson.dumps({"plc_url": platform.plc_url if platform else None,
                                               "entries": entries}, option=orjson.OPT_INDENT_2)
    if sealer is not None:
        first, last = (segment[0]["seq"], segment[-1]["seq"]) if segment else (0, 0)
        files["anchors.json"] = orjson.dumps(
            {**sealer.public_record(), "checkpoints": [
                c for c in checkpoints if first <= c["statement"]["seq"] <= last]},
            option=orjson.OPT_INDENT_2)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "generator": f"pileon {__version__}",
        "incident_id": events[0].incident_id,
        "person": person,
        "derivation": derivation,
        "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                  for name, data in files.items()},
        "chain": {
            "records": len(segment),
            "first_seq": segment[0]["seq"] if segment else None,
            "last_seq": segment[-1]["seq"] if segment else None,
            "first_prev": segment[0]["prev"] if segment else None,
            "head_hash": segment[-1]["hash"] if segment else None,
        },
    }
    manifest["manifest_sha256"] = _manifest_hash(manifest)
    if sealer is not None:
        chain = manifest["chain"]
        manifest["seal"] = sealer.seal({
            "kind": "bundle", "incident_id": manifest["incident_id"], "person": person,
            "manifest_sha256": manifest["manifest_sha256"], "last_seq": chain["last_seq"],
            "head_hash": chain["head_hash"], "at": manifest["generated_at"]})
    (out_dir / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return out_dir


def render(events: list[AlertEvent], segment: list[dict[str, Any]],
           derivation: dict[str, Any],
           platform: list[dict[str, Any]] | None = None,
           changes: list[dict[str, Any]] | None = None) -> dict[str, bytes]:
    """Every file of a bundle from its alert events and chain segment: deterministic, so
    ``verify`` derives them again and compares byte for byte."""
    members = cluster_members((r["mention"] for r in segment), events,
                              float(derivation["cluster_threshold"]))
    return {
        "incident.json": orjson.dumps([e.to_dict() for e in events],
                                      option=orjson.OPT_INDENT_2),
        "mentions.jsonl": b"".join(orjson.dumps(r) + b"\n" for r in segment),
        "mentions.csv": _csv(segment, members).encode("utf-8"),
        "report.html": report_html(events, segment, members, platform,
                                   changes).encode("utf-8"),
    }


class BundleCheck(NamedTuple):
    records: int
    notes: list[str]


def verify_bundle(bundle: Path) -> int:
    """Check a bundle; return its record count or raise :class:`ChainError` (one line)."""
    return check_bundle(bundle).records


def check_bundle(bundle: Path, key: Ed25519PublicKey | None = None,
                 tsa_roots: list[x509.Certificate] | None = None) -> BundleCheck:
    """Every check ``pileon verify`` makes, with notes on files that are not the bundle's.

    Version 2: the manifest is intact (its own hash, canonical bytes) and commits to every
    file (hash and size), the chain segment (records, first and last sequence numbers, the
    hash before it and its head); the segment's records chain; ``incident.json`` holds this
    incident's alert events; ``mentions.csv`` and ``report.html`` are exactly what the
    events and the records give; every window an alert counted is in the segment. Version 1
    bundles (before 2026-12) get the checks they allow, and a note saying so.

    A sealed bundle (:mod:`pileon.evidence.anchors`) also has its seal and checkpoints
    checked: signatures against ``key`` (else the key the bundle carries, whose id is
    printed), timestamps against ``tsa_roots`` (else the roots it carries); a checkpoint past
    the segment's end means records were cut off. With ``key`` given, an unsealed bundle
    fails."""
    if not bundle.is_dir():
        raise ChainError(f"{bundle}: not a folder")
    manifest_bytes = _read(bundle, "manifest.json")
    manifest = _json(manifest_bytes, "manifest.json")
    if not isinstance(manifest, dict):
        raise ChainError("manifest.json: not a JSON object")
    if manifest.get("format") != FORMAT:
        return _check_v1(bundle, manifest)
    if manifest_bytes != orjson.dumps(manifest, option=orjson.OPT_INDENT_2):
        raise ChainError("manifest.json: not in its canonical form (edited by hand?)")
    body = {k: v for k, v in manifest.items() if k not in ("manifest_sha256", "seal")}
    if manifest.get("manifest_sha256") != _manifest_hash(body):
        raise ChainError("manifest.json: its content does not match manifest_sha256")
    try:
        files, chain = manifest["files"], manifest["chain"]
        derivation = manifest["derivation"]
        incident_id, person = manifest["incident_id"], manifest["person"]
        float(derivation["cluster_threshold"]), float(derivation["lookback_seconds"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ChainError(f"manifest.json: missing or bad field {exc}") from None
    sealed = "seal" in manifest
    names: tuple[str, ...] = (*_FILES, "anchors.json") if sealed else _FILES
    for optional in ("platform.json", "changes.json"):
        if isinstance(files, dict) and optional in files:
            names = (*names, optional)
    if not isinstance(files, dict) or set(files) != set(names):
        raise ChainError(f"manifest.json: files must be exactly {', '.join(names)} "
                         f"(it lists {', '.join(sorted(files)) or 'none'})")
    if key is not None and not sealed:
        raise ChainError("manifest.json: not sealed, but a key to check it with was given")
    data = {}
    for name in names:
        data[name] = _read(bundle, name)
        entry = files[name]
        if not isinstance(entry, dict) or len(data[name]) != entry.get("bytes") or \
                hashlib.sha256(data[name]).hexdigest() != entry.get("sha256"):
            raise ChainError(f"{name}: SHA-256 or size does not match the manifest")
    records = _records(data["mentions.jsonl"])
    _verify_segment(records, chain)
    events = _events(data["incident.json"], incident_id, person)
    for r in records:
        if r["mention"].get("person") != person:
            raise ChainError(f"mentions.jsonl seq {r['seq']}: a mention of another person")
    platform_doc = _json(data["platform.json"], "platform.json") if "platform.json" in data \
        else None
    entries = platform_doc.get("entries", []) if isinstance(platform_doc, dict) else None
    changes_doc = _json(data["changes.json"], "changes.json") if "changes.json" in data \
        else None
    changes = changes_doc.get("entries", []) if isinstance(changes_doc, dict) else None
    expected = render(events, records, derivation, entries, changes)
    derived = ("mentions.csv", "report.html") if derivation.get("renderer") == RENDERER else ()
    for name in ("incident.json", "mentions.jsonl", *derived):
        if expected[name] != data[name]:
            raise ChainError(f"{name}: does not match what the alert events and the chain "
                             "records give (edited after export?)")
    _check_coverage(events, records)
    platform_notes: list[str] = []
    if entries is not None:
        texts = {r["mention"]["id"]: r["mention"].get("text", "") for r in records}
        try:
            platform_notes = check_entries(entries, texts)
        except PlatformError as exc:
            raise ChainError(f"platform.json: {exc}") from None
    notes = _check_anchors(manifest, data["anchors.json"], records, key, tsa_roots) \
        if sealed else ["not sealed: the archiver had no signing key (evidence.signing_key_file)"]
    notes += platform_notes
    if not derived:
        notes.append(f"made by renderer {derivation.get('renderer')}, this pileon renders "
                     f"with {RENDERER}: the CSV and report were checked by hash, not derived")
    notes += [f"{p.name}: not part of the bundle (not checked)"
              for p in sorted(bundle.iterdir()) if p.name not in (*names, "manifest.json")]
    return BundleCheck(len(records), notes)


def _check_anchors(manifest: dict[str, Any], data: bytes, records: list[dict[str, Any]],
                   key: Ed25519PublicKey | None, tsa_roots: list[x509.Certificate] | None
                   ) -> list[str]:
    anchors = _json(data, "anchors.json")
    if not isinstance(anchors, dict):
        raise ChainError("anchors.json: not a JSON object")
    try:
        carried = Ed25519PublicKey.from_public_bytes(base64.b64decode(anchors["public_key"]))
    except (KeyError, TypeError, ValueError):
        raise ChainError("anchors.json: no Ed25519 public key") from None
    if key is not None and raw_public(key) != raw_public(carried):
        raise ChainError(f"the bundle is sealed by key {key_id(carried)}, not by the key "
                         f"given ({key_id(key)})")
    roots = tsa_roots if tsa_roots is not None else parse_roots(anchors.get("tsa_roots", []))
    notes = check_seal(manifest["seal"], carried, roots, "seal")
    statement = manifest["seal"]["statement"]
    chain = manifest["chain"]
    expected = {"kind": "bundle", "incident_id": manifest["incident_id"],
                "person": manifest["person"], "manifest_sha256": manifest["manifest_sha256"],
                "last_seq": chain["last_seq"], "head_hash": chain["head_hash"]}
    for field, value in expected.items():
        if statement.get(field) != value:
            raise ChainError(f"seal: it seals {field} {statement.get(field)!r}, the bundle has "
                             f"{value!r}")
    by_seq = {r["seq"]: r["hash"] for r in records}
    last = max(by_seq, default=0)
    checkpoints = anchors.get("checkpoints", [])
    for n, cp in enumerate(checkpoints, start=1):
        notes += check_seal(cp, carried, roots, f"checkpoint {n}")
        st = cp["statement"]
        if st.get("person") != manifest["person"]:
            raise ChainError(f"checkpoint {n}: of another person")
        seq = st.get("seq")
        if isinstance(seq, int) and seq > last:
            raise ChainError(f"mentions.jsonl: records after seq {last} were cut off: "
                             f"checkpoint {n} (signed {st.get('at')}) covers seq {seq}")
        if seq not in by_seq or by_seq[seq] != st.get("head_hash"):
            raise ChainError(f"checkpoint {n}: seq {seq} does not have the head hash it sealed")
    who = ("the key given" if key is not None else
           "the key the bundle carries: compare its id with the one your newsroom publishes")
    notes.insert(0, f"sealed by key {key_id(carried)} ({who}); {len(checkpoints)} "
                    "checkpoint(s) in the segment")
    return notes


def _check_v1(bundle: Path, manifest: dict[str, Any]) -> BundleCheck:
    try:
        files, chain = manifest["files"], manifest["chain"]
    except KeyError as exc:
        raise ChainError(f"manifest.json: missing field {exc}") from None
    if not isinstance(files, dict) or not set(_FILES) <= set(files):
        raise ChainError(f"manifest.json: files must list {', '.join(_FILES)}")
    for name in _FILES:
        if hashlib.sha256(_read(bundle, name)).hexdigest() != files[name]:
            raise ChainError(f"{name}: SHA-256 does not match the manifest")
    records = _records(_read(bundle, "mentions.jsonl"))
    if records or chain.get("records"):
        if len(records) != chain.get("records"):
            raise ChainError(f"mentions.jsonl: {len(records)} records where the manifest "
                             f"says {chain.get('records')}")
        _count, head = verify_records(records, chain["first_prev"], chain["first_seq"])
        if head != chain["head_hash"]:
            raise ChainError("chain segment does not end at the manifest's head hash")
    return BundleCheck(len(records), ["format v1 (made before 2026-12): files and chain "
                                      "checked; the CSV and report are not re-derived"])


def _read(bundle: Path, name: str) -> bytes:
    try:
        return (bundle / name).read_bytes()
    except FileNotFoundError:
        raise ChainError(f"{name}: missing") from None
    except OSError as exc:
        raise ChainError(f"{name}: cannot be read ({exc.strerror})") from None


def _json(data: bytes, name: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ChainError(f"{name}: not JSON ({exc})") from None


def _records(data: bytes) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    if not data:
        return records
    for n, line in enumerate(data.split(b"\n")[:-1] if data.endswith(b"\n") else
                             data.split(b"\n"), start=1):
        record = _json(line, f"mentions.jsonl line {n}")
        if not isinstance(record, dict) or not isinstance(record.get("mention"), dict):
            raise ChainError(f"mentions.jsonl line {n}: not a chain record")
        records.append(record)
    return records


def _verify_segment(records: list[dict[str, Any]], chain: Any) -> None:
    if not isinstance(chain, dict):
        raise ChainError("manifest.json: chain is not an object")
    if len(records) != chain.get("records"):
        raise ChainError(f"mentions.jsonl: {len(records)} records where the manifest says "
                         f"{chain.get('records')}")
    if not records:
        if any(chain.get(k) is not None for k in ("first_seq", "last_seq", "head_hash")):
            raise ChainError("mentions.jsonl: empty, but the manifest names a chain segment")
        return
    try:
        _count, head = verify_records(records, chain["first_prev"], chain["first_seq"])
    except KeyError as exc:
        raise ChainError(f"mentions.jsonl: a record lacks {exc}") from None
    if records[-1]["seq"] != chain.get("last_seq") or head != chain.get("head_hash"):
        raise ChainError("mentions.jsonl: the chain segment does not end at the manifest's "
                         "last sequence number and head hash")


def _events(data: bytes, incident_id: str, person: str) -> list[AlertEvent]:
    raw = _json(data, "incident.json")
    if not isinstance(raw, list) or not raw:
        raise ChainError("incident.json: not a list of alert events")
    try:
        events = [AlertEvent.from_json(e) for e in raw]
    except (ValidationError, TypeError) as exc:
        raise ChainError(f"incident.json: not {ALERT_SCHEMA} events "
                         f"({str(exc).splitlines()[0]})") from None
    for e in events:
        if e.incident_id != incident_id or e.person != person:
            raise ChainError(f"incident.json: an event of {e.incident_id} ({e.person}) in the "
                             f"bundle of {incident_id} ({person})")
    return events


def _check_coverage(events: list[AlertEvent], records: list[dict[str, Any]]) -> None:
    """Each transition counted some mentions in the window before it: they must be here."""
    times = sorted(epoch(r["mention"]["created_at"]) for r in records)
    for e in events:
        rate, end = e.signals.rate, epoch(e.at)
        start = end - rate.window_minutes * 60
        held = bisect.bisect_left(times, end) - bisect.bisect_left(times, start)
        if e.firing and held < rate.mentions:
            raise ChainError(f"mentions.jsonl: the {e.transition} alert at {e.at} counted "
                             f"{rate.mentions} mentions in the {rate.window_minutes:g} minutes "
                             f"before it; the bundle holds {held} there")


def _manifest_hash(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _segment(records: list[dict[str, Any]], since: float) -> list[dict[str, Any]]:
    """The contiguous run of records from the first mention posted at or after ``since``."""
    for i, record in enumerate(records):
        if epoch(record["mention"]["created_at"]) >= since:
            return records[i:]
    return []


def _csv(records: list[dict[str, Any]], members: dict[str, str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(_CSV_FIELDS)
    for r in records:
        m, author = r["mention"], r["mention"].get("author", {})
        writer.writerow([safe_cell(v) for v in (
            r["seq"], m["id"], m["platform"], m.get("url"), author.get("id"),
            author.get("handle"), author.get("created_at"), m.get("text"), m["created_at"],
            r["captured_at"], m["matched_by"], m.get("in_reply_to"), m.get("quote_of"),
            members.get(m["id"]), r["mention_sha256"], r["hash"])])
    return buf.getvalue()
