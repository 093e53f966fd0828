from __future__ import annotations

from pileon.streams.detection.window_store import WindowStore


class TestWindowStore:
    def test_put_get_contains(self) -> None:
        store = WindowStore({}, horizon_seconds=100)
        store.put("amara", "m1", {"t": 5.0, "x": 1})
        assert store.contains("amara", "m1")
        assert store.get("amara", "m1") == {"t": 5.0, "x": 1}
        assert not store.contains("sam", "m1")

    def test_expire_removes_records_older_than_the_horizon(self) -> None:
        backing: dict[bytes, bytes] = {}
        store = WindowStore(backing, horizon_seconds=100)
        for t in range(0, 300, 10):
            store.put("amara", f"m{t}", {"t": float(t)})
        removed, capped = store.expire("amara", watermark=290.0)
        assert [r for r, _ in removed][:2] == ["m0", "m10"]
        assert capped == 0
        assert min(float(t) for t in (v["t"] for _, v in store.records("amara"))) >= 190
        assert len(backing) == store.count("amara")

    def test_cap_evicts_oldest_and_reports_it(self) -> None:
        store = WindowStore({}, horizon_seconds=10_000, cap_per_person=5)
        for t in range(8):
            store.put("amara", f"m{t}", {"t": float(t)})
        removed, capped = store.expire("amara", watermark=8.0)
        assert capped == 3
        assert [r for r, _ in removed] == ["m0", "m1", "m2"]

    def test_index_is_rebuilt_from_the_backing_mapping(self) -> None:
        backing: dict[bytes, bytes] = {}
        first = WindowStore(backing, horizon_seconds=100)
        for t in (30.0, 10.0, 20.0):
            first.put("amara", f"m{int(t)}", {"t": t})
        first.put("sam", "s1", {"t": 1.0})
        second = WindowStore(backing, horizon_seconds=100)
        assert [r for r, _ in second.records("amara")] == ["m10", "m20", "m30"]
        assert second.count("sam") == 1

    def test_persons_are_isolated(self) -> None:
        store = WindowStore({}, horizon_seconds=10)
        store.put("amara", "m", {"t": 0.0})
        store.put("sam", "m", {"t": 0.0})
        store.expire("amara", watermark=100.0)
        assert store.contains("sam", "m")
        assert not store.contains("amara", "m")
