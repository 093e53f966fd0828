"""A real HTTP receiver on loopback that records what it is sent (webhooks, Alertmanager's
webhook notifications) and can fail on purpose: a status for the first N requests, or until
a moment, with an optional Retry-After."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import orjson


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.fail_status = 503
        self.fail_first = 0
        self.fail_until = 0.0
        self.retry_after: str | None = None
        self.fail_path: str | None = None  # only requests to this path fail (None: all)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                status = receiver._status(self.path)
                if status == 200:
                    with receiver._lock:
                        receiver.requests.append(
                            Received(self.path, dict(self.headers), orjson.loads(raw)))
                self.send_response(status)
                if status != 200 and receiver.retry_after is not None:
                    self.send_header("Retry-After", receiver.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True)
        self.attempts = 0

    def _status(self, path: str) -> int:
        if self.fail_path is not None and path != self.fail_path:
            return 200
        with self._lock:
            self.attempts += 1
            if self.attempts <= self.fail_first or time.monotonic() < self.fail_until:
                return self.fail_status
        return 200

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.requests)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
