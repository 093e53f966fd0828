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

Scenario suite (``connectors/scenarios.py``): for each kind of surge at 5x the person's usual
rate, ``--seeds`` runs of eight simulated days (the weekly baseline rule needs eight);
pileon's analyser (the worker's code, tables as dicts) and each baseline on the same
per-minute counts. Printed per kind: recall (an incident opened between onset and 30 minutes
after the surge ends), median and p90 time to detect in event time, and for pileon whether the
incident's assessment matches the label (coordinated, or organic for the viral surge). False
alerts per person-week are counted on ``--calm-weeks`` weeks of calm traffic. The suite's
ordinary traffic has new accounts (2% of mentions) and the person's pieces shared with their
headline by established accounts (every other day), the look-alikes of a brigade's signs.
"""

from __future__ import annotations

import argparse
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

import orjson  # noqa: E402

from bench.baselines import BASELINES, rising_edges  # noqa: E402
from pileon.cli.scorecsv import read_series, score  # noqa: E402
from pileon.connectors.scenarios import SCENARIOS, TARGET, simulate  # noqa: E402
from pileon.core.settings import load_settings  # noqa: E402
from pileon.core.watchlist import Person, Watchlist  # noqa: E402
from pileon.schema.mention import Mention  # noqa: E402
from pileon.streams.detection.analysis import PersonAnalyser  # noqa: E402
from pileon.streams.detection.neardup import Signer  # noqa: E402

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


def _ts_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _analyse(mentions: list[dict[str, object]]) -> list[dict[str, object]]:
    """Alert events of pileon's analyser over one run (the worker's code, dict tables)."""
    settings = load_settings()
    watchlist = Watchlist(persons=(Person(key=TARGET, display_name="Dana Target"),))
    signer = Signer(b"bench-key-0123456789abcdef", settings.neardup.num_perm)
    analyser = PersonAnalyser(watchlist, settings.detection, settings.neardup, signer, {}, {})
    alerts = []
    for m in mentions:
        mention = Mention.model_validate_json(orjson.dumps(m))
        outbox = analyser.process(mention)
        alerts += [a.to_dict() for a in outbox]
        analyser.delivered(mention.person, len(outbox))
    return alerts


def _per_minute(mentions: list[dict[str, object]], start: float, end: float) -> list[int]:
    counts = [0] * int((end - start) // 60 + 1)
    for m in mentions:
        counts[int((_ts_iso(str(m["created_at"])) - start) // 60)] += 1
    return counts


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def scenarios(seeds: int, calm_weeks: int) -> dict[str, float]:
    """Recall, time to detect and assessment per scenario kind; false alerts on calm weeks."""
    names = ["pileon", *[c.__name__ for c in BASELINES]]
    found: dict[tuple[str, str], list[float | None]] = {}
    assessed: dict[str, list[bool]] = {}
    base_end = 1_790_000_000.0
    for kind, scenario in SCENARIOS.items():
        if scenario.script is None:
            continue
        for seed in range(seeds):
            end = base_end + seed * 7919.0  # a different hour of day for each seed
            sim = simulate(kind, seed, end=end)
            mentions = sim.mentions()
            truth = sim.ground_truth()
            onset, stop = _ts_iso(str(truth.onset)), _ts_iso(str(truth.pileon_end)) + 1800
            opened = [a for a in _analyse(mentions) if a["transition"] == "opened"]
            hits = [a for a in opened if onset <= _ts_iso(str(a["at"])) <= stop]
            found.setdefault(("pileon", kind), []).append(
                (_ts_iso(str(hits[0]["at"])) - onset) / 60 if hits else None)
            if hits:
                looks = hits[0]["assessment"] == "looks coordinated"
                assessed.setdefault(kind, []).append(looks == scenario.coordinated)
            counts = _per_minute(mentions, sim.start, sim.end)
            for cls in BASELINES:
                detector = cls(bin_seconds=60)
                edges = rising_edges([detector.step(float(c)) for c in counts])
                times = [sim.start + (i + 1) * 60 for i, e in enumerate(edges) if e]
                first = [t for t in times if onset <= t <= stop]
                found.setdefault((cls.__name__, kind), []).append(
                    (first[0] - onset) / 60 if first else None)
    false = dict.fromkeys(names, 0)
    for week in range(calm_weeks):
        sim = simulate("calm", 1000 + week, end=base_end + week * 3571.0, days=7.0)
        mentions = sim.mentions()
        false["pileon"] += sum(a["transition"] == "opened" for a in _analyse(mentions))
        counts = _per_minute(mentions, sim.start, sim.end)
        for cls in BASELINES:
            detector = cls(bin_seconds=60)
            false[cls.__name__] += sum(rising_edges([detector.step(float(c)) for c in counts]))
    labels = {"pileon": "pileon", **{c.__name__: c.name for c in BASELINES}}
    print(f"\nScenario suite: {seeds} seeds per kind, surge at 5x the usual rate, 8 days each; "
          f"{calm_weeks} calm person-weeks\n")
    print(f"{'detector':34} {'scenario':13} {'recall':>7} {'median min':>11} {'p90 min':>8} "
          f"{'assessment ok':>14}")
    figures: dict[str, float] = {}
    for name in names:
        for kind in (k for k, s in SCENARIOS.items() if s.script is not None):
            delays = found[(name, kind)]
            got = [d for d in delays if d is not None]
            recall = len(got) / len(delays)
            ok = assessed.get(kind, []) if name == "pileon" else []
            ok_text = f"{sum(ok)}/{len(ok)}" if name == "pileon" else "n/a"
            print(f"{labels[name]:34} {kind:13} {recall:7.2f} {_pct(got, 0.5):11.1f} "
                  f"{_pct(got, 0.9):8.1f} {ok_text:>14}")
            figures[f"{name}:{kind}:recall"] = recall
            figures[f"{name}:{kind}:median"] = _pct(got, 0.5)
        rate = false[name] / max(1, calm_weeks)
        print(f"{labels[name]:34} {'calm':13} false alerts per person-week: {rate:.2f}")
        figures[f"{name}:false_per_week"] = rate
    total_ok = [v for values in assessed.values() for v in values]
    figures["assessment_accuracy"] = sum(total_ok) / len(total_ok) if total_ok else float("nan")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6, help="runs per scenario kind")
    parser.add_argument("--calm-weeks", type=int, default=8, help="calm person-weeks")
    args = parser.parse_args()
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
    suite = scenarios(args.seeds, args.calm_weeks)
    coordinated = [k for k, s in SCENARIOS.items() if s.coordinated]
    recall = statistics.mean(suite[f"pileon:{k}:recall"] for k in coordinated)
    median = statistics.median(suite[f"pileon:{k}:median"] for k in coordinated)
    print(f"\nRESULT nab_pileon={p[0]:.2f} nab_best_baseline={best:.2f} "
          f"nab_windows_detected={p[1]}/{p[2]} nab_false_alerts={p[3]} "
          f"coordinated_recall={recall:.2f} coordinated_median_ttd_min={median:.1f} "
          f"calm_false_per_person_week={suite['pileon:false_per_week']:.2f} "
          f"assessment_accuracy={suite['assessment_accuracy']:.2f}")


if __name__ == "__main__":
    main()
