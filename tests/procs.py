"""Process helpers for tests: children of a process, and whether a pid is alive."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found.extend(int(p) for p in text.split())
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"  # zombies are dead


def wait_ready(
    proc: subprocess.Popen[bytes], url: str, log: Path, what: str, timeout: float
) -> None:
    """Poll ``url`` until it answers 200 while ``proc`` lives; fail with the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 - loopback test URL
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{what} not ready: {log.read_text()[-3000:]}")
