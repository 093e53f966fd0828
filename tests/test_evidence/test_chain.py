from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pileon.evidence.chain import GENESIS, ChainError, EvidenceLog, verify_records
from tests.factories import mention

ORIGIN = {"topic": "mentions.clean", "partition": 0, "offset": 0}


def _log_with(tmp_path: Path, n: int) -> EvidenceLog:
    log = EvidenceLog(tmp_path)
    for _ in range(n):
        log.append(mention(), ORIGIN)
    return log


def _lines(log: EvidenceLog) -> list[bytes]:
    return log.path("amara").read_bytes().splitlines()


def _verify_lines(lines: list[bytes]) -> tuple[int, str]:
    return verify_records(orjson.loads(line) for line in lines)


class TestEvidenceLog:
    def test_records_link_to_their_predecessor(self, tmp_path: Path) -> None:
        records = list(_log_with(tmp_path, 3).records("amara"))
        assert [r["seq"] for r in records] == [1, 2, 3]
        assert records[0]["prev"] == GENESIS
        assert records[1]["prev"] == records[0]["hash"]

    def test_same_mention_id_is_appended_once(self, tmp_path: Path) -> None:
        log = EvidenceLog(tmp_path)
        m = mention()
        assert log.append(m, ORIGIN) is not None
        assert log.append(m, ORIGIN) is None
        assert len(list(log.records("amara"))) == 1

    def test_reopened_log_continues_the_chain(self, tmp_path: Path) -> None:
        _log_with(tmp_path, 2)
        log = EvidenceLog(tmp_path)
        log.append(mention(), ORIGIN)
        count, head = verify_records(log.records("amara"))
        assert count == 3
        assert head == list(log.records("amara"))[-1]["hash"]

    def test_persons_have_separate_chains(self, tmp_path: Path) -> None:
        log = EvidenceLog(tmp_path)
        log.append(mention("amara"), ORIGIN)
        log.append(mention("sam"), ORIGIN)
        assert log.path("amara") != log.path("sam")
        assert next(log.records("sam"))["seq"] == 1


class TestVerifyRecords:
    def test_intact_chain_verifies(self, tmp_path: Path) -> None:
        assert _verify_lines(_lines(_log_with(tmp_path, 5)))[0] == 5

    def test_flipped_byte_in_text_is_detected(self, tmp_path: Path) -> None:
        lines = _lines(_log_with(tmp_path, 3))
        lines[1] = lines[1].replace(b"housing", b"hoUsing")
        with pytest.raises(ChainError, match="seq 2"):
            _verify_lines(lines)

    def test_every_single_byte_flip_is_detected(self, tmp_path: Path) -> None:
        line = _lines(_log_with(tmp_path, 1))[0]
        for i in range(0, len(line), 7):
            tampered = line[:i] + bytes([line[i] ^ 0x01]) + line[i + 1 :]
            with pytest.raises((ChainError, orjson.JSONDecodeError, KeyError)):
                _verify_lines([tampered])

    def test_deleted_record_is_detected(self, tmp_path: Path) -> None:
        lines = _lines(_log_with(tmp_path, 3))
        with pytest.raises(ChainError, match="seq 3 where 2 expected"):
            _verify_lines([lines[0], lines[2]])

    def test_reordered_records_are_detected(self, tmp_path: Path) -> None:
        lines = _lines(_log_with(tmp_path, 3))
        with pytest.raises(ChainError):
            _verify_lines([lines[0], lines[2], lines[1]])

    def test_recomputed_hash_still_breaks_the_next_link(self, tmp_path: Path) -> None:
        from pileon.evidence.chain import canonical, record_hash

        lines = _lines(_log_with(tmp_path, 3))
        record = orjson.loads(lines[1])
        record["mention"]["text"] = "forged"
        import hashlib

        record["mention_sha256"] = hashlib.sha256(canonical(record["mention"])).hexdigest()
        record["hash"] = record_hash(record)
        with pytest.raises(ChainError, match="seq 3: prev"):
            _verify_lines([lines[0], orjson.dumps(record), lines[2]])
