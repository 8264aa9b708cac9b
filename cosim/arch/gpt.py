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

import operator
import threading
from collections.abc import Callable

from ..memory import GuestMemory
from .pas import GRANULE_SHIFT, GRANULE_SIZE, Pas

PasListener = Callable[[int, int, Pas], None]
"""Called as listener(first_pa, granule_count, new_pas) after every change."""


_PAS_OF = {int(p): p for p in Pas}
_PAS_BYTE = {p: bytes([p]) for p in Pas}


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
        return _PAS_OF[self._table[self._index(pa)]]

    def set(self, pa: int, pas: Pas, count: int = 1) -> None:
        """Give `count` granules from the one containing `pa` the PAS `pas`."""
        first = self._index(pa)
        if count < 1 or first + count > self.granules:
            raise PasError(f"{count} granules from PA {pa:#x} exceed the table")
        with self._lock:
            self._table[first : first + count] = (
                _PAS_BYTE[pas] if count == 1 else bytes([pas]) * count
            )
            self.generation += 1
            listeners = list(self._listeners)
        start = self.base + (first << GRANULE_SHIFT)
        for listener in listeners:
            listener(start, count, Pas(pas))

    def add_listener(self, listener: PasListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def reset(self, pas: Pas = Pas.NONSECURE) -> None:
        """Give every granule the same PAS (a board reset)."""
        self.set(self.base, pas, self.granules)

    def raw(self, first: int, count: int) -> bytes:
        """PAS bytes of `count` granules from granule index `first`."""
        return bytes(self._table[first : first + count])

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


# ---------------------------------------------------------------------------
# The architectural GPT (Arm ARM D9 "The Granule Protection Table"; register
# layouts in "GPCCR_EL3" and "GPTBR_EL3"), for --gpt hw.

GPI_NO_ACCESS = 0x0
GPI_ALL_ACCESS = 0xF
GPI_PAS_BASE = 0x8
"""GPI 0b10xx grants access to the single PAS xx (Pas numbering)."""

L0_BLOCK = 0x1
L0_TABLE = 0x3
L0GPTSZ_BITS = 30
"""GPCCR_EL3.L0GPTSZ as QEMU implements it (read-only, 0): 1 GiB per level-0 entry."""
GPIS_PER_L1_ENTRY = 16

# GPCCR_EL3 fields
GPCCR_PPS_SHIFT = 0
GPCCR_IRGN_WBRAWA = 0b01 << 8
GPCCR_ORGN_WBRAWA = 0b01 << 10
GPCCR_SH_INNER = 0b11 << 12
GPCCR_PGS_4K = 0b00 << 14
GPCCR_GPC = 1 << 16

_PPS_BITS = {0b000: 32, 0b001: 36, 0b010: 40, 0b011: 42, 0b100: 44, 0b101: 48, 0b110: 52}


_TO_GPI = bytes((GPI_PAS_BASE | (b & 3)) for b in range(256))
_TO_HIGH_NIBBLE = bytes(((b << 4) & 0xF0) for b in range(256))


def gpi_of(pas: Pas) -> int:
    return GPI_PAS_BASE | int(pas)


def pps_for(top: int) -> tuple[int, int]:
    """The smallest GPCCR_EL3.PPS encoding whose protected space covers [0, top):
    returns (encoding, bits)."""
    for enc, bits in sorted(_PPS_BITS.items(), key=lambda kv: kv[1]):
        if top <= 1 << bits:
            return enc, bits
    raise PasError(f"no protected physical address size covers {top:#x}")


class GptEncoder:
    """Writes the level-0 and level-1 tables for a PasTable into memory (the
    carve-out) and keeps the level-1 descriptors in step with every change.

    Memory outside the PAS table's range is described by level-0 block
    descriptors with GPI "all access": GPC only guards RAM.  Within a 1 GiB
    level-0 region that holds RAM, granules that are not RAM are "all
    access" too.  Level-1 tables are 128 KiB aligned (Arm ARM D9.3: a table
    descriptor's address is aligned to the size of the table).
    """

    def __init__(self, table: PasTable, area_base: int, area_size: int,
                 pa_bits: int = 48) -> None:
        self.table = table
        self.memory: GuestMemory | None = None
        self.pps, self.pps_bits = pps_for(table.end)
        if self.pps_bits > pa_bits:
            raise PasError(f"RAM ends at {table.end:#x}, beyond the CPU's {pa_bits}-bit PA")
        self.l0_entries = 1 << (self.pps_bits - L0GPTSZ_BITS)
        l1_size = ((1 << L0GPTSZ_BITS) >> GRANULE_SHIFT) // GPIS_PER_L1_ENTRY * 8
        self.l1_table_size = l1_size
        l1_align = l1_size
        self.l0_base = area_base
        first_l1 = (area_base + 8 * self.l0_entries + l1_align - 1) // l1_align * l1_align
        self.l1_base: dict[int, int] = {}
        addr = first_l1
        for gib in range(self.l0_entries):
            lo, hi = gib << L0GPTSZ_BITS, (gib + 1) << L0GPTSZ_BITS
            if lo < table.end and hi > table.base:
                self.l1_base[gib] = addr
                addr += l1_size
        self.end = addr
        if self.end > area_base + area_size:
            raise PasError(f"the GPT needs {self.end - area_base:#x} bytes, the carve-out "
                           f"leaves {area_size:#x} for it")
        self._lock = threading.Lock()
        self._gran_per_gib = 1 << (L0GPTSZ_BITS - GRANULE_SHIFT)

    @property
    def gpccr(self) -> int:
        return (self.pps << GPCCR_PPS_SHIFT | GPCCR_IRGN_WBRAWA | GPCCR_ORGN_WBRAWA
                | GPCCR_SH_INNER | GPCCR_PGS_4K | GPCCR_GPC)

    @property
    def gptbr(self) -> int:
        """GPTBR_EL3.BADDR: the level-0 table address bits [51:12] at [39:0]."""
        return self.l0_base >> 12

    def attach(self, memory: GuestMemory) -> None:
        """Write the tables into `memory` and keep them in step with the PAS table."""
        self.memory = memory
        self.write_all()
        self.table.add_listener(self.on_change)

    def write_all(self) -> None:
        """Write every table from the current PAS table."""
        assert self.memory is not None
        with self._lock:
            for gib in range(self.l0_entries):
                l1 = self.l1_base.get(gib)
                if l1 is None:
                    entry = GPI_ALL_ACCESS << 4 | L0_BLOCK
                else:
                    entry = l1 | L0_TABLE
                    self._write_l1_table(gib)
                self.memory.write_u64(self.l0_base + 8 * gib, entry)

    def _write_l1_table(self, gib: int) -> None:
        assert self.memory is not None
        t = self.table
        lo, hi = gib << L0GPTSZ_BITS, (gib + 1) << L0GPTSZ_BITS
        if not (t.base <= lo and hi <= t.end):
            for i in range(self._gran_per_gib // GPIS_PER_L1_ENTRY):
                self._write_l1(gib, i)
            return
        # Whole GiB of RAM: two GPIs per byte, granule 2k in the low nibble.
        gpis = t.raw((lo - t.base) >> GRANULE_SHIFT, self._gran_per_gib).translate(_TO_GPI)
        packed = bytes(map(operator.or_, gpis[0::2], gpis[1::2].translate(_TO_HIGH_NIBBLE)))
        self.memory.write(self.l1_base[gib], packed)

    def _write_l1(self, gib: int, index: int) -> None:
        first_pa = (gib << L0GPTSZ_BITS) + (index * GPIS_PER_L1_ENTRY << GRANULE_SHIFT)
        t = self.table
        assert self.memory is not None
        at = self.l1_base[gib] + 8 * index
        if t.base <= first_pa and first_pa + (GPIS_PER_L1_ENTRY << GRANULE_SHIFT) <= t.end:
            # Sixteen GPIs of RAM, two per byte with granule 2k in the low nibble.
            raw = t.raw((first_pa - t.base) >> GRANULE_SHIFT, GPIS_PER_L1_ENTRY)
            gpis = raw.translate(_TO_GPI)
            self.memory.write(at, bytes(map(operator.or_, gpis[0::2],
                                            gpis[1::2].translate(_TO_HIGH_NIBBLE))))
            return
        entry = 0
        for n in range(GPIS_PER_L1_ENTRY):
            pa = first_pa + (n << GRANULE_SHIFT)
            gpi = gpi_of(t.get(pa)) if t.covers(pa) else GPI_ALL_ACCESS
            entry |= gpi << (4 * n)
        self.memory.write_u64(at, entry)

    def on_change(self, pa: int, count: int, pas: Pas) -> None:
        """PasTable listener: rewrite the level-1 descriptors covering the change
        from the table (the truth), under a lock so concurrent changes to
        granules sharing a descriptor cannot lose each other."""
        if count >= self._gran_per_gib // 2:
            self.write_all()
            return
        first = pa >> GRANULE_SHIFT
        last = (pa >> GRANULE_SHIFT) + count - 1
        with self._lock:
            for g in range(first // GPIS_PER_L1_ENTRY, last // GPIS_PER_L1_ENTRY + 1):
                gib = (g * GPIS_PER_L1_ENTRY) >> (L0GPTSZ_BITS - GRANULE_SHIFT)
                index = g % (self._gran_per_gib // GPIS_PER_L1_ENTRY)
                self._write_l1(gib, index)
