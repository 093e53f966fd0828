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


class Counting(dict[bytes, bytes]):
    """A backing mapping that counts writes and deletes, as a changelog would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes += 1
        super().__setitem__(key, value)

    def pop(self, key: bytes, default: object = None) -> object:  # type: ignore[override]
        self.writes += key in self
        return super().pop(key, default)


class TestChunks:
    """Buffered (the worker's batches): one table value per person, hour and flush."""

    def test_a_batch_writes_one_chunk_per_person_and_hour(self) -> None:
        backing = Counting()
        store = WindowStore(backing, horizon_seconds=86_400, buffered=True)
        for i in range(500):
            store.put("amara", f"m{i}", {"t": 3600.0 + i})  # one hour
            store.put("sam", f"s{i}", {"t": 3600.0 + i})
        assert backing.writes == 0  # nothing until the flush
        assert store.flush() == 2
        assert backing.writes == 2 and len(backing) == 2
        assert store.get("amara", "m7") == {"t": 3607.0}
        assert [r for r, _ in WindowStore(backing, 86_400).records("sam")][:2] == ["s0", "s1"]

    def test_a_chunk_is_deleted_when_its_last_record_expires(self) -> None:
        backing = Counting()
        store = WindowStore(backing, horizon_seconds=3600, buffered=True)
        for t in range(0, 7200, 60):  # two hours: two chunks
            store.put("amara", f"m{t}", {"t": float(t)})
        store.flush()
        assert len(backing) == 2
        removed, _ = store.expire("amara", watermark=3600.0 + 1800)
        store.flush()
        assert len(removed) == 30 and len(backing) == 2  # half of the first hour is left
        store.expire("amara", watermark=7200.0)
        assert store.flush() == 1 and len(backing) == 1  # the first hour is gone, in one delete

    def test_a_restart_expires_what_had_left_the_index_again(self) -> None:
        backing = Counting()
        store = WindowStore(backing, horizon_seconds=3600, cap_per_person=50, buffered=True)
        for t in range(0, 7200, 60):
            store.put("amara", f"m{t}", {"t": float(t)})
        store.flush()
        live, _ = store.expire("amara", watermark=7200.0)
        store.flush()
        kept = [r for r, _ in store.records("amara")]
        again = WindowStore(backing, horizon_seconds=3600, cap_per_person=50, buffered=True)
        again.expire("amara", watermark=7200.0)  # the rebuilt index holds the left ones
        assert [r for r, _ in again.records("amara")] == kept and len(kept) == 50
        assert live  # something did leave

    def test_updates_rewrite_a_chunk_once_per_flush(self) -> None:
        backing = Counting()
        store = WindowStore(backing, horizon_seconds=86_400, buffered=True)
        for i in range(100):
            store.put("amara", f"m{i}", {"t": float(i), "h": "x"})
        store.flush()
        writes = backing.writes
        for i in range(50):
            store.update("amara", f"m{i}", {"t": float(i)})
        assert store.flush() == 1 and backing.writes == writes + 1
        again = WindowStore(backing, horizon_seconds=86_400)
        assert again.get("amara", "m3") == {"t": 3.0}
        assert again.get("amara", "m60") == {"t": 60.0, "h": "x"}

    def test_records_of_an_older_version_are_read_as_chunks_of_one(self) -> None:
        backing = {b"amara|m1": b'{"t":5.0,"a":"x"}'}
        store = WindowStore(backing, horizon_seconds=100)
        assert store.get("amara", "m1") == {"t": 5.0, "a": "x"}
        store.expire("amara", watermark=500.0)
        assert not backing

    def test_forgetting_the_cache_drops_what_was_not_flushed(self) -> None:
        backing = Counting()
        store = WindowStore(backing, horizon_seconds=100, buffered=True)
        store.put("amara", "m1", {"t": 5.0})
        store.flush()
        store.put("amara", "m2", {"t": 6.0})
        store.forget_cache()
        assert store.contains("amara", "m1") and not store.contains("amara", "m2")
        assert store.flush() == 0
