"""``pileon demo``: broker, worker, simulated pile-on, alert and evidence in one command."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from pileon.cli.common import scrape
from pileon.core.times import epoch
from pileon.evidence.chain import EvidenceLog
from tests.procs import alive, children
from tests.waiting import wait_until

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
    # A calm person, or amara before her pile-on, may page on an organic burst (the
    # false-alarm budget: a few percent of runs); the demo must say it is organic and go on to
    # the pile-on.
    onset = epoch(orjson.loads((out / "ground_truth.json").read_bytes())["onset"])
    pages = re.findall(r"person=(\w+) at .*\n(?:  .*\n)*?  evidence bundle: (\S+) ", stdout)
    pile_on = {folder for person, folder in pages
               if person == "amara" and _last_transition(Path(folder)) >= onset}
    others = [p for p in re.findall(r"person=(\w+)", stdout) if p != "amara"]
    early = [f for p, f in pages if p == "amara" and _last_transition(Path(f)) < onset]
    assert len(pile_on) == 1, pages
    assert stdout.count("who had no pile-on: a burst in their simulated organic traffic ") \
        == len(others)
    assert stdout.count("before their pile-on began: a burst in their simulated organic "
                        "traffic ") == len(early)
    for why in ("mentions in 10 min vs baseline", "distinct authors", "young accounts",
                "near-duplicate template", "not a verdict", "pile-on score", "coordination",
                "answering one post", "mentions above baseline (an opening needs"):
        assert why in stdout
    assert "EMBEDDED broker" in result.stderr
    # progress while waiting, the odds in words, local time beside UTC, librdkafka said
    assert "mentions analysed" in stdout and "score" in stdout
    assert re.search(r"in words: .* that is (about|less than) 1 in", stdout)
    assert re.search(r"at \d{4}-\d\d-\d\d \d\d:\d\d UTC \(\d\d:\d\d Europe/London\)", stdout)
    assert "librdkafka" in stdout
    assert '"?"' not in stdout  # every template's text was found in the evidence chain
    # One bundle for each incident the demo printed (the pile-on's, and a calm person's organic
    # page if there was one), each verified.
    bundles = sorted((out / "evidence" / "incidents").iterdir())
    assert sorted({folder for _, folder in pages}) == [str(b) for b in bundles]
    assert len(bundles) == len(set(re.findall(r"INCIDENT (\S+) ", stdout)))
    for folder in bundles:
        verify = subprocess.run([sys.executable, "-m", "pileon", "verify", str(folder)],
                                capture_output=True, text=True, timeout=60, env=env)
        assert verify.returncode == 0 and verify.stdout.startswith("OK"), verify.stdout
        if str(folder) in pile_on:
            _holds_the_hour_before_and_the_alerts_window(folder, out / "evidence" / "chains")
    assert (out / "ground_truth.json").is_file()


def _last_transition(folder: Path) -> float:
    """Event time of the last opening or escalation a bundle's incident.json records."""
    return max(epoch(e["at"]) for e in orjson.loads((folder / "incident.json").read_bytes())
               if e["transition"] != "resolved")


def _holds_the_hour_before_and_the_alerts_window(folder: Path, chains: Path) -> None:
    """The opening's bundle holds the person's chain from the first mention posted in the
    hour before the opening through every mention of the alert's window. How much of the
    pile-on after the opening it also holds depends on how far the archive had got when the
    alert came (more is added at later transitions), so that is not counted."""
    events = orjson.loads((folder / "incident.json").read_bytes())
    person, opened = events[0]["person"], epoch(events[0]["opened_at"])
    window_end = epoch(events[0]["evidence"]["to"])
    held = [orjson.loads(line)["seq"] for line in (folder / "mentions.jsonl").read_bytes()
            .splitlines() if line.strip()]
    wanted = [r["seq"] for r in EvidenceLog(chains).records(person)
              if opened - 3600 <= epoch(r["mention"]["created_at"]) <= window_end]
    # At least what the alert counted in its window (how many of amara's usual mentions the
    # hour before adds depends on the time of day the simulated days end at).
    assert len(wanted) >= events[0]["signals"]["rate"]["mentions"] > 0
    assert held[0] == wanted[0] and set(wanted) <= set(held)
    assert held == list(range(held[0], held[-1] + 1))  # contiguous


def test_demo_follow_stops_cleanly_and_quickly_when_asked(tmp_path: Path) -> None:
    """SIGTERM (what Ctrl-C and a service manager send) stops the worker, the archiver and the
    broker in that order: no connection-error noise, no process left behind."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILEON_")}
    env["PILEON_WORKER__DATA_DIR"] = str(tmp_path / "data")
    log = (tmp_path / "out.log").open("w+")
    demo = subprocess.Popen([sys.executable, "-m", "pileon", "demo", "--follow", "--out",
                             str(tmp_path / "demo"), "--timeout", "240"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until(lambda: "following:" in (tmp_path / "out.log").read_text(), timeout=240,
                   interval=1.0, what="the incident and the follow notice")
        kids = children(demo.pid)
        # The archiver's metrics, where --follow says: what it made durable so far.
        url = re.search(r"archiver metrics: (\S+)", (tmp_path / "out.log").read_text())
        assert url is not None
        archived = sum(s.value for s in scrape(url.group(1), timeout=5)
                       if s.name == "pileon_evidence_records_total")
        assert archived > 500
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=30) == 130
    finally:
        if demo.poll() is None:
            demo.kill()
    text = (tmp_path / "out.log").read_text()
    after = text.split("following:", 1)[1]
    assert "worker metrics: http://127.0.0.1:" in after and "stopping:" in after
    assert "archiver metrics: http://127.0.0.1:" in after
    assert "ERROR" not in after and "ECONNREFUSED" not in after
    assert "Traceback" not in after
    time.sleep(1)
    assert kids and not [pid for pid in kids if alive(pid)]
