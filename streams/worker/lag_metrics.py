"""Export the worker group's lag and committed offsets per partition as Prometheus gauges.

Every worker reads the lag (its stall watchdog needs it); only the group leader exports it, so
replicas do not report the same series twice. The figures come from the broker
(``pileon.kafka.lag``), so a partition that no worker consumes still shows its lag growing and
its committed offset standing still.
"""

from __future__ import annotations

import logging

from kafka.errors import KafkaError

from pileon.kafka.connection import Connection
from pileon.kafka.lag import LagProbe, PartitionLag
from pileon.streams.worker import metrics

log = logging.getLogger(__name__)


class LagExporter:
    def __init__(self, connection: Connection, group: str, partitions: dict[str, int]) -> None:
        self._args = (connection, group, partitions)
        self._probe: LagProbe | None = None

    def read(self) -> list[PartitionLag] | None:
        """Lag of every partition, or None if the broker could not say (blocking)."""
        try:
            if self._probe is None:
                self._probe = LagProbe(*self._args)
            return self._probe.read()
        except (KafkaError, OSError) as exc:
            metrics.LAG_PROBE_ERRORS.inc()
            log.warning("could not read consumer lag from the broker: %s", type(exc).__name__)
            self.close()
            return None

    @staticmethod
    def export(lags: list[PartitionLag]) -> None:
        """Set the lag and committed-offset gauges from one :meth:`read`."""
        for p in lags:
            part = str(p.partition)
            metrics.CONSUMER_LAG.labels(p.topic, part).set(p.lag)
            if p.committed is not None:
                metrics.COMMITTED_OFFSET.labels(p.topic, part).set(p.committed)

    def close(self) -> None:
        if self._probe is not None:
            probe, self._probe = self._probe, None
            try:
                probe.close()
            except (KafkaError, OSError) as exc:  # a client that hung may fail to close too
                log.warning("could not close the lag reader: %s", type(exc).__name__)
