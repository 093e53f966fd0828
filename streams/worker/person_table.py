"""A Faust table whose changelog partition for a key is its person's, by construction.

A plain Faust table sends each change to the changelog partition of the *current event*, and
refuses a change when there is none: the body of a ``take_events`` batch has no current event
(``TypeError: Cannot modify table key from outside of stream iteration``), and an event of one
person must never write another person's records into its own partition. The worker's tables
are keyed ``person`` or ``person|record`` and ``mentions.raw`` is partitioned
``murmur2(person) % n`` (the producers' default partitioner; the ingest step re-keys a
misrouted mention), so the right changelog partition of a key is computed from the key: the
partition whose owner reads that person's mentions, and which recovery replays into the
worker that owns them.
"""

from __future__ import annotations

from typing import Any

import faust

from pileon.kafka.topics import key_partition

SEP = b"|"


def person_of(key: bytes) -> bytes:
    """The person a table key belongs to: ``person`` or the part of ``person|record`` before
    the first ``|`` (person keys cannot contain one: ``PERSON_KEY_PATTERN``)."""
    return key.split(SEP, 1)[0]


class PersonTable(faust.Table):
    """Keys are bytes starting with a person key; changes go to that person's partition."""

    def partition_for_key(self, key: Any) -> int:
        assert self.partitions  # noqa: S101 - person_table() sets them
        return key_partition(person_of(bytes(key)), self.partitions)


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
