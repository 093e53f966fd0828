"""A loopback atproto PDS for the console's moderation-list creation: the XRPC procedures
``com.atproto.server.createSession`` and ``com.atproto.repo.applyWrites`` with their lexicons'
shapes checked (200 writes at most, ``$type`` matching the collection, list purpose and name
length, listitem subjects as DIDs and lists in the same repository), records kept per
collection, errors as ``{"error", "message"}`` with the status a PDS sends."""

from __future__ import annotations

import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

_RKEY = re.compile(r"^[2-7a-z]{13}$")


class LoopbackPDS:
    def __init__(self, handle: str, did: str, app_password: str) -> None:
        self.handle, self.did, self.app_password = handle, did, app_password
        self.records: dict[str, dict[str, Any]] = {}  # at-uri -> record
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._tokens: set[str] = set()
        pds = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = orjson.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                method = self.path.removeprefix("/xrpc/")
                pds.calls.append((method, body))
                status, answer = pds.handle_call(method, body, self.headers.get(
                    "Authorization", ""))
                data = orjson.dumps(answer)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LoopbackPDS:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()

    def handle_call(self, method: str, body: dict[str, Any], auth: str
                    ) -> tuple[int, dict[str, Any]]:
        if method == "com.atproto.server.createSession":
            if body.get("identifier") not in (self.handle, self.did) or \
                    body.get("password") != self.app_password:
                return 401, {"error": "AuthenticationRequired",
                             "message": "Invalid identifier or password"}
            token = secrets.token_urlsafe(16)
            self._tokens.add(token)
            return 200, {"did": self.did, "handle": self.handle, "accessJwt": token,
                         "refreshJwt": secrets.token_urlsafe(16), "active": True}
        if method == "com.atproto.repo.applyWrites":
            if auth.removeprefix("Bearer ") not in self._tokens:
                return 401, {"error": "AuthenticationRequired", "message": "Bad token"}
            problem = self._check_writes(body)
            if problem:
                return 400, {"error": "InvalidRequest", "message": problem}
            results = []
            for w in body["writes"]:
                uri = f"at://{self.did}/{w['collection']}/{w['rkey']}"
                self.records[uri] = w["value"]
                results.append({"$type": "com.atproto.repo.applyWrites#createResult",
                                "uri": uri, "cid": "bafyrei" + secrets.token_hex(8)})
            return 200, {"commit": {"cid": "bafyrei" + secrets.token_hex(8), "rev": "3l"},
                         "results": results}
        return 501, {"error": "MethodNotImplemented", "message": method}

    def _check_writes(self, body: dict[str, Any]) -> str | None:
        if body.get("repo") != self.did:
            return "repo: not the session's account"
        writes = body.get("writes")
        if not isinstance(writes, list) or not 1 <= len(writes) <= 200:
            return "writes: 1 to 200"
        lists = {u for u, r in self.records.items() if r.get("$type") == "app.bsky.graph.list"}
        for w in writes:
            if w.get("$type") != "com.atproto.repo.applyWrites#create":
                return "writes: only creates here"
            value, collection = w.get("value", {}), w.get("collection")
            if value.get("$type") != collection or not _RKEY.match(str(w.get("rkey", ""))):
                return f"{collection}: $type must equal the collection; rkey a TID"
            if not isinstance(value.get("createdAt"), str):
                return "createdAt: required"
            if collection == "app.bsky.graph.list":
                if value.get("purpose") not in ("app.bsky.graph.defs#modlist",
                                                "app.bsky.graph.defs#curatelist"):
                    return "purpose: a list purpose"
                if not 1 <= len(value.get("name", "")) <= 64:
                    return "name: 1 to 64 characters"
                lists.add(f"at://{self.did}/{collection}/{w['rkey']}")
            elif collection == "app.bsky.graph.listitem":
                if not str(value.get("subject", "")).startswith("did:"):
                    return "subject: a DID"
                if value.get("list") not in lists:
                    return f"list: {value.get('list')} is not a list in this repository"
            else:
                return f"collection {collection}: not expected here"
        return None
