"""The worker's event loop is the one ``worker.event_loop`` names."""

from __future__ import annotations


def test_the_worker_runs_on_the_event_loop_its_settings_name() -> None:
    import asyncio

    import uvloop

    from pileon.core.settings import load_settings
    from pileon.streams.worker.app import use_event_loop

    policy = asyncio.get_event_loop_policy()
    try:
        use_event_loop(load_settings(worker={"event_loop": "asyncio"}))
        assert asyncio.get_event_loop_policy() is policy
        use_event_loop(load_settings())  # the default
        loop = asyncio.new_event_loop()
        assert isinstance(loop, uvloop.Loop)
        loop.close()
    finally:
        asyncio.set_event_loop_policy(policy)
