"""What the demo says of a page that is not the simulated pile-on."""

from __future__ import annotations

from pileon.cli.demo import organic_note
from pileon.core.times import epoch
from tests.factories import alert_event

ONSET = epoch("2026-12-07T12:00:00Z")


def test_the_targets_page_before_its_onset_is_organic_and_the_demo_waits_on() -> None:
    early = alert_event("amara", opened="2026-12-06T04:17:00Z")
    note = organic_note(early, "amara", ONSET)
    assert note is not None
    assert "before their pile-on began" in note and "waiting on for the pile-on" in note
    assert "(looks coordinated)" in note  # the assessment is said as it was, not assumed


def test_an_escalation_after_the_onset_is_the_pile_on_even_if_opened_before() -> None:
    assert organic_note(alert_event("amara", opened="2026-12-07T12:05:00Z"), "amara",
                        ONSET) is None
    escalated = alert_event("amara", transition="escalated", severity="critical",
                            opened="2026-12-07T11:50:00Z", at="2026-12-07T12:20:00Z")
    assert organic_note(escalated, "amara", ONSET) is None


def test_anyone_elses_page_had_no_pile_on() -> None:
    note = organic_note(alert_event("bo", opened="2026-12-07T12:05:00Z"), "amara", ONSET)
    assert note is not None and "'bo', who had no pile-on" in note
