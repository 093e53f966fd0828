from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pileon.schema.mention import InvalidMention, Mention, MentionValidator, Reason
from tests.factories import NOW, iso, mention

VALIDATOR = MentionValidator(
    frozenset({"amara", "sam"}),
    max_bytes=100_000,
    max_age=timedelta(days=30),
    max_future=timedelta(minutes=5),
)


def _reason(value: bytes | None, key: bytes | None = b"amara") -> Reason:
    with pytest.raises(InvalidMention) as err:
        VALIDATOR.validate(value, key, NOW)
    return err.value.reason


class TestMentionValidator:
    def test_valid_mention_is_parsed(self) -> None:
        m = VALIDATOR.validate(orjson.dumps(mention()), b"amara", NOW)
        assert m.person == "amara"
        assert m.created_at.tzinfo is not None

    def test_key_may_be_absent(self) -> None:
        assert VALIDATOR.validate(orjson.dumps(mention()), None, NOW).person == "amara"

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            (None, Reason.NOT_JSON),
            (b"{not json", Reason.NOT_JSON),
            (b"\xff\xfe\x00", Reason.NOT_UTF8),
            (b"[1, 2]", Reason.SCHEMA),
            (b"x" * 100_001, Reason.TOO_LARGE),
        ],
    )
    def test_undecodable_bytes_get_a_reason(self, value: bytes | None, reason: Reason) -> None:
        assert _reason(value) is reason

    @pytest.mark.parametrize(
        ("changes", "reason"),
        [
            ({"author": "not-an-object"}, Reason.SCHEMA),
            ({"matched_by": "vibes"}, Reason.SCHEMA),
            ({"created_at": "2026-11-01T12:00:00"}, Reason.SCHEMA),  # no timezone
            ({"id": "no-platform-prefix"}, Reason.SCHEMA),
            ({"extra_field": 1}, Reason.SCHEMA),
            ({"person": "nobody"}, Reason.UNKNOWN_PERSON),
            ({"created_at": iso(NOW + timedelta(hours=1))}, Reason.FROM_FUTURE),
            ({"created_at": iso(NOW - timedelta(days=31))}, Reason.TOO_OLD),
        ],
    )
    def test_invalid_fields_get_a_reason(self, changes: dict[str, Any], reason: Reason) -> None:
        assert _reason(orjson.dumps(mention(**changes))) is reason

    def test_missing_person_is_a_schema_error_naming_it(self) -> None:
        body = mention()
        del body["person"]
        with pytest.raises(InvalidMention, match="person"):
            VALIDATOR.validate(orjson.dumps(body), b"amara", NOW)

    def test_key_must_match_person(self) -> None:
        assert _reason(orjson.dumps(mention(person="sam")), b"amara") is Reason.KEY_MISMATCH

    def test_detail_never_quotes_the_text(self) -> None:
        private = "a very private insult"
        with pytest.raises(InvalidMention) as err:
            VALIDATOR.validate(orjson.dumps(mention(text=private, matched_by="x")), None, NOW)
        assert private not in err.value.detail

    def test_canonical_json_round_trips(self) -> None:
        m = VALIDATOR.validate(orjson.dumps(mention()), None, NOW)
        assert Mention.model_validate_json(m.to_json()) == m


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)  # orjson encodes 64-bit integers
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


class TestValidatorProperties:
    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=2000))
    def test_arbitrary_bytes_are_valid_or_get_a_reason(self, value: bytes) -> None:
        try:
            VALIDATOR.validate(value, b"amara", NOW)
        except InvalidMention as exc:
            assert exc.reason in Reason
            assert exc.detail

    @settings(max_examples=300, deadline=None)
    @given(st.dictionaries(st.sampled_from(sorted(mention())), json_values))
    def test_arbitrary_structures_are_valid_or_get_a_reason(self, data: dict[str, Any]) -> None:
        try:
            VALIDATOR.validate(orjson.dumps(data), None, NOW)
        except InvalidMention as exc:
            assert exc.reason in Reason

    @settings(max_examples=100, deadline=None)
    @given(st.sampled_from(sorted(mention())), json_values)
    def test_one_corrupted_field_never_crashes(self, field: str, value: Any) -> None:
        body = {**mention(), field: value}
        try:
            VALIDATOR.validate(orjson.dumps(body), None, NOW)
        except InvalidMention as exc:
            assert exc.reason in Reason
