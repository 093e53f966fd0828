"""Detection benchmark: pileon's default detector against published spike rules, same data,
same run.

    python bench/detection.py

Numenta Anomaly Benchmark (NAB v1.1) score on the Twitter mention-volume series in
``../shared/data/nab-dev`` (5-minute counts, labelled anomaly windows), scored by
``../shared/tools/nab_score.py`` at a fixed threshold (alert column, 0.5): pileon runs exactly
what ``pileon score-csv`` runs, with its default settings (nothing tuned on these files); each
baseline alerts on the rising edge of its published rule (``bench/baselines.py``).

Also printed per detector: labelled windows detected, alerts outside any window (false
alerts), and the median delay from a window's start to its first detection.

Not yet here (issue 5 continues): the labelled pile-on scenario suite (recall and time to
detect at 5x, false alerts per person-week on calm traffic, organic-vs-coordinated accuracy).
"""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.baselines import BASELINES, rising_edges  # noqa: E402
from pileon.scorecsv import read_series, score  # noqa: E402
from pileon.settings import load_settings  # noqa: E402

CORPUS = ROOT.parent / "shared" / "data" / "nab-dev"
SCORER = ROOT.parent / "shared" / "tools" / "nab_score.py"


def _ts(text: str) -> datetime:
    return datetime.strptime(text.split(".")[0], "%Y-%m-%d %H:%M:%S")


def _pileon(path: Path) -> list[int]:
    return [s.alert for s in score(read_series(path), load_settings().detection)]


def _baseline(cls: type, path: Path) -> list[int]:
    rows = read_series(path)
    detector = cls(bin_seconds=round(rows[1][2] - rows[0][2]))
    return rising_edges([detector.step(float(count)) for *_, count in rows])


def _write(results: Path, name: str, path: Path, alerts: list[int]) -> None:
    out = results / "realTweets" / f"{name}_{path.name}"
    with path.open() as src, out.open("w", newline="") as dst:
        writer = csv.writer(dst)
        writer.writerow(["timestamp", "value", "alert"])
        for row, alert in zip(csv.DictReader(src), alerts, strict=True):
            writer.writerow([row["timestamp"], row["value"], alert])


def _windows_report(alerts_by_file: dict[str, list[int]]) -> tuple[int, int, int, float]:
    windows = json.loads((CORPUS / "labels" / "combined_windows.json").read_text())
    hit = total = false = 0
    delays = []
    for name, alerts in alerts_by_file.items():
        rows = list(csv.DictReader((CORPUS / "data" / name).open()))
        times = [_ts(r["timestamp"]) for r in rows]
        spans = [(_ts(a), _ts(b)) for a, b in windows[name]]
        total += len(spans)
        firsts: dict[int, datetime] = {}
        for t, alert in zip(times, alerts, strict=True):
            if not alert:
                continue
            inside = [i for i, (a, b) in enumerate(spans) if a <= t <= b]
            if inside:
                firsts.setdefault(inside[0], t)
            else:
                false += 1
        hit += len(firsts)
        delays += [(t - spans[i][0]).total_seconds() / 3600 for i, t in firsts.items()]
    return hit, total, false, statistics.median(delays) if delays else float("nan")


def main() -> None:
    if not CORPUS.is_dir() or not SCORER.is_file():
        raise SystemExit(f"NAB data or scorer missing: {CORPUS}, {SCORER}")
    files = sorted((CORPUS / "data" / "realTweets").glob("*.csv"))
    detectors = {"pileon": _pileon, **{cls.__name__: (lambda p, c=cls: _baseline(c, p))
                                        for cls in BASELINES}}
    labels = {"pileon": "pileon (default settings)", **{c.__name__: c.name for c in BASELINES}}
    print(f"NAB realTweets dev subset: {len(files)} series, scorer {SCORER.name}, "
          "threshold 0.5 on the alert column\n")
    print(f"{'detector':34} {'NAB std':>8} {'low FP':>8} {'low FN':>8} {'windows':>8} "
          f"{'false':>6} {'median delay h':>15} {'s':>5}")
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, run in detectors.items():
            started = time.perf_counter()
            results = Path(tmp) / key
            (results / "realTweets").mkdir(parents=True)
            alerts = {}
            for path in files:
                alerts[f"realTweets/{path.name}"] = run(path)
                _write(results, key, path, alerts[f"realTweets/{path.name}"])
            seconds = time.perf_counter() - started
            done = subprocess.run(  # noqa: S603 - our interpreter and the shared scorer
                [sys.executable, str(SCORER), "--corpus", str(CORPUS), "--results", str(results),
                 "--column", "alert", "--threshold", "0.5"],
                capture_output=True, text=True, check=True)
            nab = json.loads(done.stdout)
            hit, total, false, delay = _windows_report(alerts)
            figures[key] = (nab["standard"]["score"], hit, total, false, delay)
            print(f"{labels[key]:34} {nab['standard']['score']:8.2f} "
                  f"{nab['reward_low_FP_rate']['score']:8.2f} "
                  f"{nab['reward_low_FN_rate']['score']:8.2f} {hit:>4}/{total:<3} {false:6d} "
                  f"{delay:15.1f} {seconds:5.1f}")
    best = max((v[0] for k, v in figures.items() if k != "pileon"), default=float("nan"))
    p = figures["pileon"]
    print(f"\nRESULT nab_pileon={p[0]:.2f} nab_best_baseline={best:.2f} "
          f"windows_detected={p[1]}/{p[2]} false_alerts={p[3]} median_delay_h={p[4]:.1f}")


if __name__ == "__main__":
    main()
