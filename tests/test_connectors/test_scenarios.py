from __future__ import annotations

import pytest

from pileon.connectors.scenarios import SCENARIOS, TARGET, simulate
from pileon.core.times import epoch

END = 1_790_000_000.0


class TestScenarios:
    def test_suite_has_calm_and_the_five_surge_kinds(self) -> None:
        assert set(SCENARIOS) == {"calm", "copypasta", "diffuse", "slow_build", "single_flood",
                                  "organic"}
        assert [k for k, s in SCENARIOS.items() if s.coordinated is False] == ["organic"]

    @pytest.mark.parametrize("kind", ["copypasta", "organic", "single_flood"])
    def test_same_seed_same_mentions(self, kind: str) -> None:
        a = simulate(kind, 4, end=END, days=1).mentions()
        b = simulate(kind, 4, end=END, days=1).mentions()
        assert [m["id"] for m in a] == [m["id"] for m in b]

    def test_surge_starts_in_waking_hours_at_five_times_the_usual_rate(self) -> None:
        sim = simulate("copypasta", 2, end=END, days=1)
        mentions = sim.mentions()
        truth = sim.ground_truth()
        onset = epoch(str(truth.onset))
        usual = sim.usual_per_minute(TARGET, onset)
        assert usual >= sim.daily_per_minute(TARGET)
        peak = [m for m in mentions if onset + 600 <= epoch(m["created_at"]) < onset + 3600]
        assert 3.5 * usual < len(peak) / 50 < 7 * usual  # background plus 4x extra

    def test_single_flood_comes_from_one_account(self) -> None:
        sim = simulate("single_flood", 1, end=END, days=1)
        authors = {m["author"]["id"] for m in sim.mentions() if "-po" in m["author"]["id"]}
        assert len(authors) == 1

    def test_organic_surge_is_established_accounts_and_ordinary_text(self) -> None:
        sim = simulate("organic", 1, end=END, days=1)
        mentions = sim.mentions()
        onset = epoch(str(sim.ground_truth().onset))
        surge = [m for m in mentions if "-po" in m["author"]["id"]]
        assert surge and all(epoch(m["author"]["created_at"]) < onset - 80 * 86400 for m in surge)
        assert not any("fraud" in m["text"] for m in surge)
