from __future__ import annotations

from pileon.core.settings import NearDupSettings
from pileon.streams.detection import metrics
from pileon.streams.detection.neardup import NearDupWindow, Signer

SIGNER = Signer(b"k" * 32)
TEMPLATE = "we see you amara your fake story will cost you delete it before it gets worse"


def _window(store: dict[bytes, bytes], **settings: float) -> NearDupWindow:
    return NearDupWindow(NearDupSettings(**settings), SIGNER, store)  # type: ignore[arg-type]


def _add(w: NearDupWindow, mention_id: str, t: float, text: str = TEMPLATE) -> str | None:
    tokens = w.tokens(text)
    sig = SIGNER.signature(tokens) if tokens is not None else None
    return w.add("amara", mention_id, t, f"author-{mention_id}", False, sig)


class TestNearDupWindow:
    def test_copies_share_a_cluster_with_distinct_authors(self) -> None:
        w = _window({})
        first = _add(w, "m0", 0.0)
        assert _add(w, "m1", 1.0, TEMPLATE.replace("fake", "fаke") + " 🤡") == first
        assert w.index("amara").clusters["m0"].distinct_authors == 2

    def test_short_texts_are_kept_but_not_clustered(self) -> None:
        w = _window({})
        assert _add(w, "m0", 0.0, "you liar") is None
        assert w.seen("amara", "m0")

    def test_records_hold_no_text(self) -> None:
        store: dict[bytes, bytes] = {}
        _add(_window(store), "m0", 0.0)
        assert all(b"story" not in v for v in store.values())

    def test_old_records_leave_the_window(self) -> None:
        w = _window({}, window_hours=1.0)
        _add(w, "m0", 0.0)
        _add(w, "m1", 100.0)
        assert w.expire("amara", watermark=3700.0) == 1
        assert not w.seen("amara", "m0") and w.seen("amara", "m1")

    def test_cap_evicts_oldest_and_counts_it(self) -> None:
        w = _window({}, max_per_person=100)
        before = metrics.WINDOW_CAPPED.labels("amara")._value.get()
        for i in range(130):
            _add(w, f"m{i}", float(i), f"unique text number {i} about the housing report")
            w.expire("amara", watermark=float(i))
        assert w.store.count("amara") == 100
        assert metrics.WINDOW_CAPPED.labels("amara")._value.get() - before == 30

    def test_rebuild_after_the_template_left_gives_the_same_clusters(self) -> None:
        store: dict[bytes, bytes] = {}
        w = _window(store, window_hours=1.0)
        for i in range(5):
            _add(w, f"m{i}", float(i * 1000))
        w.expire("amara", watermark=3600.0 + 1500)  # m0 and m1 leave; m2 carries the template
        live = w.index("amara").clusters["m0"]
        rebuilt = _window(store, window_hours=1.0).index("amara").clusters["m0"]
        assert list(rebuilt.members) == list(live.members) == ["m2", "m3", "m4"]
        assert _window(store, window_hours=1.0).index("amara").match(
            SIGNER.signature(w.tokens(TEMPLATE) or [])
        ) == "m0"
        assert w.store.count("amara") == 3  # the handover rewrote m2 without a second entry

    def test_rebuild_forgets_the_same_lonely_templates(self) -> None:
        store: dict[bytes, bytes] = {}
        w = _window(store, singleton_hours=1.0)
        _add(w, "lonely", 0.0, "a text about the transit strike that nobody copied at all")
        _add(w, "m0", 10.0)
        _add(w, "m1", 20.0)
        _add(w, "late", 7200.0, "another reply about the housing report and its numbers today")
        w.expire("amara", watermark=7200.0)
        rebuilt = _window(store, singleton_hours=1.0).index("amara")
        assert set(rebuilt.clusters) == set(w.index("amara").clusters) == {"m0", "late"}

    def test_forgotten_template_drops_its_stored_signature(self) -> None:
        store: dict[bytes, bytes] = {}
        w = _window(store, singleton_hours=1.0)
        _add(w, "lonely", 0.0, "a text about the transit strike that nobody copied at all")
        assert "h" in (w.store.get("amara", "lonely") or {})
        w.expire("amara", watermark=7200.0)
        assert "h" not in (w.store.get("amara", "lonely") or {})
        assert w.seen("amara", "lonely")  # still counted in the window, just not a template
