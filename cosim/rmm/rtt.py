"""Realm Translation Tables in guest memory: walking, reading and writing entries.

Every RTT is one granule.  The starting level may have up to 16 concatenated
starting RTTs (consecutive granules from the realm's RTT base, A5.5.3); the
CPU sees them as one table, and entry i of the concatenation is at
``rtt_base + 8 * i``.  In the spec's model each of them is an RTT of its own
(C1.28 RmmRtt: 512 entries; C1.31: a walk reaches one RTT), so an RTT walk
result names the starting RTT granule that holds the entry, and the scans
that produce `top` outputs (B3.75, B3.76) stop at the end of that granule.
A starting RTT covering more than the realm's IPA space (a 44-bit realm
starting at level 0, level -1 tables) has only the entries inside it.

All reads and writes go to guest memory: the tables are what the CPU walks.
Callers hold the realm's lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..arch import stage2
from ..arch.pas import GRANULE_SIZE
from ..memory import GuestMemory
from .abi import Ripas
from .realm import Realm
from .rtte import SW_HIPAS_SHIFT, Hipas, Rtte, codec, desc_is_table, desc_ripas

DESC_SIZE = 8
ENTRIES = stage2.ENTRIES_PER_TABLE
NS_BYTE = (stage2.NS.bit_length() - 1) // 8
"""The descriptor byte holding the NS bit (55)."""

# Scans of whole RTTs look at one byte of each descriptor (bytes.translate, in C).
_ASSIGNED_LOW = 1 << SW_HIPAS_SHIFT
_RTTE_LIVE = bytes(int(bool(b & 1) or b & 0b11101 == _ASSIGNED_LOW) for b in range(256))
"""Low byte -> 1 if the RTTE is live (valid, or invalid with HIPAS ASSIGNED)."""
_INVALID_ASSIGNED = bytes(int(b & 0b11101 == _ASSIGNED_LOW) for b in range(256))
_VALID_TABLE_OR_PAGE = bytes(int(b & 0b11 == 0b11) for b in range(256))
_VALID_BLOCK = bytes(int(b & 0b11 == 0b01) for b in range(256))
_NS_SET = bytes(int(bool(b & (stage2.NS >> (8 * NS_BYTE)))) for b in range(256))


@dataclass(frozen=True)
class RttWalk:
    """Where a walk towards some level stopped (RmmRttWalkResult, C1.31)."""

    level: int
    table: int
    """PA of the RTT reached by the walk (walk.rtt_addr)."""
    entries: int
    """Number of entries of that RTT inside the realm's IPA space."""
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
        """End of the IPA range this RTT covers: "the next IPA after the last entry"."""
        return self.entry_ipa(self.entries)


