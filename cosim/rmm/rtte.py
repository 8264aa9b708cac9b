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
* the output address of an ASSIGNED entry (RIPAS EMPTY or DESTROYED), in the
  same bits as a valid descriptor of the realm's format holds it.

In both kinds bits [57:56] (software-use bits of valid descriptors; bit 55 is
NS under RME) hold the RIPAS of a protected entry: 0 EMPTY, 1 RAM,
2 DESTROYED.  So the all-zero descriptor is UNASSIGNED/EMPTY, and a zeroed
granule is an RTT of UNASSIGNED/EMPTY entries.

A realm created with the LPA2 flag uses the FEAT_LPA2 format (VTCR_EL2.DS =
1): output addresses of up to 52 bits, OA[51:50] in bits [9:8], no SH field
(``stage2`` module).  ``RtteCodec`` is the encoding of one format; ``codec``
gives the realm's.
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
"""Without LPA2, bits [51:12]: where a host descriptor carries its output address
(bits [51:48] are read as address bits so that an address >= 2**48 is reported
by `addr_bound`, the condition the spec names for it)."""


class Hipas(Enum):
    UNASSIGNED = "UNASSIGNED"
    ASSIGNED = "ASSIGNED"
    UNASSIGNED_NS = "UNASSIGNED_NS"
    ASSIGNED_NS = "ASSIGNED_NS"
    TABLE = "TABLE"


_INVALID_HIPAS = {Hipas.UNASSIGNED: 0, Hipas.ASSIGNED: 1, Hipas.UNASSIGNED_NS: 2}
_HIPAS_OF_CODE = {v: k for k, v in _INVALID_HIPAS.items()}
_ASSIGNED_CODE = _INVALID_HIPAS[Hipas.ASSIGNED] << SW_HIPAS_SHIFT


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
        """RTTE liveness (A5.5.8): "An RTTE is live if the RTTE state is
        ASSIGNED, ASSIGNED_NS or TABLE"."""
        return self.hipas in (Hipas.ASSIGNED, Hipas.ASSIGNED_NS, Hipas.TABLE)

    @property
    def makes_rtt_live(self) -> bool:
        """RTT liveness (A5.5.8): an RTT is live if one of its entries is
        ASSIGNED or TABLE (ASSIGNED_NS entries do not make it live)."""
        return self.hipas in (Hipas.ASSIGNED, Hipas.TABLE)

    @property
    def has_ripas(self) -> bool:
        return self.hipas in (Hipas.UNASSIGNED, Hipas.ASSIGNED)


UNASSIGNED_EMPTY = Rtte(Hipas.UNASSIGNED, Ripas.EMPTY)
UNASSIGNED_NS = Rtte(Hipas.UNASSIGNED_NS)


# -- liveness straight from descriptors (scans of whole RTTs) -------------------------


def desc_is_live(desc: int) -> bool:
    """RTTE liveness of a descriptor: every valid descriptor is TABLE, ASSIGNED
    (RIPAS RAM) or ASSIGNED_NS; an invalid one is live only if ASSIGNED."""
    return bool(desc & stage2.DESC_VALID) or desc & SW_HIPAS_MASK == _ASSIGNED_CODE


def desc_makes_rtt_live(desc: int, level: int) -> bool:
    """Whether a descriptor at `level` is ASSIGNED or TABLE (RTT liveness)."""
    if desc & stage2.DESC_VALID:
        return stage2.is_table(desc, level) or not desc & stage2.NS
    return desc & SW_HIPAS_MASK == _ASSIGNED_CODE


def desc_is_table(desc: int, level: int) -> bool:
    return bool(desc & stage2.DESC_VALID) and stage2.is_table(desc, level)


def desc_ripas(desc: int) -> int:
    """The RIPAS bits of a descriptor (meaningful for UNASSIGNED and ASSIGNED)."""
    return (desc & SW_RIPAS_MASK) >> SW_RIPAS_SHIFT


