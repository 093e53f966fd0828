"""The archiver against the embedded broker with sealing on: clean mentions and an alert in,
a sealed, timestamped bundle out (a local RFC 3161 authority), periodic checkpoints of the
chain, all checked by ``verify`` and ``openssl ts -verify``."""

from __future__ import annotations

import base64
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pileon.connectors.producer import MentionProducer
from pileon.core.settings import KafkaSettings
from pileon.evidence.anchors import Sealer, TimestampClient
from pileon.evidence.archiver import Archiver
from pileon.evidence.bundle import check_bundle
from pileon.evidence.chain import canonical
from pileon.evidence.platform import PlatformRecords
from pileon.kafka.broker import EmbeddedBroker
from pileon.kafka.topics import ensure_topics
from pileon.schema.alert import AlertEvent
from pileon.schema.change import ChangeEvent
from tests.factories import NOW, alert_dict, iso, mention
from tests.peers.atproto_repo import POST, LoopbackAtproto, Repo
from tests.peers.tsa import LocalTSA
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
DID = "did:plc:author00000000000000000"


def test_the_archiver_seals_and_timestamps_what_it_keeps(
    embedded_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    bootstrap = embedded_broker.bootstrap
    names = ensure_topics(bootstrap, KafkaSettings(topic_prefix=f"ev{uuid.uuid4().hex[:6]}."))
    key = Ed25519PrivateKey.generate()
    bundles: list[Path] = []
    repo = Repo(DID)
    for minute in range(20):
        repo.post(f"3kp{minute:02d}", f"post {minute}")
    with LocalTSA() as tsa, LoopbackAtproto() as atproto:
        atproto.repos[DID] = repo
        sealer = Sealer(key, TimestampClient([tsa.url], ca_files=[tsa.ca]))
        before = _metrics()
        archiver = Archiver(bootstrap, names, tmp_path, sealer=sealer, checkpoint_seconds=0.5,
                            metrics_seconds=0.2,
                            on_bundle=lambda _e, folder: bundles.append(folder),
                            platform=PlatformRecords(tmp_path / "platform", atproto.url),
                            recheck_hours=[1.0])
        thread = threading.Thread(target=archiver.run, daemon=True)
        thread.start()
        try:
            clean = MentionProducer(bootstrap, names.clean)
            for minute in range(20):
                m = mention(at=NOW - timedelta(minutes=20 - minute), text=f"post {minute}",
                            author_id=DID, id=f"bluesky:at://{DID}/{POST}/3kp{minute:02d}")
                clean.send_raw(b"amara", orjson.dumps(m))
            clean.flush()
            wait_until(lambda: archiver.archived == 20, timeout=120, what="20 archived")
            wait_until(lambda: archiver.checkpoints is not None and
                       len(archiver.checkpoints.records("amara")) >= 1, timeout=60,
                       what="a checkpoint")
            repo.records.pop("3kp19")  # deleted before anyone looked at its source
            data = alert_dict(opened=iso(NOW))
            data["signals"]["near_duplicate_clusters"] = []
            data["signals"]["rate"]["mentions"] = 10
            data["evidence"]["from"] = iso(NOW - timedelta(minutes=30))  # as the worker sets it
            alerts = MentionProducer(bootstrap, names.alerts)
            alerts.send_raw(b"amara", AlertEvent.from_json(data).to_json())
            alerts.flush()
            # the archiver's alerts consumer joins its group first: ~20 s on Tansu
            wait_until(lambda: bundles != [], timeout=120, what="the bundle")
            # the incident opened weeks ago (NOW), so the look 1 h after it is due at once
            wait_until(lambda: orjson.loads((bundles[0] / "changes.json").read_bytes())
                       ["entries"], timeout=60, what="the bundle written again with the looks")
            # A deletion seen on the stream after the bundle: the bundle is written again
            # with it; a record that is not a change event becomes a dead letter.
            to_changes = MentionProducer(bootstrap, names.changes)
            to_changes.send_raw(b"amara", b'{"schema": "pileon.change/v1", "of": ""}')
            change = ChangeEvent.model_validate({
                "of": f"bluesky:at://{DID}/{POST}/3kp05", "person": "amara",
                "platform": "bluesky", "state": "deleted", "source": "jetstream delete commit",
                "received_at": NOW, "raw": {"kind": "commit"}})
            for _ in range(2):  # a connector replaying after a restart: kept once
                to_changes.send_raw(b"amara", change.to_json())
            to_changes.flush()
            wait_until(lambda: any(
                c["look"].startswith("stream:") for c in orjson.loads(
                    (bundles[0] / "changes.json").read_bytes())["entries"]),
                timeout=60, what="the bundle written again with the stream's deletion")
            assert archiver.changes_recorded == 1
            # What an operator sees of all that: nothing waits on the clean topic, and each
            # count moved by what happened (these counters are the process's, shared by tests).
            wait_until(lambda: _clean_lag(names.clean) == (0.0, 20.0), timeout=30,
                       what="the clean topic's lag at 0 with 20 committed")
            after = _metrics()
            moved = {k: after[k] - before.get(k, 0.0) for k in after}
            assert moved["records_amara"] == 20 and moved["bundles_opened"] == 1
            assert moved["changes"] == 1 and moved["dead_letters"] == 1
            assert moved["appends"] >= 1 and moved["heads_unpublished"] == 0
            assert after["disk_free"] > 0 and after["disk_size"] >= after["disk_free"]
            heads = _read(bootstrap, names.heads)
            letters = _read(bootstrap, names.invalid)
        finally:
            archiver.stop()
            thread.join(timeout=10)
        check = check_bundle(bundles[0], key.public_key())
        assert check.records == 20
        notes = "\n".join(check.notes)
        assert "sealed by key" in notes and "(verified)" in notes
        assert "platform records: 19 verified" in notes
        assert "platform records: 1 not found (deleted, or never public)" in notes
        changes = orjson.loads((bundles[0] / "changes.json").read_bytes())["entries"]
        assert [c["of"][-5:] for c in changes if c["state"] == "deleted"
                and not c["look"].startswith("stream:")] == ["3kp19"]
        assert "DELETED (seen" in (bundles[0] / "report.html").read_text()
        assert archiver.checkpoints is not None
        [checkpoint] = archiver.checkpoints.records("amara")  # sealed once: nothing new after
        assert checkpoint["statement"]["seq"] == 20
        # The head at the alert, for the notifier to put in the page: the bundle's head.
        [head] = heads
        manifest = orjson.loads((bundles[0] / "manifest.json").read_bytes())
        assert (head["seq"], head["head_hash"]) == (20, manifest["chain"]["head_hash"])
        assert head["checkpoint"]["signature"] == checkpoint["signature"]
        # Whoever was paged checks the bundle against the head they hold.
        from pileon.cli.main import main

        page_head = f"{head['seq']}:{head['head_hash']}"
        assert main(["verify", str(bundles[0]), "--head", page_head]) == 0
        chain = tmp_path / "chains" / "amara" / "chain.jsonl"
        assert main(["verify", str(chain), "--head", page_head]) == 0
        assert main(["verify", str(bundles[0]), "--head", f"20:{'0' * 64}"]) == 2
        assert main(["verify", str(bundles[0]), "--head", f"21:{head['head_hash']}"]) == 2
        assert head["idempotency_key"] == AlertEvent.from_json(data).idempotency_key
        [stream] = [c for c in changes if c["look"].startswith("stream:")]
        assert stream["of"].endswith("3kp05") and stream["event"] == {"kind": "commit"}
        assert "announced its deletion" in stream["detail"] and "seal" in stream
        [letter] = letters
        assert letter["reason"] == "schema" and "field of" in letter["detail"]
        token = base64.b64decode(checkpoint["timestamps"][0]["token"])
        done = tsa.verify_with_openssl(canonical(checkpoint["statement"]), token)
        assert "Verification: OK" in done.stdout, done.stderr


def _metrics() -> dict[str, float]:
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    return {
        "records_amara": value("pileon_evidence_records_total", person="amara"),
        "bundles_opened": value("pileon_evidence_bundles_total", transition="opened"),
        "changes": value("pileon_evidence_changes_total"),
        "dead_letters": value("pileon_evidence_dead_letters_total"),
        "appends": value("pileon_evidence_append_seconds_count"),
        "heads_unpublished": value("pileon_evidence_heads_unpublished_total"),
        "disk_free": value("pileon_evidence_disk_free_bytes"),
        "disk_size": value("pileon_evidence_disk_size_bytes"),
    }


def _clean_lag(topic: str) -> tuple[float, float]:
    """The archiver's lag and committed offset on ``topic``, summed over its partitions."""
    from prometheus_client import REGISTRY

    lag = committed = 0.0
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.labels.get("topic") != topic:
                continue
            if sample.name == "pileon_evidence_lag_messages":
                lag += sample.value
            elif sample.name == "pileon_evidence_committed_offset":
                committed += sample.value
    return lag, committed


def _read(bootstrap: str, topic: str) -> list[dict[str, object]]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[dict[str, object]] = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=300).values():
                out += [orjson.loads(r.value) for r in records]
        return out
    finally:
        consumer.close()
