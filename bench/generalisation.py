"""Generalisation benchmark: does pileon's default detector hold on series it was not chosen on?

    python bench/generalisation.py            # about 25 minutes on 2 cores
    python bench/generalisation.py --quick    # one seed each, about 20 (--skip-loo: 11)

The five NAB dev series (``../shared/data/nab-dev``) are what the defaults were developed on, so
their own score says little about a new user's series. Every row here is measured in one run,
pileon (exactly what ``pileon score-csv`` runs, default settings) beside the published rules of
``bench/baselines.py`` on the same counts:

1. **Thinned NAB**: each dev series thinned binomially (each mention kept with probability p =
   0.3, 0.1, 0.03; labels unchanged), scored by ``../shared/tools/nab_score.py`` at the fixed
   threshold, over several seeds (mean and min-max). Thinning turns the dev series into the quiet
   persons most journalists are (a median of 0-2 mentions per 5 minutes at 10% and below).
2. **Injected pile-ons**: this benchmark's own injector adds pile-on-shaped rises to the real
   series and to their thinned versions: a ramp over 10-60 minutes to 3, 5 or 10 times the local
   level (the mean of the 6 hours before onset, at least 1 mention per 5 minutes: ten times
   nothing is nothing), held 30-180 minutes, decaying over 30-90 minutes; onsets random, after
   NAB's probation, at least a day away from labelled windows and three days from each other.
   Reported: recall within 60 minutes of onset, median delay, and false alerts per series-week
   (alerts outside the injected bursts, their decay plus two hours, and the labelled windows).
   With ``--alone``, each rise is also scored on the series without the others: the rises
   come every four to five days, more often than the false-alarm budget, and the bars are
   calibrated on the person's own bursts, so earlier rises raise the bar for later ones. With
   ``--verdicts``, the same draws with a responder who marks every incident inside a rise a
   coordinated attack a day after it resolved (the console's verdict, as the worker applies it).
   **Quiet synthetic series**: the unseen-series case the issue describes (about one mention per
   5 minutes, rises to 6-13 a bin for half an hour that nothing fired on), with two short
   unlabelled bursts a week; recall within 60 minutes, median delay, alerts outside the rises.
3. **Leave-one-series-out** for the two numbers this work chose by looking at scores (the
   false-alarm budget and the sustained test's ``pileon_multiple``), chosen together on four
   series (mean of their dev and 10%-thinned NAB scores per series), reported on the fifth: all
   five held-out NAB figures, and the held-out series' injected figures at the chosen pair.
4. **Scenario suite with quiet persons**: ``connectors/scenarios.py`` with the person's
   baseline at 0.01, 0.1, 0.5 and 2 mentions a minute: coordinated recall, median time to
   detect, false alerts per person-month on calm traffic (pileon only: the baselines' rows at
   1/min are in ``bench/detection.py``); and again for a person (0.01-2 a minute) pileon has
   known for 40 days, whose baseline, dispersion and bars rest on over a month of their
   traffic (calm: the pages after the first month of 61 days). The suite's ordinary traffic
   has new accounts and the person's pieces shared with their headline (copies from many
   established accounts), the look-alikes of a brigade's signs.

Ends with one ``RESULT`` line.
"""

from __future__ import annotations

import argparse
import csv
import functools
import importlib.util
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.baselines import BASELINES, rising_edges  # noqa: E402
from pileon.cli.scorecsv import score, settings_for_bin  # noqa: E402
from pileon.core.settings import DetectionSettings, load_settings  # noqa: E402
from pileon.schema.alert import Transition  # noqa: E402
from pileon.streams.detection.detectors import BinObservation, RateDetector  # noqa: E402
from pileon.streams.detection.incidents import IncidentState, decide, open_bar  # noqa: E402
from pileon.streams.detection.person_state import detector_params  # noqa: E402

CORPUS = ROOT.parent / "shared" / "data" / "nab-dev"
SCORER = ROOT.parent / "shared" / "tools" / "nab_score.py"
CATEGORY = "realTweets"
BIN = 300  # the dev series' bin width, seconds
PROBATION = 0.15  # NAB's: the first 15% of a file is not scored
WEEK_BINS = 7 * 86_400 // BIN
MONTH_DAYS = 30.4  # a person-month, as the false-alarm budget counts it
VERDICT_DELAY_HOURS = 24.0  # the responder's verdict, a day after the incident resolved


