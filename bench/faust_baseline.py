"""The Faust baselines `bench/throughput.py` runs beside the worker, as a process of their own.

    python bench/faust_baseline.py noop    BOOTSTRAP APP_ID SOURCE PARTITIONS
    python bench/faust_baseline.py forward BOOTSTRAP APP_ID SOURCE PARTITIONS SINK

``noop`` reads every event of ``SOURCE`` and does nothing with it: Faust's own ceiling on this
broker. ``forward`` sends each event's value on to ``SINK`` (keyed the same, awaited per event,
as the worker's ingest agent does): the cost of one produce per event. Both use the worker's
consumer and producer settings (raw serialisers, acks=all, the default linger), so the ratio
of the worker to them is the share of Faust's ceiling the pipeline keeps.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import faust

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pileon.core.settings import load_settings


def main() -> None:
    kind, bootstrap, app_id, source, partitions = sys.argv[1:6]
    datadir = tempfile.mkdtemp(prefix=f"pileon-bench-{app_id}-")
    worker = load_settings().worker
    app = faust.App(
        app_id, broker=f"kafka://{bootstrap}", store="memory://", web_enabled=False,
        topic_partitions=int(partitions), consumer_auto_offset_reset="earliest",
        producer_acks=-1, producer_linger=worker.producer_linger_ms / 1000.0,
        broker_session_timeout=worker.session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, worker.session_timeout_seconds / 3),
        datadir=datadir,
    )
    topic = app.topic(source, partitions=int(partitions), key_serializer="raw",
                      value_serializer="raw")
    if kind == "noop":
        @app.agent(topic, name="noop")
        async def noop(stream: Any) -> None:
            async for _event in stream.events():
                pass
    elif kind == "forward":
        sink = app.topic(sys.argv[6], partitions=int(partitions), key_serializer="raw",
                         value_serializer="raw")

        @app.agent(topic, name="forward")
        async def forward(stream: Any) -> None:
            async for event in stream.events():
                await sink.send(key=event.key, value=event.value)
    else:
        sys.exit(f"unknown baseline {kind!r}: noop or forward")
    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--without-web"]
    app.main()


if __name__ == "__main__":
    main()
