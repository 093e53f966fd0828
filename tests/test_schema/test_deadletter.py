from __future__ import annotations

import hashlib

import orjson

from pileon.schema.deadletter import Origin, dead_letter, original_value
from pileon.schema.mention import Reason


class TestDeadLetter:
    def test_non_utf8_bytes_survive_the_round_trip(self) -> None:
        value = b"\xff\x00\xfe"
        letter = dead_letter(b"k", value, Reason.NOT_UTF8, "bad", Origin("t", 1, 2))
        assert original_value(letter) == value

    def test_error_class_is_recorded(self) -> None:
        letter = dead_letter(None, b"{}", Reason.PROCESSING_ERROR, "boom", Origin("t", 0, 0),
                             error_class="builtins.ZeroDivisionError")
        body = orjson.loads(letter)
        assert body["error_class"] == "builtins.ZeroDivisionError"
        assert body["key_b64"] is None
        assert body["schema"] == "pileon.dead_letter/v1"

    def test_tombstone_keeps_a_null_value(self) -> None:
        letter = dead_letter(b"k", None, Reason.NOT_JSON, "empty", Origin("t", 0, 0))
        assert original_value(letter) is None

    def test_value_too_big_for_a_record_keeps_head_digest_and_length(self) -> None:
        value = b"{" + b"x" * 2_000_000
        letter = dead_letter(b"k", value, Reason.TOO_LARGE, "big", Origin("t", 0, 7))
        body = orjson.loads(letter)
        assert len(letter) < 200_000
        assert body["value_truncated"] is True and body["value_bytes"] == len(value)
        assert body["value_sha256"] == hashlib.sha256(value).hexdigest()
        assert value.startswith(original_value(letter) or b"-")
