"""The Faust baselines `bench/throughput.py` runs beside the worker, as a process of their own.

    python bench/faust_baseline.py noop    BOOTSTRAP APP_ID SOURCE PARTITIONS
    python bench/faust_baseline.py noop-batch BOOTSTRAP APP_ID SOURCE PARTITIONS
    python bench/faust_baseline.py direct BOOTSTRAP APP_ID SOURCE PARTITIONS
    python bench/faust_baseline.py forward BOOTSTRAP APP_ID SOURCE PARTITIONS SINK

``noop`` reads every event of ``SOURCE`` and does nothing with it: Faust's own ceiling on this
broker. ``noop-batch`` does the same through ``take_events`` with the worker's batch size and
wait (``worker.batch_max``, ``worker.batch_wait_ms``): the floor of the Faust API the worker
used until it took its records below Faust's streams. ``direct`` takes the same batches from
the queue Faust's consumer delivers to, as the worker does now
(``streams.worker.agents.raw_channel``), and tracks and acknowledges them: the worker's floor.
``forward`` sends each event's value on to ``SINK`` (keyed the same, awaited per event, as the
worker's ingest agent does): the cost of one produce per event. All run on the worker's own
Faust app (``streams.worker.app.faust_app``: acks=all, its linger and session settings, its
event loop) with raw serialisers, so the ratio of the worker to them is the share of Faust's
ceiling the pipeline keeps.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pileon.core.settings import load_settings
from pileon.kafka.connection import as_connection
from pileon.streams.worker.agents import batches, raw_channel, taker
from pileon.streams.worker.app import faust_app, use_event_loop


def main() -> None:
    kind, bootstrap, app_id, source, partitions = sys.argv[1:6]
    # The worker's own app (consumer, producer, session settings), under another app id and
    # with its data in a directory of its own.
    os.environ["PILEON_WORKER__APP_ID"] = app_id
    if "PILEON_WORKER__DATA_DIR" not in os.environ:  # bench/throughput.py gives one in its run
        os.environ["PILEON_WORKER__DATA_DIR"] = tempfile.mkdtemp(prefix=f"pileon-bench-{app_id}-")
    settings = load_settings()
    use_event_loop(settings)  # the worker's loop too
    app = faust_app(settings, as_connection(bootstrap))
    topic = app.topic(source, partitions=int(partitions), key_serializer="raw",
                      value_serializer="raw")
    if kind == "noop":
        @app.agent(topic, name="noop")
        async def noop(stream: Any) -> None:
            async for _event in stream.events():
                pass
    elif kind == "noop-batch":
        size, wait = settings.worker.batch_max, settings.worker.batch_wait_ms / 1000

        @app.agent(topic, name="noop")
        async def noop_batch(stream: Any) -> None:
            async for _events in stream.take_events(size, wait):
                pass
    elif kind == "forward":
        sink = app.topic(sys.argv[6], partitions=int(partitions), key_serializer="raw",
                         value_serializer="raw")

        @app.agent(topic, name="forward")
        async def forward(stream: Any) -> None:
            async for event in stream.events():
                await sink.send(key=event.key, value=event.value)
    elif kind == "direct":
        size, wait = settings.worker.batch_max, settings.worker.batch_wait_ms / 1000
        channel = raw_channel(app, topic)

        @app.task
        async def direct() -> None:
            async for batch in batches(channel.queue, size, wait, taker(app.consumer, {})):
                for taken in batch:
                    taken.message.ack(app.consumer)
    else:
        sys.exit(f"unknown baseline {kind!r}: noop, noop-batch, direct or forward")
    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--without-web"]
    app.main()


if __name__ == "__main__":
    main()
