"""The change log: a stream event delivered twice is kept once, every look again is its own
event, entries are sealed, and reading picks a bundle's mentions only."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pileon.evidence.anchors import Sealer, check_seal
from pileon.evidence.changes import ChangeLog


def test_replayed_stream_events_are_kept_once_and_looks_each_time(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    changes = ChangeLog.of_archive(tmp_path, Sealer(key))
    stream = {"of": "m1", "look": "stream: jetstream delete commit", "state": "deleted",
              "detail": "", "event": {"time_us": 5}}
    assert changes.append("amara", {**stream, "seen_at": "2026-12-05T10:00:00Z"}) is not None
    # a connector restarted and replayed the same event: received later, the same event
    assert changes.append("amara", {**stream, "seen_at": "2026-12-05T10:05:00Z"}) is None
    look = {"of": "m1", "look": "1 h after the opening", "state": "unchanged", "detail": ""}
    assert changes.append("amara", {**look, "seen_at": "2026-12-05T11:00:00Z"}) is not None
    assert changes.append("amara", {**look, "seen_at": "2026-12-06T11:00:00Z"}) is not None
    assert changes.append("amara", {"of": "m2", **{k: v for k, v in look.items()
                                                    if k != "of"}, "seen_at": "x"})
    again = ChangeLog.of_archive(tmp_path)  # a restarted archiver knows what it has
    assert again.append("amara", {**stream, "seen_at": "2026-12-07T10:00:00Z"}) is None
    kept = again.changes("amara", {"m1"})
    assert [c["look"] for c in kept] == [stream["look"], look["look"], look["look"]]
    for entry in kept:
        body = {k: v for k, v in entry.items() if k != "seal"}
        assert entry["seal"]["statement"] == {"kind": "change", **body,
                                              "key_id": entry["seal"]["statement"]["key_id"]}
        check_seal(entry["seal"], key.public_key(), [], "change")
