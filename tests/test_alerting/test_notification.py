from __future__ import annotations

from pileon.alerting import notification_from_event
from pileon.core.settings import AlertingSettings
from tests.factories import alert_event


class TestNotification:
    def test_summary_states_the_surge_without_a_verdict(self) -> None:
        n = notification_from_event(alert_event(), AlertingSettings())
        assert n.summary == "Possible pile-on against amara opened: mentions at 7.7x their " \
            "usual rate"
        assert "looks coordinated" in n.description
        assert "evidence, not a verdict" in n.description
        assert n.firing and n.ends_at is None

    def test_an_opening_says_what_confirmed_it(self) -> None:
        n = notification_from_event(alert_event(), AlertingSettings())
        assert "minutes since the alarm at 2026-11-20T12:00:00Z: 60 mentions, 6.2 expected" \
            in n.description
        assert "209 mentions above baseline; an opening needs 25." in n.description
        escalated = notification_from_event(alert_event(transition="escalated"),
                                            AlertingSettings())
        assert "alarm" not in escalated.description

    def test_an_incident_found_late_says_when_it_began_and_when_it_was_found(self) -> None:
        from pileon.schema.alert import LateFinding

        event = alert_event().model_copy(update={"found_late": LateFinding(
            found_at="2026-11-20T15:30:00Z", late_mentions=812)})
        n = notification_from_event(event, AlertingSettings())
        assert "Found late: 812 mentions arrived after their minutes had passed" \
            in n.description
        assert "began at 2026-11-20 12:00 UTC (13:00 Europe/Berlin)" in n.description
        assert "found at 2026-11-20 15:30 UTC (16:30 Europe/Berlin)" in n.description
        assert "Found late" not in notification_from_event(alert_event(),
                                                           AlertingSettings()).description

    def test_an_incident_opened_at_critical_says_so(self) -> None:
        n = notification_from_event(alert_event(severity="critical"), AlertingSettings())
        assert n.summary.startswith("Possible pile-on against amara opened at critical:")
        assert n.severity == "critical"

    def test_resolved_has_an_end(self) -> None:
        n = notification_from_event(
            alert_event(transition="resolved", at="2026-11-20T15:00:00Z"), AlertingSettings())
        assert not n.firing and n.ends_at == "2026-11-20T15:00:00Z"
        assert n.starts_at == "2026-11-20T12:00:00Z"

    def test_links_come_from_settings(self) -> None:
        cfg = AlertingSettings(dashboard_url="https://g.example/d/p", evidence_url="https://e/x/")
        n = notification_from_event(alert_event(), cfg)
        assert n.dashboard_url == "https://g.example/d/p?var-person=amara"
        assert n.evidence_url == f"https://e/x/{alert_event().incident_id}"

    def test_the_description_says_it_in_words_first_with_local_time(self) -> None:
        n = notification_from_event(alert_event(at="2026-11-20T12:10:00Z"), AlertingSettings())
        first = n.description.split(". Score")[0]
        assert "240 mentions in 10 min where about 31 are usual" in first
        assert "on an ordinary day for amara that is about 1 in 3 trillion" in first
        assert "2026-11-20 12:10 UTC (13:10 Europe/Berlin)" in first
        assert "-log10 p" not in first and "Score 12.5 (-log10 p)" in n.description
        assert "this person's bar for this window is 6.2" in n.description

    def test_a_held_rise_says_it_held_and_what_its_bar_means(self) -> None:
        event = alert_event()
        rate = event.signals.rate.model_copy(update={"sustained": True, "window_minutes": 30.0})
        event = event.model_copy(update={"signals": event.signals.model_copy(
            update={"rate": rate})})
        n = notification_from_event(event, AlertingSettings())
        assert "240 mentions in 30 min" in n.description
        assert "the rise has held: every five minutes of the half hour but one" in n.description
        assert "this person's bar for this window" not in n.description
