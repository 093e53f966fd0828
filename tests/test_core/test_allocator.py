from __future__ import annotations

import ctypes.util

import pytest

from pileon.core import allocator


class TestTrimFreedMemory:
    @pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no C library")
    def test_glibc_accepts_the_trim_threshold(self) -> None:
        assert allocator.trim_freed_memory() is True

    def test_without_a_c_library_nothing_is_tuned(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(allocator.ctypes.util, "find_library", lambda name: None)
        assert allocator.trim_freed_memory() is False

    def test_a_libc_without_mallopt_is_left_alone(self, monkeypatch: pytest.MonkeyPatch) -> None:
        class NoMallopt:
            def __init__(self, name: str) -> None:
                pass

        monkeypatch.setattr(allocator.ctypes, "CDLL", NoMallopt)
        assert allocator.trim_freed_memory() is False
