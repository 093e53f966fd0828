"""The worker's tables keep each changelog send's future until the batch checks it: a change
the broker did not acknowledge stops the worker before the batch's alerts and offsets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pileon.streams.worker.person_table import ChangelogLost, PersonTable, changelogs_durable


class _App:
    def __init__(self, tables: list[Any]) -> None:
        self.flushed = 0
        self.tables = {f"t{n}": t for n, t in enumerate(tables)}
        app = self

        class Producer:
            async def flush(self) -> None:
                app.flushed += 1

        self.producer = Producer()


def _table(*outcomes: BaseException | None) -> PersonTable:
    table = PersonTable.__new__(PersonTable)  # no Faust app needed for the futures
    loop = asyncio.get_running_loop()
    table.unsettled = []
    for outcome in outcomes:
        future: asyncio.Future[Any] = loop.create_future()
        if outcome is None:
            future.set_result("metadata")
        else:
            future.set_exception(outcome)
        table.unsettled.append(future)
    return table


def test_acknowledged_changes_pass_and_are_forgotten() -> None:
    async def run() -> tuple[_App, list[PersonTable]]:
        tables = [_table(None, None), _table(None)]
        app = _App(tables)
        await changelogs_durable(app)  # type: ignore[arg-type]
        return app, tables

    app, tables = asyncio.run(run())
    assert app.flushed == 1
    assert all(t.unsettled == [] for t in tables)


def test_without_waiting_only_answered_changes_are_checked_and_the_rest_kept() -> None:
    async def run() -> tuple[_App, PersonTable]:
        table = _table(None)
        table.unsettled.append(asyncio.get_running_loop().create_future())  # in flight
        app = _App([table])
        await changelogs_durable(app, wait=False)  # type: ignore[arg-type]
        return app, table

    app, table = asyncio.run(run())
    assert app.flushed == 0
    assert len(table.unsettled) == 1 and not table.unsettled[0].done()


def test_a_refused_change_already_answered_stops_a_batch_that_does_not_wait() -> None:
    async def run() -> None:
        await changelogs_durable(_App([_table(OSError("refused"))]),  # type: ignore[arg-type]
                                 wait=False)

    with pytest.raises(ChangelogLost, match="OSError"):
        asyncio.run(run())


def test_a_change_the_broker_refused_stops_the_batch() -> None:
    async def run() -> None:
        tables = [_table(None), _table(None, ConnectionError("broker away"))]
        await changelogs_durable(_App(tables))  # type: ignore[arg-type]

    with pytest.raises(ChangelogLost, match=r"1 of 3 table changes.*ConnectionError"):
        asyncio.run(run())
