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

import csv
import hashlib
import html
import io
import math
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from pileon import __version__
from pileon.evidence.chain import ChainError, EvidenceLog, verify_records
from pileon.schema.alert import AlertEvent
from pileon.schema.mention import post_key

_FILES = ("incident.json", "mentions.jsonl", "mentions.csv", "report.html")
_CSV_FIELDS = [
    "seq", "post_id", "platform", "url", "author_id", "author_handle", "author_created_at",
    "created_at_utc", "captured_at_utc", "matched_by", "in_reply_to", "mention_sha256",
    "record_hash", "reported_to_platform",
]


def export_bundle(
    log: EvidenceLog,
    events: list[AlertEvent],
    out_dir: Path,
    lookback_seconds: float = 3600.0,
) -> Path:
    """Write the bundle of one incident (its alert events, oldest first) into ``out_dir``."""
    person = events[0].person
    opened = _ts(events[0].opened_at)
    segment = _segment(list(log.records(person)), opened - lookback_seconds)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "incident.json").write_bytes(
        orjson.dumps([e.to_dict() for e in events], option=orjson.OPT_INDENT_2))
    (out_dir / "mentions.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in segment))
    (out_dir / "mentions.csv").write_text(_csv(segment), encoding="utf-8")
    (out_dir / "report.html").write_text(_html(events, segment), encoding="utf-8")
    manifest = {
        "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "generator": f"pileon {__version__}",
        "incident_id": events[0].incident_id,
        "person": person,
        "files": {name: _sha256(out_dir / name) for name in _FILES},
        "chain": {
            "records": len(segment),
            "first_seq": segment[0]["seq"] if segment else None,
            "first_prev": segment[0]["prev"] if segment else None,
            "head_hash": segment[-1]["hash"] if segment else None,
        },
    }
    (out_dir / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return out_dir


def verify_bundle(bundle: Path) -> int:
    """Check every file hash and the chain segment; return the record count or raise."""
    manifest = orjson.loads((bundle / "manifest.json").read_bytes())
    for name, digest in manifest["files"].items():
        if _sha256(bundle / name) != digest:
            raise ChainError(f"{name}: SHA-256 does not match the manifest")
    chain = manifest["chain"]
    records = [orjson.loads(line) for line in (bundle / "mentions.jsonl").read_bytes().splitlines()]
    if not records:
        return 0
    count, head = verify_records(records, chain["first_prev"], chain["first_seq"])
    if count != chain["records"] or head != chain["head_hash"]:
        raise ChainError("chain segment does not end at the manifest's head hash")
    return count


def _segment(records: list[dict[str, Any]], since: float) -> list[dict[str, Any]]:
    """The contiguous run of records from the first mention posted at or after ``since``."""
    for i, record in enumerate(records):
        if _ts(record["mention"]["created_at"]) >= since:
            return records[i:]
    return []


def _csv(records: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_CSV_FIELDS)
    writer.writeheader()
    for r in records:
        m, author = r["mention"], r["mention"].get("author", {})
        writer.writerow(
            {
                "seq": r["seq"], "post_id": m["id"], "platform": m["platform"],
                "url": m.get("url", ""), "author_id": author.get("id", ""),
                "author_handle": author.get("handle", ""),
                "author_created_at": author.get("created_at", ""),
                "created_at_utc": m["created_at"], "captured_at_utc": r["captured_at"],
                "matched_by": m["matched_by"], "in_reply_to": m.get("in_reply_to", ""),
                "mention_sha256": r["mention_sha256"], "record_hash": r["hash"],
                "reported_to_platform": "",
            }
        )
    return buf.getvalue()


def _html(events: list[AlertEvent], records: list[dict[str, Any]]) -> str:
    last = events[-1]
    per_minute = Counter(int(_ts(r["mention"]["created_at"]) // 60) for r in records)
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in _signal_rows(last, records)
    )
    esc = html.escape
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>pileon incident {esc(last.incident_id)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}}
td{{padding:.2rem .8rem;border-bottom:1px solid #ddd}}.note{{color:#555}}</style></head><body>
<h1>Incident {esc(last.incident_id)}</h1>
<p>Person <b>{esc(last.person)}</b> · severity <b>{esc(last.severity)}</b> ·
opened {esc(last.opened_at)} · assessment: <b>{esc(last.assessment)}</b></p>
<p class="note">pileon shows evidence, not a verdict: organic criticism can look like a
pile-on. A person decides.</p>
<h2>Mentions per minute (event time)</h2>{_svg_chart(per_minute)}
<h2>Signals at the last transition ({esc(last.transition)})</h2><table>{rows}</table>
<p>{len(records)} mentions in this bundle; verify with <code>pileon verify &lt;folder&gt;</code>.
</p></body></html>
"""


def _signal_rows(event: AlertEvent, records: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    s = event.signals
    rate = s.rate
    rows: list[tuple[str, Any]] = [
        (f"mentions in {rate.window_minutes:.0f} min", f"{rate.mentions} "
         f"(baseline {rate.expected}, ×{rate.ratio})"),
        ("pile-on score (−log10 p)", rate.score),
        ("distinct authors", f"{s.distinct_authors.value} "
         f"(baseline {s.distinct_authors.baseline})"),
        ("young-account share", f"{s.young_account_share.value:.0%} "
         f"(baseline {s.young_account_share.baseline:.0%})"),
        ("coordination indicators", ", ".join(event.indicators) or "none"),
    ]
    focus = s.reply_focus
    if focus.mentions and focus.post_key:
        rows.append(("answering one post", f"{focus.mentions} ({focus.share:.0%}, "
                     f"usually {focus.usual:.0%}): {_post(records, focus.post_key)}"))
    for c in s.near_duplicate_clusters:
        rows.append((f"near-duplicate cluster {c.template_id}",
                     f"{c.in_window} in window, {c.size} in 24 h, "
                     f"{c.distinct_authors} authors"))
    return rows


def _post(records: list[dict[str, Any]], key: str) -> str:
    """The URI of the post with ``key``, from the mentions that answer it."""
    for r in records:
        m = r["mention"]
        for uri in (m.get("in_reply_to"), m.get("quote_of")):
            if uri and f"{post_key(uri):08x}" == key:
                return str(uri)
    return f"post {key} (no mention in this bundle answers it)"


def _svg_chart(per_minute: Counter[int]) -> str:
    if not per_minute:
        return "<p>no mentions</p>"
    first, last = min(per_minute), max(per_minute)
    n = last - first + 1
    top = max(per_minute.values())
    width, height = 800, 200
    bar = width / n
    bars = "".join(
        f'<rect x="{(m - first) * bar:.1f}" y="{height - c / top * height:.1f}" '
        f'width="{max(bar - 0.5, 0.5):.1f}" height="{c / top * height:.1f}" fill="#c0392b"/>'
        for m, c in per_minute.items()
    )
    start = datetime.fromtimestamp(first * 60, UTC).strftime("%Y-%m-%d %H:%M")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 20}">'
        f"{bars}<text x='0' y='{height + 15}' font-size='12'>{start} UTC</text>"
        f"<text x='{width - 120}' y='{height + 15}' font-size='12'>peak {top}/min "
        f"({math.ceil(n)} min)</text></svg>"
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
