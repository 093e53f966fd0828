"""A WebSocket server on a loopback port that also answers plain HTTP, run on a thread."""

from __future__ import annotations

import threading
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve


class LoopbackServer:
    """Subclasses implement :meth:`stream` (a WebSocket connection) and :meth:`http` (a plain
    request; return None to go on with the WebSocket handshake)."""

    _server: Server | None = None

    def __enter__(self) -> Any:
        self._server = serve(self.stream, "127.0.0.1", 0, process_request=self.http,
                             compression=None)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.socket.getsockname()[1])

    def stream(self, ws: ServerConnection) -> None:
        raise NotImplementedError

    def http(self, conn: ServerConnection, request: Request) -> Response | None:
        return None

    @staticmethod
    def hold(ws: ServerConnection) -> None:
        """Keep a connection open, sending nothing, until the client goes (a live tail with
        nothing new)."""
        try:
            while True:
                try:
                    ws.recv(timeout=1.0)
                except TimeoutError:
                    continue
        except ConnectionClosed:
            return
