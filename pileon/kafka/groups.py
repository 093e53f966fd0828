"""Who is in a consumer group: the members the group coordinator knows of.

``pileon check`` asks whether a worker, a notifier and an archiver are running at all: lag 0
with nobody consuming is not "ok". Asked with aiokafka's admin client: kafka-python 3.0's
``describe_groups`` fails on the embedded broker (it decodes Tansu's authorised-operations field
as an ACL operation and raises), aiokafka reads DescribeGroups v2, which has no such field.

A new cluster answers ``COORDINATOR_NOT_AVAILABLE`` until it has created ``__consumer_offsets``
(seconds after the first group request): :func:`retrying` retries what Kafka marks retriable,
for a bounded time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError as AioKafkaError
from kafka.errors import KafkaError

from pileon.kafka.connection import Connection, as_connection

T = TypeVar("T")


class StillUnavailable(Exception):
    """A retriable error lasted past the deadline; the message names it."""


def retrying(fn: Callable[[], T], seconds: float, pause: float = 0.5) -> T:
    """``fn()``, retried while it raises a retriable Kafka error, for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return fn()
        except (KafkaError, AioKafkaError) as exc:
            if not getattr(exc, "retriable", False):
                raise
            if time.monotonic() + pause > deadline:
                raise StillUnavailable(
                    f"{type(exc).__name__} for {seconds:.0f}s (a new cluster creates its "
                    "offsets topic on first use: try again in a few seconds)") from None
            time.sleep(pause)


def group_members(connection: Connection, groups: Sequence[str], timeout: float = 10.0,
                  ) -> dict[str, int]:
    """How many members each group has now (0 for a group nobody has joined)."""
    return asyncio.run(_members(as_connection(connection).aiokafka(), list(groups), timeout))


async def _members(config: dict[str, object], groups: list[str], timeout: float
                   ) -> dict[str, int]:
    admin = AIOKafkaAdminClient(**config, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        counts = dict.fromkeys(groups, 0)
        for wanted in groups:  # one at a time: Tansu 0.6 drops the connection otherwise
            for response in await admin.describe_consumer_groups([wanted]):
                for group in response.groups:
                    error, group_id, members = group[0], group[1], group[5]
                    if error == 0 and group_id in counts:
                        counts[group_id] = len(members)
        return counts
    finally:
        await admin.close()
