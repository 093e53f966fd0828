"""The bundle's ``report.html``: what a lawyer, the police or a platform's trust team reads.

Self-contained (no script, no outside resource; opens from a USB stick), printable (a print
stylesheet for A4 and Letter: tables repeat their headers, rows do not split), and derived
only from the alert events and the chain records, so ``pileon verify`` derives it again and
compares bytes. Every text from a platform is escaped: it is shown, never run. ``pileon report
BUNDLE --pdf FILE`` prints it to PDF with headless Chromium.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pileon.core.wording import local_time
from pileon.evidence.chart import volume_svg
from pileon.evidence.rollup import author_rollup, parse_time
from pileon.schema.alert import AlertEvent
from pileon.schema.mention import post_key

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1f;
margin:2rem auto;max-width:64rem;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:1.8rem;
border-bottom:2px solid #1b1b1f;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{text-align:left;vertical-align:top;padding:.25rem .45rem;border-bottom:1px solid #ccc}
th{background:#f1f1f4}td.text{white-space:pre-wrap;overflow-wrap:anywhere}
.muted{color:#555}.caveat{border-left:4px solid #b35c00;padding:.4rem .8rem;background:#fff6ea}
code,.hash{font-family:ui-monospace,monospace;font-size:.85em;overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{color:#555}dd{margin:0}
svg.chart{width:100%;height:auto;border:1px solid #ccc}
table.mentions{table-layout:fixed}table.mentions td{overflow-wrap:anywhere}
col.n{width:4%}col.t{width:11%}col.a{width:15%}col.x{width:37%}col.l{width:12%}
col.h{width:10%}
@page{size:auto;margin:14mm 12mm}
@media print{body{margin:0;max-width:none;font-size:10.5pt}
h2{break-after:avoid}tr,svg,dl{break-inside:avoid}thead{display:table-header-group}
a{color:inherit;text-decoration:none}.screen-only{display:none}}
"""


