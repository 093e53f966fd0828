"""Signed platform records: what the author's own server signed, kept beside what pileon
captured.

Jetstream events carry no signatures (Bluesky's documentation says they do not suit archives
or "who said what"). For each Bluesky post in an incident the archiver asks the author's PDS
for the record with its proof (``com.atproto.sync.getRecord``: a CAR holding the signed repo
commit, the Merkle search tree nodes on the path to the record, and the record), finds the
author's signing key in their DID document (did:plc from ``evidence.plc_url``, did:web from the
domain), and checks: the commit is the author's (``did``), its signature verifies with that key
(secp256k1 or P-256, low-S, over the commit's DAG-CBOR without ``sig``), the tree path leads from
the commit to the record's CID, every block hashes to its CID, and the record's text is the
text pileon captured. The CAR and the key are stored, so ``verify`` checks all of it again
offline. Mastodon statuses carry no signature an outsider can check; the report says so.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import libipld
import orjson
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

log = logging.getLogger(__name__)

POST = "app.bsky.feed.post"
KEPT_HEADERS = ("content-type", "date", "etag", "last-modified", "server", "signature",
                 "digest")
_CURVES: dict[bytes, tuple[ec.EllipticCurve, int]] = {
    # multicodec prefix: (curve, group order) -- secp256k1-pub 0xe7, p256-pub 0x1200
    b"\xe7\x01": (ec.SECP256K1(),
                  0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141),
    b"\x80\x24": (ec.SECP256R1(),
                  0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551),
}


class PlatformError(Exception):
    """The record could not be fetched or does not verify (one line: the reason)."""


def post_ref(mention: Mapping[str, Any]) -> tuple[str, str] | None:
    """(did, rkey) of a Bluesky post mention, or None."""
    mid = str(mention.get("id", ""))
    prefix = "bluesky:at://"
    if not mid.startswith(prefix):
        return None
    parts = mid[len(prefix):].split("/")
    if len(parts) != 3 or parts[1] != POST or not parts[0].startswith("did:"):
        return None
    return parts[0], parts[2]


def mastodon_uri(mention: Mapping[str, Any]) -> str | None:
    """The ActivityPub URI of a Mastodon status mention, or None."""
    mid = str(mention.get("id", ""))
    uri = mid.removeprefix("mastodon:")
    return uri if mid.startswith("mastodon:") and uri.startswith(("https://", "http://")) \
        else None


def public_key(multibase: str) -> ec.EllipticCurvePublicKey:
    """A did:key-style ``publicKeyMultibase`` (base58btc, multicodec-prefixed, compressed)."""
    try:
        base, data = libipld.decode_multibase(multibase)
    except ValueError:
        raise PlatformError("the signing key is not multibase") from None
    curve = _CURVES.get(bytes(data[:2]))
    if base != "z" or curve is None:
        raise PlatformError("the signing key is not a secp256k1 or P-256 multikey")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(curve[0], bytes(data[2:]))
    except ValueError:
        raise PlatformError("the signing key is not a point on its curve") from None


def _cid_of(block: bytes) -> bytes:
    return b"\x01\x71\x12\x20" + hashlib.sha256(block).digest()


def verify_car(car: bytes, did: str, rkey: str, key_multibase: str) -> dict[str, Any]:
    """Check the proof of ``at://did/app.bsky.feed.post/rkey``; return the signed record."""
    try:
        header, blocks = libipld.decode_car(car)
    except (ValueError, TypeError) as exc:
        raise PlatformError(f"not a CAR file ({exc})") from None
    by_cid: dict[bytes, Any] = {}
    for cid, obj in blocks.items():
        if _cid_of(libipld.encode_dag_cbor(obj)) != _as_bytes(cid):
            raise PlatformError("a block does not hash to its CID")
        by_cid[_as_bytes(cid)] = obj
    roots = header.get("roots") or []
    if len(roots) != 1:
        raise PlatformError("the CAR must have one root (the commit)")
    commit = by_cid.get(_as_bytes(roots[0]))
    if not isinstance(commit, dict) or commit.get("did") != did:
        raise PlatformError("the commit is not this author's")
    sig = commit.get("sig")
    if not isinstance(sig, bytes) or len(sig) != 64:
        raise PlatformError("the commit has no 64-byte signature")
    key = public_key(key_multibase)
    order = next(o for c, o in _CURVES.values() if c.name == key.curve.name)
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    if s > order // 2:
        raise PlatformError("the signature is not low-S (atproto requires it)")
    unsigned = libipld.encode_dag_cbor({k: v for k, v in commit.items() if k != "sig"})
    try:
        key.verify(encode_dss_signature(r, s), unsigned, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise PlatformError("the commit's signature does not verify with the author's "
                            "key") from None
    target = _mst_find(by_cid, _as_bytes(commit.get("data")), f"{POST}/{rkey}".encode())
    if target is None:
        raise PlatformError("the tree has no path from the commit to the record")
    record = by_cid.get(target)
    if record is None:
        raise PlatformError("the record in the CAR is not the one the signed tree points to")
    if not isinstance(record, dict) or record.get("$type") != POST:
        raise PlatformError("the record is not a post")
    return record


def _cid_bytes(cid: str) -> bytes:
    info = libipld.decode_cid(cid)
    digest = bytes(info["hash"]["digest"])
    return bytes([info["version"], info["codec"], info["hash"]["code"], len(digest)]) + digest


def _as_bytes(cid: Any) -> bytes:
    if isinstance(cid, bytes):
        return cid
    if isinstance(cid, str):
        return _cid_bytes(cid)
    raise PlatformError("a link that is not a CID")


def _mst_find(blocks: Mapping[bytes, Any], node_cid: bytes | None, key: bytes,
              depth: int = 0) -> bytes | None:
    """The value CID under ``key`` in the Merkle search tree rooted at ``node_cid``."""
    if node_cid is None or depth > 64:
        return None
    node = blocks.get(node_cid)
    if not isinstance(node, dict):
        return None
    entries, previous, keys = node.get("e") or [], b"", []
    for e in entries:
        full = previous[: int(e["p"])] + bytes(e["k"])
        keys.append(full)
        previous = full
    subtree = node.get("l")
    for full, e in zip(keys, entries, strict=True):
        if full == key:
            return _as_bytes(e["v"])
        if full > key:
            break
        subtree = e.get("t")
    return _mst_find(blocks, _as_bytes(subtree) if subtree is not None else None, key,
                     depth + 1)


# -- fetching ------------------------------------------------------------------------------

@dataclass
class DidDoc:
    pds: str
    key: str


class PlatformRecords:
    """Fetches, verifies and stores the signed records of Bluesky posts, in the background
    (``<root>/<did>/<rkey>.json``), at most once each."""

    def __init__(self, root: Path, plc_url: str = "https://plc.directory",
                 timeout: float = 10.0) -> None:
        self.root, self.plc_url, self.timeout = root, plc_url.rstrip("/"), timeout
        self._http = requests.Session()
        self._dids: dict[str, DidDoc] = {}
        self._queue: queue.Queue[tuple[str, str, str] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def path(self, did: str, rkey: str) -> Path:
        return self.root / did.replace(":", "_") / f"{rkey}.json"

    def stored(self, did: str, rkey: str) -> dict[str, Any] | None:
        path = self.path(did, rkey)
        return dict(orjson.loads(path.read_bytes())) if path.exists() else None

    def mastodon_path(self, uri: str) -> Path:
        return self.root / "mastodon" / f"{hashlib.sha256(uri.encode()).hexdigest()[:32]}.json"

    def stored_for(self, mention: Mapping[str, Any]) -> dict[str, Any] | None:
        """What was fetched for this mention, if anything."""
        ref = post_ref(mention)
        if ref is not None:
            return self.stored(*ref)
        uri = mastodon_uri(mention)
        if uri is not None and self.mastodon_path(uri).exists():
            return dict(orjson.loads(self.mastodon_path(uri).read_bytes()))
        return None

    def want(self, mention: Mapping[str, Any]) -> None:
        ref = post_ref(mention)
        uri = mastodon_uri(mention)
        if ref is not None and not self.path(*ref).exists():
            item = (ref[0], ref[1], str(mention.get("text", "")))
        elif uri is not None and not self.mastodon_path(uri).exists():
            item = ("mastodon", uri, "")
        else:
            return
        self._queue.put(item)
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="platform-records",
                                            daemon=True)
            self._thread.start()

    def drain(self, timeout: float) -> None:
        """Wait (at most ``timeout``) for what was asked so far."""
        deadline = datetime.now(UTC).timestamp() + timeout
        while self._queue.unfinished_tasks and datetime.now(UTC).timestamp() < deadline:
            threading.Event().wait(0.05)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if item[0] == "mastodon":
                    self.fetch_mastodon(item[1])
                else:
                    self.fetch(*item)
            except Exception as exc:  # never stop the archiver for a platform's answer
                log.warning("platform record: %s", type(exc).__name__)
            finally:
                self._queue.task_done()

    def get_record(self, did: str, rkey: str) -> tuple[DidDoc, requests.Response]:
        """The author's DID document and their PDS's answer to ``getRecord`` for the post
        (the archiver's first fetch and its later looks both ask this way)."""
        doc = self._resolve(did)
        reply = self._http.get(f"{doc.pds.rstrip('/')}/xrpc/com.atproto.sync.getRecord",
                               params={"did": did, "collection": POST, "rkey": rkey},
                               timeout=self.timeout)
        return doc, reply

    def get_activity(self, uri: str) -> tuple[requests.Response, dict[str, Any]]:
        """A status's ActivityPub object at its origin, and the part of the answer kept with
        it (status code and the headers that say who served what, when)."""
        reply = self._http.get(uri, timeout=self.timeout,
                               headers={"Accept": "application/activity+json"})
        return reply, {"status": reply.status_code, "headers": {
            k: v for k, v in reply.headers.items() if k.lower() in KEPT_HEADERS}}

    def fetch_mastodon(self, uri: str) -> dict[str, Any]:
        """The status's ActivityPub object from its origin, kept with the response's status,
        headers and time. Unsigned: nothing in it lets an outsider check who wrote it."""
        entry: dict[str, Any] = {"uri": uri, "platform": "mastodon", "fetched_at": datetime.now(
            UTC).isoformat().replace("+00:00", "Z")}
        try:
            reply, entry["response"] = self.get_activity(uri)
            if reply.ok:
                entry["response"]["body"] = reply.json()
                entry["status"] = "unsigned: its ActivityPub object, kept as its origin served it"
            else:
                entry["status"] = f"unsigned: its origin answered {reply.status_code}"
        except (requests.RequestException, ValueError) as exc:
            entry["status"] = f"not fetched: {type(exc).__name__}"
        path = self.mastodon_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(entry))
        tmp.replace(path)
        return entry

    def fetch(self, did: str, rkey: str, captured_text: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"uri": f"at://{did}/{POST}/{rkey}", "did": did,
                                 "fetched_at": datetime.now(UTC).isoformat().replace(
                                     "+00:00", "Z")}
        try:
            doc, reply = self.get_record(did, rkey)
            entry.update(pds=doc.pds, key=doc.key)
            if reply.status_code in (400, 404):
                entry["status"] = "not found (deleted, or never public)"
            else:
                reply.raise_for_status()
                entry["car"] = base64.b64encode(reply.content).decode()
                record = verify_car(reply.content, did, rkey, doc.key)
                entry["status"] = "verified" if record.get("text") == captured_text else \
                    "verified, but the signed text differs from the captured text"
        except PlatformError as exc:
            entry["status"] = f"does not verify: {exc}"
        except (requests.RequestException, ValueError, KeyError) as exc:
            entry["status"] = f"not fetched: {type(exc).__name__}"
        path = self.path(did, rkey)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(entry))
        tmp.replace(path)  # an export reading it meanwhile sees all of it or nothing
        return entry

    def _resolve(self, did: str) -> DidDoc:
        if did in self._dids:
            return self._dids[did]
        if did.startswith("did:plc:"):
            url = f"{self.plc_url}/{did}"
        elif did.startswith("did:web:"):
            url = f"https://{did.removeprefix('did:web:')}/.well-known/did.json"
        else:
            raise PlatformError(f"{did.split(':')[1]}: not a DID method pileon resolves")
        reply = self._http.get(url, timeout=self.timeout)
        reply.raise_for_status()
        doc = reply.json()
        pds = next((s["serviceEndpoint"] for s in doc.get("service", [])
                    if s.get("id", "").endswith("#atproto_pds")), None)
        key = next((v["publicKeyMultibase"] for v in doc.get("verificationMethod", [])
                    if v.get("id", "").endswith("#atproto")), None)
        if not pds or not key:
            raise PlatformError("the DID document names no PDS or no #atproto key")
        self._dids[did] = DidDoc(str(pds), str(key))
        return self._dids[did]


def check_entries(entries: list[dict[str, Any]], texts: Mapping[str, str]) -> list[str]:
    """Verify stored entries again offline (``verify``); returns a note per status kind."""
    counts: dict[str, int] = {}
    for entry in entries:
        status = str(entry.get("status", ""))
        if entry.get("platform") == "mastodon":
            status = "Mastodon: " + status.split(":")[0]
        elif status.startswith("verified"):
            did, rkey = entry["did"], entry["uri"].rsplit("/", 1)[1]
            try:
                record = verify_car(base64.b64decode(entry["car"]), did, rkey, entry["key"])
            except (PlatformError, KeyError, ValueError) as exc:
                raise PlatformError(f"{entry.get('uri')}: said verified, but {exc}") from None
            same = record.get("text") == texts.get(f"bluesky:{entry['uri']}")
            if same != (status == "verified"):
                raise PlatformError(f"{entry.get('uri')}: the signed text and the captured "
                                    "text do not compare as it says")
        counts[status] = counts.get(status, 0) + 1
    return [f"platform records: {n} {status}" for status, n in sorted(counts.items())]
