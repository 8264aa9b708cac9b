"""The granule protection table: the PAS of every 4 KiB granule of RAM.

`PasTable` is the single truth.  It holds one byte per granule (a `Pas`
value) in a buffer that the co-simulator shares with the TCG plugin (plugin
GPT mode reads it on every access), and it is changed only through
`PasTable.set`, which the RMM's delegate/undelegate and the platform's
carve-out setup call.  Listeners are told about every change: the hardware
GPT encoder (`--gpt hw`) rewrites the level-1 descriptors it owns, the
platform schedules TLB maintenance, the trace records it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .pas import GRANULE_SHIFT, GRANULE_SIZE, Pas

PasListener = Callable[[int, int, Pas], None]
"""Called as listener(first_pa, granule_count, new_pas) after every change."""


class PasError(Exception):
    """A PAS lookup or change outside the memory the table covers."""


class PasTable:
    """PAS per granule of [base, base + size); everything starts Non-secure."""

    def __init__(self, base: int, size: int, buffer: bytearray | memoryview | None = None) -> None:
        if base % GRANULE_SIZE or size % GRANULE_SIZE:
            raise PasError(f"PAS table range {base:#x}+{size:#x} is not granule aligned")
        self.base = base
        self.size = size
        self.end = base + size
        self.granules = size >> GRANULE_SHIFT
        if buffer is None:
            buffer = bytearray([Pas.NONSECURE]) * self.granules
        elif len(buffer) < self.granules:
            raise PasError(f"PAS buffer holds {len(buffer)} granules, need {self.granules}")
        self._table = buffer
        self._lock = threading.Lock()
        self._listeners: list[PasListener] = []
        self.generation = 0
        """Incremented by every change; lets callers tell whether maintenance is due."""

    def covers(self, pa: int, length: int = 1) -> bool:
        return self.base <= pa and pa + length <= self.end

    def _index(self, pa: int) -> int:
        if not self.base <= pa < self.end:
            raise PasError(f"PA {pa:#x} is outside the granule protection table "
                           f"[{self.base:#x}, {self.end:#x})")
        return (pa - self.base) >> GRANULE_SHIFT

    def get(self, pa: int) -> Pas:
        return Pas(self._table[self._index(pa)])

    def set(self, pa: int, pas: Pas, count: int = 1) -> None:
        """Give `count` granules from the one containing `pa` the PAS `pas`."""
        first = self._index(pa)
        if count < 1 or first + count > self.granules:
            raise PasError(f"{count} granules from PA {pa:#x} exceed the table")
        with self._lock:
            self._table[first : first + count] = bytes([pas]) * count
            self.generation += 1
            listeners = list(self._listeners)
        start = self.base + (first << GRANULE_SHIFT)
        for listener in listeners:
            listener(start, count, Pas(pas))

    def add_listener(self, listener: PasListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def runs(self) -> list[tuple[int, int, Pas]]:
        """The table as (first PA, granule count, PAS) runs, for reports and encoders."""
        out: list[tuple[int, int, Pas]] = []
        table = bytes(self._table[: self.granules])
        i = 0
        while i < self.granules:
            value = table[i]
            j = i + 1
            while j < self.granules and table[j] == value:
                j += 1
            out.append((self.base + (i << GRANULE_SHIFT), j - i, Pas(value)))
            i = j
        return out
