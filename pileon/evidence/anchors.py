"""Anchors outside the chain: signatures and RFC 3161 timestamps.

A hash chain shows that nothing inside it changed relative to its head; it cannot show that
the head itself is the one the archiver wrote. So the archiver **seals** statements with an
Ed25519 key that only it holds (``evidence.signing_key_file``, a secret), and has each seal
timestamped by RFC 3161 timestamp authorities (``evidence.tsa_urls``):

- a **checkpoint** per person every ``evidence.checkpoint_seconds`` while their chain grows:
  ``{person, seq, head_hash, at}``. A timestamped checkpoint proves that the records up to
  ``seq`` existed, exactly as they are, by the TSA's time: preserved early.
- a **bundle seal** at every export: the manifest's hash, the incident, the last sequence
  number and head hash. With it, a bundle cannot be rebuilt from edited events or a rehashed
  chain without the key, and a cut-off tail is caught (a checkpoint covers records that are
  no longer there, or the sealed last sequence number does not match).

``verify`` checks all of it offline: the signatures against the public key in the bundle (or
the one given with ``--key``, which a newsroom publishes), the tokens' message imprints and
their signatures against the TSA roots carried in the bundle (or given with ``--tsa-ca``).
A TSA that cannot be reached leaves the seal without its token (a warning in the log, and the
bundle says which are missing): the chain goes on; the anchor is weaker, and visibly so.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from rfc3161_client import (
    HashAlgorithm,
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from pileon.core.settings import ConfigError, EvidenceSettings
from pileon.evidence.chain import ChainError, canonical
from pileon.evidence.metrics import TIMESTAMPS

log = logging.getLogger(__name__)


class SigningKeyError(ValueError):
    """The signing key file is not an Ed25519 key (one line, naming the file)."""


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM (PKCS#8) file, or a file holding its 32-byte seed in
    hex or base64 (``openssl rand -hex 32``)."""
    try:
        data = path.read_bytes().strip()
    except OSError as exc:
        raise SigningKeyError(f"{path}: {exc.strerror}") from None
    if data.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise SigningKeyError(f"{path}: not a PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{path}: a {type(key).__name__}, not an Ed25519 key")
        return key
    for decode in (bytes.fromhex, base64.b64decode):
        try:
            seed = decode(data.decode())
        except ValueError:
            continue
        if len(seed) == 32:
            return Ed25519PrivateKey.from_private_bytes(seed)
    raise SigningKeyError(f"{path}: neither a PEM Ed25519 key nor a 32-byte seed in hex or base64")


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A published key: PEM, or the raw 32 bytes in base64 (as bundles carry it)."""
    data = path.read_bytes().strip()
    if data.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise SigningKeyError(f"{path}: not an Ed25519 public key")
        return key
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(data))
    except ValueError:
        raise SigningKeyError(f"{path}: neither PEM nor a base64 Ed25519 public key") from None


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint to read out on the phone: SHA-256 of the raw key, 16 hex digits."""
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class TimestampClient:
    """RFC 3161 requests (SHA-256 imprint, a nonce, the TSA's certificate asked for) to each
    configured authority; answers are checked (granted, same imprint and nonce) before they
    are kept."""

    def __init__(self, urls: Sequence[str], timeout: float = 10.0,
                 ca_files: Sequence[Path] = ()) -> None:
        self.urls = list(urls)
        self.timeout = timeout
        self.roots = [p.read_text(encoding="ascii") for p in ca_files]
        self._http = requests.Session()

    def stamp(self, data: bytes) -> list[dict[str, str]]:
        tokens = []
        for url in self.urls:
            request = TimestampRequestBuilder(data=data,
                                              hash_algorithm=HashAlgorithm.SHA256).build()
            try:
                reply = self._http.post(url, data=request.as_bytes(), timeout=self.timeout,
                                        headers={"Content-Type": "application/timestamp-query"})
                reply.raise_for_status()
                response = decode_timestamp_response(reply.content)
            except (requests.RequestException, ValueError) as exc:
                log.warning("timestamp authority %s: no token (%s); the seal goes without it",
                            url, type(exc).__name__)
                TIMESTAMPS.labels("failed").inc()
                continue
            info = response.tst_info
            if response.status not in (0, 1) or info.nonce != request.nonce or \
                    info.message_imprint.message != hashlib.sha256(data).digest():
                log.warning("timestamp authority %s: a token that does not answer the request "
                            "(status %s); not kept", url, response.status)
                TIMESTAMPS.labels("refused").inc()
                continue
            TIMESTAMPS.labels("granted").inc()
            tokens.append({"tsa": url, "time": info.gen_time.isoformat().replace(
                "+00:00", "Z"), "token": base64.b64encode(reply.content).decode()})
        return tokens


