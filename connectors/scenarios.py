"""The labelled scenario suite: calm traffic and five kinds of surge, reproducible by seed.

Every scenario is a :class:`~pileon.connectors.traffic.Simulator` run for one protected person
(``target``) with background traffic (daily rhythm, over-dispersed counts, organic reply
threads, news-cycle lifts, the person's pieces shared with their headline, new accounts) and,
except ``calm``, a surge whose peak is ``multiple`` times the person's usual rate at onset.
``coordinated`` is the label an incident's assessment is checked against: an organic viral
surge must be reported as a surge that looks organic.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pileon.connectors.traffic import PileOnScript, Simulator

TARGET = "target"
# Ordinary traffic's own look-alikes of a brigade's signs: mentions from accounts under a week
# old (new users; 2% is an assumption, not a measurement), and the person's pieces shared with
# their headline and link by established accounts (one every other day: copies from many
# accounts within the hour). See Simulator.
YOUNG_SHARE = 0.02
ARTICLES_PER_DAY = 0.5


@dataclass(frozen=True)
class Scenario:
    kind: str
    coordinated: bool | None  # None: no surge
    script: PileOnScript | None
    description: str


def _script(**changes: object) -> PileOnScript:
    base = PileOnScript(TARGET, onset_before_end_minutes=180, duration_minutes=60,
                        ramp_minutes=5, multiple=5.0)
    return replace(base, **changes)  # type: ignore[arg-type]


SCENARIOS = {
    s.kind: s for s in [
        Scenario("calm", None, None, "daily rhythm, reply threads, news lifts, shared pieces "
                 "and new accounts only"),
        Scenario("copypasta", True, _script(post_share=0.5),
                 "300 mostly young accounts posting edited copies of a few templates, half "
                 "of them as replies to one post"),
        Scenario("diffuse", True, _script(accounts=1500, copy_share=0.0, young_share=0.3),
                 "many accounts, each hostile text its own"),
        Scenario("slow_build", True, _script(duration_minutes=240, ramp_minutes=180,
                                             onset_before_end_minutes=300, post_share=0.5),
                 "a copypasta campaign that builds over three hours, half of it on one post"),
        Scenario("single_flood", True, _script(accounts=1, young_share=1.0),
                 "one account posting the same templates again and again"),
        Scenario("organic", False, _script(accounts=3000, copy_share=0.0, young_share=0.0,
                                           hostile=False, post_share=0.6),
                 "a viral moment: established, diverse accounts, ordinary texts, most of "
                 "them replies to the post that went viral"),
    ]
}


def simulate(kind: str, seed: int, *, end: float, days: float = 8.0,
             multiple: float = 5.0, waking_onset: bool = True,
             mean_per_hour: float = 60.0, young_share: float = YOUNG_SHARE,
             articles_per_day: float = ARTICLES_PER_DAY) -> Simulator:
    """The scenario run for ``seed``. With ``waking_onset`` the end is moved by whole hours so
    the surge starts while the person is usually active (``mean_per_hour``: the person's usual
    background mentions per hour, averaged over a day): at night, five times a handful of
    mentions stays under ``detection.min_excess`` by design (nobody is paged for a dozen)."""
    scenario = SCENARIOS[kind]
    script = replace(scenario.script, multiple=multiple) if scenario.script else None
    persons = {TARGET: "Dana Target"}
    if script is not None and waking_onset:
        # Same seed: same timezone.
        probe = Simulator(persons, end=end, days=0.01, seed=seed, mean_per_hour=mean_per_hour)
        probe.mentions()
        usual = probe.usual_per_minute
        daily = probe.daily_per_minute(TARGET)
        onset = script.onset_before_end_minutes * 60
        end += next((h * 3600.0 for h in range(24)
                     if usual(TARGET, end + h * 3600 - onset) >= daily), 0.0)
    return Simulator(persons, end=end, days=days, seed=seed, pileon=script,
                     mean_per_hour=mean_per_hour, young_share=young_share,
                     articles_per_day=articles_per_day)

