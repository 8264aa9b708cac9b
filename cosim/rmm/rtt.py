"""Realm Translation Tables in guest memory: walking, reading and writing entries.

The starting level is one table of ``rtt_num_start * 512`` entries (the
concatenated starting tables are consecutive granules, so entry i of the
concatenation is at ``rtt_base + 8 * i``); every other RTT is one granule of
512 entries.  All reads and writes go to guest memory: the tables are what the
CPU walks.  Callers hold the realm's lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..arch import stage2
from ..memory import GuestMemory
from .realm import Realm
from .rtte import Hipas, Rtte, decode, encode

DESC_SIZE = 8


@dataclass(frozen=True)
class RttWalk:
    """Where a walk towards some level stopped."""

    level: int
    table: int
    """PA of the RTT at `level` (the first starting table for the starting level)."""
    entries: int
    """Number of entries of that RTT."""
    base: int
    """IPA mapped by entry 0 of that RTT."""
    index: int
    """Index of the entry covering the walked IPA."""
    entry: Rtte

    @property
    def entry_pa(self) -> int:
        return self.table + DESC_SIZE * self.index

    def entry_ipa(self, index: int) -> int:
        return self.base + index * stage2.entry_size(self.level)

    @property
    def top(self) -> int:
        """End of the IPA range this RTT covers."""
        return self.entry_ipa(self.entries)


class Rtts:
    """The RTT tree of one realm over guest memory."""

    def __init__(self, memory: GuestMemory, realm: Realm) -> None:
        self.memory = memory
        self.realm = realm

    def read(self, table: int, index: int, level: int) -> Rtte:
        return decode(self.memory.read_u64(table + DESC_SIZE * index), level)

    def write(self, table: int, index: int, level: int, entry: Rtte) -> None:
        self.memory.write_u64(table + DESC_SIZE * index, encode(entry, level))

    def read_all(self, table: int, level: int, count: int = stage2.ENTRIES_PER_TABLE) -> list[Rtte]:
        return [decode(d, level) for d in self.memory.read_u64s(table, count)]

    def write_all(self, table: int, level: int, entries: list[Rtte]) -> None:
        self.memory.write_u64s(table, (encode(e, level) for e in entries))

    def walk(self, ipa: int, level: int) -> RttWalk:
        """Walk from the starting level towards `level` (clamped to the starting
        level..3); stop at `level` or at the first entry that is not a TABLE.
        `ipa` must be below 2**s2sz."""
        realm = self.realm
        cur = realm.rtt_level_start
        target = min(max(level, cur), stage2.PAGE_LEVEL)
        table = realm.rtt_base
        entries = realm.root_entry_count()
        base = 0
        while True:
            index = (ipa - base) >> stage2.level_shift(cur)
            entry = self.read(table, index, cur)
            if cur >= target or entry.hipas is not Hipas.TABLE:
                return RttWalk(cur, table, entries, base, index, entry)
            base = stage2.align_down(ipa, cur)
            table = entry.addr
            entries = stage2.ENTRIES_PER_TABLE
            cur += 1

    def skip_non_live(self, walk: RttWalk, ipa: int) -> int:
        """`top` output: `ipa` if the entry covering it is live, else the IPA of
        the next live entry of the same RTT, or the end of that RTT."""
        entries = self.read_all(walk.table, walk.level, walk.entries)
        if entries[walk.index].is_live:
            return ipa
        for i in range(walk.index + 1, walk.entries):
            if entries[i].is_live:
                return walk.entry_ipa(i)
        return walk.top

    def is_live(self, table: int, level: int, count: int = stage2.ENTRIES_PER_TABLE) -> bool:
        return any(e.is_live for e in self.read_all(table, level, count))

    def root_is_live(self) -> bool:
        return self.is_live(
            self.realm.rtt_base, self.realm.rtt_level_start, self.realm.root_entry_count()
        )

    def leaves(self) -> Iterator[tuple[int, int, Rtte]]:
        """Every non-TABLE entry as (ipa, level, entry), in IPA order."""
        yield from self._leaves(
            self.realm.rtt_base, self.realm.rtt_level_start, 0, self.realm.root_entry_count()
        )

    def tables(self) -> Iterator[tuple[int, int, int]]:
        """Every non-root RTT reachable from the roots as (pa, level, base ipa)."""
        stack = [
            (self.realm.rtt_base, self.realm.rtt_level_start, 0, self.realm.root_entry_count())
        ]
        while stack:
            table, level, base, count = stack.pop()
            for i, e in enumerate(self.read_all(table, level, count)):
                if e.hipas is Hipas.TABLE:
                    child_base = base + i * stage2.entry_size(level)
                    yield e.addr, level + 1, child_base
                    stack.append((e.addr, level + 1, child_base, stage2.ENTRIES_PER_TABLE))

    def _leaves(
        self, table: int, level: int, base: int, count: int
    ) -> Iterator[tuple[int, int, Rtte]]:
        size = stage2.entry_size(level)
        for i, e in enumerate(self.read_all(table, level, count)):
            if e.hipas is Hipas.TABLE:
                yield from self._leaves(
                    e.addr, level + 1, base + i * size, stage2.ENTRIES_PER_TABLE
                )
            else:
                yield base + i * size, level, e
