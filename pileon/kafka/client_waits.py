"""A ceiling on kafka-python's blocking calls, which 3.0.x can leave waiting forever.

kafka-python 3.0 runs its network I/O on a thread of its own. A blocking call (``poll``,
``end_offsets``, ``list_group_offsets``, ``commit``…) hands a coroutine to that thread and waits
on a ``threading.Event`` with no timeout (``NetworkSelector.run``). If the coroutine never
finishes, the caller never returns: dpkp/kafka-python#3121, fixed on its master branch by #3123
and #3124 (a ``default_api_timeout_ms`` of 60 s plus 5 s of grace) but in no 3.0.x release.

In pileon that hang is not theoretical: a CI run's test reader sat 300 s in
``KafkaConsumer.poll`` on that wait, and a worker's stall watchdog reads the group's lag with
these clients: a hung read would switch the watchdog off for good, the one component meant to
notice a worker that stopped making progress. The notifier, archiver and console feed would stop
silently.

:func:`install` gives that wait a ceiling, as upstream does: a call that has not finished after
:data:`CEILING_SECONDS` raises ``KafkaTimeoutError`` in the caller, which every pileon loop
already handles as a broker error (retry, or exit for the supervisor). The coroutine is left to
finish or fail on the I/O thread, as upstream leaves it. Only the wait in ``run`` is changed:
``kafka.net.selector`` creates no other ``Event``. It is installed when ``pileon.kafka`` is
imported, only on the 3.0 series (later versions bound the wait themselves).
"""

from __future__ import annotations

import threading
import types
from typing import Any

import kafka
from kafka.errors import KafkaTimeoutError

CEILING_SECONDS = 65.0  # upstream: default_api_timeout_ms 60 s + bridge_grace_ms 5 s


class BoundedEvent(threading.Event):
    """An Event whose unbounded ``wait()`` gives up after the ceiling, raising."""

    ceiling = CEILING_SECONDS

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is not None:
            return super().wait(timeout)
        if not super().wait(self.ceiling):
            raise KafkaTimeoutError(
                f"kafka-python call did not complete within {self.ceiling:.0f} s "
                "(its network thread never answered; dpkp/kafka-python#3121)")
        return True


def _threading_with_bounded_events() -> types.ModuleType:
    """A stand-in for the ``threading`` module that makes BoundedEvents."""
    module = types.ModuleType("threading_bounded")

    def __getattr__(name: str) -> Any:  # everything else is the real module's
        return getattr(threading, name)

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    module.Event = BoundedEvent  # type: ignore[attr-defined]
    return module


def applies(version: str = kafka.__version__) -> bool:
    """The versions whose cross-thread wait has no ceiling of its own."""
    return version.startswith("3.0.")


def install() -> bool:
    """Bound kafka-python's cross-thread waits (idempotent); False where it does not apply."""
    from kafka.net import selector

    current = getattr(selector, "threading", None)
    if current is None or not applies():
        return False
    if current is not threading:
        return getattr(current, "Event", None) is BoundedEvent
    selector.threading = _threading_with_bounded_events()
    return True
