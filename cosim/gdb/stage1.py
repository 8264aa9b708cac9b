"""A realm vCPU's stage-1 translation (VA -> IPA), walked in Python over the
realm's memory, for `cca ipa`: the realm kernel's PC is a VA, the RTTs map
IPAs.  4 KiB granule only (what Linux on this platform uses), with FEAT_LPA2
(TCR_EL1.DS) descriptors; Arm ARM D8.2 "Translation table descriptor
formats", D8.3 "Translation process"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

TCR_T0SZ_SHIFT, TCR_T1SZ_SHIFT = 0, 16
TCR_TG0_SHIFT, TCR_TG1_SHIFT = 14, 30
TG0_4K, TG1_4K = 0b00, 0b10
TCR_DS = 1 << 59
SCTLR_M = 1 << 0
PAGE_SHIFT = 12
OA_MASK_48 = 0x0000_FFFF_FFFF_F000
OA_MASK_50 = 0x0003_FFFF_FFFF_F000


class Stage1Error(Exception):
    pass


@dataclass
class Stage1Walk:
    va: int
    ipa: int | None = None
    steps: list[str] = field(default_factory=list)


def _oa(desc: int, ds: bool) -> int:
    if ds:
        return (desc & OA_MASK_50) | (((desc >> 8) & 3) << 50)
    return desc & OA_MASK_48


def translate(va: int, sctlr: int, tcr: int, ttbr0: int, ttbr1: int,
              read_u64: Callable[[int], int]) -> Stage1Walk:
    """VA -> IPA under EL1's stage 1; `read_u64(ipa)` reads a table entry."""
    walk = Stage1Walk(va)
    if not sctlr & SCTLR_M:
        walk.ipa = va
        walk.steps.append("stage 1 is off (SCTLR_EL1.M = 0): IPA = VA")
        return walk
    upper = bool((va >> 55) & 1)
    tsz = (tcr >> (TCR_T1SZ_SHIFT if upper else TCR_T0SZ_SHIFT)) & 0x3F
    tg = (tcr >> (TCR_TG1_SHIFT if upper else TCR_TG0_SHIFT)) & 3
    if tg != (TG1_4K if upper else TG0_4K):
        raise Stage1Error("only the 4 KiB translation granule is supported")
    ds = bool(tcr & TCR_DS)
    bits = 64 - tsz
    level = 4 - -(-(bits - PAGE_SHIFT) // 9)
    ttbr = ttbr1 if upper else ttbr0
    table = _oa(ttbr & ~0xFFFF_0000_0000_0000, False) & ~0xFFF
    if ds:
        table |= ((ttbr >> 2) & 0xF) << 48
    walk.steps.append(f"TTBR{int(upper)}_EL1 {ttbr:#x}: {bits}-bit VAs, start level {level}")
    while True:
        shift = PAGE_SHIFT + 9 * (3 - level)
        index = (va >> shift) & ((1 << min(9, bits - shift)) - 1)
        desc = read_u64(table + 8 * index)
        kind = desc & 3
        if not desc & 1:
            walk.steps.append(f"level {level}: table {table:#x}[{index}] = {desc:#x}: invalid")
            return walk
        if level == 3 or kind == 1:
            if level == 3 and kind != 3:
                walk.steps.append(f"level 3: {table:#x}[{index}] = {desc:#x}: reserved")
                return walk
            out = _oa(desc, ds) & ~((1 << shift) - 1)
            walk.ipa = out | (va & ((1 << shift) - 1))
            walk.steps.append(f"level {level}: {table:#x}[{index}] = {desc:#x}: "
                              f"{'page' if level == 3 else 'block'} at IPA {out:#x}")
            return walk
        table = _oa(desc, ds)
        walk.steps.append(f"level {level}: [{index}] = {desc:#x}: next table at IPA {table:#x}")
        level += 1
