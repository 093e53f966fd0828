from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from pileon.schema.alert import ALERT_SCHEMA, AlertEvent, Severity, Transition
from tests.factories import alert_dict, alert_event


class TestAlertEvent:
    def test_the_wire_form_round_trips(self) -> None:
        event = alert_event()
        assert AlertEvent.from_json(event.to_json()) == event
        wire = orjson.loads(event.to_json())
        assert wire == alert_dict()  # field names on the wire: "schema", "from"

    def test_fields_are_typed(self) -> None:
        event = alert_event(transition="escalated", severity="critical")
        assert event.transition is Transition.ESCALATED and event.severity is Severity.CRITICAL
        assert event.signals.rate.window_minutes == 10.0
        assert event.evidence.from_ == "2026-11-20T12:00:00Z"
        assert event.firing and not alert_event(transition="resolved").firing

    def test_another_schema_version_is_rejected(self) -> None:
        wire = alert_dict()
        wire["schema"] = "pileon.alert/v2"
        with pytest.raises(ValidationError, match="schema"):
            AlertEvent.from_json(wire)

    def test_a_missing_field_is_named(self) -> None:
        wire = alert_dict()
        del wire["signals"]["rate"]["mentions"]
        with pytest.raises(ValidationError) as caught:
            AlertEvent.from_json(orjson.dumps(wire))
        assert caught.value.errors()[0]["loc"] == ("signals", "rate", "mentions")

    def test_fields_a_newer_worker_adds_are_kept(self) -> None:
        wire = alert_dict()
        wire["new_signal"] = {"value": 1}
        assert AlertEvent.from_json(wire).to_dict()["new_signal"] == {"value": 1}

    def test_the_version_is_the_schema_constant(self) -> None:
        assert alert_event().schema_ == ALERT_SCHEMA
