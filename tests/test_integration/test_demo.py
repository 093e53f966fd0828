"""``pileon demo``: broker, worker, simulated pile-on, alert and evidence in one command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_shows_the_incident_and_leaves_verified_evidence(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILEON_")}
    env["PILEON_WORKER__DATA_DIR"] = str(tmp_path / "data")
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "pileon", "demo", "--out", str(out), "--timeout", "240"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    stdout = result.stdout
    assert "INCIDENT" in stdout and "OPENED" in stdout
    assert set(re.findall(r"person=(\w+)", stdout)) == {"amara"}
    for why in ("mentions in 10 min vs baseline", "distinct authors", "young accounts",
                "near-duplicate template", "not a verdict", "pile-on score", "coordination",
                "answering one post"):
        assert why in stdout
    assert "EMBEDDED broker" in result.stderr
    assert '"?"' not in stdout  # every template's text was found in the evidence chain
    bundles = list((out / "evidence" / "incidents").iterdir())
    assert len(bundles) == 1
    verify = subprocess.run([sys.executable, "-m", "pileon", "verify", str(bundles[0])],
                            capture_output=True, text=True, timeout=60, env=env)
    assert verify.returncode == 0 and verify.stdout.startswith("OK")
    held = int(re.search(r"(\d+) records", verify.stdout).group(1))  # type: ignore[union-attr]
    assert held > 500  # the hour before the incident and the pile-on itself
    assert (out / "ground_truth.json").is_file()
