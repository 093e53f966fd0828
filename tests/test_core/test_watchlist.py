from __future__ import annotations

from pathlib import Path

import pytest

from pileon.core.settings import ConfigError, DetectionSettings
from pileon.core.watchlist import load_watchlist
from tests.conftest import EXAMPLE_WATCHLIST


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "watchlist.yaml"
    path.write_text(text)
    return path


class TestLoadWatchlist:
    def test_example_watchlist_loads(self) -> None:
        watchlist = load_watchlist(EXAMPLE_WATCHLIST)
        assert "amara" in watchlist
        assert watchlist.get("amara").handles["bluesky"]  # type: ignore[union-attr]

    def test_duplicate_keys_are_rejected(self, tmp_path: Path) -> None:
        text = "persons:\n- {key: a, display_name: A}\n- {key: a, display_name: B}\n"
        path = _write(tmp_path, text)
        twice = r"person key 'a' is used twice \(persons\[0\] and persons\[1\]\)"
        with pytest.raises(ConfigError, match=twice):
            load_watchlist(path)

    def test_bad_key_names_the_entry(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "persons:\n- {key: 'Has Space', display_name: A}\n")
        with pytest.raises(ConfigError, match=r"persons\[0\]\.key"):
            load_watchlist(path)

    def test_unknown_threshold_is_rejected(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "persons:\n- {key: a, display_name: A, thresholds: {nope: 1}}\n")
        with pytest.raises(ConfigError, match="unknown threshold"):
            load_watchlist(path)

    def test_empty_watchlist_is_rejected(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="persons"):
            load_watchlist(_write(tmp_path, "persons: []\n"))

    def test_missing_file_is_a_config_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="watchlist"):
            load_watchlist(tmp_path / "none.yaml")


class TestPersonDetection:
    def test_thresholds_override_defaults(self, tmp_path: Path) -> None:
        text = "persons:\n- {key: a, display_name: A, thresholds: {min_excess: 99}}\n"
        path = _write(tmp_path, text)
        person = load_watchlist(path).persons[0]
        cfg = person.detection(DetectionSettings())
        assert cfg.min_excess == 99
        assert cfg.open_score == DetectionSettings().open_score

    def test_invalid_override_value_fails(self, tmp_path: Path) -> None:
        text = "persons:\n- {key: a, display_name: A, thresholds: {bin_seconds: 1}}\n"
        path = _write(tmp_path, text)
        with pytest.raises(ConfigError, match=r"persons\[0\]\.thresholds\.bin_seconds"):
            load_watchlist(path)


class TestWatchlistErrorsNameTheProblem:
    def test_a_duplicate_key_does_not_dump_the_watchlist(self, tmp_path: Path) -> None:
        text = "persons:\n- {key: a, display_name: Secret Name}\n- {key: a, display_name: B}\n"
        with pytest.raises(ConfigError) as err:
            load_watchlist(_write(tmp_path, text))
        assert "Secret Name" not in str(err.value) and "display_name" not in str(err.value)

    def test_bad_yaml_says_where_and_what_in_full(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "persons:\n- key: a\n  aliases: [x\n")
        with pytest.raises(ConfigError) as err:
            load_watchlist(path)
        message = str(err.value)
        assert "line 4, column 1" in message and "expected ','" in message
        assert message.count("(") == message.count(")")  # not cut off mid-sentence

    def test_an_unknown_time_zone_is_rejected(self, tmp_path: Path) -> None:
        text = "persons:\n- key: a\n  display_name: A\n  timezone: Mars/Olympus\n"
        path = _write(tmp_path, text)
        where = r"persons\[0\]\.timezone' \(.* line 4\): unknown time zone"
        with pytest.raises(ConfigError, match=where):
            load_watchlist(path)

    def test_every_problem_is_listed_with_its_line(self, tmp_path: Path) -> None:
        text = ("persons:\n- key: 'Bad Key'\n  display_name: A\n"
                "- key: b\n  display_name: B\n  timezone: Nowhere/Else\n")
        with pytest.raises(ConfigError) as err:
            load_watchlist(_write(tmp_path, text))
        lines = str(err.value).splitlines()
        assert len(lines) == 2 and "more)" not in str(err.value)
        assert "persons[0].key" in lines[0] and "line 2" in lines[0]
        assert "persons[1].timezone" in lines[1] and "line 6" in lines[1]


class TestThresholdsAreCheckedAsTheWorkerMergesThem:
    def test_a_negative_min_excess_is_rejected_at_load(self, tmp_path: Path) -> None:
        text = "persons:\n- {key: a, display_name: A, thresholds: {min_excess: -5}}\n"
        with pytest.raises(ConfigError, match=r"persons\[0\]\.thresholds\.min_excess"):
            load_watchlist(_write(tmp_path, text))

    def test_open_above_the_escalation_score_is_rejected(self, tmp_path: Path) -> None:
        text = "persons:\n- {key: a, display_name: A, thresholds: {open_score: 20}}\n"
        with pytest.raises(ConfigError, match="must be >= open_score"):
            load_watchlist(_write(tmp_path, text))

    def test_the_settings_defaults_are_what_thresholds_merge_with(self, tmp_path: Path) -> None:
        text = "persons:\n- {key: a, display_name: A, thresholds: {open_score: 20}}\n"
        loose = DetectionSettings(escalate_score=30)
        assert load_watchlist(_write(tmp_path, text), loose).persons[0].thresholds


class TestWarnings:
    def test_short_and_shared_aliases_and_handles_are_warned_by_field(
        self, tmp_path: Path
    ) -> None:
        text = ("persons:\n"
                "- {key: a, display_name: A, aliases: [x, Same Name],"
                " handles: {bluesky: [a.bsky.social]}}\n"
                "- {key: b, display_name: B, aliases: [same  name],"
                " handles: {bluesky: ['@A.bsky.social']}}\n")
        warnings = load_watchlist(_write(tmp_path, text)).warnings()
        assert len(warnings) == 3
        assert "persons[0].aliases[0] (a) is shorter than 3" in warnings[0]
        assert "persons[1].aliases[0] (b) is the same alias as persons[0].aliases[1]" in warnings[1]
        assert "persons[1].handles.bluesky[0] (b) is the same account" in warnings[2]
        assert not any("Same Name" in w or "bsky.social" in w for w in warnings)

    def test_the_example_watchlist_has_none(self) -> None:
        assert load_watchlist(EXAMPLE_WATCHLIST).warnings() == []
