"""The console against real peers: the alerts topic on the embedded broker (a new database is
rebuilt from it; a restart resumes), and a real Alertmanager (acknowledging silences the page
there; resolving ends the silence; an escalation still pages)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from pileon.alerting.alertmanager import AlertmanagerSink
from pileon.alerting.notification import notification_from_event
from pileon.connectors.producer import MentionProducer
from pileon.console.db import (
    AlertRecord,
    ChainHeadRecord,
    FeedOffset,
    Incident,
    Silence,
    make_engine,
    migrate,
    sessions,
)
from pileon.console.feed import KafkaFeed
from pileon.core.settings import AlertingSettings, KafkaSettings
from pileon.kafka.broker import EmbeddedBroker
from pileon.kafka.topics import ensure_topics
from pileon.schema.head import ChainHead
from tests.factories import alert_event
from tests.http_receiver import Receiver
from tests.monitoring import AlertmanagerServer
from tests.test_console.helpers import console_clients, console_settings, csrf, write_archive
from tests.test_integration.test_alertmanager import _send
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


class _Following:
    """A feed on its own thread, as the console runs it; :meth:`stop` returns once it has
    stopped (a feed still polling could otherwise store what the next one should read)."""

    def __init__(self, bootstrap: str, topic: str, db_url: str,
                 heads_topic: str | None = None) -> None:
        engine = make_engine(db_url)
        migrate(engine)
        self.feed = KafkaFeed(bootstrap, topic, sessions(engine), heads_topic)
        self._thread = threading.Thread(target=self.feed.run, daemon=True)
        self._thread.start()
        assert self.feed.caught_up.wait(60)

    @property
    def events(self) -> int:
        return self.feed.events

    def stop(self) -> None:
        self.feed.stop()
        self._thread.join(30)
        assert not self._thread.is_alive()


def test_a_new_database_is_rebuilt_from_the_alerts_topic_and_a_restart_resumes(
    embedded_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    bootstrap = embedded_broker.bootstrap
    names = ensure_topics(bootstrap, KafkaSettings(topic_prefix=f"c{uuid.uuid4().hex[:6]}."))
    events = [alert_event(p, "opened", opened=f"2026-11-2{i}T10:00:00Z")
              for i, p in enumerate(["amara", "sam", "lee"])]
    _send(bootstrap, names, *events)
    url = f"sqlite:///{tmp_path / 'a.db'}"
    feed = _Following(bootstrap, names.alerts, url)
    wait_until(lambda: feed.events == 3)
    feed.stop()
    # a restart on the same database reads only what is new
    _send(bootstrap, names, events[0], alert_event("amara", "resolved",
                                                   opened="2026-11-20T10:00:00Z",
                                                   at="2026-11-20T11:00:00Z"))
    again = _Following(bootstrap, names.alerts, url)
    wait_until(lambda: again.events == 1)  # the re-sent opening was a duplicate
    again.stop()
    sm = sessions(make_engine(url))
    with sm() as db:
        assert db.scalar(select(func.count()).select_from(AlertRecord)) == 4
        assert db.scalar(select(func.sum(FeedOffset.next_offset))) == 5
        assert not db.get(Incident, events[0].incident_id).firing  # type: ignore[union-attr]
    # a new database: everything again, from the beginning
    fresh = _Following(bootstrap, names.alerts, f"sqlite:///{tmp_path / 'b.db'}")
    wait_until(lambda: fresh.events == 4)
    fresh.stop()


def test_the_feed_keeps_the_chain_heads_the_archiver_published(
    embedded_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    bootstrap = embedded_broker.bootstrap
    names = ensure_topics(bootstrap, KafkaSettings(topic_prefix=f"h{uuid.uuid4().hex[:6]}."))
    event = alert_event("amara", "opened")
    _send(bootstrap, names, event)
    producer = MentionProducer(bootstrap, names.heads)
    head = ChainHead(incident_id=event.incident_id, idempotency_key=event.idempotency_key,
                     person="amara", seq=14, head_hash="c" * 64, at="2026-11-20T12:10:05Z")
    producer.send_raw(b"amara", head.to_json())
    producer.send_raw(b"amara", b"not a head")  # logged and skipped, the feed goes on
    producer.flush()
    producer.close()
    url = f"sqlite:///{tmp_path / 'h.db'}"
    feed = _Following(bootstrap, names.alerts, url, names.heads)
    wait_until(lambda: feed.events == 1 and feed.feed.heads == 1)
    feed.stop()
    with sessions(make_engine(url))() as db:
        [row] = db.scalars(select(ChainHeadRecord)).all()
        assert (row.incident_id, row.seq, row.head_hash) == (event.incident_id, 14, "c" * 64)
        offsets = {(o.topic, o.partition): o.next_offset for o in db.scalars(select(FeedOffset))}
    assert sum(v for (t, _), v in offsets.items() if t == names.heads) == 2


def test_acknowledging_silences_the_page_in_alertmanager(tmp_path: Path) -> None:
    event = write_archive(tmp_path / "evidence")
    with Receiver() as receiver, AlertmanagerServer(tmp_path, f"{receiver.url}/am") as am:
        AlertmanagerSink(am.url).deliver(notification_from_event(event, AlertingSettings()))
        settings = console_settings(tmp_path)
        settings.alerting.alertmanager_urls = [am.url]
        with console_clients(tmp_path, settings) as (sm, clients):
            client = clients["responder"]
            token = csrf(client)
            path = f"/incidents/{event.incident_id}"

            def alert_state() -> dict[str, object]:
                [alert] = requests.get(f"{am.url}/api/v2/alerts", timeout=5).json()
                return dict(alert["status"])

            wait_until(lambda: requests.get(f"{am.url}/api/v2/alerts", timeout=5).json() != [])
            assert client.post(f"{path}/acknowledge", data={"csrf": token}).status_code == 303
            wait_until(lambda: alert_state()["state"] == "suppressed")
            with sm() as db:
                [silence] = db.scalars(select(Silence)).all()
            assert alert_state()["silencedBy"] == [silence.silence_id]
            found = requests.get(f"{am.url}/api/v2/silence/{silence.silence_id}", timeout=5).json()
            assert found["createdBy"] == "responder"
            assert {m["name"]: m["value"] for m in found["matchers"]} == {
                "alertname": "PileOn", "person": "amara", "severity": "warning"}
            assert client.post(f"{path}/resolve", data={"csrf": token}).status_code == 303
            found = requests.get(f"{am.url}/api/v2/silence/{silence.silence_id}", timeout=5).json()
            assert found["status"]["state"] == "expired"
            wait_until(lambda: alert_state()["state"] == "active")
