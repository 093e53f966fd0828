"""The volume chart of an incident as SVG, drawn on the server: mentions per bin against the
person's usual range (the alert's expected rate, with a Poisson 95% band), a labelled y axis,
the time axis in UTC, and a line at each transition (the opening first). The bundle's report and
the console draw the same chart."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from scipy.stats import poisson

from pileon.evidence.rollup import parse_time
from pileon.schema.alert import AlertEvent


def volume_svg(times: Sequence[float], events: Sequence[AlertEvent], bin_minutes: int = 5,
               width: int = 720, height: int = 220) -> str:
    """``times``: the mentions' event times (epoch seconds)."""
    if not times or not events:
        return '<p class="muted">No mentions.</p>'
    step = bin_minutes * 60
    first = int(min(times) // step)
    last = int(max(max(times), parse_time(events[-1].at).timestamp()) // step)
    n = last - first + 1
    counts = [0] * n
    for t in times:
        counts[int(t // step) - first] += 1
    rate = events[0].signals.rate
    expected = rate.expected / max(rate.window_minutes, 1.0) * bin_minutes
    lo, hi = ((float(poisson.ppf(0.025, expected)), float(poisson.ppf(0.975, expected)))
              if expected > 0 else (0.0, 0.0))
    top = max(max(counts), hi, 1.0) * 1.1
    left, bottom, right, upper = 44, 34, 8, 8
    plot_w, plot_h = width - left - right, height - bottom - upper
    bar = plot_w / n

    def y(v: float) -> float:
        return upper + plot_h - v / top * plot_h

    base = upper + plot_h
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="mentions per {bin_minutes} minutes '
        f'against the usual range">',
        f'<rect class="band" fill="#cfe3d3" x="{left}" y="{y(hi):.1f}" width="{plot_w}" '
        f'height="{max(y(lo) - y(hi), 1):.1f}"/>',
        f'<line class="baseline" stroke="#1e7b34" x1="{left}" x2="{left + plot_w}" '
        f'y1="{y(expected):.1f}" y2="{y(expected):.1f}"/>',
    ]
    for i, c in enumerate(counts):
        if c:
            parts.append(f'<rect class="bar" fill="#b3261e" x="{left + i * bar:.1f}" '
                         f'y="{y(c):.1f}" width="{max(bar - 0.6, 0.6):.1f}" '
                         f'height="{base - y(c):.1f}"/>')
    parts.append(f'<line class="axisline" stroke="#5b5b66" x1="{left}" x2="{left}" y1="{upper}" '
                 f'y2="{base}"/><line class="axisline" stroke="#5b5b66" x1="{left}" '
                 f'x2="{left + plot_w}" y1="{base}" y2="{base}"/>')
    for v in _ticks(top / 1.1):
        parts.append(f'<text class="axis" font-size="11" x="{left - 4}" y="{y(v) + 4:.1f}" '
                     f'text-anchor="end">{v:g}</text><line stroke="#5b5b66" x1="{left - 3}" '
                     f'x2="{left}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>')
    parts.append(f'<text class="axis" font-size="11" x="10" y="{upper + plot_h / 2:.0f}" '
                 f'transform="rotate(-90 10 {upper + plot_h / 2:.0f})" text-anchor="middle">'
                 f'per {bin_minutes} min</text>')
    for event in events:
        at = event.opened_at if event.transition == "opened" else event.at
        x = left + (parse_time(at).timestamp() / step - first) * bar
        parts.append(f'<line class="mark" stroke="#20232b" stroke-dasharray="4 3" '
                     f'x1="{x:.1f}" x2="{x:.1f}" y1="{upper}" y2="{base}"/>'
                     f'<text class="axis" font-size="11" x="{x + 3:.1f}" y="{upper + 10}">'
                     f'{event.transition}</text>')
    for i in range(0, n + 1, max(n // 6, 1)):
        x = left + i * bar
        label = datetime.fromtimestamp((first + i) * step, UTC).strftime("%H:%M")
        parts.append(f'<text class="axis" font-size="11" x="{x:.1f}" y="{base + 14}" '
                     f'text-anchor="middle">{label}</text>')
    day = datetime.fromtimestamp(first * step, UTC).strftime("%Y-%m-%d")
    parts.append(f'<text class="axis" font-size="11" x="{left + plot_w}" y="{height - 4}" '
                 f'text-anchor="end">UTC, from {day}</text></svg>')
    return "".join(parts)


def _ticks(top: float) -> list[float]:
    """Round values for the y axis: 0 and up to four steps of 1, 2 or 5 times a power of 10."""
    if top <= 0:
        return [0.0]
    raw = top / 4
    power = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [i * step for i in range(int(top // step) + 1)]
