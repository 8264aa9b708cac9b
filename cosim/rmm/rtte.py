"""RTT entries: the RMM's states (HIPAS, RIPAS) and how they are kept in the
architectural stage-2 descriptors, so that an RTT granule alone is the truth.

Valid descriptors (the CPU uses them):

* TABLE: a table descriptor to the child RTT.
* ASSIGNED with RIPAS RAM: a page (level 3) or block (levels 1..2) descriptor,
  Normal Write-Back, Inner Shareable, read/write, AF = 1, executable, NS = 0.
* ASSIGNED_NS: a page/block descriptor with the host's MemAttr[2:0] and S2AP,
  Inner Shareable, AF = 1, XN = 0b10 (never executable), NS = 1.

Invalid descriptors (bit 0 = 0; the CPU ignores bits [63:1]):

* bits [4:2]   HIPAS: 0 UNASSIGNED, 1 ASSIGNED, 2 UNASSIGNED_NS.
* bits [47:12] output address of an ASSIGNED entry (RIPAS EMPTY or DESTROYED).

In both kinds bits [57:56] (software-use bits of valid descriptors; bit 55 is
NS under RME) hold the RIPAS of a protected entry: 0 EMPTY, 1 RAM,
2 DESTROYED.  So the all-zero descriptor is UNASSIGNED/EMPTY, and a zeroed
granule is an RTT of UNASSIGNED/EMPTY entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..arch import stage2
from .abi import Ripas

SW_HIPAS_SHIFT = 2
SW_HIPAS_MASK = 0b111 << SW_HIPAS_SHIFT
SW_RIPAS_SHIFT = stage2.SOFTWARE_SHIFT
SW_RIPAS_MASK = 0b11 << SW_RIPAS_SHIFT

HOST_NS_ATTR_MASK = (0b111 << stage2.MEMATTR_SHIFT) | stage2.S2AP_MASK
"""Descriptor bits RMI_RTT_MAP_UNPROTECTED takes from the host: MemAttr[2:0], S2AP."""
HOST_NS_MEMATTR_RESERVED = 0b100 << stage2.MEMATTR_SHIFT
HOST_NS_ADDR_MASK = ((1 << 52) - 1) & ~((1 << stage2.GRANULE_SHIFT) - 1)
"""Bits [51:12]: where a host descriptor carries its output address."""

PROTECTED_LEAF_ATTRS = (
    (stage2.MEMATTR_NORMAL_WB << stage2.MEMATTR_SHIFT)
    | stage2.S2AP_RW
    | stage2.SH_INNER
    | stage2.AF
)
NS_LEAF_ATTRS = stage2.SH_INNER | stage2.AF | stage2.XN_EL1_EL0 | stage2.NS


class Hipas(Enum):
    UNASSIGNED = "UNASSIGNED"
    ASSIGNED = "ASSIGNED"
    UNASSIGNED_NS = "UNASSIGNED_NS"
    ASSIGNED_NS = "ASSIGNED_NS"
    TABLE = "TABLE"


_INVALID_HIPAS = {Hipas.UNASSIGNED: 0, Hipas.ASSIGNED: 1, Hipas.UNASSIGNED_NS: 2}
_HIPAS_OF_CODE = {v: k for k, v in _INVALID_HIPAS.items()}


@dataclass(frozen=True)
class Rtte:
    """One RTT entry in RMM terms."""

    hipas: Hipas
    ripas: Ripas = Ripas.EMPTY
    addr: int = 0
    """Output address (ASSIGNED, ASSIGNED_NS) or child RTT (TABLE)."""
    attrs: int = 0
    """ASSIGNED_NS: the host's MemAttr/S2AP bits."""

    @property
    def is_live(self) -> bool:
        """A live entry has an output address: ASSIGNED, ASSIGNED_NS or TABLE."""
        return self.hipas in (Hipas.ASSIGNED, Hipas.ASSIGNED_NS, Hipas.TABLE)

    @property
    def has_ripas(self) -> bool:
        return self.hipas in (Hipas.UNASSIGNED, Hipas.ASSIGNED)


UNASSIGNED_EMPTY = Rtte(Hipas.UNASSIGNED, Ripas.EMPTY)
UNASSIGNED_NS = Rtte(Hipas.UNASSIGNED_NS)


