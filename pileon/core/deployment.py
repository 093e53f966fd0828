"""Names the pieces of a deployment must agree on, written once (kubernetes-mixin's ``_config``).

The Prometheus job names select pileon's targets in the alert rules, the dashboards, the Helm
chart's ServiceMonitor and PodMonitor relabelling and the compose stack's scrape config; the
runbook URL is where every alert rule and every notification points. ``pileon generate`` writes
them into ``helm/pileon/files/monitoring.json`` (the chart reads it with ``.Files.Get``) and
``deploy/prometheus/prometheus.yml``; rules and dashboards import them. Change them here only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Jobs:
    """Prometheus ``job`` label of each kind of pileon process."""

    worker: str = "pileon-worker"
    notify: str = "pileon-notify"
    archiver: str = "pileon-archiver"
    connector: str = "pileon-connector"


JOBS = Jobs()
RUNBOOK_URL = "https://github.com/pileon-dev/pileon/blob/main/docs/runbook.md"


def as_dict() -> dict[str, Any]:
    """The shared names as the Helm chart reads them (``files/monitoring.json``)."""
    return {"jobs": asdict(JOBS), "runbookUrl": RUNBOOK_URL}
