"""A real PostgreSQL server (Debian's ``postgresql`` package) on loopback for one test module:
``initdb`` into a temporary folder, started with ``pg_ctl`` as a non-root user (``postgres``
when the tests run as root, since PostgreSQL refuses root), stopped and removed after."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pileon.kafka.broker import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"{name} not found: install Debian's postgresql (make tools)")
    return found[-1]


class PostgresServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pileon-pg-"))
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self.url = f"postgresql+psycopg://pileon@127.0.0.1:{self.port}/pileon"

    def _run(self, *cmd: str) -> None:
        subprocess.run([*self._as, *cmd], check=True, capture_output=True, timeout=120)

    def __enter__(self) -> PostgresServer:
        data = str(self.dir / "data")
        self._run(_bin("initdb"), "-D", data, "-U", "pileon", "--auth=trust", "-E", "UTF8")
        self._run(_bin("pg_ctl"), "-D", data, "-w", "-l", str(self.dir / "log"), "-o",
                  f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off", "start")
        self._run(_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "pileon",
                  "pileon")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._run(_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