class Sealer:
    """Signs statements with the archiver's key and timestamps the signed bytes."""

    def __init__(self, key: Ed25519PrivateKey, tsa: TimestampClient | None = None) -> None:
        self._key = key
        self.public = key.public_key()
        self.key_id = key_id(self.public)
        self.tsa = tsa

    def seal(self, statement: dict[str, Any]) -> dict[str, Any]:
        statement = {**statement, "key_id": self.key_id}
        data = canonical(statement)
        return {
            "statement": statement,
            "signature": base64.b64encode(self._key.sign(data)).decode(),
            "timestamps": self.tsa.stamp(data) if self.tsa else [],
        }

    def public_record(self) -> dict[str, Any]:
        return {"key_id": self.key_id,
                "public_key": base64.b64encode(raw_public(self.public)).decode(),
                "tsa_roots": self.tsa.roots if self.tsa else []}


class Checkpoints:
    """Per-person append-only files of sealed checkpoints, ``<root>/<person>.jsonl``."""

    def __init__(self, root: Path, sealer: Sealer) -> None:
        self.root, self.sealer = root, sealer
        self._last: dict[str, int] = {}

    def path(self, person: str) -> Path:
        return self.root / f"{person}.jsonl"

    def records(self, person: str) -> list[dict[str, Any]]:
        path = self.path(person)
        if not path.exists():
            return []
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]

    def last_seq(self, person: str) -> int:
        if person not in self._last:
            records = self.records(person)
            self._last[person] = records[-1]["statement"]["seq"] if records else 0
        return self._last[person]

    def add(self, person: str, seq: int, head_hash: str) -> dict[str, Any] | None:
        """Seal the person's chain at ``seq``; None when that is already sealed."""
        if seq <= self.last_seq(person):
            return None
        sealed = self.sealer.seal({"kind": "checkpoint", "person": person, "seq": seq,
                                   "head_hash": head_hash, "at": _now()})
        self.root.mkdir(parents=True, exist_ok=True)
        with self.path(person).open("ab") as f:
            f.write(orjson.dumps(sealed) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        self._last[person] = seq
        return sealed


# -- verification (offline) ---------------------------------------------------------------

def check_seal(sealed: Any, public: Ed25519PublicKey, roots: list[x509.Certificate],
               what: str) -> list[str]:
    """Check one sealed statement: its signature and each timestamp token. Returns notes."""
    if not isinstance(sealed, dict) or not isinstance(sealed.get("statement"), dict):
        raise ChainError(f"{what}: not a sealed statement")
    data = canonical(sealed["statement"])
    try:
        public.verify(base64.b64decode(str(sealed.get("signature", ""))), data)
    except (InvalidSignature, ValueError):
        raise ChainError(f"{what}: the signature does not verify with key "
                         f"{key_id(public)}") from None
    notes = []
    stamps = sealed.get("timestamps") or []
    for stamp in stamps:
        try:
            response = decode_timestamp_response(base64.b64decode(stamp["token"]))
        except (ValueError, KeyError, TypeError):
            raise ChainError(f"{what}: a timestamp token that is not RFC 3161") from None
        if response.tst_info.message_imprint.message != hashlib.sha256(data).digest():
            raise ChainError(f"{what}: the timestamp from {stamp.get('tsa')} is for other bytes")
        if not roots:
            notes.append(f"{what}: timestamp from {stamp.get('tsa')} at "
                         f"{response.tst_info.gen_time:%Y-%m-%d %H:%M:%S} UTC, its signature "
                         "not checked (no TSA root: pass --tsa-ca)")
            continue
        try:
            VerifierBuilder(roots=roots).build().verify_message(response, data)
        except VerificationError as exc:
            raise ChainError(f"{what}: the timestamp from {stamp.get('tsa')} does not verify "
                             f"({exc})") from None
        notes.append(f"{what}: timestamped by {stamp.get('tsa')} at "
                     f"{response.tst_info.gen_time:%Y-%m-%d %H:%M:%S} UTC (verified)")
    if not stamps:
        notes.append(f"{what}: signed, with no RFC 3161 timestamp")
    return notes


def parse_roots(pems: Sequence[str]) -> list[x509.Certificate]:
    roots = []
    for pem in pems:
        try:
            roots.extend(x509.load_pem_x509_certificates(pem.encode()))
        except ValueError:
            raise ChainError("anchors.json: a TSA root that is not a PEM certificate") from None
    return roots


def sealer_from_settings(cfg: EvidenceSettings) -> Sealer | None:
    """The archiver's sealer, or None without ``evidence.signing_key_file``; raises
    :class:`ConfigError` naming the setting when the key or a root cannot be read."""
    if cfg.signing_key_file is None:
        return None
    try:
        key = load_signing_key(cfg.signing_key_file)
    except SigningKeyError as exc:
        raise ConfigError(f"evidence.signing_key_file: {exc}") from None
    try:
        tsa = TimestampClient(cfg.tsa_urls, cfg.tsa_timeout_seconds, cfg.tsa_ca_files) \
            if cfg.tsa_urls else None
    except OSError as exc:
        raise ConfigError(f"evidence.tsa_ca_files: {exc.filename}: {exc.strerror}") from None
    return Sealer(key, tsa)
