"""Sealed bundles: an Ed25519 seal over the manifest and checkpoints of the chain, each
timestamped by a local RFC 3161 authority (``openssl ts`` on loopback), checked offline by
``verify`` and by ``openssl ts -verify``; forgeries that re-derive and re-hash everything are
caught without the key."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pileon.cli.main import main
from pileon.evidence.anchors import (
    Checkpoints,
    Sealer,
    SigningKeyError,
    TimestampClient,
    load_signing_key,
    raw_public,
)
from pileon.evidence.bundle import _manifest_hash, check_bundle, export_bundle, render
from pileon.evidence.chain import ChainError, EvidenceLog, canonical
from pileon.schema.alert import AlertEvent
from tests.factories import NOW, alert_dict, iso, mention
from tests.peers.tsa import LocalTSA


@pytest.fixture(scope="module")
def tsa() -> Iterator[LocalTSA]:
    with LocalTSA() as authority:
        yield authority


def _event() -> AlertEvent:
    data = alert_dict(opened=iso(NOW))
    data["signals"]["near_duplicate_clusters"] = []
    data["signals"]["rate"]["mentions"] = 10
    return AlertEvent.from_json(data)


def _sealed_bundle(root: Path, sealer: Sealer) -> Path:
    log = EvidenceLog(root / "chains")
    checkpoints = Checkpoints(root / "checkpoints", sealer)
    origin = {"topic": "mentions.clean", "partition": 0, "offset": 0}
    for minute in range(30):
        log.append(mention(at=NOW - timedelta(minutes=30 - minute)), origin)
        if minute in (9, 19):
            checkpoints.add("amara", *log.head("amara"))
    checkpoints.add("amara", *log.head("amara"))
    return export_bundle(log, [_event()], root / "incident", sealer=sealer,
                         checkpoints=checkpoints.records("amara"))


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def bundle(tmp_path: Path, tsa: LocalTSA, key: Ed25519PrivateKey) -> Path:
    return _sealed_bundle(tmp_path, Sealer(key, TimestampClient([tsa.url], ca_files=[tsa.ca])))


def _write_public(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    path = tmp_path / "archiver.pub"
    path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


def test_a_sealed_bundle_verifies_with_its_timestamps(bundle: Path,
                                                      key: Ed25519PrivateKey) -> None:
    check = check_bundle(bundle, key.public_key())
    assert check.records == 30
    text = "\n".join(check.notes)
    assert "sealed by key" in text and "3 checkpoint(s)" in text
    assert text.count("timestamped by http://127.0.0.1:") == 4  # the seal and 3 checkpoints
    assert "(verified)" in text


def test_openssl_agrees_with_every_token(bundle: Path, tsa: LocalTSA) -> None:
    manifest = orjson.loads((bundle / "manifest.json").read_bytes())
    anchors = orjson.loads((bundle / "anchors.json").read_bytes())
    for sealed in [manifest["seal"], *anchors["checkpoints"]]:
        [stamp] = sealed["timestamps"]
        done = tsa.verify_with_openssl(canonical(sealed["statement"]),
                                       base64.b64decode(stamp["token"]))
        assert done.returncode == 0 and "Verification: OK" in done.stdout, done.stderr
        wrong = tsa.verify_with_openssl(b"other bytes", base64.b64decode(stamp["token"]))
        assert wrong.returncode != 0


def _forge(bundle: Path, edit: Any) -> None:
    """Edit the events, derive every file again and re-hash the manifest: all one can do
    without the key."""
    events = orjson.loads((bundle / "incident.json").read_bytes())
    edit(events)
    manifest = orjson.loads((bundle / "manifest.json").read_bytes())
    records = [orjson.loads(x) for x in (bundle / "mentions.jsonl").read_bytes().splitlines()]
    files = render([AlertEvent.from_json(e) for e in events], records, manifest["derivation"])
    for name, data in files.items():
        (bundle / name).write_bytes(data)
        manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(),
                                   "bytes": len(data)}
    seal = manifest.pop("seal")
    manifest.pop("manifest_sha256")
    manifest["manifest_sha256"] = _manifest_hash(manifest)
    manifest["seal"] = seal
    (bundle / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))


def test_a_consistent_forgery_is_caught_by_the_seal(bundle: Path) -> None:
    def organic(events: list[dict[str, Any]]) -> None:
        events[0]["assessment"] = "looks organic"

    _forge(bundle, organic)
    with pytest.raises(ChainError, match="seal: it seals manifest_sha256"):
        check_bundle(bundle)


def test_a_bundle_sealed_again_with_another_key_fails_against_the_published_key(
    tmp_path: Path, tsa: LocalTSA, key: Ed25519PrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    forged = _sealed_bundle(tmp_path / "forged", Sealer(Ed25519PrivateKey.generate()))
    published = _write_public(tmp_path, key)
    assert main(["verify", str(forged), "--key", str(published)]) == 2
    err = capsys.readouterr().err
    assert "the bundle is sealed by key" in err and "not by the key given" in err


def test_an_unsealed_bundle_fails_when_a_key_is_expected(
    tmp_path: Path, key: Ed25519PrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    log = EvidenceLog(tmp_path / "chains")
    for minute in range(12):
        log.append(mention(at=NOW - timedelta(minutes=12 - minute)), {"offset": 0})
    plain = export_bundle(log, [_event()], tmp_path / "plain")
    assert main(["verify", str(plain)]) == 0
    assert "not sealed" in capsys.readouterr().out
    assert main(["verify", str(plain), "--key", str(_write_public(tmp_path, key))]) == 2
    assert "not sealed, but a key to check it with was given" in capsys.readouterr().err


def test_a_checkpoint_past_the_end_means_records_were_cut_off(bundle: Path,
                                                              key: Ed25519PrivateKey) -> None:
    """Someone holding the key could still not hide a cut: an earlier checkpoint covers it."""
    sealer = Sealer(key)
    anchors = orjson.loads((bundle / "anchors.json").read_bytes())
    anchors["checkpoints"].append(sealer.seal({"kind": "checkpoint", "person": "amara",
                                               "seq": 10_000, "head_hash": "0" * 64,
                                               "at": "2026-11-01T12:00:00Z"}))
    (bundle / "anchors.json").write_bytes(orjson.dumps(anchors, option=orjson.OPT_INDENT_2))
    manifest = orjson.loads((bundle / "manifest.json").read_bytes())
    data = (bundle / "anchors.json").read_bytes()
    manifest["files"]["anchors.json"] = {"sha256": hashlib.sha256(data).hexdigest(),
                                         "bytes": len(data)}
    manifest.pop("seal")
    manifest.pop("manifest_sha256")
    manifest["manifest_sha256"] = _manifest_hash(manifest)
    chain = manifest["chain"]
    manifest["seal"] = sealer.seal({
        "kind": "bundle", "incident_id": manifest["incident_id"], "person": "amara",
        "manifest_sha256": manifest["manifest_sha256"], "last_seq": chain["last_seq"],
        "head_hash": chain["head_hash"], "at": manifest["generated_at"]})
    (bundle / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    with pytest.raises(ChainError, match="records after seq 30 were cut off"):
        check_bundle(bundle, key.public_key())


def test_a_tampered_token_is_caught(bundle: Path) -> None:
    manifest = orjson.loads((bundle / "manifest.json").read_bytes())
    token = bytearray(base64.b64decode(manifest["seal"]["timestamps"][0]["token"]))
    token[-40] ^= 0x01  # inside the TSA's signature
    manifest["seal"]["timestamps"][0]["token"] = base64.b64encode(bytes(token)).decode()
    (bundle / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    with pytest.raises(ChainError, match="timestamp"):
        check_bundle(bundle)


def test_an_unreachable_authority_leaves_a_signed_seal_and_a_warning(
    tmp_path: Path, key: Ed25519PrivateKey, tsa: LocalTSA, caplog: pytest.LogCaptureFixture
) -> None:
    from prometheus_client import REGISTRY

    def counted(outcome: str) -> float:
        return REGISTRY.get_sample_value("pileon_evidence_timestamps_total",
                                         {"outcome": outcome}) or 0.0

    failed, granted = counted("failed"), counted("granted")
    tsa.down = True
    try:
        with caplog.at_level(logging.WARNING):
            bundle = _sealed_bundle(tmp_path, Sealer(key, TimestampClient([tsa.url])))
    finally:
        tsa.down = False
    check = check_bundle(bundle, key.public_key())
    assert "seal: signed, with no RFC 3161 timestamp" in check.notes
    assert "no token (HTTPError)" in caplog.text
    # PileonTimestampsFailing reads these: each seal's request failed, none was granted.
    assert counted("failed") - failed >= 3 and counted("granted") == granted
    _sealed_bundle(tmp_path / "up", Sealer(key, TimestampClient([tsa.url])))
    assert counted("granted") - granted >= 3


@pytest.mark.parametrize("form", ["pem", "hex", "base64"])
def test_signing_keys_load_from_the_usual_forms(tmp_path: Path, form: str,
                                                key: Ed25519PrivateKey) -> None:
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    path = tmp_path / "key"
    path.write_bytes({
        "pem": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()),
        "hex": seed.hex().encode() + b"\n",
        "base64": base64.b64encode(seed)}[form])
    assert raw_public(load_signing_key(path).public_key()) == raw_public(key.public_key())


def test_a_bad_key_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("not a key")
    with pytest.raises(SigningKeyError, match="neither a PEM Ed25519 key nor a 32-byte seed"):
        load_signing_key(path)
