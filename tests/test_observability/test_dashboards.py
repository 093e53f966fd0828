"""Dashboards as code: round trip through the SDK's own types, stable uids, unique panel ids,
one Prometheus datasource variable; every panel query is run against a real Prometheus in
tests/test_integration/test_observability.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from pileon.observability.dashboards import DASHBOARDS, render
from tests.conftest import REPO

UIDS = {"overview": "pileon-overview", "person": "pileon-person", "pipeline": "pileon-pipeline"}


def _load(name: str) -> dict[str, Any]:
    return dict(json.loads((REPO / "dashboards" / f"{name}.json").read_text()))


@pytest.fixture(params=sorted(DASHBOARDS))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class TestDashboards:
    def test_round_trips_through_the_sdk_types(self, name: str) -> None:
        data = _load(name)
        again = json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder))
        assert again == data

    def test_committed_file_is_what_the_builder_makes(self, name: str) -> None:
        assert json.loads(render(name)) == _load(name)

    def test_uid_is_stable(self, name: str) -> None:
        assert _load(name)["uid"] == UIDS[name]

    def test_panel_ids_are_unique(self, name: str) -> None:
        ids = [p["id"] for p in _load(name)["panels"]]
        assert len(ids) == len(set(ids)) and all(ids)

    def test_every_query_uses_the_datasource_variable(self, name: str) -> None:
        data = _load(name)
        [var] = [v for v in data["templating"]["list"] if v["type"] == "datasource"]
        assert var["query"] == "prometheus"
        for panel in data["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"] and all(t["expr"] for t in panel["targets"])

    def test_person_dashboard_has_a_person_variable_and_incident_annotations(self) -> None:
        data = _load("person")
        assert "person" in {v["name"] for v in data["templating"]["list"]}
        [incidents] = data["annotations"]["list"]
        assert "pileon_incidents_open" in incidents["expr"] and "$person" in incidents["expr"]
