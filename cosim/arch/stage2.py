"""VMSAv8-64 stage-2 translation facts for the 4 KiB granule (Arm ARM D8).

Pure architecture: descriptor bit positions, level geometry and the
starting-level rules that VTCR_EL2 imposes.  No RMM policy lives here; the
RMM's choice of software bits is in ``cosim.rmm.rtte``.

Descriptor formats (VTCR_EL2.DS selects one for the whole walk):

* bit 0 = 0: invalid.  The walk faults; bits [63:1] are ignored by hardware
  and free for software.
* Table descriptor (levels -1..2): bits [1:0] = 0b11, next-level table
  address in [47:12].  Bits [58:51] and [11:2] are ignored.
* Block descriptor (levels 1..2): bits [1:0] = 0b01; page descriptor
  (level 3): bits [1:0] = 0b11.  Output address in [47:n] (n = 30, 21, 12),
  lower attributes MemAttr [5:2], S2AP [7:6], SH [9:8], AF [10]; upper
  attributes Contiguous [52], XN [54:53], bits [58:55] reserved for software,
  of which bit 55 is the NS bit when a Realm stage 2 translates (FEAT_RME):
  NS = 1 makes the access use the Non-secure PAS.
* FEAT_LPA2 with VTCR_EL2.DS = 1 (52-bit output addresses, 4 KiB granule):
  table and block/page descriptors hold OA[49:12] in place and OA[51:50] in
  bits [9:8]; there is no SH field (shareability comes from VTCR_EL2.SH0
  for every descriptor), and the walk may start at level -1, whose table has
  at most 16 entries (input address bits [51:48]).
"""

from __future__ import annotations

import functools

GRANULE_SHIFT = 12
ENTRIES_PER_TABLE = 512
TABLE_INDEX_BITS = 9
PAGE_LEVEL = 3
MIN_BLOCK_LEVEL = 1
"""Lowest level at which the RMM maps blocks (the architecture allows level 0
blocks with DS = 1; RMM v1.0 keeps mappings at levels 1..3, A5.5.4)."""
MAX_OA_BITS = 48
"""Output-address width without FEAT_LPA2 (VTCR_EL2.DS = 0)."""
MAX_OA_BITS_LPA2 = 52
MIN_START_LEVEL = 0
"""Starting levels 0..3 are possible without LPA2."""
MIN_START_LEVEL_LPA2 = -1
"""With DS = 1 a 4 KiB-granule walk can start at level -1 (VTCR_EL2.SL2)."""
MAX_CONCATENATED_TABLES = 16
LPA2_OA_HIGH_SHIFT = 50
"""DS = 1: OA[51:50] ..."""
LPA2_OA_HIGH_DESC_SHIFT = 8
"""... is held in descriptor bits [9:8]."""

DESC_VALID = 1 << 0
DESC_TYPE_TABLE_OR_PAGE = 1 << 1
DESC_TYPE_MASK = 0b11
DESC_TABLE = 0b11
DESC_PAGE = 0b11
DESC_BLOCK = 0b01

MEMATTR_SHIFT = 2
MEMATTR_MASK = 0xF << MEMATTR_SHIFT
MEMATTR_NORMAL_WB = 0xF
"""MemAttr 0b1111 (without FEAT_S2FWB): Normal, Outer and Inner Write-Back Cacheable."""
S2AP_SHIFT = 6
S2AP_MASK = 0b11 << S2AP_SHIFT
S2AP_READ = 1 << 6
S2AP_WRITE = 1 << 7
S2AP_RW = S2AP_READ | S2AP_WRITE
SH_SHIFT = 8
SH_MASK = 0b11 << SH_SHIFT
SH_INNER = 0b11 << SH_SHIFT
AF = 1 << 10
CONTIGUOUS = 1 << 52
XN_SHIFT = 53
XN_MASK = 0b11 << XN_SHIFT
XN_EL1_EL0 = 0b10 << XN_SHIFT
"""XN[1:0] = 0b10: not executable at EL1 nor EL0."""
NS = 1 << 55
"""Realm stage 2 (FEAT_RME): output address is in the Non-secure PAS."""
SOFTWARE_SHIFT = 56
SOFTWARE_MASK = 0b111 << SOFTWARE_SHIFT
"""Bits [58:56]: reserved for software in valid block/page descriptors (bit 55 is NS)."""

OA_MASK = ((1 << MAX_OA_BITS) - 1) & ~((1 << GRANULE_SHIFT) - 1)
"""Output-address / next-level-table field [47:12]."""
OA_MASK_LPA2_LOW = ((1 << LPA2_OA_HIGH_SHIFT) - 1) & ~((1 << GRANULE_SHIFT) - 1)
"""DS = 1: the in-place part of the output address, [49:12]."""
LPA2_OA_HIGH_MASK = 0b11 << LPA2_OA_HIGH_DESC_SHIFT

LEVEL_RANGE = range(MIN_START_LEVEL, PAGE_LEVEL + 1)


