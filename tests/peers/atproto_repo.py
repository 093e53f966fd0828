"""Bluesky repositories made in the test, in the exact wire format: posts as DAG-CBOR records,
a Merkle search tree over their keys, a repo commit (v3) signed with a secp256k1 key made
here (low-S, raw r||s), and ``com.atproto.sync.getRecord``'s answer as a CAR v1 (the commit
as root, the tree nodes on the path, the record). A loopback PDS and PLC directory serve them.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import libipld
import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ORDER = {"secp256k1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
         "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551}
POST = "app.bsky.feed.post"


def cid(block: bytes) -> bytes:
    return b"\x01\x71\x12\x20" + hashlib.sha256(block).digest()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def car(root: bytes, blocks: list[bytes]) -> bytes:
    header = libipld.encode_dag_cbor({"version": 1, "roots": [root]})
    out = _varint(len(header)) + header
    for block in blocks:
        c = cid(block)
        out += _varint(len(c) + len(block)) + c + block
    return out


class Repo:
    """One author's repository with a few posts (a one-level tree is enough for a few)."""

    def __init__(self, did: str, key: ec.EllipticCurvePrivateKey | None = None) -> None:
        self.did = did
        self.key = key or ec.generate_private_key(ec.SECP256K1())
        self.records: dict[str, bytes] = {}  # rkey -> DAG-CBOR

    @property
    def multibase(self) -> str:
        point = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.CompressedPoint)
        return str(libipld.encode_multibase("z", b"\xe7\x01" + point))

    def post(self, rkey: str, text: str) -> None:
        self.records[rkey] = libipld.encode_dag_cbor(
            {"$type": POST, "text": text, "createdAt": "2026-11-20T12:00:00.000Z"})

    def get_record(self, rkey: str, tamper: str | None = None,
                   signer: ec.EllipticCurvePrivateKey | None = None) -> bytes:
        """The CAR a PDS answers; ``tamper`` swaps the record's text after signing."""
        keys = sorted(f"{POST}/{k}".encode() for k in self.records)
        entries, previous = [], b""
        for k in keys:
            shared = 0
            while shared < min(len(k), len(previous)) and k[shared] == previous[shared]:
                shared += 1
            rk = k.decode().rsplit("/", 1)[1]
            entries.append({"p": shared, "k": k[shared:], "v": cid(self.records[rk]),
                            "t": None})
            previous = k
        node = libipld.encode_dag_cbor({"l": None, "e": entries})
        commit: dict[str, Any] = {"did": self.did, "version": 3, "data": cid(node),
                                  "rev": "3lbtestrev0000", "prev": None}
        key = signer or self.key
        der = key.sign(libipld.encode_dag_cbor(commit), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        s = min(s, ORDER[key.curve.name] - s)  # low-S
        commit["sig"] = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        record = self.records[rkey]
        if tamper is not None:
            record = libipld.encode_dag_cbor({**libipld.decode_dag_cbor(record), "text": tamper})
        commit_block = libipld.encode_dag_cbor(commit)
        return car(cid(commit_block), [commit_block, node, record])


class LoopbackAtproto:
    """A PDS (getRecord) and a PLC directory (DID documents) on one loopback port."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.forged: dict[tuple[str, str], dict[str, Any]] = {}
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/xrpc/com.atproto.sync.getRecord":
                    q = {k: v[0] for k, v in parse_qs(url.query).items()}
                    repo = peer.repos.get(q.get("did", ""))
                    if repo is None or q.get("rkey") not in repo.records or \
                            q.get("collection") != POST:
                        self._send(400, orjson.dumps({"error": "RecordNotFound",
                                                      "message": "Could not locate record"}),
                                   "application/json")
                        return
                    body = repo.get_record(q["rkey"], **peer.forged.get((repo.did, q["rkey"]),
                                                                         {}))
                    self._send(200, body, "application/vnd.ipld.car")
                elif url.path.startswith("/did:plc:") and url.path[1:] in peer.repos:
                    repo = peer.repos[url.path[1:]]
                    self._send(200, orjson.dumps({
                        "id": repo.did,
                        "verificationMethod": [{"id": f"{repo.did}#atproto",
                                                "type": "Multikey", "controller": repo.did,
                                                "publicKeyMultibase": repo.multibase}],
                        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                                     "serviceEndpoint": peer.url}]}), "application/json")
                else:
                    self._send(404, b"{}", "application/json")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LoopbackAtproto:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
