"""Connectors as processes (``pileon connect …``) against both brokers: a Jetstream connector
killed with SIGKILL mid-stream and restarted publishes every matching post exactly once
(checked against the peer's log), and a replay reaches the dead-letter topic with its bad
lines. Figures are printed (``-s``) and recorded in docs/reliability.md."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import yaml

from pileon.core.settings import KafkaSettings
from pileon.kafka.topics import TopicNames
from tests.peers.jetstream import JetstreamPeer, firehose
from tests.test_connectors.kafka_reading import once_each, published
from tests.test_integration.worker import read_topic

pytestmark = pytest.mark.slow

PERSONS = {"amara": ("did:plc:amara000000000000000000", "Amara Okafor"),
           "lucas": ("did:plc:lucas000000000000000000", "Lucas Ferreira")}


@pytest.fixture
def env(tmp_path: Path, bootstrap: str) -> dict[str, str]:
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text(yaml.safe_dump({"persons": [
        {"key": k, "display_name": alias, "aliases": [alias], "handles": {"bluesky": [did]}}
        for k, (did, alias) in PERSONS.items()]}))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PILEON_")}
    return {**clean, "PILEON_KAFKA__BOOTSTRAP": bootstrap, "PILEON_WATCHLIST": str(watchlist),
            "PILEON_KAFKA__TOPIC_PREFIX": f"t{uuid.uuid4().hex[:8]}."}


def _connect(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "pileon", "connect", *args], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _names(env: dict[str, str]) -> TopicNames:
    return TopicNames.from_settings(KafkaSettings(topic_prefix=env["PILEON_KAFKA__TOPIC_PREFIX"]))


def test_jetstream_connector_killed_mid_stream_publishes_each_post_once(
    env: dict[str, str], bootstrap: str, tmp_path: Path
) -> None:
    frames, expected, profiles = firehose(6000, PERSONS, seed=21, bad_frames=4)
    raw = _names(env).raw
    log = tmp_path / "connector.log"
    with JetstreamPeer(frames, profiles=profiles, frames_per_second=1500,
                       drop_after=[1500]) as peer:
        args = ["jetstream", "--url", peer.url, "--appview", peer.http_url, "--name", "jet"]
        first = _connect(args, env, log)
        deadline = time.monotonic() + 60
        while peer.sent < 3500 and time.monotonic() < deadline:
            assert first.poll() is None, log.read_text()[-2000:]
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = peer.sent
        before = len(published(bootstrap, raw, "jet"))
        second = _connect(args, env, log)
        started = time.monotonic()
        want = {(e.person, e.id, e.matched_by) for e in expected}
        got: set[tuple[str, str, str]] = set()
        while time.monotonic() - started < 90 and got != want:
            assert second.poll() is None, log.read_text()[-2000:]
            time.sleep(1)
            got, _ = once_each(published(bootstrap, raw, "jet"))
        recovered = time.monotonic() - started
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, log.read_text()[-2000:]
    mentions = published(bootstrap, raw, "jet")
    got, twice = once_each(mentions)
    skipped = [line for line in log.read_text().splitlines() if "will not be sent again" in line]
    print(f"\nFAULT connector-kill: frames={len(frames)} killed_after={killed_at} "
          f"expected={len(want)} published_before_kill={before} lost={len(want - got)} "
          f"duplicated={twice} caught_up_in={recovered:.1f}s read_back={skipped[-1:]}")
    assert got == want
    assert twice == 0
    assert peer.cursors[0] is None and all(peer.cursors[1:])
    assert "Amara" not in log.read_text() and "did:plc:u0" not in log.read_text()  # no content


def test_mastodon_connector_killed_while_mentions_arrive_publishes_each_once(
    env: dict[str, str], bootstrap: str, tmp_path: Path
) -> None:
    from tests.peers.mastodon import MastodonPeer

    raw, log = _names(env).raw, tmp_path / "mastodon.log"
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    expected: set[tuple[str, str, str]] = set()
    stop = threading.Event()
    with MastodonPeer(token="s3cret") as peer:

        def post_mentions() -> None:
            i = 0
            while not stop.is_set():
                status = peer.status(f"@amara hey {i}", young=True)
                peer.notify("mention", status)
                expected.add(("amara", f"mastodon:{status['uri']}", "mention"))
                i += 1
                time.sleep(0.01)

        args = ["mastodon", "--instance", peer.url, "--person", "amara", "--token-file",
                str(token), "--name", "masto"]
        first = _connect(args, env, log)
        deadline = time.monotonic() + 60
        while peer.streaming_clients == 0:  # a new connector starts live, without backfill
            assert first.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        feeder = threading.Thread(target=post_mentions)
        feeder.start()
        try:
            deadline = time.monotonic() + 60
            while len(published(bootstrap, raw, "masto")) < 150:
                assert first.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            time.sleep(2)  # mentions keep arriving while the connector is dead
            second = _connect(args, env, log)
            time.sleep(3)
        finally:
            stop.set()
            feeder.join()
        started = time.monotonic()
        got: set[tuple[str, str, str]] = set()
        while time.monotonic() - started < 60 and got != expected:
            assert second.poll() is None, log.read_text()[-2000:]
            time.sleep(1)
            got, _ = once_each(published(bootstrap, raw, "masto"))
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, log.read_text()[-2000:]
    got, twice = once_each(published(bootstrap, raw, "masto"))
    backfills = [q for path, q in peer.queries if path == "/api/v1/notifications"]
    print(f"\nFAULT mastodon-kill: expected={len(expected)} lost={len(expected - got)} "
          f"duplicated={twice} rest_pages={len(backfills)}")
    assert got == expected
    assert twice == 0
    assert backfills and all("min_id" in q for q in backfills)
    assert "s3cret" not in log.read_text()


def test_replay_of_a_file_with_bad_lines(env: dict[str, str], bootstrap: str,
                                         tmp_path: Path) -> None:
    from tests.factories import mention

    path = tmp_path / "backfill.jsonl"
    items = [mention("amara") for _ in range(200)]
    lines = [orjson.dumps(m) for m in items]
    lines[50:50] = [b"{not json", b"[1,2]"]
    path.write_bytes(b"\n".join(lines) + b"\n")
    log = tmp_path / "replay.log"
    proc = _connect(["replay", str(path), "--rebase"], env, log)
    assert proc.wait(120) == 0, log.read_text()[-2000:]
    names = _names(env)
    got, twice = once_each(published(bootstrap, names.raw))
    assert len(got) == 200 and twice == 0
    letters = [orjson.loads(r.value) for r in read_topic(bootstrap, names.invalid, timeout=3)]
    assert sorted(x["reason"] for x in letters) == ["not_json", "schema"]
    assert {x["origin"]["offset"] for x in letters} == {51, 52}  # file lines
    again = _connect(["replay", str(path), "--rebase"], env, log)  # finished: nothing repeats
    assert again.wait(120) == 0
    assert once_each(published(bootstrap, names.raw))[1] == 0


def test_webhook_connector_process_accepts_and_stops_cleanly(
    env: dict[str, str], bootstrap: str, tmp_path: Path
) -> None:
    import requests

    from pileon.kafka.broker import free_port
    from tests.factories import mention
    from tests.procs import wait_ready

    tokens = tmp_path / "tokens"
    tokens.write_text("first-token\nsecond-token\n")
    port, log = free_port(), tmp_path / "webhook.log"
    proc = _connect(["webhook", "--port", str(port), "--token-file", str(tokens)], env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, f"{url}/healthz", log, "webhook", 60)
        batch = b"\n".join(orjson.dumps(mention("amara", at=datetime.now(UTC))) for _ in range(3))
        headers = {"Authorization": "Bearer second-token", "Content-Type": "application/x-ndjson"}
        r = requests.post(f"{url}/v1/mentions", data=batch, headers=headers, timeout=30)
        assert r.json() == {"accepted": 3, "duplicates": 0}
        assert requests.get(f"{url}/openapi.yaml", timeout=5).text.startswith("# Generated")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-2000:]
    got, twice = once_each(published(bootstrap, _names(env).raw, "webhook"))
    assert len(got) == 3 and twice == 0
    assert "second-token" not in log.read_text()
