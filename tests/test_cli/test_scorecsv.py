from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pileon.cli.main import main
from pileon.cli.scorecsv import SeriesError, read_series


def _series(path: Path, surge_at: int | None = None, days: int = 4, seed: int = 3,
            step: int = 60, spike: tuple[int, float] | None = None) -> None:
    """Counts per ``step`` seconds with a daily rhythm (about 2 a minute, negative binomial);
    from row ``surge_at`` on, 5x the usual for 2 hours; ``spike`` (row, factor): one bin at
    ``factor`` times the usual."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["timestamp", "value"])
        per_day = 86400 // step
        for i in range(days * per_day):
            t = start + i * step
            hour = (t / 3600) % 24
            mean = (2 + 1.5 * math.sin(2 * math.pi * hour / 24)) * step / 60
            if surge_at is not None and surge_at <= i < surge_at + 7200 // step:
                mean *= 5
            value = rng.negative_binomial(10, 10 / (10 + mean))
            if spike is not None and i == spike[0]:
                value = round(mean * spike[1])
            out.writerow([datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S"), value])


def _scored(tmp_path: Path, **kw: Any) -> list[dict[str, str]]:
    """The series scored by ``pileon score-csv``."""
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    _series(src, **kw)
    assert main(["score-csv", str(src), "--output", str(dst)]) == 0
    return list(csv.DictReader(dst.open()))


class TestScoreCsv:
    def test_one_output_row_per_input_row_with_scores_in_range(self, tmp_path: Path) -> None:
        rows = _scored(tmp_path)
        assert len(rows) == 4 * 1440
        assert all(0.0 <= float(r["anomaly_score"]) <= 1.0 for r in rows)
        assert set(rows[0]) == {"timestamp", "value", "anomaly_score", "alert"}

    def test_calm_days_raise_no_alert(self, tmp_path: Path) -> None:
        assert sum(int(r["alert"]) for r in _scored(tmp_path)) == 0

    def test_five_times_the_baseline_alerts_within_minutes(self, tmp_path: Path) -> None:
        onset = 3 * 1440 + 600  # 10:00 on the fourth day, 1-minute bins
        rows = _scored(tmp_path, surge_at=onset)
        alerts = [i for i, r in enumerate(rows) if r["alert"] == "1"]
        assert alerts and onset <= alerts[0] <= onset + 10  # within 10 minutes
        assert all(onset <= i < onset + 120 for i in alerts)

    def test_five_minute_bins_use_the_same_time_spans(self, tmp_path: Path) -> None:
        onset = 5 * 288 + 120
        rows = _scored(tmp_path, surge_at=onset, days=6, step=300)
        alerts = [i for i, r in enumerate(rows) if r["alert"] == "1"]
        assert alerts and onset <= alerts[0] <= onset + 6  # within 30 minutes
        assert all(onset <= i < onset + 24 for i in alerts)

    def test_a_spike_that_is_over_by_the_next_bin_does_not_alert(self, tmp_path: Path) -> None:
        # Eight times the usual in one five-minute bin: both windows holding it are improbable
        # (about 10), but the bins after it are ordinary, so nobody is paged after the fact.
        at = 5 * 288 + 150
        rows = _scored(tmp_path, days=6, step=300, spike=(at, 8.0))
        assert float(rows[at]["anomaly_score"]) * 16 >= 8  # the open bar was reached
        assert sum(int(r["alert"]) for r in rows) == 0

    def test_a_spike_at_the_critical_bar_alerts_once(self, tmp_path: Path) -> None:
        at = 5 * 288 + 150
        rows = _scored(tmp_path, days=6, step=300, spike=(at, 60.0))
        assert [i for i, r in enumerate(rows) if r["alert"] == "1"] == [at + 1]

    def test_output_lines_end_like_the_input_lines(self, tmp_path: Path) -> None:
        _scored(tmp_path)
        assert b"\r" not in (tmp_path / "out.csv").read_bytes()

    def test_bad_value_is_named_with_its_line(self, tmp_path: Path) -> None:
        src = tmp_path / "bad.csv"
        src.write_text("timestamp,value\n2026-03-01 00:00:00,1\n2026-03-01 00:05:00,lots\n")
        with pytest.raises(SeriesError, match="line 3: value 'lots'"):
            read_series(src)

    def test_missing_columns_fail_with_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        src = tmp_path / "bad.csv"
        src.write_text("time,count\n1,2\n")
        assert main(["score-csv", str(src), "--output", str(tmp_path / "o.csv")]) == 2
        assert "needs the columns timestamp,value" in capsys.readouterr().err