class RtteCodec:
    """How RTT entries are encoded in one stage-2 descriptor format."""

    def __init__(self, lpa2: bool) -> None:
        self.lpa2 = lpa2
        sh = stage2.leaf_shareability(lpa2)
        self.protected_leaf_attrs = (
            (stage2.MEMATTR_NORMAL_WB << stage2.MEMATTR_SHIFT) | stage2.S2AP_RW | sh | stage2.AF
        )
        self.ns_leaf_attrs = sh | stage2.AF | stage2.XN_EL1_EL0 | stage2.NS
        self.host_addr_mask = (
            stage2.OA_MASK_LPA2_LOW | stage2.LPA2_OA_HIGH_MASK if lpa2 else HOST_NS_ADDR_MASK
        )
        """RttEntryFromDescriptor: the bits of a host descriptor that hold ADDR."""
        self._common = {
            self.encode(e, stage2.PAGE_LEVEL): e
            for e in (UNASSIGNED_EMPTY, UNASSIGNED_NS, *(Rtte(Hipas.UNASSIGNED, r) for r in Ripas))
        }
        """Descriptors without an address decode the same at every level: look them up."""

    def addr_of(self, desc: int, level: int) -> int:
        return stage2.oa_of(desc, self.lpa2) & ~(stage2.entry_size(level) - 1)

    def encode(self, entry: Rtte, level: int) -> int:
        h = entry.hipas
        if h is Hipas.TABLE:
            return stage2.table_desc(entry.addr, self.lpa2)
        oa = stage2.oa_field(entry.addr, self.lpa2)
        if h is Hipas.ASSIGNED_NS:
            return (
                oa
                | (entry.attrs & HOST_NS_ATTR_MASK)
                | self.ns_leaf_attrs
                | stage2.leaf_type(level)
            )
        ripas_bits = int(entry.ripas) << SW_RIPAS_SHIFT if h is not Hipas.UNASSIGNED_NS else 0
        if h is Hipas.ASSIGNED and entry.ripas is Ripas.RAM:
            return oa | self.protected_leaf_attrs | ripas_bits | stage2.leaf_type(level)
        addr = oa if h is Hipas.ASSIGNED else 0
        return addr | ripas_bits | (_INVALID_HIPAS[h] << SW_HIPAS_SHIFT)

    def decode(self, desc: int, level: int) -> Rtte:
        common = self._common.get(desc)
        if common is not None:
            return common
        if not desc & stage2.DESC_VALID:
            hipas = _HIPAS_OF_CODE.get((desc & SW_HIPAS_MASK) >> SW_HIPAS_SHIFT, Hipas.UNASSIGNED)
            if hipas is Hipas.UNASSIGNED_NS:
                return UNASSIGNED_NS
            code = desc_ripas(desc)
            ripas = Ripas(code) if code <= Ripas.DESTROYED else Ripas.EMPTY
            if hipas is Hipas.ASSIGNED:
                return Rtte(hipas, ripas, self.addr_of(desc, level))
            return Rtte(hipas, ripas)
        if stage2.is_table(desc, level):
            return Rtte(Hipas.TABLE, addr=stage2.oa_of(desc, self.lpa2))
        addr = self.addr_of(desc, level)
        if desc & stage2.NS:
            return Rtte(Hipas.ASSIGNED_NS, addr=addr, attrs=desc & HOST_NS_ATTR_MASK)
        return Rtte(Hipas.ASSIGNED, Ripas.RAM, addr)

    # -- the host's view (RMI_RTT_MAP_UNPROTECTED, RMI_RTT_READ_ENTRY) ------------------

    def host_desc_valid(self, desc: int) -> bool:
        """RttDescriptorIsValidForUnprotected (B3.56): only the Host-controlled
        attributes ADDR, MemAttr[2:0] (not the reserved 0b100) and S2AP may be set."""
        if desc & ~(self.host_addr_mask | HOST_NS_ATTR_MASK):
            return False
        return desc & (0b111 << stage2.MEMATTR_SHIFT) != HOST_NS_MEMATTR_RESERVED

    def host_addr(self, desc: int) -> int:
        """RttEntryFromDescriptor(desc).addr."""
        if self.lpa2:
            return stage2.oa_of(desc, True)
        return desc & HOST_NS_ADDR_MASK

    def host_desc(self, entry: Rtte) -> int:
        """An entry as RMI_RTT_READ_ENTRY reports it in `desc` (B4.3.20.3): the
        address in the descriptor format, plus MemAttr and S2AP for ASSIGNED_NS."""
        if entry.hipas in (Hipas.UNASSIGNED, Hipas.UNASSIGNED_NS):
            return 0
        oa = stage2.oa_field(entry.addr, self.lpa2)
        return oa | entry.attrs if entry.hipas is Hipas.ASSIGNED_NS else oa


CODEC_48 = RtteCodec(lpa2=False)
CODEC_LPA2 = RtteCodec(lpa2=True)


def codec(lpa2: bool) -> RtteCodec:
    return CODEC_LPA2 if lpa2 else CODEC_48


def encode(entry: Rtte, level: int, lpa2: bool = False) -> int:
    return codec(lpa2).encode(entry, level)


def decode(desc: int, level: int, lpa2: bool = False) -> Rtte:
    return codec(lpa2).decode(desc, level)


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
    """RttFold (B3.62, A5.5.6): the single parent entry that can replace an RTT
    at `child_level`, or None if its entries are not homogeneous."""
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
