"""The traffic model behind simulated mentions (no Kafka: :mod:`.simulator` publishes it).

Ordinary traffic for several persons plus a scripted pile-on on one.

Background traffic follows each person's daily rhythm (awake hours in their timezone), with
over-dispersed per-minute counts (a gamma-Poisson mixture), organic reply threads of
established accounts, and occasional news-cycle lifts. The pile-on ramps up over minutes from
many young accounts posting mostly copies of a few templates with small evasive edits
(homoglyphs, inserted words, emoji, links). Event times span ``[end - days, end]`` so nothing
is in the future; ``ground_truth()`` says when the pile-on starts and whom it targets.
Deterministic for a given seed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pileon.core.times import epoch, iso_z

_PLATFORMS = ("bluesky", "mastodon")
_OPENERS = [
    "honestly", "so", "just read", "wow", "interesting take from", "thread:", "reminder that",
    "replying to", "big if true", "new piece by", "not sure about", "thanks", "good point by",
    "listening to", "quoting", "hmm", "agree with", "disagree with", "watching", "via",
]
_SUBJECTS = [
    "the housing report", "city council budget", "transit strike", "election polling",
    "climate summit", "school funding", "the hospital merger", "water prices", "the court ruling",
    "farm subsidies", "the port expansion", "police oversight", "tax reform", "the heat wave",
    "vaccine rollout", "the trade deal", "energy bills", "the mayor's speech", "rent control",
    "the data leak", "bike lanes", "the football final", "minimum wage", "flood defences",
]
_TAILS = [
    "worth a read", "what do you think", "more context here", "this matters", "well reported",
    "missing some numbers", "great sourcing", "can you follow up", "source please",
    "saved for later", "sharing with my class", "a bit one sided", "finally someone asked",
    "the chart is wrong", "need a part two", "solid work", "interview was great", "tough read",
    "good questions", "asked my neighbours too", "spot on", "long overdue", "not convinced",
]
_TEMPLATES = [
    "{name} is a fraud and everyone knows it stop spreading lies and resign now",
    "why does anyone still trust {name} biased hack journalism unfollow and report this account",
    "we see you {name} your fake story will cost you delete it before it gets worse",
]
_HOSTILE = [
    "nobody believes you", "pathetic", "you should be ashamed", "clown reporter", "log off",
    "liar", "enemy of the people", "get a real job", "everyone is laughing at you", "disgrace",
    "we are watching", "shame on your editor", "retract it", "paid propaganda", "ratio",
]
_FILLERS = ["lol", "seriously", "again", "honestly", "fr", "!!!", "smh", "period", "😂", "🤡"]
_HOMOGLYPHS = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "i": "і"}
_HEADLINES = [
    "what {s} means for your household", "inside {s}: the numbers nobody checked",
    "{s}, explained in five charts", "how {s} came together behind closed doors",
    "the real cost of {s}", "who wins and who loses from {s}",
    "{s}: what the officials did not say", "a year after {s}, little has changed",
]
_SHARES = [
    "{h} {link}", "new piece by {name}: {h} {link}", "{h} by {name} {link}",
    "{opener} {h} {link}", "must read from {name}: {h} {link}", "{h} ({name}) {link}",
    "{tail}: {h} {link}",
]


@dataclass(frozen=True)
class PileOnScript:
    """A surge of mentions on one person: when, how big, and who takes part.

    The default is a coordinated copypasta brigade from young accounts. ``multiple`` sets the
    peak as a multiple of the target's usual rate at onset (total traffic, background
    included), overriding ``peak_per_minute``. ``hostile=False`` makes the extra mentions
    ordinary chatter (an organic viral surge). ``post_share`` of them reply to one post of the
    target (the post a brigade piles onto, or the one that went viral).
    """

    target: str
    onset_before_end_minutes: float = 60.0
    duration_minutes: float = 45.0
    ramp_minutes: float = 8.0
    peak_per_minute: float = 40.0
    accounts: int = 300
    copy_share: float = 0.85
    young_share: float = 0.8
    multiple: float | None = None
    hostile: bool = True
    post_share: float = 0.0


@dataclass
class GroundTruth:
    seed: int
    start: str
    end: str
    persons: list[str]
    target: str | None
    onset: str | None
    pileon_end: str | None
    pileon_mentions: int = 0
    pileon_accounts: int = 0
    pileon_deleted: int = 0
    background_mentions: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Author:
    id: str
    handle: str
    created_at: float
    followers: int


class Simulator:
    def __init__(
        self,
        persons: dict[str, str],
        *,
        end: float,
        days: float = 2.0,
        seed: int = 7,
        mean_per_hour: float = 60.0,
        pileon: PileOnScript | None = None,
        young_share: float = 0.0,
        articles_per_day: float = 0.0,
    ) -> None:
        """``persons`` maps watchlist key to display name.

        Two parts of ordinary traffic that look like parts of a brigade, off by default (the
        runs of a seed stay what they were): ``young_share`` of the background mentions come
        from accounts a few days old (new users; a migration wave raises it), and the person
        publishes ``articles_per_day`` pieces in their waking hours, each shared with its
        headline and link by established accounts (near-identical texts from many accounts,
        a burst over the next hour or so). Both draw from a random stream of their own, so a
        seed's other mentions are the same with them on or off."""
        if pileon is not None and pileon.target not in persons:
            raise ValueError(f"pile-on target {pileon.target!r} is not a simulated person")
        self.persons = persons
        self.end = end
        self.start = end - days * 86400
        self.seed = seed
        self.mean_per_hour = mean_per_hour
        self.pileon = pileon
        self._rng = np.random.default_rng(seed)
        self.young_share = young_share
        self.articles_per_day = articles_per_day
        self._organic = np.random.default_rng(seed + 2_000_029)
        self._regulars: dict[str, list[_Author]] = {}
        self._seq = itertools.count()
        self._usual: dict[str, tuple[float, float]] = {}  # person: (timezone hours, scale)
        self._truth = GroundTruth(
            seed, iso_z(self.start), iso_z(end), sorted(persons), None, None, None
        )

    # -- public -------------------------------------------------------------------------
    def mentions(self) -> list[dict[str, Any]]:
        """All mentions of the run, in event-time order."""
        out: list[dict[str, Any]] = []
        for person, name in self.persons.items():
            background = list(self._background(person, name))
            self._truth.background_mentions[person] = len(background)
            out.extend(background)
        if self.pileon is not None:
            out.extend(self._pileon(self.pileon))
        for person, name in self.persons.items():
            shares = list(self._article_shares(person, name))
            self._truth.background_mentions[person] += len(shares)
            out.extend(shares)
        out.sort(key=lambda m: (m["created_at"], m["id"]))
        return out

    def ground_truth(self) -> GroundTruth:
        return self._truth

    def deletions(self, mentions: list[dict[str, Any]], share: float = 0.06
                  ) -> list[dict[str, Any]]:
        """Harassers delete posts once the target reacts: ``share`` of the pile-on's
        mentions deleted 5-25 minutes after posting (before the run's end), as the
        ``pileon.change/v1`` events a connector would publish. Its own random stream: the
        mentions of a seed stay the same."""
        rng = np.random.default_rng(self.seed + 1_000_003)
        crowd = f"sim-{self.seed}-po"
        out = []
        for m in mentions:
            if not str(m["author"]["id"]).startswith(crowd) or rng.random() >= share:
                continue
            at = epoch(m["created_at"]) + float(rng.uniform(300, 1500))
            if at > self.end:
                continue
            out.append({"schema": "pileon.change/v1", "of": m["id"], "person": m["person"],
                        "platform": m["platform"], "state": "deleted",
                        "source": "simulated delete", "event_at": iso_z(at),
                        "received_at": iso_z(at), "raw": {"simulated": True}})
        self._truth.pileon_deleted = len(out)
        return sorted(out, key=lambda c: c["event_at"])

    def daily_per_minute(self, person: str) -> float:
        """The person's background mentions per minute averaged over a day (no news lifts)."""
        return self._usual[person][1] / 60.0

    def usual_per_minute(self, person: str, t: float) -> float:
        """The person's expected background mentions per minute at ``t`` (no news lifts)."""
        tz_hours, scale = self._usual[person]
        return scale / 60.0 * _diurnal(((t / 3600.0) + tz_hours) % 24)

    # -- background ---------------------------------------------------------------------
    def _background(self, person: str, name: str) -> Iterator[dict[str, Any]]:
        rng = self._rng
        tz_hours = float(rng.integers(-8, 10))
        scale = self.mean_per_hour * float(rng.uniform(0.6, 1.4))
        self._usual[person] = (tz_hours, scale)
        authors = [self._author(f"{person}-reg{i}", young=False) for i in range(1500)]
        self._regulars[person] = authors
        weights = 1.0 / np.arange(1, len(authors) + 1) ** 0.8
        weights /= weights.sum()
        minutes = int((self.end - self.start) // 60)
        lifts = self._news_lifts(minutes)
        for m in range(minutes):
            t0 = self.start + m * 60
            hour = ((t0 / 3600.0) + tz_hours) % 24
            lam = scale / 60.0 * _diurnal(hour) * lifts[m]
            # Gamma-Poisson mixture: over-dispersed like real traffic.
            n = int(rng.poisson(rng.gamma(4.0, lam / 4.0))) if lam > 0 else 0
            for _ in range(n):
                author = self._maybe_new(authors[int(rng.choice(len(authors), p=weights))],
                                         person, t0)
                yield self._mention(person, name, t0 + float(rng.uniform(0, 60)), author,
                                    self._chatter(name), "mention")
            if rng.random() < 3.0 / (24 * 60) * _diurnal(hour):  # an organic reply thread
                yield from self._thread(person, name, t0, authors)

    def _news_lifts(self, minutes: int) -> np.ndarray:
        lifts = np.ones(minutes)
        for _ in range(int(self._rng.poisson(minutes / (24 * 60)))):
            start = int(self._rng.integers(0, minutes))
            length = int(self._rng.integers(60, 240))
            lifts[start : start + length] *= float(self._rng.uniform(1.2, 1.6))
        return lifts

    def _thread(
        self, person: str, name: str, t0: float, authors: list[_Author]
    ) -> Iterator[dict[str, Any]]:
        rng = self._rng
        replies = int(rng.integers(5, 16))
        span = float(rng.uniform(600, 1800))
        post = f"{person}-post-{next(self._seq)}"
        for i in rng.choice(len(authors), size=replies, replace=False):
            t = t0 + float(rng.uniform(0, span))
            text = self._chatter(name)  # drawn even when dropped: same seed, same stream
            if t <= self.end:  # a thread near the end is cut off: nothing from the future
                yield self._mention(person, name, t, self._maybe_new(authors[int(i)], person, t),
                                    text, "reply", in_reply_to=post)

    def _maybe_new(self, author: _Author, person: str, t: float) -> _Author:
        """``author``, or with probability ``young_share`` an account a few days old."""
        if not self.young_share or self._organic.random() >= self.young_share:
            return author
        rng = self._organic
        return _Author(f"sim-{self.seed}-{person}-new{int(rng.integers(10**9))}",
                       f"new{int(rng.integers(10**9))}.example",
                       t - float(rng.uniform(0.2, 6.0)) * 86400, int(rng.integers(0, 60)))

    def _article_shares(self, person: str, name: str) -> Iterator[dict[str, Any]]:
        """The person's published pieces, each shared by established accounts with its
        headline and link (and now and then a new account), mostly within the hour."""
        if not self.articles_per_day:
            return
        rng = self._organic
        tz_hours, scale = self._usual[person]
        authors = self._regulars[person]
        days = (self.end - self.start) / 86400
        for _ in range(int(rng.poisson(self.articles_per_day * days))):
            published = float(rng.uniform(self.start, self.end))
            while _diurnal(((published / 3600.0) + tz_hours) % 24) < 1.0:  # the working day
                published = float(rng.uniform(self.start, self.end))
            headline = str(rng.choice(_HEADLINES)).format(s=rng.choice(_SUBJECTS))
            link = f"https://news.example.invalid/{int(rng.integers(10**9))}"
            shares = int(rng.poisson(max(3.0, scale * float(rng.uniform(0.25, 1.5)))))
            for i in rng.choice(len(authors), size=min(shares, len(authors)), replace=False):
                t = published + float(rng.exponential(40 * 60))
                text = str(rng.choice(_SHARES)).format(
                    h=headline, link=link, name=name, opener=rng.choice(_OPENERS),
                    tail=rng.choice(_TAILS))
                if t <= self.end:
                    yield self._mention(person, name, t,
                                        self._maybe_new(authors[int(i)], person, t), text,
                                        "mention")

    def _chatter(self, name: str) -> str:
        rng = self._rng
        parts = [rng.choice(_OPENERS), name if rng.random() < 0.5 else "",
                 rng.choice(_SUBJECTS), rng.choice(_TAILS)]
        if rng.random() < 0.5:
            parts.append(str(rng.choice(_TAILS)))
        return " ".join(str(p) for p in parts if p)

    # -- pile-on ------------------------------------------------------------------------
    def _pileon(self, script: PileOnScript) -> Iterator[dict[str, Any]]:
        rng = self._rng
        onset = self.end - script.onset_before_end_minutes * 60
        stop = onset + script.duration_minutes * 60
        name = self.persons[script.target]
        accounts = [
            self._author(f"po{i}", young=rng.random() < script.young_share, at=onset)
            for i in range(script.accounts)
        ]
        templates = [t.format(name=name.lower()) for t in _TEMPLATES]
        peak = script.peak_per_minute
        if script.multiple is not None:
            peak = (script.multiple - 1.0) * self.usual_per_minute(script.target, onset)
        count = 0
        post = f"{script.target}-post-{next(self._seq)}" if script.post_share else None
        for m in range(int(script.duration_minutes)):
            ramp = min(1.0, (m + 1) / script.ramp_minutes)
            for _ in range(int(rng.poisson(peak * ramp))):
                t = onset + m * 60 + float(rng.uniform(0, 60))
                if t >= stop:
                    continue
                author = accounts[int(rng.integers(len(accounts)))]
                if not script.hostile:
                    text = self._chatter(name)
                elif rng.random() < script.copy_share:
                    text = self._evade(str(templates[int(rng.integers(len(templates)))]))
                else:
                    text = f"{name} {' '.join(rng.choice(_HOSTILE, size=3, replace=False))}"
                if script.post_share and rng.random() < script.post_share:
                    yield self._mention(script.target, name, t, author, text, "reply",
                                        in_reply_to=post)
                else:
                    kind = "reply" if rng.random() < 0.6 else "mention"
                    yield self._mention(script.target, name, t, author, text, kind)
                count += 1
        self._truth.target = script.target
        self._truth.onset = iso_z(onset)
        self._truth.pileon_end = iso_z(stop)
        self._truth.pileon_mentions = count
        self._truth.pileon_accounts = len(accounts)

    def _evade(self, text: str) -> str:
        """Small edits that defeat exact matching but keep the template recognisable."""
        rng = self._rng
        words = text.split()
        for _ in range(int(rng.integers(0, 3))):
            op = int(rng.integers(4))
            i = int(rng.integers(len(words)))
            if op == 0:
                words.insert(i, str(rng.choice(_FILLERS)))
            elif op == 1 and len(words) > 8:
                del words[i]
            elif op == 2:
                words[i] = "".join(_HOMOGLYPHS.get(ch, ch) for ch in words[i])
            else:
                words[i] = words[i].upper()
        if rng.random() < 0.3:
            words.append(f"https://example.invalid/{int(rng.integers(10**6))}")
        return " ".join(words)

    # -- records ------------------------------------------------------------------------
    def _author(self, key: str, young: bool, at: float | None = None) -> _Author:
        rng = self._rng
        ref = at if at is not None else self.start
        age_days = float(rng.uniform(0.2, 6.0)) if young else float(rng.uniform(90, 4000))
        followers = int(rng.integers(0, 30)) if young else int(rng.lognormal(5, 1.5))
        return _Author(f"sim-{self.seed}-{key}", f"{key}.example", ref - age_days * 86400,
                       followers)

    def _mention(
        self, person: str, name: str, t: float, author: _Author, text: str, matched_by: str,
        in_reply_to: str | None = None,
    ) -> dict[str, Any]:
        n = next(self._seq)
        platform = _PLATFORMS[n % 2]
        mention: dict[str, Any] = {
            "id": f"{platform}:sim-{self.seed}-{n}",
            "platform": platform,
            "person": person,
            "matched_by": matched_by,
            "author": {
                "id": author.id,
                "handle": author.handle,
                "created_at": iso_z(author.created_at),
                "followers": author.followers,
            },
            "text": text,
            "url": f"https://example.invalid/{platform}/{n}",
            "created_at": iso_z(t),
            "raw": {"simulated": True, "seq": n},
        }
        if in_reply_to:
            mention["in_reply_to"] = in_reply_to
        return mention


def _diurnal(hour: float) -> float:
    """Relative activity by local hour: quiet at night, peaks in the evening (mean ≈ 1)."""
    awake = max(0.0, math.sin(math.pi * (hour - 7.0) / 17.0)) if 7.0 <= hour < 24.0 else 0.0
    return 0.15 + 1.55 * awake**1.5


def invalid_messages(person: str, now: float) -> list[tuple[bytes | None, bytes]]:
    """One message of each kind the validator must dead-letter (for demos and tests)."""
    good = {
        "id": "bluesky:bad-1", "platform": "bluesky", "person": person, "matched_by": "mention",
        "author": {"id": "did:plc:x"}, "text": "t", "created_at": iso_z(now - 60),
    }
    import orjson

    def body(**changes: Any) -> bytes:
        return orjson.dumps({**good, **changes})

    key = person.encode()
    return [
        (key, b"{not json"),
        (key, b"\xff\xfe invalid utf-8"),
        (key, body(author="not-an-object")),
        (b"nobody", body(person="nobody")),
        (key, body(created_at=iso_z(now + 86400))),
        (key, orjson.dumps({k: v for k, v in good.items() if k != "person"})),
        (key, body(created_at=iso_z(now - 400 * 86400))),
        (key, body(text="x" * 1_020_000)),  # fits a Kafka record, over the ingest limit
    ]
