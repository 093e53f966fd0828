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
        with pytest.raises(ConfigError, match="duplicate person key"):
            load_watchlist(path)

    def test_bad_key_names_the_entry(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "persons:\n- {key: 'Has Space', display_name: A}\n")
        with pytest.raises(ConfigError, match=r"persons\.0\.key"):
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
        person = load_watchlist(path).persons[0]
        with pytest.raises(ValueError, match="bin_seconds"):
            person.detection(DetectionSettings())