def max_oa_bits(lpa2: bool) -> int:
    return MAX_OA_BITS_LPA2 if lpa2 else MAX_OA_BITS


def min_start_level(lpa2: bool) -> int:
    return MIN_START_LEVEL_LPA2 if lpa2 else MIN_START_LEVEL


def oa_field(pa: int, lpa2: bool = False) -> int:
    """The descriptor bits that hold the (granule-aligned) address `pa`."""
    if lpa2:
        high = (pa >> LPA2_OA_HIGH_SHIFT) & 0b11
        return (pa & OA_MASK_LPA2_LOW) | high << LPA2_OA_HIGH_DESC_SHIFT
    return pa & OA_MASK


def oa_of(desc: int, lpa2: bool = False) -> int:
    """The address a table, block or page descriptor holds."""
    if lpa2:
        high = (desc & LPA2_OA_HIGH_MASK) >> LPA2_OA_HIGH_DESC_SHIFT
        return (desc & OA_MASK_LPA2_LOW) | high << LPA2_OA_HIGH_SHIFT
    return desc & OA_MASK


def leaf_shareability(lpa2: bool) -> int:
    """SH of block/page descriptors: Inner Shareable; with DS = 1 the field is
    OA[51:50] and VTCR_EL2.SH0 gives the shareability instead."""
    return 0 if lpa2 else SH_INNER


def level_shift(level: int) -> int:
    """log2 of the size of the address range one entry at `level` maps."""
    return GRANULE_SHIFT + TABLE_INDEX_BITS * (PAGE_LEVEL - level)


def entry_size(level: int) -> int:
    return 1 << level_shift(level)


def table_span(level: int) -> int:
    """Size of the range that one 512-entry table at `level` covers."""
    return entry_size(level) * ENTRIES_PER_TABLE


def is_level_aligned(addr: int, level: int) -> bool:
    return addr & (entry_size(level) - 1) == 0


def align_down(addr: int, level: int) -> int:
    return addr & ~(entry_size(level) - 1)


def table_index(addr: int, level: int) -> int:
    """Index of `addr` in a (non-concatenated) table at `level`."""
    return (addr >> level_shift(level)) & (ENTRIES_PER_TABLE - 1)


def oa_mask(level: int) -> int:
    """Output-address bits a block/page descriptor at `level` holds (DS = 0)."""
    return OA_MASK & ~(entry_size(level) - 1)


def is_valid(desc: int) -> bool:
    return bool(desc & DESC_VALID)


def is_table(desc: int, level: int) -> bool:
    return level < PAGE_LEVEL and desc & DESC_TYPE_MASK == DESC_TABLE


def is_block_or_page(desc: int, level: int) -> bool:
    if level == PAGE_LEVEL:
        return desc & DESC_TYPE_MASK == DESC_PAGE
    return level >= MIN_BLOCK_LEVEL and desc & DESC_TYPE_MASK == DESC_BLOCK


def table_desc(table_pa: int, lpa2: bool = False) -> int:
    return oa_field(table_pa, lpa2) | DESC_TABLE


def leaf_type(level: int) -> int:
    """Descriptor type bits of a block (levels 1..2) or page (level 3) mapping."""
    return DESC_PAGE if level == PAGE_LEVEL else DESC_BLOCK


def can_map_block(level: int) -> bool:
    return MIN_BLOCK_LEVEL <= level <= PAGE_LEVEL


# -- starting level and concatenation (AArch64.S2InvalidSL / S2InconsistentSL) --


def start_level_ipa_bits(start_level: int) -> tuple[int, int]:
    """The IPA widths [min, max] a walk starting at `start_level` can translate,
    with up to 16 concatenated starting tables (AArch64.S2InconsistentSL).
    The IPA width itself is limited to 48 bits without DS = 1 and to 52 with it."""
    levels = PAGE_LEVEL - start_level
    min_bits = TABLE_INDEX_BITS * levels + GRANULE_SHIFT + 1
    return min_bits, min_bits + TABLE_INDEX_BITS - 1 + 4


def num_start_tables(ipa_bits: int, start_level: int) -> int:
    """How many concatenated starting-level tables an `ipa_bits` space needs."""
    single = TABLE_INDEX_BITS * (PAGE_LEVEL - start_level + 1) + GRANULE_SHIFT
    return 1 if ipa_bits <= single else 1 << (ipa_bits - single)


def start_level_min_pa_bits(start_level: int) -> int:
    """Starting at level 0 needs a PA range of at least 44 bits, at level -1 of
    52 bits (AArch64.S2InvalidSL)."""
    return {-1: 52, 0: 44}.get(start_level, 0)


@functools.cache
def start_table_entries(ipa_bits: int, start_level: int) -> int:
    """Entries of the starting level (all concatenated tables together) that
    cover an `ipa_bits` input address space; fewer than 512 when the space is
    smaller than one table's span, at most 16 at level -1."""
    return 1 << max(ipa_bits - level_shift(start_level), 0)
