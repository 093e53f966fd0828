"""Dashboards and rules against a real Prometheus (Debian package, loopback) scraping a live
worker, notifier and Jetstream connector while the simulator plays a pile-on: every panel query
of every dashboard, with its variables filled in, returns data; the rules load and the incident
alert fires; the metrics pass ``promtool check metrics``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pileon.connectors.simulator import SimulatorConnector
from pileon.core.process import terminate
from pileon.core.settings import KafkaSettings
from pileon.core.watchlist import load_watchlist
from pileon.kafka.broker import EmbeddedBroker, free_port
from pileon.kafka.topics import ensure_topics
from tests.conftest import EXAMPLE_WATCHLIST, REPO
from tests.http_receiver import Receiver
from tests.monitoring import PrometheusServer
from tests.peers.jetstream import JetstreamPeer, firehose
from tests.procs import wait_ready
from tests.test_integration.notifier import NotifierProcess
from tests.test_integration.worker import WorkerProcess, metric_value
from tests.waiting import wait_until


class MetricsProcess:
    """A ``pileon`` command as a process, its metrics on a loopback port."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], tmp: Path,
                 port: int) -> None:
        self.name, self.port, self._args, self._env = name, port, args, env
        self.log_path = tmp / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MetricsProcess:
        self.proc = subprocess.Popen([sys.executable, "-m", "pileon", *self._args],
                                     env=self._env, stdout=self.log_path.open("ab"),
                                     stderr=subprocess.STDOUT)
        wait_ready(self.proc, f"http://127.0.0.1:{self.port}/metrics", self.log_path,
                   self.name, 60)
        return self

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                    timeout=5) as r:
            return str(r.read().decode())

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc, 30)


def connector_process(worker: WorkerProcess, peer: JetstreamPeer, tmp: Path) -> MetricsProcess:
    """``pileon connect jetstream`` against a loopback peer."""
    port = free_port()
    return MetricsProcess("connector", [
        "connect", "jetstream", "--url", peer.url, "--appview", peer.http_url,
        "--metrics-port", str(port), "--name", "jetstream"], dict(worker.env), tmp, port)


def archiver_process(worker: WorkerProcess, tmp: Path) -> MetricsProcess:
    """``pileon archive`` on the worker's topics (no platform lookups: they would reach the
    internet)."""
    port = free_port()
    env = {**worker.env, "PILEON_EVIDENCE__METRICS_PORT": str(port),
           "PILEON_EVIDENCE__GROUP_ID": f"evidence-{uuid.uuid4().hex[:8]}",
           "PILEON_EVIDENCE__PLATFORM_RECORDS": "false", "PILEON_EVIDENCE__RECHECK_HOURS": "[]"}
    return MetricsProcess("archiver", ["archive", "--out", str(tmp / "evidence")], env, tmp,
                          port)


pytestmark = pytest.mark.slow

VARIABLES = {"$__rate_interval": "1m", "$person": "amara"}


