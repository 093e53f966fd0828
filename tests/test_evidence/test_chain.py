from __future__ import annotations

import os
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


class TestGroupCommit:
    def test_a_batch_is_the_chain_one_append_at_a_time_would_write(self, tmp_path: Path) -> None:
        mentions = [mention("amara"), mention("sam"), mention("amara"), mention("amara")]
        one, many = EvidenceLog(tmp_path / "one"), EvidenceLog(tmp_path / "many")
        for m in mentions:
            one.append(m, ORIGIN, captured_at=0.0)
        written = many.append_many([(m, ORIGIN) for m in mentions], captured_at=0.0)
        assert sorted(r["hash"] for r in written) == sorted(
            r["hash"] for p in ("amara", "sam") for r in one.records(p))
        for person in ("amara", "sam"):
            assert many.path(person).read_bytes() == one.path(person).read_bytes()
            verify_records(many.records(person))

    def test_one_fsync_per_person_per_batch(self, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
        log = EvidenceLog(tmp_path)
        log.append_many([(mention("amara"), ORIGIN)])  # the heads exist: only appends now
        calls: list[int] = []
        real = os.fsync
        monkeypatch.setattr("pileon.evidence.chain.os.fsync",
                            lambda fd: (calls.append(fd), real(fd))[1])
        log.append_many([(mention(p), ORIGIN) for p in ["amara", "sam"] * 50])
        assert len(calls) == 2
        assert [len(list(log.records(p))) for p in ("amara", "sam")] == [51, 50]

    def test_repeated_ids_in_a_batch_are_written_once(self, tmp_path: Path) -> None:
        log = EvidenceLog(tmp_path)
        first, second = mention(), mention()
        log.append(first, ORIGIN)
        written = log.append_many([(first, ORIGIN), (second, ORIGIN), (second, ORIGIN)])
        assert [r["mention"]["id"] for r in written] == [second["id"]]
        assert verify_records(log.records("amara"))[0] == 2

    def test_a_failed_write_leaves_the_chain_to_be_continued(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        log = EvidenceLog(tmp_path)
        log.append(mention(), ORIGIN)

        def no_space(fd: int) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr("pileon.evidence.chain.os.fsync", no_space)
        with pytest.raises(OSError):
            log.append_many([(mention(), ORIGIN), (mention(), ORIGIN)])
        monkeypatch.undo()
        # Written but not known durable: the retry (the offsets were not committed) skips
        # what reached the file and chains on from it.
        log.append(mention(), ORIGIN)
        count, _ = verify_records(log.records("amara"))
        assert count == 4


class TestTornWrite:
    def test_a_torn_tail_is_set_aside_and_the_chain_goes_on(self, tmp_path: Path) -> None:
        _log_with(tmp_path, 3)
        path = EvidenceLog(tmp_path).path("amara")
        whole = path.read_bytes()
        torn = orjson.dumps({"seq": 4, "prev": "ab"})[:-5]  # a crash in mid-write
        path.write_bytes(whole + torn)
        log = EvidenceLog(tmp_path)
        assert log.head("amara")[0] == 3
        assert path.read_bytes() == whole
        assert (path.parent / f"torn-{len(whole)}.bin").read_bytes() == torn
        log.append(mention(), ORIGIN)
        assert verify_records(log.records("amara"))[0] == 4

    def test_a_whole_record_without_its_newline_is_set_aside_too(self, tmp_path: Path) -> None:
        # Its offset was never committed (no fsync returned), so it is read again; kept, the
        # next record would be written onto its line.
        log = _log_with(tmp_path, 2)
        path = log.path("amara")
        lines = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(lines[0] + lines[1].rstrip(b"\n"))
        reopened = EvidenceLog(tmp_path)
        assert reopened.head("amara")[0] == 1
        assert (path.parent / f"torn-{len(lines[0])}.bin").exists()
        reopened.append(mention(), ORIGIN)
        assert verify_records(reopened.records("amara"))[0] == 2

    def test_a_reader_sees_whole_records_only(self, tmp_path: Path) -> None:
        # A reader in another thread or process while a poll's records are being written.
        log = _log_with(tmp_path, 2)
        path = log.path("amara")
        whole = path.read_bytes()
        path.write_bytes(whole + whole.splitlines(keepends=True)[0][:40])
        assert [r["seq"] for r in EvidenceLog(tmp_path).records("amara")] == [1, 2]
        assert path.read_bytes().startswith(whole)  # reading does not set anything aside

    def test_retention_trims_a_chain_with_a_torn_tail(self, tmp_path: Path) -> None:
        _log_with(tmp_path, 3)
        path = EvidenceLog(tmp_path).path("amara")
        path.write_bytes(path.read_bytes() + b'{"seq": 4, "pr')
        log = EvidenceLog(tmp_path)
        assert log.trim("amara", lambda r: r["seq"] >= 2, reason="test") == 1
        first_seq, first_prev = log.start("amara")
        assert verify_records(log.records("amara"), first_prev, first_seq)[0] == 2

    def test_a_file_with_no_whole_line_starts_the_chain_again(self, tmp_path: Path) -> None:
        path = EvidenceLog(tmp_path).path("amara")
        path.parent.mkdir(parents=True)
        path.write_bytes(b'{"seq": 1, "pr')
        log = EvidenceLog(tmp_path)
        assert log.head("amara") == (0, GENESIS)
        assert path.read_bytes() == b""
        assert (path.parent / "torn-0.bin").read_bytes() == b'{"seq": 1, "pr'


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