def encode(entry: Rtte, level: int) -> int:
    h = entry.hipas
    if h is Hipas.TABLE:
        return stage2.table_desc(entry.addr)
    if h is Hipas.ASSIGNED_NS:
        return (
            (entry.addr & stage2.oa_mask(level))
            | (entry.attrs & HOST_NS_ATTR_MASK)
            | NS_LEAF_ATTRS
            | stage2.leaf_type(level)
        )
    ripas_bits = int(entry.ripas) << SW_RIPAS_SHIFT if h is not Hipas.UNASSIGNED_NS else 0
    if h is Hipas.ASSIGNED and entry.ripas is Ripas.RAM:
        return (
            (entry.addr & stage2.oa_mask(level))
            | PROTECTED_LEAF_ATTRS
            | ripas_bits
            | stage2.leaf_type(level)
        )
    addr = entry.addr & stage2.oa_mask(level) if h is Hipas.ASSIGNED else 0
    return addr | ripas_bits | (_INVALID_HIPAS[h] << SW_HIPAS_SHIFT)


def decode(desc: int, level: int) -> Rtte:
    common = _COMMON.get(desc)
    if common is not None:
        return common
    ripas_code = (desc & SW_RIPAS_MASK) >> SW_RIPAS_SHIFT
    ripas = Ripas(ripas_code) if ripas_code <= Ripas.DESTROYED else Ripas.EMPTY
    if not stage2.is_valid(desc):
        hipas = _HIPAS_OF_CODE.get((desc & SW_HIPAS_MASK) >> SW_HIPAS_SHIFT, Hipas.UNASSIGNED)
        if hipas is Hipas.ASSIGNED:
            return Rtte(hipas, ripas, desc & stage2.oa_mask(level))
        if hipas is Hipas.UNASSIGNED_NS:
            return UNASSIGNED_NS
        return Rtte(hipas, ripas)
    if stage2.is_table(desc, level):
        return Rtte(Hipas.TABLE, addr=desc & stage2.OA_MASK)
    addr = desc & stage2.oa_mask(level)
    if desc & stage2.NS:
        return Rtte(Hipas.ASSIGNED_NS, addr=addr, attrs=desc & HOST_NS_ATTR_MASK)
    return Rtte(Hipas.ASSIGNED, Ripas.RAM, addr)


_COMMON = {
    encode(e, 3): e
    for e in (UNASSIGNED_EMPTY, UNASSIGNED_NS, *(Rtte(Hipas.UNASSIGNED, r) for r in Ripas))
}
"""Descriptors without an address decode the same at every level: look them up."""


def host_ns_desc(entry: Rtte) -> int:
    """The descriptor as the host gave it to RMI_RTT_MAP_UNPROTECTED."""
    return entry.addr | entry.attrs


def child_entries(parent: Rtte, child_level: int) -> list[Rtte]:
    """The 512 entries a new RTT at `child_level` starts with, inherited from the
    parent entry it replaces (an ASSIGNED block is split into consecutive pieces)."""
    n = stage2.ENTRIES_PER_TABLE
    if parent.hipas in (Hipas.ASSIGNED, Hipas.ASSIGNED_NS):
        size = stage2.entry_size(child_level)
        return [
            Rtte(parent.hipas, parent.ripas, parent.addr + i * size, parent.attrs) for i in range(n)
        ]
    return [parent] * n


def fold(entries: list[Rtte], child_level: int) -> Rtte | None:
    """The single parent entry that can replace an RTT at `child_level`, or None
    if its entries are not homogeneous."""
    first = entries[0]
    h = first.hipas
    if any(e.hipas is not h for e in entries):
        return None
    if h is Hipas.TABLE:
        return None
    if h in (Hipas.UNASSIGNED, Hipas.UNASSIGNED_NS):
        return first if all(e == first for e in entries) else None
    parent_level = child_level - 1
    if not stage2.can_map_block(parent_level):
        return None
    if not stage2.is_level_aligned(first.addr, parent_level):
        return None
    size = stage2.entry_size(child_level)
    for i, e in enumerate(entries):
        if e.addr != first.addr + i * size or e.ripas is not first.ripas or e.attrs != first.attrs:
            return None
    return first
