"""What a responder takes out of an incident: block lists for the platforms, a CSV for police
(IC3 and others) and the evidence bundle as one file.

Every text in a CSV came from a platform and is hostile: cells go through
:func:`pileon.core.csvsafe.safe_cell`.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import time
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pileon.console.evidence import MentionRow, bluesky_did, mastodon_address
from pileon.core.csvsafe import safe_cell

# Mastodon's import (Form::Import): these headers, at most 20,000 rows and 20 MB a file.
MASTODON_HEADERS = {"blocks": ["Account address"],
                    "mutes": ["Account address", "Hide notifications"]}
MASTODON_MAX_ROWS = 20_000
_ADDRESS = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*@[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,}$")
# Bluesky lexicon limits: app.bsky.graph.list name maxLength 64, description 300 graphemes.
LIST_NAME_MAX, LIST_DESCRIPTION_MAX = 64, 300


class ExportTooLarge(ValueError):
    pass


def _selected(mentions: list[MentionRow], authors: set[str] | None) -> list[MentionRow]:
    return [m for m in mentions if authors is None or m.author_id in authors]


def mastodon_csv(
    mentions: list[MentionRow], authors: set[str] | None, kind: str = "blocks"
) -> tuple[str, int, int]:
    """Mastodon's block or mute import CSV for the selected authors; returns (csv, accounts,
    accounts left out because they are not Mastodon accounts with an address)."""
    if kind not in MASTODON_HEADERS:
        raise ValueError(f"kind: blocks or mutes, not {kind!r}")
    addresses: dict[str, None] = {}
    left_out: set[str] = set()
    for m in _selected(mentions, authors):
        address = mastodon_address(m.mention)
        if address and _ADDRESS.match(address):
            addresses[address.lower()] = None
        else:
            left_out.add(m.author_id)
    if len(addresses) > MASTODON_MAX_ROWS:
        raise ExportTooLarge(f"{len(addresses)} accounts: Mastodon imports at most "
                             f"{MASTODON_MAX_ROWS} a file; select fewer authors")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(MASTODON_HEADERS[kind])
    for address in addresses:
        writer.writerow([address] if kind == "blocks" else [address, "true"])
    return buf.getvalue(), len(addresses), len(left_out)


def _tid() -> str:
    """A record key in the atproto TID form (13 base32-sortable characters)."""
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    value = (time.time_ns() // 1000) << 10 | secrets.randbelow(1024)
    return "".join(alphabet[(value >> (60 - 5 * i)) & 31] for i in range(13))


def bluesky_modlist(
    mentions: list[MentionRow], authors: set[str] | None, name: str, description: str,
    repo: str = "{your DID}",
) -> tuple[dict[str, Any], int]:
    """An ``app.bsky.graph.list`` (purpose modlist) and its ``app.bsky.graph.listitem`` records
    for the selected Bluesky authors, as ``com.atproto.repo.applyWrites`` input for ``repo``;
    returns (body, authors left out because they have no DID)."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    rkey = _tid()
    list_uri = f"at://{repo}/app.bsky.graph.list/{rkey}"
    dids: dict[str, None] = {}
    left_out: set[str] = set()
    for m in _selected(mentions, authors):
        did = bluesky_did(m.mention)
        if did:
            dids[did] = None
        else:
            left_out.add(m.author_id)
    writes: list[dict[str, Any]] = [{
        "$type": "com.atproto.repo.applyWrites#create",
        "collection": "app.bsky.graph.list", "rkey": rkey,
        "value": {"$type": "app.bsky.graph.list", "purpose": "app.bsky.graph.defs#modlist",
                  "name": name[:LIST_NAME_MAX], "description": description[:LIST_DESCRIPTION_MAX],
                  "createdAt": now},
    }]
    for did in dids:
        writes.append({
            "$type": "com.atproto.repo.applyWrites#create",
            "collection": "app.bsky.graph.listitem", "rkey": _tid(),
            "value": {"$type": "app.bsky.graph.listitem", "subject": did, "list": list_uri,
                      "createdAt": now},
        })
    return {"repo": repo, "writes": writes}, len(left_out)


POLICE_FIELDS = [
    "incident_id", "person", "seq", "platform", "post_id", "url", "author_id", "author_handle",
    "author_created_at", "text", "created_at_utc", "captured_at_utc", "matched_by",
    "in_reply_to", "quote_of", "near_duplicate_of", "mention_sha256", "record_hash",
]


def police_csv(incident_id: str, person: str, mentions: Iterable[MentionRow]) -> str:
    """Every mention with its text, author id and handle, URL, event and capture time and
    hashes: what IC3 and police reporting forms ask to be attached."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(POLICE_FIELDS)
    for m in mentions:
        men, author = m.mention, m.mention.get("author", {})
        writer.writerow([safe_cell(v) for v in (
            incident_id, person, m.seq, men.get("platform"), men.get("id"), men.get("url"),
            author.get("id"), author.get("handle"), author.get("created_at"), men.get("text"),
            men.get("created_at"), m.captured_at, men.get("matched_by"),
            men.get("in_reply_to"), men.get("quote_of"), m.cluster, m.mention_sha256,
            m.record_hash)])
    return buf.getvalue()


def bundle_zip(folder: Path) -> bytes:
    """The bundle folder as one zip (files in name order, their own modification times)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for path in sorted(p for p in folder.iterdir() if p.is_file()):
            z.write(path, f"{folder.name}/{path.name}")
    return buf.getvalue()
