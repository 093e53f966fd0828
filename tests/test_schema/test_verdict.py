from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from pileon.schema.mention import InvalidMention, MentionValidator, Reason
from pileon.schema.verdict import HEADER, Verdict, is_verdict

T = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _verdict(**change: object) -> Verdict:
    return Verdict.model_validate({
        "person": "amara", "incident_id": "amara-20261120T1200Z", "disposition": "coordinated",
        "start": T, "end": T + timedelta(hours=2), "at": T + timedelta(days=1), **change})


def test_round_trip_with_its_schema_version() -> None:
    v = _verdict()
    assert Verdict.from_json(v.to_json()) == v
    assert b'"schema":"pileon.verdict/v1"' in v.to_json() and v.attack
    assert not _verdict(disposition="organic").attack


def test_it_carries_no_text_handle_or_responder() -> None:
    with pytest.raises(ValidationError):
        _verdict(note="the responder's words")
    assert set(_verdict().model_dump(by_alias=True)) == {
        "schema", "person", "incident_id", "disposition", "start", "end", "at"}


def test_only_the_verdict_header_marks_a_verdict() -> None:
    assert is_verdict(Verdict.headers())
    assert not is_verdict([]) and not is_verdict(None)
    assert not is_verdict([(HEADER, b"pileon.mention/v1")])
    assert not is_verdict([("other", b"pileon.verdict/v1")])


def test_validated_like_a_mention_with_the_field_named() -> None:
    validator = MentionValidator(frozenset({"amara"}), max_bytes=10_000,
                                 max_age=timedelta(days=30), max_future=timedelta(minutes=5))
    v = _verdict()
    assert validator.validate_verdict(v.to_json(), b"amara") == v
    cases = [(_verdict(person="nobody").to_json(), b"nobody", Reason.UNKNOWN_PERSON),
             (v.to_json(), b"lee", Reason.KEY_MISMATCH),
             (v.to_json().replace(b"coordinated", b"guilty"), b"amara", Reason.SCHEMA),
             (b"{oops", b"amara", Reason.NOT_JSON)]
    for value, key, reason in cases:
        with pytest.raises(InvalidMention) as caught:
            validator.validate_verdict(value, key)
        assert caught.value.reason is reason
    with pytest.raises(InvalidMention, match="verdict: disposition"):
        validator.validate_verdict(v.to_json().replace(b"coordinated", b"guilty"), b"amara")
