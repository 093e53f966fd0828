"""Signed platform records: Bluesky posts' repo proofs fetched from a loopback PDS and PLC
directory serving repositories signed with keys made in the test, verified (signature, tree
path, hashes, text), kept in the bundle and verified again offline; forgeries fail."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import libipld
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pileon.evidence.bundle import _manifest_hash, check_bundle, export_bundle
from pileon.evidence.chain import ChainError, EvidenceLog
from pileon.evidence.platform import PlatformError, PlatformRecords, verify_car
from pileon.schema.alert import AlertEvent
from tests.factories import NOW, alert_dict, iso, mention
from tests.peers.atproto_repo import LoopbackAtproto, Repo

DID = "did:plc:author00000000000000000"


def _repo() -> Repo:
    repo = Repo(DID)
    for rkey, text in (("3kaaa", "first post"), ("3kbbb", "you are a fraud"),
                       ("3kccc", "third")):
        repo.post(rkey, text)
    return repo


def test_a_signed_record_verifies() -> None:
    repo = _repo()
    record = verify_car(repo.get_record("3kbbb"), DID, "3kbbb", repo.multibase)
    assert record["text"] == "you are a fraud"


@pytest.mark.parametrize("attempt", range(8))  # ECDSA signatures differ each time: low-S
def test_a_p256_key_works_too(attempt: int) -> None:
    repo = Repo(DID, ec.generate_private_key(ec.SECP256R1()))
    repo.post("3kaaa", "hello")

    point = repo.key.public_key().public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.CompressedPoint)
    key = libipld.encode_multibase("z", b"\x80\x24" + point)
    # the repo signs with ECDSA-SHA256 on P-256 the same way
    assert verify_car(repo.get_record("3kaaa"), DID, "3kaaa", key)["text"] == "hello"


@pytest.mark.parametrize(("forge", "message"), [
    ({"tamper": "I never said that"}, "not the one the signed tree points to"),
    ({"signer": "other"}, "signature does not verify"),
])
def test_forged_records_fail(forge: dict[str, str], message: str) -> None:
    repo = _repo()
    if forge.get("signer"):
        car = repo.get_record("3kbbb", signer=ec.generate_private_key(ec.SECP256K1()))
    else:
        car = repo.get_record("3kbbb", tamper=forge["tamper"])
    with pytest.raises(PlatformError, match=message):
        verify_car(car, DID, "3kbbb", repo.multibase)


def test_another_authors_commit_and_a_wrong_key_fail() -> None:
    repo, other = _repo(), Repo("did:plc:someoneelse000000000000")
    with pytest.raises(PlatformError, match="not this author's"):
        verify_car(repo.get_record("3kbbb"), "did:plc:someoneelse000000000000", "3kbbb",
                   repo.multibase)
    with pytest.raises(PlatformError, match="signature does not verify"):
        verify_car(repo.get_record("3kbbb"), DID, "3kbbb", other.multibase)
    with pytest.raises(PlatformError, match="not a CAR"):
        verify_car(b"not a car", DID, "3kbbb", repo.multibase)


@pytest.fixture
def peer() -> Iterator[LoopbackAtproto]:
    with LoopbackAtproto() as atproto:
        atproto.repos[DID] = _repo()
        yield atproto


def _post(rkey: str, text: str, minutes: int) -> dict[str, object]:
    return mention(at=NOW - timedelta(minutes=minutes), text=text, author_id=DID,
                   id=f"bluesky:at://{DID}/app.bsky.feed.post/{rkey}")


def test_records_are_fetched_verified_and_stored(peer: LoopbackAtproto, tmp_path: Path) -> None:
    peer.forged[(DID, "3kccc")] = {"tamper": "edited after signing"}
    records = PlatformRecords(tmp_path, plc_url=peer.url)
    assert records.fetch(DID, "3kbbb", "you are a fraud")["status"] == "verified"
    assert records.fetch(DID, "3kaaa", "something else")["status"] == \
        "verified, but the signed text differs from the captured text"
    assert records.fetch(DID, "3kccc", "third")["status"].startswith("does not verify")
    assert records.fetch(DID, "3kzzz", "gone")["status"].startswith("not found")
    assert records.stored(DID, "3kbbb")["key"] == peer.repos[DID].multibase  # type: ignore[index]


def _bundle(tmp_path: Path, peer: LoopbackAtproto) -> Path:
    log = EvidenceLog(tmp_path / "chains")
    for m in (_post("3kaaa", "first post", 9), _post("3kbbb", "you are a fraud", 5)):
        log.append(m, {"offset": 0})
    for minute in range(8):
        log.append(mention(at=NOW - timedelta(minutes=8 - minute)), {"offset": 0})
    platform = PlatformRecords(tmp_path / "platform", plc_url=peer.url)
    for r in log.records("amara"):
        platform.want(r["mention"])
    platform.drain(10)
    data = alert_dict(opened=iso(NOW))
    data["signals"]["near_duplicate_clusters"] = []
    data["signals"]["rate"]["mentions"] = 10
    data["evidence"]["from"] = iso(NOW - timedelta(minutes=10))
    return export_bundle(log, [AlertEvent.from_json(data)], tmp_path / "incident",
                         platform=platform)


def test_the_bundle_keeps_the_proofs_and_verify_checks_them_offline(
    peer: LoopbackAtproto, tmp_path: Path
) -> None:
    bundle = _bundle(tmp_path, peer)
    peer._server.shutdown()  # offline from here
    check = check_bundle(bundle)
    assert "platform records: 2 verified" in check.notes
    report = (bundle / "report.html").read_text()
    assert report.count("platform-signed record: verified<") == 2
    assert "platform record: not fetched" in report  # the other posts are not did: posts


def test_a_proof_said_verified_but_forged_is_caught(peer: LoopbackAtproto,
                                                    tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, peer)
    doc = orjson.loads((bundle / "platform.json").read_bytes())
    forged = peer.repos[DID].get_record("3kbbb", tamper="something nicer")
    doc["entries"][1]["car"] = base64.b64encode(forged).decode()
    (bundle / "platform.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    manifest = orjson.loads((bundle / "manifest.json").read_bytes())
    data = (bundle / "platform.json").read_bytes()
    manifest["files"]["platform.json"] = {"sha256": hashlib.sha256(data).hexdigest(),
                                          "bytes": len(data)}
    manifest.pop("manifest_sha256")
    manifest["manifest_sha256"] = _manifest_hash(manifest)
    (bundle / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    with pytest.raises(ChainError, match=r"platform.json: .* said verified, but"):
        check_bundle(bundle)