@functools.cache
def _scorer() -> Any:
    spec = importlib.util.spec_from_file_location("nab_score", SCORER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- data ---------------------------------------------------------------------------------------
@dataclass
class Series:
    name: str  # e.g. "Twitter_volume_KO.csv"
    stamps: list[str]
    times: np.ndarray  # seconds
    counts: np.ndarray
    windows: list[tuple[int, int]]  # labelled windows as row index ranges (inclusive)
    # Injected rises: (onset, end of the hold, end of the decay) as row indexes.
    bursts: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{CATEGORY}/{self.name}"


def _parse(text: str) -> float:
    return datetime.strptime(text.split(".")[0], "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=UTC).timestamp()


def load_series() -> list[Series]:
    windows = json.loads((CORPUS / "labels" / "combined_windows.json").read_text())
    out = []
    for path in sorted((CORPUS / "data" / CATEGORY).glob("*.csv")):
        with path.open() as f:
            rows = list(csv.DictReader(f))
        stamps = [r["timestamp"] for r in rows]
        times = np.array([_parse(s) for s in stamps])
        spans = [(int(np.searchsorted(times, _parse(a))), int(np.searchsorted(times, _parse(b))))
                 for a, b in windows[f"{CATEGORY}/{path.name}"]]
        out.append(Series(path.name, stamps, times,
                          np.array([round(float(r["value"])) for r in rows], dtype=np.int64),
                          spans))
    return out


def thin(series: Series, p: float, seed: int) -> Series:
    """Each mention kept with probability ``p``: the same person, ``1/p`` times quieter."""
    if p >= 1.0:
        return series
    rng = np.random.default_rng([seed, int(p * 1000), len(series.name)])
    return Series(series.name, series.stamps, series.times, rng.binomial(series.counts, p),
                  series.windows)


def inject(series: Series, multiple: float, seed: int, every_days: float = 4.0) -> Series:
    """Pile-on-shaped rises added to ``series`` (see the module's docstring)."""
    rng = np.random.default_rng([seed, int(multiple * 10), len(series.name), 7])
    counts = series.counts.copy()
    n = len(counts)
    day = 86_400 // BIN
    blocked = np.zeros(n, dtype=bool)
    for a, b in series.windows:
        blocked[max(0, a - day) : b + day] = True
    start = max(int(PROBATION * n), 2 * day)
    bursts: list[tuple[int, int, int]] = []
    spacing = int(every_days * day)
    onset = start + int(rng.integers(0, spacing // 2))
    while onset < n - day:
        ramp = int(rng.integers(2, 13))  # 10-60 minutes of 5-minute bins
        hold = int(rng.integers(6, 37))  # 30-180 minutes
        decay = int(rng.integers(6, 19))  # 30-90 minutes
        end = onset + ramp + hold
        stop = end + decay
        if stop < n and not blocked[onset : stop + 1].any():
            level = max(1.0, float(counts[max(0, onset - 72) : onset].mean()))
            extra = (multiple - 1.0) * level
            shape = np.concatenate([np.arange(1, ramp + 1) / ramp, np.ones(hold),
                                    1.0 - np.arange(1, decay + 1) / (decay + 1)])
            counts[onset : stop] += rng.poisson(extra * shape)
            bursts.append((onset, end, stop))
            onset = stop + spacing + int(rng.integers(0, day))
        else:
            onset += day // 4
    return Series(series.name, series.stamps, series.times, counts, series.windows, bursts)


def one_rise(base: Series, injected: Series, j: int) -> Series:
    """``base`` with only the ``j``-th of ``injected``'s rises (``injected`` is ``inject(base,
    ...)``): the same rise, on the person's ordinary history rather than after the others."""
    onset, end, stop = injected.bursts[j]
    counts = base.counts.copy()
    counts[onset:stop] = injected.counts[onset:stop]
    return Series(base.name, base.stamps, base.times, counts, base.windows, [(onset, end, stop)])


# -- detectors ----------------------------------------------------------------------------------
def run_pileon(series: Series, overrides: dict[str, Any] | None = None) -> list[int]:
    cfg = load_settings().detection
    if overrides:
        cfg = DetectionSettings(**{**cfg.model_dump(), **overrides})
    rows = [(s, str(c), float(t), int(c))
            for s, t, c in zip(series.stamps, series.times, series.counts, strict=True)]
    return [s.alert for s in score(rows, cfg)]


def run_pileon_attended(series: Series, delay_hours: float = VERDICT_DELAY_HOURS) -> list[int]:
    """pileon's alerts with a responder who gives every incident that opened inside an
    injected rise (from its onset to two hours after its decay) the disposition
    ``coordinated``, ``delay_hours`` after it resolved, and leaves the others alone: the verdict
    the console sends, applied as the worker applies it (the span from an hour before the
    opening's window to the resolution; ``PersonAnalyser.verdict``). score-csv's loop
    otherwise."""
    cfg = settings_for_bin(load_settings().detection, BIN)
    detector = RateDetector(**detector_params(cfg))
    state = IncidentState()
    attacks = [(series.times[o], series.times[min(len(series.times) - 1, stop + 24)])
               for o, _, stop in series.bursts]
    pending: list[tuple[float, float, float, str]] = []  # (apply at, start, end, incident)
    opened_at = 0.0
    alerts = []
    lead = (cfg.window_bins + detector.scales[-1]) * BIN
    for t, count in zip(series.times, series.counts, strict=True):
        while pending and pending[0][0] <= t:
            _, start, end, incident = pending.pop(0)
            detector.take_back(start, end, incident)
        x = BinObservation(float(t), int(count))
        rate = detector.explain(x)
        decision = decide(state, "series", t + BIN, rate.score, rate, cfg)
        detector.learn_one(x, held=rate.score >= open_bar(rate, cfg))
        if decision is not None and decision.transition is Transition.OPENED:
            opened_at = float(t) + BIN
        if decision is not None and decision.transition is Transition.RESOLVED and any(
                a <= opened_at <= b for a, b in attacks):
            pending.append((t + BIN + delay_hours * 3600, opened_at - lead, float(t) + BIN,
                            decision.incident_id))
        alerts.append(int(decision is not None
                          and decision.transition is not Transition.RESOLVED))
    return alerts


def run_baseline(name: str, series: Series) -> list[int]:
    cls = next(c for c in BASELINES if c.__name__ == name)
    detector = cls(bin_seconds=BIN)
    return rising_edges([detector.step(float(c)) for c in series.counts])


DETECTORS = ["pileon", *[c.__name__ for c in BASELINES]]
LABELS = {"pileon": "pileon (default settings)", **{c.__name__: c.name for c in BASELINES}}


def _alerts(task: tuple[str, Series, dict[str, Any] | None]) -> list[int]:
    detector, series, overrides = task
    if detector == "pileon":
        return run_pileon(series, overrides)
    if detector == "attended":
        return run_pileon_attended(series)
    return run_baseline(detector, series)


def run_all(pool: ProcessPoolExecutor,
            tasks: Sequence[tuple[str, Series, dict[str, Any] | None]]) -> list[list[int]]:
    return list(pool.map(_alerts, tasks, chunksize=1))


# -- measures -----------------------------------------------------------------------------------
def nab(series: Sequence[Series], alerts: Sequence[list[int]]) -> float:
    """NAB standard score of ``alerts`` (one list per series) at the fixed threshold."""
    scorer = _scorer()
    with tempfile.TemporaryDirectory() as tmp:
        corpus, results = Path(tmp) / "corpus", Path(tmp) / "results"
        (corpus / "data" / CATEGORY).mkdir(parents=True)
        (corpus / "labels").mkdir()
        (results / CATEGORY).mkdir(parents=True)
        windows = json.loads((CORPUS / "labels" / "combined_windows.json").read_text())
        (corpus / "labels" / "combined_windows.json").write_text(
            json.dumps({s.key: windows[s.key] for s in series}))
        for s, a in zip(series, alerts, strict=True):
            for folder, column in ((corpus, None), (results, a)):
                with (folder / ("data" if folder is corpus else "") / CATEGORY / s.name).open(
                        "w", newline="") as f:
                    w = csv.writer(f)
                    w.writerow(["timestamp", "value", "alert"])
                    for i, (stamp, c) in enumerate(zip(s.stamps, s.counts, strict=True)):
                        w.writerow([stamp, int(c), column[i] if column is not None else 0])
        return float(scorer.score(str(corpus), str(results), "alert", 0.5)["standard"]["score"])


@dataclass
class InjectedFigures:
    found: int = 0
    total: int = 0
    delays: list[float] = field(default_factory=list)  # minutes, for those found within 60
    false: int = 0
    weeks: float = 0.0

    def add(self, series: Series, alerts: list[int]) -> None:
        n = len(alerts)
        excluded = np.zeros(n, dtype=bool)
        for a, b in series.windows:
            excluded[a : b + 1] = True
        for onset, _end, stop in series.bursts:
            excluded[onset : min(n, stop + 24)] = True
        hits = np.flatnonzero(np.asarray(alerts))
        for onset, _end, _stop in series.bursts:
            # The alert of a bin is raised at its end: bin i ends (i + 1 - onset) bins after onset.
            within = [(i + 1 - onset) * BIN / 60 for i in hits if onset <= i and
                      (i + 1 - onset) * BIN <= 3600]
            self.total += 1
            if within:
                self.found += 1
                self.delays.append(within[0])
        start = int(PROBATION * n)
        self.false += int(sum(1 for i in hits if i >= start and not excluded[i]))
        self.weeks += (n - start - int(excluded[start:].sum())) / WEEK_BINS

    @property
    def recall(self) -> float:
        return self.found / self.total if self.total else math.nan

    @property
    def false_per_week(self) -> float:
        return self.false / self.weeks if self.weeks else math.nan

    @property
    def median_delay(self) -> float:
        return statistics.median(self.delays) if self.delays else math.nan


def spread(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ({min(values):.2f}-{max(values):.2f})"


# -- quiet series with held rises ---------------------------------------------------------------
QUIET_WEEKS = 8


def quiet_series(seed: int) -> Series:
    """A quiet person's 5-minute counts, the kind the issue says nothing fired on: eight weeks
    around one mention per 5 minutes (a daily rhythm, gamma noise), two short unlabelled bursts a
    week (10-40 mentions in 1-3 bins: a reply thread, a quote), and four rises that hold, 6-13
    mentions a bin for half an hour (its ``bursts``, measured as the injected ones are)."""
    rng = np.random.default_rng([seed, 18])
    n = QUIET_WEEKS * WEEK_BINS
    times = 1_420_000_000 + np.arange(n) * BIN
    hour = (times // 3600) % 24
    rate = (0.4 + 1.2 * np.exp(-(((hour - 15) / 5.0) ** 2))) * rng.gamma(4, 1 / 4, n)
    counts = rng.poisson(rate)
    for _ in range(2 * QUIET_WEEKS):
        i = int(rng.integers(int(PROBATION * n), n - 10))
        width = int(rng.integers(1, 4))
        counts[i : i + width] += rng.integers(10, 40, width)
    rises = []
    for k in range(4):
        i = int(0.2 * n) + k * (n // 5) + int(rng.integers(0, 500))
        counts[i : i + 6] = rng.integers(6, 14, 6)
        rises.append((i, i + 6, i + 6))
    stamps = [datetime.fromtimestamp(float(t), UTC).strftime("%Y-%m-%d %H:%M:%S") for t in times]
    return Series(f"quiet-{seed}.csv", stamps, times.astype(float), counts.astype(np.int64), [],
                  rises)


def quiet_series_figures(pool: ProcessPoolExecutor, seeds: int
                         ) -> dict[str, tuple[float, float, float]]:
    """Per detector: share of the held rises alerted on within 60 minutes, the median minutes,
    and alerts outside the rises (and the two hours after them) per eight weeks."""
    made = [quiet_series(seed) for seed in range(seeds)]
    out = {}
    for det in DETECTORS:
        fig = InjectedFigures()
        for s, alerts in zip(made, run_all(pool, [(det, s, None) for s in made]), strict=True):
            fig.add(s, alerts)
        out[det] = (fig.recall, fig.median_delay, fig.false / len(made))
    return out


# -- quiet-person scenarios ---------------------------------------------------------------------
def _scenario_run(task: tuple[str, int, float, float]) -> tuple[str, float, float | None, float]:
    """(kind, per-minute rate, minutes to detect or None, 0.0; for calm: openings after the
    first month of a run longer than a month, else all of them, and the person-months they
    count over)."""
    from bench.detection import _analyse, _ts_iso
    from pileon.connectors.scenarios import simulate

    kind, seed, per_minute, days = task
    end = 1_790_000_000.0 + seed * 7919.0
    if kind == "calm":
        sim = simulate("calm", 1000 + seed, end=end, days=days, mean_per_hour=per_minute * 60)
        after = end - days * 86_400 + (MONTH_DAYS * 86_400 if days > MONTH_DAYS else 0.0)
        opened = [a for a in _analyse(sim.mentions()) if a["transition"] == "opened"
                  and _ts_iso(str(a["at"])) >= after]
        return kind, per_minute, float(len(opened)), (end - after) / (MONTH_DAYS * 86_400)
    # A pile-on is at least one extra mention a minute: five times 0.01 a minute is three
    # mentions an hour, which nobody should be paged for.
    multiple = max(5.0, 1.0 + 1.0 / per_minute)
    sim = simulate(kind, seed, end=end, days=days, mean_per_hour=per_minute * 60,
                   multiple=multiple)
    mentions = sim.mentions()
    truth = sim.ground_truth()
    onset = _ts_iso(str(truth.onset))
    stop = _ts_iso(str(truth.pileon_end)) + 1800
    opened = [_ts_iso(str(a["at"])) for a in _analyse(mentions)
              if a["transition"] == "opened"]
    hits = [t for t in opened if onset <= t <= stop]
    return kind, per_minute, (hits[0] - onset) / 60 if hits else None, 0.0


def quiet_scenarios(pool: ProcessPoolExecutor, seeds: int, rates: Sequence[float],
                    days: float = 8.0, calm_days: float = 14.0
                    ) -> dict[float, tuple[float, float, float]]:
    """Per rate: recall and median minutes to detect of the coordinated kinds (``days`` of
    the person's traffic before the surge), and calm openings per person-month (after the
    first month when ``calm_days`` is longer)."""
    kinds = ["copypasta", "diffuse", "single_flood"]
    tasks = [(k, s, r, days) for r in rates for k in kinds for s in range(seeds)]
    tasks += [("calm", s, r, calm_days) for r in rates for s in range(max(1, seeds // 2))]
    out: dict[float, tuple[float, float, float]] = {}
    results = list(pool.map(_scenario_run, tasks, chunksize=1))
    for r in rates:
        found = [d for k, rate, d, _ in results if rate == r and k != "calm"]
        got = [d for d in found if d is not None]
        calm = [(d, months) for k, rate, d, months in results if rate == r and k == "calm"]
        out[r] = (len(got) / len(found), statistics.median(got) if got else math.nan,
                  sum(d or 0 for d, _ in calm) / sum(m for _, m in calm))
    return out


# -- main ---------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3,
                        help="random draws per thinned or injected row")
    parser.add_argument("--quick", action="store_true", help="one seed, fewer scenario runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-scenarios", action="store_true")
    parser.add_argument("--skip-loo", action="store_true")
    parser.add_argument("--alone", action="store_true",
                        help="also score each injected rise alone, without the rises before "
                             "it (pileon only; real and 10%%-thinned series; about 12 minutes)")
    parser.add_argument("--verdicts", action="store_true",
                        help="also the injected rises with a responder's verdicts (pileon "
                             "only; about 2 minutes a seed)")
    args = parser.parse_args(argv)
    if not CORPUS.is_dir() or not SCORER.is_file():
        raise SystemExit(f"NAB data or scorer missing: {CORPUS}, {SCORER}")
    seeds = 1 if args.quick else args.seeds
    started = time.perf_counter()
    dev = load_series()
    figures: dict[str, float] = {}
    with ProcessPoolExecutor(args.workers) as pool:
        # 1. NAB on the dev series and their thinned versions.
        print(f"NAB standard score at the fixed threshold, {len(dev)} dev series; thinned rows: "
              f"mean (min-max) over {seeds} seeds\n")
        print(f"{'detector':34} {'dev':>7} {'thin 30%':>20} {'thin 10%':>20} {'thin 3%':>20}")
        variants = {1.0: [dev]} | {p: [[thin(s, p, seed) for s in dev] for seed in range(seeds)]
                                   for p in (0.3, 0.1, 0.03)}
        for det in DETECTORS:
            cells = []
            for p, draws in variants.items():
                scores = []
                for draw in draws:
                    alerts = run_all(pool, [(det, s, None) for s in draw])
                    scores.append(nab(draw, alerts))
                figures[f"nab:{det}:{p}"] = statistics.mean(scores)
                figures[f"nab:{det}:{p}:min"] = min(scores)
                cells.append(spread(scores))
            print(f"{LABELS[det]:34} {cells[0]:>7} {cells[1]:>20} {cells[2]:>20} {cells[3]:>20}",
                  flush=True)

        # 2. Injected pile-ons into the real and thinned series.
        print("\nInjected pile-ons (recall within 60 min / median minutes / false alerts per "
              f"series-week), {seeds} seeds x 5 series\n")
        levels = (1.0, 0.3, 0.1)
        multiples = (3.0, 5.0, 10.0)
        header = "".join(f"{f'{int(p * 100)}% x{m:g}':>22}" for p in levels for m in multiples)
        print(f"{'detector':34}{header}")
        injected: dict[tuple[str, float, float], InjectedFigures] = {}
        for det in DETECTORS:
            cells = []
            for p in levels:
                for m in multiples:
                    fig = InjectedFigures()
                    draws = [inject(thin(s, p, seed), m, seed) for seed in range(seeds)
                             for s in dev]
                    for s, alerts in zip(draws, run_all(pool, [(det, s, None) for s in draws]),
                                         strict=True):
                        fig.add(s, alerts)
                    injected[(det, p, m)] = fig
                    cells.append(f"{fig.recall:.2f}/{fig.median_delay:4.0f}/"
                                 f"{fig.false_per_week:5.2f}")
            print(f"{LABELS[det]:34}" + "".join(f"{c:>22}" for c in cells), flush=True)
        for det in DETECTORS:
            figs = [injected[(det, p, m)] for p in levels for m in multiples]
            figures[f"inj:{det}:recall"] = sum(f.found for f in figs) / sum(f.total for f in figs)
            figures[f"inj:{det}:fpw"] = sum(f.false for f in figs) / sum(f.weeks for f in figs)
            figures[f"inj:{det}:delay"] = statistics.median(d for f in figs for d in f.delays) \
                if any(f.delays for f in figs) else math.nan
        print(f"\n{'detector':34} {'recall':>7} {'median min':>11} {'false/series-week':>18}")
        for det in DETECTORS:
            print(f"{LABELS[det]:34} {figures[f'inj:{det}:recall']:7.2f} "
                  f"{figures[f'inj:{det}:delay']:11.0f} {figures[f'inj:{det}:fpw']:18.2f}")

        if args.alone:
            _alone(pool, dev, seeds, injected, figures)
        if args.verdicts:
            _verdicts(pool, dev, seeds, injected, figures)

        # Quiet series with rises that hold (synthetic: the unseen-series case).
        quiet = quiet_series_figures(pool, seeds if seeds > 1 else 2)
        print("\nQuiet synthetic series (about 1 mention per 5 minutes, two short bursts a week, "
              "four half-hour rises to 6-13 a bin; recall within 60 min / median minutes / "
              f"alerts outside the rises per {QUIET_WEEKS} weeks)\n")
        for det in DETECTORS:
            recall, median, outside = quiet[det]
            print(f"{LABELS[det]:34} {recall:7.2f} {median:7.0f} {outside:9.1f}")
        figures["quiet_series:recall"], _, figures["quiet_series:outside"] = quiet["pileon"]

        # 3. Leave one series out, for the false-alarm budget and the sustained test's multiple.
        if not args.skip_loo:
            _leave_one_out(pool, dev, seeds, figures)

        # 4. Quiet persons in the scenario suite: a new person (8 days of their traffic), and
        # one pileon has known for over a month (40 days; calm: pages after the first month of
        # 61 days). Two runs a kind for the second (five times the days: about seven minutes
        # on 2 cores); 2 a minute is in it for the shared pieces, learned over the month.
        if not args.skip_scenarios:
            for key, runs, rates, days, calm_days, title in (
                    ("suite", 2 if args.quick else 4, (0.01, 0.1, 0.5, 2.0), 8.0, 14.0,
                     "a person known for 8 days"),
                    ("suite_month", 2, (0.01, 0.1, 0.5, 2.0), 40.0, 61.0,
                     "a person known for 40 days (calm: pages after the first month)")):
                suite = quiet_scenarios(pool, runs, rates, days, calm_days)
                print(f"\nScenario suite, pileon, {title}: coordinated surges (copypasta, "
                      "diffuse, flood) at 5x the person's usual rate, and at least 1 extra "
                      "mention a minute\n")
                print(f"{'mentions/min':>13} {'recall':>7} {'median min':>11} "
                      f"{'false per person-month (calm)':>30}")
                for r, (recall, median, fpm) in suite.items():
                    print(f"{r:13g} {recall:7.2f} {median:11.1f} {fpm:30.2f}", flush=True)
                    figures[f"{key}:{r}:recall"], figures[f"{key}:{r}:fpm"] = recall, fpm
                figures[f"{key}:recall_min"] = min(v[0] for v in suite.values())
                figures[f"{key}:median_max"] = max(v[1] for v in suite.values())
                figures[f"{key}:fpm_max"] = max(v[2] for v in suite.values())

    best_fpw = min(figures[f"inj:{d}:fpw"] for d in DETECTORS if d != "pileon")
    best_recall = max(figures[f"inj:{d}:recall"] for d in DETECTORS if d != "pileon")
    parts = [
        f"nab_dev={figures['nab:pileon:1.0']:.2f}",
        f"nab_thin30={figures['nab:pileon:0.3']:.2f}",
        f"nab_thin10={figures['nab:pileon:0.1']:.2f}",
        f"nab_thin10_min={figures['nab:pileon:0.1:min']:.2f}",
        f"nab_thin3={figures['nab:pileon:0.03']:.2f}",
        f"nab_ewma_thin10={figures['nab:EwmaZScore:0.1']:.2f}",
        f"inj_recall60={figures['inj:pileon:recall']:.2f}",
        f"inj_median_min={figures['inj:pileon:delay']:.0f}",
        f"inj_false_per_week={figures['inj:pileon:fpw']:.2f}",
        f"inj_best_baseline_recall={best_recall:.2f}",
        f"inj_best_baseline_false_per_week={best_fpw:.2f}",
        f"quiet_series_recall60={figures['quiet_series:recall']:.2f}",
        f"quiet_series_outside_per_8w={figures['quiet_series:outside']:.1f}",
    ]
    if "alone:recall" in figures:
        parts.append(f"inj_alone_recall60={figures['alone:recall']:.2f}")
        parts.append(f"inj_together_recall60_same_rows={figures['alone:together']:.2f}")
    if "verdicts:recall" in figures:
        parts.append(f"inj_verdicts_recall60={figures['verdicts:recall']:.2f}")
        parts.append(f"inj_verdicts_false_per_week={figures['verdicts:fpw']:.2f}")
    if "loo:min" in figures:
        parts.append(f"loo_heldout_min={figures['loo:min']:.2f}")
        parts.append(f"loo_heldout_max={figures['loo:max']:.2f}")
        parts.append(f"loo_inj_recall60={figures['loo:inj_recall']:.2f}")
        parts.append(f"loo_inj_false_per_week={figures['loo:inj_fpw']:.2f}")
    if "suite:recall_min" in figures:
        for key, name in (("suite", "quiet"), ("suite_month", "quiet_month")):
            parts.append(f"{name}_recall_min={figures[f'{key}:recall_min']:.2f}")
            parts.append(f"{name}_median_max={figures[f'{key}:median_max']:.1f}")
            parts.append(f"{name}_false_per_month_max={figures[f'{key}:fpm_max']:.2f}")
    parts.append(f"seconds={time.perf_counter() - started:.0f}")
    print("\nRESULT " + " ".join(parts))


def _alone(pool: ProcessPoolExecutor, dev: list[Series], seeds: int,
           injected: dict[tuple[str, float, float], InjectedFigures],
           figures: dict[str, float]) -> None:
    """Each injected rise scored on the series without the other rises: how much of what
    pileon misses among them is what the rises before taught it (its bars are calibrated on
    the person's own bursts, and a rise every four or five days is more than the budget)."""
    levels, multiples = (1.0, 0.1), (3.0, 5.0, 10.0)
    print("\nEach injected rise alone (recall within 60 min / median minutes), pileon, beside "
          "the same rises injected together (the rows above)\n")
    print(f"{'':20}" + "".join(f"{f'{int(p * 100)}% x{m:g}':>16}" for p in levels
                                 for m in multiples))
    cells_alone, cells_together = [], []
    found = total = 0
    for p in levels:
        for m in multiples:
            singles = []
            for seed in range(seeds):
                for s in dev:
                    base = thin(s, p, seed)
                    many = inject(base, m, seed)
                    singles += [one_rise(base, many, j) for j in range(len(many.bursts))]
            fig = InjectedFigures()
            for single, alerts in zip(singles, run_all(pool, [("pileon", x, None)
                                                              for x in singles]), strict=True):
                fig.add(single, alerts)
            found, total = found + fig.found, total + fig.total
            together = injected[("pileon", p, m)]
            cells_alone.append(f"{fig.recall:.2f}/{fig.median_delay:3.0f}")
            cells_together.append(f"{together.recall:.2f}/{together.median_delay:3.0f}")
    print(f"{'alone':20}" + "".join(f"{c:>16}" for c in cells_alone))
    print(f"{'together':20}" + "".join(f"{c:>16}" for c in cells_together), flush=True)
    figs = [injected[("pileon", p, m)] for p in levels for m in multiples]
    figures["alone:recall"] = found / total
    figures["alone:together"] = sum(f.found for f in figs) / sum(f.total for f in figs)


def _verdicts(pool: ProcessPoolExecutor, dev: list[Series], seeds: int,
              injected: dict[tuple[str, float, float], InjectedFigures],
              figures: dict[str, float]) -> None:
    """The injected rises again (the same draws), with a responder who marks every incident
    inside a rise ``coordinated`` a day after it resolved (:func:`run_pileon_attended`)."""
    levels, multiples = (1.0, 0.3, 0.1), (3.0, 5.0, 10.0)
    print(f"\nThe injected rises with a responder's verdicts (every incident inside a rise "
          f"marked coordinated {VERDICT_DELAY_HOURS:g} h after it resolved); recall within 60 "
          "min / false alerts per series-week, beside pileon without them (the rows above)\n")
    print(f"{'':20}" + "".join(f"{f'{int(p * 100)}% x{m:g}':>14}" for p in levels
                                 for m in multiples))
    cells_with, cells_without, with_figs = [], [], []
    for p in levels:
        for m in multiples:
            draws = [inject(thin(s, p, seed), m, seed) for seed in range(seeds) for s in dev]
            fig = InjectedFigures()
            for draw, alerts in zip(draws, run_all(pool, [("attended", x, None) for x in draws]),
                                    strict=True):
                fig.add(draw, alerts)
            with_figs.append(fig)
            without = injected[("pileon", p, m)]
            cells_with.append(f"{fig.recall:.2f}/{fig.false_per_week:4.2f}")
            cells_without.append(f"{without.recall:.2f}/{without.false_per_week:4.2f}")
    print(f"{'without verdicts':20}" + "".join(f"{c:>14}" for c in cells_without))
    print(f"{'with verdicts':20}" + "".join(f"{c:>14}" for c in cells_with), flush=True)
    figures["verdicts:recall"] = sum(f.found for f in with_figs) / sum(f.total for f in with_figs)
    figures["verdicts:fpw"] = sum(f.false for f in with_figs) / sum(f.weeks for f in with_figs)


BUDGETS = (0.25, 0.5, 1.0, 2.0, 4.0)  # pages per person-month, the candidates for LOO
MULTIPLES = (4.0, 5.0, 6.0, 8.0, 10.0, 12.0)  # the sustained test's bar, the candidates for LOO


def _leave_one_out(pool: ProcessPoolExecutor, dev: list[Series], seeds: int,
                   figures: dict[str, float]) -> None:
    """The two numbers chosen by looking at scores, chosen together on four series.

    The false-alarm budget and the sustained test's ``pileon_multiple``: for each pair, each
    series' mean of its dev NAB and its 10%-thinned NAB (first seed); a fold takes the pair with
    the best sum over four series and is scored on the fifth. The held-out series' injected
    figures (one draw, real and 10%-thinned, x3/x5/x10) are given at the chosen pair and at the
    default one, since the multiple trades NAB against the injected rises.
    """
    detection = load_settings().detection
    default = (detection.false_alarms_per_month, detection.pileon_multiple)
    pairs = [(b, m) for b in BUDGETS for m in MULTIPLES]
    draws = (dev, [thin(s, 0.1, 0) for s in dev])
    tasks = [("pileon", s, {"false_alarms_per_month": b, "pileon_multiple": m})
             for b, m in pairs for draw in draws for s in draw]
    results = iter(run_all(pool, tasks))
    table: dict[tuple[str, tuple[float, float]], float] = {}
    for pair in pairs:
        for draw in draws:
            for s in draw:
                key = (s.name, pair)
                table[key] = table.get(key, 0.0) + nab([s], [next(results)]) / 2
    chosen = {}  # ties go to the first pair in the grid: the smaller budget, then multiple
    for s in dev:
        others = [o.name for o in dev if o.name != s.name]
        chosen[s.name] = max(pairs, key=lambda pair: sum(table[(o, pair)] for o in others))

    def injected(series: Series, pair: tuple[float, float]) -> InjectedFigures:
        fig = InjectedFigures()
        overrides = {"false_alarms_per_month": pair[0], "pileon_multiple": pair[1]}
        injections = [inject(thin(series, p, 0), m, 0) for p in (1.0, 0.1)
                      for m in (3.0, 5.0, 10.0)]
        for d, alerts in zip(injections,
                             run_all(pool, [("pileon", d, overrides) for d in injections]),
                             strict=True):
            fig.add(d, alerts)
        return fig

    print("\nLeave one series out: the false-alarm budget and pileon_multiple chosen together on "
          "four series (mean of dev and 10%-thinned NAB), scored on the fifth; injected: recall "
          "within 60 min at false alerts per series-week, real and 10%-thinned, x3/x5/x10\n")
    print(f"{'held-out series':28} {'chosen (budget, x)':>19} {'held-out NAB':>13} "
          f"{'at default':>11} {'injected, chosen':>17} {'at default':>11}")
    held, inj_found, inj_total, inj_false, inj_weeks = [], 0, 0, 0, 0.0
    for s in dev:
        pair = chosen[s.name]
        at_pair = injected(s, pair)
        at_default = at_pair if pair == default else injected(s, default)
        held.append(table[(s.name, pair)])
        inj_found, inj_total = inj_found + at_pair.found, inj_total + at_pair.total
        inj_false, inj_weeks = inj_false + at_pair.false, inj_weeks + at_pair.weeks
        print(f"{s.name:28} {f'{pair[0]:g}, {pair[1]:g}':>19} {table[(s.name, pair)]:13.2f} "
              f"{table[(s.name, default)]:11.2f} "
              f"{f'{at_pair.recall:.2f} at {at_pair.false_per_week:.2f}':>17} "
              f"{f'{at_default.recall:.2f} at {at_default.false_per_week:.2f}':>11}", flush=True)
    figures["loo:min"], figures["loo:max"] = min(held), max(held)
    figures["loo:mean"] = statistics.mean(held)
    figures["loo:inj_recall"] = inj_found / inj_total
    figures["loo:inj_fpw"] = inj_false / inj_weeks
    print("\nNAB (mean of dev and 10%-thinned) by pair, summed over the five series:")
    print(f"{'budget':>8}" + "".join(f"{f'x{m:g}':>9}" for m in MULTIPLES))
    for b in BUDGETS:
        print(f"{b:8g}" + "".join(f"{sum(table[(s.name, (b, m))] for s in dev) / len(dev):9.2f}"
                                   for m in MULTIPLES))


if __name__ == "__main__":
    main()
