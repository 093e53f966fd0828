"""The console as a running service: the database, the feed from the alerts topic and the
archive, and the web server (uvicorn) on ``console.bind:console.port``."""

from __future__ import annotations

import logging
import threading
import time

import uvicorn

from pileon.console import open_database
from pileon.console.app import create_app
from pileon.console.feed import KafkaFeed, load_archive
from pileon.console.verdicts import VerdictSender
from pileon.core.settings import Settings
from pileon.kafka.connection import Connection

log = logging.getLogger(__name__)


class ConsoleServer:
    """Start with :meth:`start`, stop with :meth:`stop`; ``url`` once started."""

    def __init__(self, settings: Settings, connection: Connection | None, alerts_topic: str,
                 rescan_seconds: float = 30.0, heads_topic: str | None = None,
                 raw_topic: str | None = None) -> None:
        """``raw_topic``: where responders' verdicts go to the detector (``mentions.raw``;
        none without a connection: they wait in the database)."""
        self.settings = settings
        self.engine, self.sm = open_database(settings.console)
        self.app = create_app(settings, self.sm)
        cfg = settings.console
        # No proxy_headers: the client address is the peer's, which is what the single
        # sign-on check (console.trusted_proxies) must see.
        self._server = uvicorn.Server(uvicorn.Config(
            self.app, host=cfg.bind, port=cfg.port, proxy_headers=False, server_header=False,
            log_level="warning", access_log=False, lifespan="off"))
        self.feed = (KafkaFeed(connection, alerts_topic, self.sm, heads_topic)
                     if connection is not None and cfg.feed_from_kafka else None)
        self.verdicts = (VerdictSender(connection, raw_topic, self.sm)
                         if connection is not None and raw_topic else None)
        self._rescan = rescan_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        cfg = self.settings.console
        port = cfg.port
        if self._server.servers:
            port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://{cfg.bind}:{port}"

    def start(self, timeout: float = 30.0) -> None:
        found = load_archive(self.sm, self.settings.console.evidence_dir)
        if found:
            log.info("console: %d alert transitions loaded from the archive", found)
        self._spawn(self._server.run, "console-web")
        if self.feed is not None:
            self._spawn(self.feed.run, "console-feed")
        if self.verdicts is not None:
            self._spawn(self.verdicts.run, "console-verdicts")
        self._spawn(self._archive_loop, "console-archive")
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._threads[0].is_alive():
                raise RuntimeError(f"the console did not start on "
                                   f"{self.settings.console.bind}:{self.settings.console.port}")
            time.sleep(0.05)

    def _spawn(self, target: object, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _archive_loop(self) -> None:
        """Bundles the archive writes for alerts this console did not read from Kafka (a
        topic past its retention, or no Kafka at all)."""
        while not self._stop.wait(self._rescan):
            try:
                load_archive(self.sm, self.settings.console.evidence_dir)
            except Exception as exc:
                log.warning("console: reading the archive failed (%s)", type(exc).__name__)

    def serve_forever(self) -> None:
        self._threads[0].join()

    def stop(self) -> None:
        self._stop.set()
        if self.feed is not None:
            self.feed.stop()
        if self.verdicts is not None:
            self.verdicts.stop()
        self._server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=10)
        self.engine.dispose()
