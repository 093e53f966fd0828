"""A Faust table whose changelog partition for a key is its person's, by construction.

A plain Faust table sends each change to the changelog partition of the *current event*, and
refuses a change when there is none: the worker's batches, taken below Faust's streams, have no
current event (``TypeError: Cannot modify table key from outside of stream iteration``; nor has
the body of a ``take_events`` batch), and an event of one
person must never write another person's records into its own partition. The worker's tables
are keyed ``person`` or ``person|record`` and ``mentions.raw`` is partitioned
``murmur2(person) % n`` (the producers' default partitioner; the ingest step re-keys a
misrouted mention), so the right changelog partition of a key is computed from the key: the
partition whose owner reads that person's mentions, and which recovery replays into the
worker that owns them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from pileon.kafka.topics import key_partition

SEP = b"|"


def person_of(key: bytes) -> bytes:
    """The person a table key belongs to: ``person`` or the part of ``person|record`` before
    the first ``|`` (person keys cannot contain one: ``PERSON_KEY_PATTERN``)."""
    return key.split(SEP, 1)[0]


class ChangelogLost(RuntimeError):
    """A table change the broker did not acknowledge: the table in memory is ahead of its
    changelog, so nothing that rests on it may be produced or committed."""


class PersonTable(faust.Table):
    """Keys are bytes starting with a person key; changes go to that person's partition.

    Faust sends a change to the changelog without waiting, and a send that fails is only
    logged (by ``_on_changelog_sent``): the worker could then commit offsets past events whose
    state no restart would find. Each change's future is kept until :func:`changelogs_durable`
    has seen it acknowledged."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.unsettled: list[Any] = []

    def partition_for_key(self, key: Any) -> int:
        assert self.partitions  # noqa: S101 - person_table() sets them
        return key_partition(person_of(bytes(key)), self.partitions)

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        future = super().send_changelog(*args, **kwargs)
        self.unsettled.append(future)
        return future


async def changelogs_durable(app: faust.App, wait: bool = True) -> None:
    """Check the changes the worker's tables have sent; :class:`ChangelogLost` if the broker
    refused one (the worker then stops before acknowledging the batch, and reads it again from
    the committed offsets after a restart).

    ``wait``: flush Faust's producer and wait until every change is acknowledged (before a
    batch's alerts leave). Otherwise only the changes already answered are checked, and the
    others are kept for the next call: a batch without alerts does not wait a round trip for
    its changelog (10-15% of the worker's rate, docs/reliability.md)."""
    tables = [t for t in app.tables.values() if isinstance(t, PersonTable)]
    if wait:
        await app.producer.flush()
    pending = [f for t in tables for f in t.unsettled]
    if wait and pending:
        await asyncio.gather(*pending, return_exceptions=True)
    for t in tables:
        t.unsettled = [f for f in t.unsettled if not f.done()]
    answered = [asyncio.CancelledError() if f.cancelled() else f.exception()
                for f in pending if f.done()]
    failed = [e for e in answered if e is not None]
    if failed:
        raise ChangelogLost(f"{len(failed)} of {len(pending)} table changes were not "
                            f"acknowledged ({type(failed[0]).__name__}: {failed[0]})")


def person_table(app: faust.App, name: str, partitions: int, help_: str) -> PersonTable:
    """A :class:`PersonTable` of ``app`` with bytes keys and values.

    Faust derives a table's changelog codec from key_type/value_type only ("raw" for bytes):
    a schema= argument is used for writing but ignored by recovery, which then decodes as JSON
    and silently drops every record (found by the kill -9 fault test).
    """
    table = PersonTable(app, name=name, partitions=partitions, help=help_, key_type=bytes,
                        value_type=bytes, beacon=app.tables.beacon)
    app.tables.add(table)
    return table