class Rtts:
    """The RTT tree of one realm over guest memory."""

    def __init__(self, memory: GuestMemory, realm: Realm) -> None:
        self.memory = memory
        self.realm = realm
        self.codec = codec(realm.lpa2)

    # -- entries ---------------------------------------------------------------------

    def read(self, table: int, index: int, level: int) -> Rtte:
        return self.codec.decode(self.memory.read_u64(table + DESC_SIZE * index), level)

    def write(self, table: int, index: int, level: int, entry: Rtte) -> None:
        self.memory.write_u64(table + DESC_SIZE * index, self.codec.encode(entry, level))

    def descs(self, table: int, first: int = 0, count: int = ENTRIES) -> tuple[int, ...]:
        return self.memory.read_u64s(table + DESC_SIZE * first, count)

    def read_all(self, table: int, level: int, count: int = ENTRIES) -> list[Rtte]:
        decode = self.codec.decode
        return [decode(d, level) for d in self.descs(table, 0, count)]

    def write_all(self, table: int, level: int, entries: list[Rtte]) -> None:
        encode = self.codec.encode
        self.memory.write_u64s(table, [encode(e, level) for e in entries])

    def fill(self, table: int, first: int, count: int, level: int, entry: Rtte) -> None:
        """Entries [first, first + count) of an RTT all set to `entry`."""
        desc = self.codec.encode(entry, level).to_bytes(DESC_SIZE, "little")
        self.memory.write(table + DESC_SIZE * first, desc * count)

    # -- walks -----------------------------------------------------------------------

    def start(self, ipa: int) -> tuple[int, int, int, int]:
        """(table, entries, base, index) of the starting RTT that maps `ipa`."""
        realm = self.realm
        level = realm.rtt_level_start
        i = ipa >> stage2.level_shift(level)
        granule, index = divmod(i, ENTRIES)
        entries = min(ENTRIES, realm.root_entry_count() - granule * ENTRIES)
        base = granule * ENTRIES * stage2.entry_size(level)
        return realm.rtt_base + granule * GRANULE_SIZE, entries, base, index

    def walk(self, ipa: int, level: int) -> RttWalk:
        """RttWalk (B3.78, A5.5.10): from the starting level towards `level`
        (clamped to the starting level..3); stop at `level` or at the first entry
        that is not a TABLE.  `ipa` must be below 2**s2sz.  Only the entry the
        walk ends at is decoded: a TABLE entry on the way is recognised by its
        descriptor type (valid, type "table"; the same test decode makes)."""
        cur = self.realm.rtt_level_start
        target = min(max(level, cur), stage2.PAGE_LEVEL)
        table, entries, base, index = self.start(ipa)
        read_u64 = self.memory.read_u64
        lpa2 = self.codec.lpa2
        while True:
            desc = read_u64(table + DESC_SIZE * index)
            if cur >= target or desc & stage2.DESC_TYPE_MASK != stage2.DESC_TABLE:
                return RttWalk(cur, table, entries, base, index, self.codec.decode(desc, cur))
            base = stage2.align_down(ipa, cur)
            table = stage2.oa_of(desc, lpa2)
            entries = ENTRIES
            cur += 1
            index = stage2.table_index(ipa, cur)

    def _bytes(self, table: int, first: int, count: int, byte: int) -> bytes:
        """Byte `byte` of each of `count` descriptors from entry `first`."""
        return self.memory.read(table + DESC_SIZE * first, DESC_SIZE * count)[byte::DESC_SIZE]

    def skip_non_live(self, walk: RttWalk) -> int:
        """RttSkipNonLiveEntries (B3.76) from the entry the walk reached: the IPA
        of the first live entry (ASSIGNED, ASSIGNED_NS or TABLE) from there,
        aligned down to the entry size of the walk level (so the walked entry's
        own base when it is live), else the next IPA after the last entry of
        the RTT."""
        low = self._bytes(walk.table, walk.index, walk.entries - walk.index, 0)
        i = low.translate(_RTTE_LIVE).find(1)
        return walk.top if i < 0 else walk.entry_ipa(walk.index + i)

    def skip_entries_with_ripas(
        self, walk: RttWalk, top: int, stop_at_destroyed: bool
    ) -> int:
        """RttSkipEntriesWithRipas (B3.75) from the entry the walk reached: the IPA
        of the first TABLE entry (or, with `stop_at_destroyed`, of the first entry
        whose RIPAS is DESTROYED), at most the end of the RTT and at most `top`,
        aligned down to the entry size of the walk level."""
        end = walk.top
        level = walk.level
        for i, d in enumerate(self.descs(walk.table, walk.index, walk.entries - walk.index)):
            if desc_is_table(d, level) or (
                stop_at_destroyed
                and not d & stage2.DESC_VALID
                and desc_ripas(d) == Ripas.DESTROYED
            ):
                end = walk.entry_ipa(walk.index + i)
                break
        return stage2.align_down(min(end, top), level)

    # -- liveness --------------------------------------------------------------------

    def rtt_is_live(self, table: int, level: int, count: int = ENTRIES) -> bool:
        """RttIsLive (B3.64, A5.5.8): some entry is ASSIGNED or TABLE, i.e. an
        invalid ASSIGNED entry, a table descriptor, or a block/page descriptor
        without the NS bit (ASSIGNED_NS entries do not make an RTT live)."""
        low = self._bytes(table, 0, count, 0)
        if 1 in low.translate(_INVALID_ASSIGNED):
            return True
        if level < stage2.PAGE_LEVEL:
            if 1 in low.translate(_VALID_TABLE_OR_PAGE):
                return True
            leaves = low.translate(_VALID_BLOCK)
        else:
            leaves = low.translate(_VALID_TABLE_OR_PAGE)
        if 1 not in leaves:
            return False
        ns = self._bytes(table, 0, count, NS_BYTE).translate(_NS_SET)
        return bool(int.from_bytes(leaves, "little") & ~int.from_bytes(ns, "little"))

    def starting_rtts_live(self) -> bool:
        """Whether any starting-level RTT is live (A2.1.4, for RealmIsLive)."""
        realm = self.realm
        return self.rtt_is_live(realm.rtt_base, realm.rtt_level_start, realm.root_entry_count())

    # -- whole-tree iteration (introspection, tests) -------------------------------------

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
                    stack.append((e.addr, level + 1, child_base, ENTRIES))

    def _leaves(
        self, table: int, level: int, base: int, count: int
    ) -> Iterator[tuple[int, int, Rtte]]:
        size = stage2.entry_size(level)
        for i, e in enumerate(self.read_all(table, level, count)):
            if e.hipas is Hipas.TABLE:
                yield from self._leaves(e.addr, level + 1, base + i * size, ENTRIES)
            else:
                yield base + i * size, level, e