def _fill(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def _queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel or annotation title, query) for every query of every dashboard."""
    found = []
    for path in sorted((REPO / "dashboards").glob("*.json")):
        data = json.loads(path.read_text())
        for panel in data["panels"]:
            found += [(path.stem, panel["title"], t["expr"]) for t in panel["targets"]]
        for annotation in data.get("annotations", {}).get("list", []):
            if annotation.get("expr"):
                found.append((path.stem, f"annotation {annotation['name']}", annotation["expr"]))
    return found


@pytest.fixture(scope="module")
def stack(embedded_broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("observability")
    bootstrap = embedded_broker.bootstrap
    prefix = f"obs{uuid.uuid4().hex[:6]}."
    names = ensure_topics(bootstrap, KafkaSettings(topic_prefix=prefix))
    watchlist = load_watchlist(EXAMPLE_WATCHLIST)
    amara = next(p for p in watchlist.persons if p.key == "amara")
    did = next(h for h in amara.handles["bluesky"] if h.startswith("did:"))
    frames, _, profiles = firehose(20_000, {"amara": (did, "Amara Okafor")}, match_share=0.02)
    with Receiver() as receiver, WorkerProcess(bootstrap, tmp, prefix, f"pileon-{prefix}") as w, \
            JetstreamPeer(frames, profiles=profiles, frames_per_second=100,
                          drop_after=[300]) as peer:
        notifier = NotifierProcess(bootstrap, tmp, prefix, webhook=f"{receiver.url}/hook")
        notifier.start()
        archiver = archiver_process(w, tmp).start()
        connector = connector_process(w, peer, tmp)
        jobs = {"pileon-worker": [f"127.0.0.1:{w.port}"],
                "pileon-notify": [f"127.0.0.1:{notifier.port}"],
                "pileon-archiver": [f"127.0.0.1:{archiver.port}"],
                "pileon-connector": [f"127.0.0.1:{connector.port}"]}
        rules = [REPO / "prometheus" / "pileon-rules.yml"]
        try:
            with PrometheusServer(tmp, jobs, rules) as prom:
                prom.wait_scraped("pileon-worker")
                simulator = SimulatorConnector.from_watchlist(
                    bootstrap, names.raw, watchlist, days=2, seed=5, target="amara",
                    invalid=True, invalid_topic=names.invalid)
                simulator.start()
                simulator.run()
                # After the simulated history: the worker's event-time watermark must not
                # jump ahead of it (earlier mentions would then be late and dropped).
                connector.start()
                receiver.wait_for(1, timeout=180)  # the incident reached the webhook
                time.sleep(15)  # a few more scrapes for rates and derivatives
                yield {"prom": prom, "worker": w, "notifier": notifier, "receiver": receiver,
                       "connector": connector, "archiver": archiver}
        finally:
            notifier.stop()
            archiver.stop()
            connector.stop()


class TestDashboardsAgainstPrometheus:
    @pytest.mark.parametrize(("dashboard", "title", "expr"), _queries(),
                             ids=[f"{d}: {t}" for d, t, _ in _queries()])
    def test_query_returns_data(self, stack: dict[str, Any], dashboard: str, title: str,
                                expr: str) -> None:
        result = stack["prom"].query_range(_fill(expr))
        assert result, f"{dashboard} / {title}: no data for {_fill(expr)}"

    def test_person_variable_lists_the_watchlist(self, stack: dict[str, Any]) -> None:
        body = stack["prom"].get("/api/v1/label/person/values",
                                 **{"match[]": "pileon_mentions_total"})
        assert {"amara", "sam"} <= set(body["data"])


class TestRulesInPrometheus:
    def test_rules_load_and_the_incident_alert_fires(self, stack: dict[str, Any]) -> None:
        groups = stack["prom"].get("/api/v1/rules")["data"]["groups"]
        assert {g["name"] for g in groups} == {"pileon.recording", "pileon.pipeline",
                                              "pileon.pileon"}
        assert all(r["health"] == "ok" for g in groups for r in g["rules"])
        # Rules run every second on the last scrape; poll rather than read once, and say what
        # the worker exported and whether its scrapes worked when the alert is not there.
        deadline = time.monotonic() + 60
        while True:
            alerts = stack["prom"].get("/api/v1/alerts")["data"]["alerts"]
            firing = {(a["labels"]["alertname"], a["labels"].get("person")) for a in alerts
                      if a["state"] == "firing"}
            if ("PileonIncidentOpen", "amara") in firing or time.monotonic() > deadline:
                break
            time.sleep(1)
        gauge = [line for line in stack["worker"].metrics().splitlines()
                 if line.startswith("pileon_incidents_open")]
        targets = [(t["labels"]["job"], t["health"], t.get("lastError"))
                   for t in stack["prom"].get("/api/v1/targets")["data"]["activeTargets"]]
        assert ("PileonIncidentOpen", "amara") in firing, (firing, gauge, targets)
        assert not {name for name, _ in firing} - {"PileonIncidentOpen"}

    @pytest.mark.parametrize("record", ["pileon:mentions:rate5m", "pileon:score:max",
                                        "pileon:consumer_lag_messages:sum",
                                        "pileon:dead_letters:rate5m",
                                        "pileon:incidents_open:sum"])
    def test_recording_rules_produce_series(self, stack: dict[str, Any], record: str) -> None:
        assert stack["prom"].query_range(record)


class TestMetricsExposition:
    @pytest.mark.parametrize("process", ["worker", "notifier", "connector", "archiver"])
    def test_promtool_check_metrics_passes(self, stack: dict[str, Any], process: str) -> None:
        promtool = shutil.which("promtool")
        assert promtool, "promtool missing: `make tools` installs it"
        text = stack[process].metrics()
        done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr

    def test_worker_keeps_faust_group_series_not_per_event_ones(
        self, stack: dict[str, Any]
    ) -> None:
        text = stack["worker"].metrics()
        # Faust's "total_rebalances" is a gauge of rebalances in progress (0 between them).
        assert "\npileon_faust_total_rebalances " in text
        assert metric_value(text, "pileon_faust_rebalance_done_latency_count") >= 1
        assert metric_value(text, "pileon_faust_consumer_commit_latency_count") >= 1
        committed = metric_value(text, "pileon_faust_topic_partition_offset_commited")
        ends = metric_value(text, "pileon_faust_topic_partition_end_offset")
        assert 0 < committed <= ends
        for series in ("pileon_faust_messages_received", "pileon_faust_total_events",
                       "pileon_faust_table_operations", "pileon_faust_total_sent_messages"):
            assert series not in text

    def test_notifier_counted_the_delivery(self, stack: dict[str, Any]) -> None:
        text = stack["notifier"].metrics()
        assert metric_value(text, "pileon_alert_deliveries_total", outcome="delivered") >= 1

    def test_archiver_counted_the_evidence_and_its_bundle(self, stack: dict[str, Any]) -> None:
        # The bundle comes once the archiver's alerts consumer has joined its group (about
        # 20 s on Tansu) and has drained the clean topic up to the alert.
        archiver = stack["archiver"]
        wait_until(lambda: metric_value(archiver.metrics(), "pileon_evidence_bundles_total",
                                        transition="opened") >= 1, timeout=90,
                   what="the archiver's bundle")
        text = archiver.metrics()
        assert metric_value(text, "pileon_evidence_records_total", person="amara") > 100
        assert metric_value(text, "pileon_evidence_disk_free_bytes") > 0
        assert ".example" not in Path(stack["archiver"].log_path).read_text()

    def test_worker_log_holds_no_text(self, stack: dict[str, Any]) -> None:
        assert ".example" not in Path(stack["worker"].log_path).read_text()
