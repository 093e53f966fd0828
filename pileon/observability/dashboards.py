"""pileon's Grafana dashboards, built with grafana-foundation-sdk (pinned in pyproject).

Three dashboards with stable uids, each with a ``datasource`` variable of type Prometheus:

* **Overview**: every protected person: current pile-on score, incidents open, mentions per
  minute, and a heat map of scores over time;
* **Person**: one ``person``: mentions against the baseline band, score, distinct authors,
  young-account share, near-duplicate clusters; incidents as annotations;
* **Pipeline**: throughput, lag, commit progress, dead letters by reason, alert deliveries,
  processing latency, and the connectors (events by outcome, published, lag, reconnects).

Every panel query is evaluated against a real Prometheus scraping a live worker in
``tests/test_integration/test_observability.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import heatmap, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    VariableRefresh,
    VariableSort,
)

from pileon.core.deployment import JOBS

DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"
P = 'person="$person"'
TAGS = ["pileon"]


def _q(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DS)
    return q.legend_format(legend) if legend else q


def _ts(title: str, unit: str, *queries: prometheus.Dataquery, w: int = 12, h: int = 8,
        description: str = "") -> timeseries.Panel:
    panel = timeseries.Panel().title(title).unit(unit).datasource(DS).span(w).height(h)
    for q in queries:
        panel = panel.with_target(q)
    return panel.description(description) if description else panel


def _stat(title: str, unit: str, query: prometheus.Dataquery, w: int = 6) -> stat.Panel:
    return (stat.Panel().title(title).unit(unit).datasource(DS).span(w).height(4)
            .with_target(query.instant()))


def _base(uid: str, title: str, description: str) -> db.Dashboard:
    datasource = (db.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    return (db.Dashboard(title).uid(uid).description(description).tags(TAGS)
            .refresh("30s").time("now-6h", "now").timezone("browser")
            .tooltip(DashboardCursorSync.CROSSHAIR).editable()
            .with_variable(datasource))


def overview() -> db.Dashboard:
    heat = (heatmap.Panel().title("Pile-on score over time, by person").datasource(DS)
            .span(24).height(9).calculate(False)
            .with_target(_q("max by (person) (pileon_pileon_score)", "{{person}}"))
            .description("Each row is a protected person; darker is further above their "
                         "baseline. An incident opens at the configured open score."))
    return (
        _base("pileon-overview", "pileon / Overview",
              "Every protected person: pile-on score, incidents open, mentions per minute.")
        .with_panel(_stat("Incidents open", "short",
                          _q("sum(max by (person, severity) (pileon_incidents_open))")))
        .with_panel(_stat("Critical incidents", "short", _q(
            'sum(max by (person) (pileon_incidents_open{severity="critical"}))')))
        .with_panel(_stat("Highest pile-on score", "short",
                          _q("max(pileon_pileon_score)")))
        .with_panel(_stat("Mentions per minute (all)", "short",
                          _q(f"sum(rate(pileon_mentions_total[{RATE}])) * 60")))
        .with_panel(_ts("Current pile-on score by person", "short",
                        _q("max by (person) (pileon_pileon_score)", "{{person}}")))
        .with_panel(_ts("Mentions per minute by person", "short",
                        _q(f"sum by (person) (rate(pileon_mentions_total[{RATE}])) * 60",
                           "{{person}}")))
        .with_panel(heat)
    )


def person() -> db.Dashboard:
    var = (db.QueryVariable("person").label("Person").datasource(DS)
           .query("label_values(pileon_mentions_total, person)")
           .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_ASC))
    incidents = (db.AnnotationQuery().name("Incidents").datasource(DS).enable(True)
                 .icon_color("red").expr(f"max by (severity) (pileon_incidents_open{{{P}}}) == 1"))
    return (
        _base("pileon-person", "pileon / Person",
              "One protected person: mentions against their baseline, the signals behind the "
              "pile-on score, and incidents. Evidence, not verdicts.")
        .with_variable(var)
        .annotation(incidents)
        .with_panel(_ts(
            "Mentions in the detection window vs. baseline band", "short",
            _q(f"max(pileon_window_mentions{{{P}}})", "mentions", "A"),
            _q(f"max(pileon_window_expected_mentions{{{P}}})", "baseline", "B"),
            _q(f"max(pileon_window_expected_upper_mentions{{{P}}})", "baseline + 3 sd", "C"),
            w=24, description="The detection window's count against the seasonal "
            "(hour-of-week) baseline; above the band is unusual for this person."))
        .with_panel(_ts("Pile-on score", "short",
                        _q(f"max(pileon_pileon_score{{{P}}})", "score")))
        .with_panel(_ts("Mentions per minute", "short", _q(
            f"sum by (platform) (rate(pileon_mentions_total{{{P}}}[{RATE}])) * 60",
            "{{platform}}")))
        .with_panel(_ts(
            "Distinct authors in the window", "short",
            _q(f"max(pileon_window_distinct_authors{{{P}}})", "authors", "A"),
            _q(f"max(pileon_window_distinct_authors_baseline{{{P}}})", "usual", "B")))
        .with_panel(_ts("Young-account share", "percentunit",
                        _q(f"max(pileon_window_young_account_share{{{P}}})", "young share")))
        .with_panel(_ts(
            "Replies to one post", "percentunit",
            _q(f"max(pileon_window_reply_focus_share{{{P}}})", "share on the most answered post"),
            description="Share of the window's mentions replying to or quoting one post: "
            "where a surge lands (a brigade or a viral post), not who is behind it."))
        .with_panel(_ts(
            "Near-duplicate clusters", "short",
            _q(f"max(pileon_neardup_clusters{{{P}}})", "clusters with copies", "A"),
            _q(f"max(pileon_neardup_largest_cluster_size{{{P}}})", "largest: copies", "B"),
            _q(f"max(pileon_neardup_largest_cluster_authors{{{P}}})", "most authors", "C"),
            w=12, description="Copypasta: many authors posting the same template."))
        .with_panel(_ts("Incident open (by severity)", "short", _q(
            f"max by (severity) (pileon_incidents_open{{{P}}})", "{{severity}}")))
    )


def pipeline() -> db.Dashboard:
    return (
        _base("pileon-pipeline", "pileon / Pipeline",
              "Is pileon keeping up? Throughput, lag, commits, dead letters, alert delivery, "
              "connectors.")
        .with_panel(_stat("Workers up", "short", _q(f'sum(up{{job="{JOBS.worker}"}})')))
        .with_panel(_stat("Consumer lag (messages)", "short",
                          _q("sum(max by (topic, partition) (pileon_consumer_lag_messages))")))
        .with_panel(_stat("Dead letters (1h)", "short",
                          _q("sum(increase(pileon_dead_letters_total[1h]))")))
        .with_panel(_stat("Alerts queued", "short", _q("sum(pileon_alert_queue_depth)")))
        .with_panel(_ts("Throughput by stage", "ops", _q(
            f"sum by (stage) (rate(pileon_processing_seconds_count[{RATE}]))", "{{stage}}")))
        .with_panel(_ts("Consumer lag by partition", "short", _q(
            "max by (topic, partition) (pileon_consumer_lag_messages)",
            "{{topic}} p{{partition}}")))
        .with_panel(_ts("Commit progress (offsets/s)", "ops", _q(
            "sum by (topic) (deriv(pileon_consumer_committed_offset[5m]))", "{{topic}}")))
        .with_panel(_ts("Dead letters by reason", "ops", _q(
            f"sum by (reason) (rate(pileon_dead_letters_total[{RATE}]))", "{{reason}}")))
        .with_panel(_ts("Alert deliveries", "ops", _q(
            f"sum by (sink, outcome) (increase(pileon_alert_deliveries_total[{RATE}]))",
            "{{sink}} {{outcome}}", "A"), _q(
            f"sum by (sink) (increase(pileon_alert_delivery_failures_total[{RATE}]))",
            "{{sink}} failed attempts", "B")))
        .with_panel(_ts("Processing latency p99 by stage", "s", _q(
            "histogram_quantile(0.99, sum by (le, stage) "
            f"(rate(pileon_processing_seconds_bucket[{RATE}])))", "{{stage}}")))
        .with_panel(_ts("End-to-end latency p95 by stage", "s", _q(
            "histogram_quantile(0.95, sum by (le, stage) "
            f"(rate(pileon_end_to_end_latency_seconds_bucket[{RATE}])))", "{{stage}}")))
        .with_panel(_ts("Rebalances", "short", _q(
            "max(pileon_faust_total_rebalances)", "rebalances")))
        .with_panel(_ts("Evidence archived (records/s)", "ops", _q(
            f"sum(rate(pileon_evidence_records_total[{RATE}]))", "archived"),
            description="Clean mentions the archiver wrote to hash chains and fsynced."))
        .with_panel(_ts("Evidence lag by topic", "short", _q(
            "sum by (topic) (max by (topic, partition) (pileon_evidence_lag_messages))",
            "{{topic}}"), description="Records the archiver has not made durable yet."))
        .with_panel(_ts("Evidence group commit p99", "s", _q(
            "histogram_quantile(0.99, sum by (le) "
            f"(rate(pileon_evidence_append_seconds_bucket[{RATE}])))", "write + fsync")))
        .with_panel(_ts("Evidence disk free", "percentunit", _q(
            "min by (instance) (pileon_evidence_disk_free_bytes / "
            "pileon_evidence_disk_size_bytes)", "{{instance}}")))
        .with_panel(_ts("Connector events by outcome", "ops", _q(
            f"sum by (connector, outcome) (rate(pileon_connector_events_total[{RATE}]))",
            "{{connector}} {{outcome}}")))
        .with_panel(_ts("Connector mentions published", "ops", _q(
            f"sum by (connector) (rate(pileon_connector_published_total[{RATE}]))",
            "{{connector}}")))
        .with_panel(_ts("Connector lag behind the platform (event time)", "s", _q(
            "time() - max by (connector) (pileon_connector_event_timestamp_seconds)",
            "{{connector}}")))
        .with_panel(_ts("Connector reconnects", "short", _q(
            f"sum by (connector) (increase(pileon_connector_reconnects_total[{RATE}]))",
            "{{connector}}")))
    )


DASHBOARDS: dict[str, Callable[[], db.Dashboard]] = {
    "overview": overview, "person": person, "pipeline": pipeline,
}


def render(name: str) -> str:
    built = DASHBOARDS[name]().build()
    for number, panel in enumerate(built.panels or [], start=1):  # stable: in layout order
        panel.id_val = number
    return json.dumps(built, cls=JSONEncoder, sort_keys=True, indent=2) + "\n"

