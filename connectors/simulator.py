"""``pileon simulate`` and the demo's connector: publishes a :mod:`.traffic` simulation to
``mentions.raw`` through the connectors' producer, at a chosen speed (and, given a changes
topic, the later deletion of some of the pile-on's posts, as a connector would see them)."""

from __future__ import annotations

import time
from typing import Any

import orjson

from pileon.connectors.traffic import GroundTruth, PileOnScript, Simulator, invalid_messages
from pileon.core.times import epoch
from pileon.kafka.connection import Connection


class SimulatorConnector:
    """Publishes a simulation to ``mentions.raw`` (the connector contract, for demos/tests).

    ``speed`` is event-time seconds per wall second (e.g. 3600: an hour a second); 0 sends as
    fast as the broker acknowledges.
    """

    name = "simulator"

    def __init__(
        self, connection: Connection, topic: str, simulator: Simulator, *, speed: float = 0.0,
        invalid: bool = False, invalid_topic: str | None = None,
        changes_topic: str | None = None,
    ) -> None:
        self._connection = connection
        self._changes_topic = changes_topic
        self._topic = topic
        self._invalid_topic = invalid_topic
        self._simulator = simulator
        self._speed = speed
        self._invalid = invalid
        self._stopped = False
        self._producer: Any = None
        self._acked_until: str | None = None

    @classmethod
    def from_watchlist(
        cls, connection: Connection, topic: str, watchlist: Any, *, days: float, seed: int,
        target: str | None, speed: float = 0.0, invalid: bool = False,
        end: float | None = None, invalid_topic: str | None = None,
        changes_topic: str | None = None,
    ) -> SimulatorConnector:
        persons = {p.key: p.display_name for p in watchlist.persons}
        target = target or next(iter(persons))
        simulator = Simulator(
            persons, end=end if end is not None else time.time(), days=days, seed=seed,
            pileon=PileOnScript(target, post_share=0.5),  # a brigade on one of their posts
        )
        return cls(connection, topic, simulator, speed=speed, invalid=invalid,
                   invalid_topic=invalid_topic, changes_topic=changes_topic)

    def start(self) -> None:
        from pileon.connectors.producer import MentionProducer

        self._producer = MentionProducer(
            self._connection, self._topic, invalid_topic=self._invalid_topic
        )

    def run(self) -> int:
        try:
            return self._publish()
        finally:
            self._producer.close()

    def _publish(self) -> int:
        mentions = self._simulator.mentions()
        wall0, event0 = time.monotonic(), self._simulator.start
        for i, mention in enumerate(mentions):
            if self._stopped:
                break
            if self._speed > 0:
                due = (epoch(mention["created_at"]) - event0) / self._speed
                delay = due - (time.monotonic() - wall0)
                if delay > 0:
                    self._producer.flush()
                    time.sleep(delay)
            self._producer.send(mention)
            if i % 5000 == 4999:
                self._producer.flush()
                self._acked_until = mention["created_at"]
        if self._changes_topic is not None:  # some of the pile-on's posts deleted later
            for change in self._simulator.deletions(mentions):
                self._producer.send_record(self._changes_topic, change["person"].encode(),
                                           orjson.dumps(change))
        if self._invalid:
            person = next(iter(self._simulator.persons))
            for key, value in invalid_messages(person, self._simulator.end):
                self._producer.send_raw(key, value)
        self._producer.flush()
        self._acked_until = self._simulator.ground_truth().end
        return int(self._producer.sent)

    def stop(self) -> None:
        self._stopped = True

    def checkpoint(self) -> dict[str, Any]:
        return {"acked_until": self._acked_until, "seed": self._simulator.seed}

    def ground_truth(self) -> GroundTruth:
        return self._simulator.ground_truth()