def report_html(events: list[AlertEvent], records: list[dict[str, Any]],
                members: Mapping[str, str],
                platform: list[dict[str, Any]] | None = None,
                changes: list[dict[str, Any]] | None = None) -> str:
    esc = html.escape
    first, last = events[0], events[-1]
    tz = last.timezone
    start = parse_time(first.evidence.from_).timestamp()
    incident = [r for r in records if parse_time(r["mention"]["created_at"]).timestamp() >= start]
    mentions = [r["mention"] for r in incident]
    authors = author_rollup(mentions, members)
    labels = {tid: f"C{i + 1}" for i, tid in enumerate(
        dict.fromkeys(c.template_id for e in events for c in e.signals.near_duplicate_clusters))}
    young = last.signals.young_account_share
    young_authors = sum(1 for a in authors if a.age_days is not None
                        and a.age_days < young.young_means_days)
    times = [parse_time(r["mention"]["created_at"]).timestamp() for r in records]
    marks: dict[str, list[str]] = {}
    for e in platform or []:
        if e.get("platform") == "mastodon":
            marks.setdefault(f"mastodon:{e['uri']}", []).append(f"Mastodon, {e.get('status')}")
        else:
            marks.setdefault(f"bluesky:{e['uri']}", []).append(
                f"platform-signed record: {e.get('status', '')}")
    for change in changes or []:
        if change.get("state") in ("deleted", "edited"):
            marks.setdefault(str(change["of"]), []).append(
                f"{str(change['state']).upper()} (seen {change.get('seen_at')}, "
                f"{change.get('look', '')}: {change.get('detail', '')})")
    summary = [
        ("Protected person", f"{last.person} (time zone {tz})"),
        ("Incident", last.incident_id),
        ("Opened", _when(first.opened_at, tz)),
        ("Last transition", f"{last.transition}, {_when(last.at, tz)}"),
        ("Severity", str(last.severity)),
        ("Mentions", f"{len(incident)} from the incident's first window on "
                     f"({len(records) - len(incident)} more in the hour before, for context)"),
        ("Accounts", f"{len(authors)} ({young_authors} younger than "
                     f"{young.young_means_days:g} days when they first wrote)"),
        ("Assessment", f"{last.assessment} (indicators: {', '.join(last.indicators) or 'none'})"),
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Evidence report: incident {esc(last.incident_id)}</title>
<style>{_STYLE}</style></head><body>
<h1>Evidence report: possible pile-on against {esc(last.person)}</h1>
<p class="muted">Incident {esc(last.incident_id)} · made by pileon from the alert events and
the hash-chained mentions in this folder (<code>manifest.json</code> names the version).</p>
<p class="caveat">pileon shows evidence, not a verdict: organic criticism can look like a
pile-on. The assessment says which signs it saw; a person decides what it was.</p>
<h2>Summary</h2>
<dl>{"".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in summary)}</dl>
<h2>Volume against the person's usual range</h2>
{volume_svg(times, events)}
<p class="muted">Bars: mentions per 5 minutes (event time, UTC). Green band: the usual range
(95%) at the rate the person's baseline expected when it opened; dashed lines: the
incident's transitions.</p>
<h2>Signals at the last transition ({esc(str(last.transition))})</h2>
<table>{"".join(f"<tr><td>{esc(k)}</td><td>{esc(str(v))}</td></tr>"
                for k, v in _signal_rows(last, records))}</table>
{_clusters(events, records, members, labels)}
<h2>Accounts ({len(authors)})</h2>
<table><thead><tr><th>Account</th><th>Platform id</th><th>Mentions</th><th>First / last seen
(UTC)</th><th>Age when first seen</th><th>Clusters</th></tr></thead><tbody>
{"".join(_author_row(a, labels) for a in authors)}</tbody></table>
<h2>Mentions ({len(incident)})</h2>
<p class="muted">Every mention from the incident's first window on, oldest first. Times: when
it was posted (UTC, then {esc(tz)}) and when pileon captured it. Text exactly as received.</p>
<table class="mentions"><colgroup><col class="n"><col class="t"><col class="a"><col class="x">
<col class="l"><col class="t"><col class="h"></colgroup>
<thead><tr><th>#</th><th>Posted</th><th>Author</th><th>Text</th><th>Link</th>
<th>Captured (UTC)</th><th>Record hash</th></tr></thead><tbody>
{"".join(_mention_row(r, tz, members, labels, marks) for r in incident)}</tbody></table>
{_custody(records)}
</body></html>
"""


def _when(iso: str, tz: str) -> str:
    return local_time(iso, tz)


def _signal_rows(event: AlertEvent, records: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    s = event.signals
    rate = s.rate
    rows: list[tuple[str, Any]] = [
        (f"mentions in {rate.window_minutes:g} min", f"{rate.mentions} (the person's baseline "
         f"expected {rate.expected:g}; ×{rate.ratio})"),
        ("volume score (−log10 p)", f"{rate.score}" + (
            f" against this person's bar {rate.bar:g}" if rate.bar is not None else "")),
        ("pile-on score (volume and coordination)", event.score),
        ("distinct authors", f"{s.distinct_authors.value} (usually "
         f"{s.distinct_authors.baseline})"),
        ("young-account share", f"{s.young_account_share.value:.0%} (usually "
         f"{s.young_account_share.baseline:.0%})"),
        ("coordination indicators", ", ".join(event.indicators) or "none"),
    ]
    focus = s.reply_focus
    if focus.mentions and focus.post_key:
        rows.append(("answering one post", f"{focus.mentions} ({focus.share:.0%}, usually "
                     f"{focus.usual:.0%}): {_post(records, focus.post_key)}"))
    if event.found_late is not None:
        rows.append(("found late", f"{event.found_late.late_mentions} mentions arrived after "
                     f"their minutes had passed; found at {event.found_late.found_at}"))
    return rows


def _clusters(events: list[AlertEvent], records: list[dict[str, Any]],
              members: Mapping[str, str], labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    esc = html.escape
    texts = {r["mention"]["id"]: r["mention"].get("text", "") for r in records}
    latest = {c.template_id: c for e in events for c in e.signals.near_duplicate_clusters}
    rows = []
    for tid, label in labels.items():
        c = latest[tid]
        held = [m for m, t in members.items() if t == tid]
        rows.append(f"<tr><td>{label}</td><td class=\"text\">"
                    f"{esc(texts.get(tid, '(the template is not in this bundle)'))}</td>"
                    f"<td>{len(held)}</td><td>{c.in_window} / {c.size} / "
                    f"{c.distinct_authors}</td></tr>")
    return ("<h2>Near-duplicate clusters (copypasta)</h2><p class=\"muted\">A mention belongs "
            "to the template it shares the most word pairs with (Jaccard ≥ the worker's "
            "threshold), computed again here from the texts.</p><table><thead><tr><th></th>"
            "<th>Template text</th><th>In this report</th><th>The alert's count in its window "
            "/ in 24 h / authors</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _author_row(a: Any, labels: Mapping[str, str]) -> str:
    esc = html.escape
    age = f"{a.age_days:.1f} days" if a.age_days is not None else "unknown"
    return (f"<tr><td>{esc(a.handle or '(no handle)')}<br><span class=\"muted\">"
            f"{esc(a.platform)}</span></td><td class=\"hash\">{esc(a.id)}</td>"
            f"<td>{a.mentions}</td><td>{a.first_seen:%Y-%m-%d %H:%M:%S}<br>"
            f"{a.last_seen:%Y-%m-%d %H:%M:%S}</td><td>{age}</td>"
            f"<td>{' '.join(labels.get(t, '?') for t in a.clusters)}</td></tr>")


def _mention_row(r: dict[str, Any], tz: str, members: Mapping[str, str],
                 labels: Mapping[str, str], marks: Mapping[str, list[str]]) -> str:
    esc = html.escape
    m = r["mention"]
    author = m.get("author", {})
    posted = parse_time(m["created_at"])
    try:
        zone = ZoneInfo(tz)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    url = str(m.get("url") or "")
    link = (f'<a href="{esc(url)}" rel="noopener noreferrer">{esc(url)}</a>'
            if urlsplit(url).scheme in ("http", "https") else esc(url))
    cluster = labels.get(members.get(m["id"], ""), "")
    found = list(marks.get(m["id"], []))
    if not any(x.startswith(("platform-signed", "Mastodon, ")) for x in found):
        found.insert(0, "Mastodon: no signature an outsider can check"
                     if m.get("platform") == "mastodon" else "platform record: not fetched")
    mark = "; ".join(found)
    return (f"<tr><td>{r['seq']}</td><td>{posted:%Y-%m-%d %H:%M:%S}<br><span class=\"muted\">"
            f"{posted.astimezone(zone):%H:%M:%S %Z}</span></td><td>"
            f"{esc(str(author.get('handle') or ''))}<br><span class=\"hash\">"
            f"{esc(str(author.get('id', '')))}</span></td><td class=\"text\">"
            f"{esc(str(m.get('text', '')))}{f' [{cluster}]' if cluster else ''}</td>"
            f"<td>{link}<br><span class=\"muted\">{esc(mark)}</span></td>"
            f"<td>{esc(r['captured_at'])}</td>"
            f"<td class=\"hash\">{esc(r['hash'][:16])}…</td></tr>")


def _custody(records: list[dict[str, Any]]) -> str:
    esc = html.escape
    if records:
        first, last = records[0], records[-1]
        chain = (f"<dl><dt>Records</dt><dd>{len(records)}, sequence numbers {first['seq']} to "
                 f"{last['seq']} of the person's chain</dd><dt>Hash before the first</dt><dd "
                 f"class=\"hash\">{esc(first['prev'])}</dd><dt>Head hash</dt><dd class=\"hash\">"
                 f"{esc(last['hash'])}</dd></dl>")
    else:
        chain = "<p>No records.</p>"
    return f"""<h2>Chain of custody</h2>
{chain}
<p>pileon keeps every mention of a protected person, as it arrived from the platform's
interface, in an append-only log per person. Each record holds the SHA-256 of the one before
it (a hash chain), the time pileon captured it, where it was read from, and the SHA-256 of
the mention itself. This folder holds a contiguous run of that chain (<code>mentions.jsonl</code>),
the alert events (<code>incident.json</code>), this report and <code>mentions.csv</code>, both
derived from those two, and <code>manifest.json</code>, which commits to all of them. When
the archiver has a signing key, the manifest is sealed with it and the seal, and checkpoints
of the chain made while it grew, are timestamped by independent RFC 3161 timestamp
authorities (<code>anchors.json</code>).</p>
<h3>How to verify</h3>
<p>With pileon installed: <code>pileon verify FOLDER --key ARCHIVER-PUBLIC-KEY</code>. It
checks every file against the manifest, every record against the one before it, derives this
report and the CSV again and compares them byte for byte, checks that every window an alert
counted is here, and checks the seal and the timestamps. Any changed byte, removed, reordered
or added record, or cut-off tail fails with one line naming it. Each timestamp token can also
be checked with <code>openssl ts -verify</code>.</p>
<h3>What this attests, and what it does not</h3>
<ul>
<li>It attests that these records have not changed since pileon captured them, that they
were captured in this order at the times given, and (when sealed and timestamped) that they
existed by the timestamp authority's time.</li>
<li>For Bluesky posts marked "platform-signed record: verified", the author's own server
signed the record and its text is the text captured here (<code>platform.json</code> holds the
signed repository proof and the key it was checked with). Other posts, and all account data,
are as the platform's interface gave them; Mastodon posts carry no signature an outsider can
check.</li>
<li>It does not identify the people behind accounts. Posts deleted or edited after capture
keep what was captured; pileon looks at them again 1 hour, 1 day and 7 days after the
opening and marks what it then saw (<code>changes.json</code>).</li>
<li>The assessment (coordinated or organic) is a statistical description of the volume and
its sources, not a finding about intent.</li>
</ul>"""


def _post(records: list[dict[str, Any]], key: str) -> str:
    for r in records:
        m = r["mention"]
        for uri in (m.get("in_reply_to"), m.get("quote_of")):
            if uri and f"{post_key(uri):08x}" == key:
                return str(uri)
    return f"post {key} (no mention in this bundle answers it)"
