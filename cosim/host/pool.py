"""Granules of NS RAM that a host hands out: for realm metadata it delegates,
parameter pages it shares with the RMM, and realm memory it donates."""

from __future__ import annotations

import threading

from ..arch.pas import GRANULE_SIZE


class PoolExhausted(Exception):
    pass


class PagePool:
    """A simple allocator of granule-aligned ranges in [base, base + size)."""

    def __init__(self, base: int, size: int) -> None:
        if base % GRANULE_SIZE or size % GRANULE_SIZE:
            raise ValueError(f"pool {base:#x}+{size:#x} is not granule aligned")
        self.base = base
        self.end = base + size
        self._next = base
        self._free: list[int] = []
        self._lock = threading.Lock()

    def alloc(self, count: int = 1, align: int = GRANULE_SIZE) -> int:
        """`count` physically consecutive granules aligned to `align` bytes."""
        with self._lock:
            if count == 1 and align == GRANULE_SIZE and self._free:
                return self._free.pop()
            start = (self._next + align - 1) // align * align
            end = start + count * GRANULE_SIZE
            if end > self.end:
                raise PoolExhausted(f"no room for {count} granule(s) aligned to {align:#x} "
                                    f"in [{self.base:#x}, {self.end:#x})")
            for pa in range(self._next, start, GRANULE_SIZE):
                self._free.append(pa)
            self._next = end
            return start

    def free(self, pa: int, count: int = 1) -> None:
        with self._lock:
            self._free.extend(pa + i * GRANULE_SIZE for i in range(count))
