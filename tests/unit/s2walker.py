"""An independent stage-2 walker: reads the RTTs from guest memory the way the CPU
does (VMSAv8-64, 4 KiB granule, 48-bit OA or with VTCR_EL2.DS = 1 the FEAT_LPA2
52-bit format, Realm stage 2 with NS bit 55).

Written from the architecture, not from cosim.rmm: it shares no code with the
RMM so that a wrong descriptor cannot be confirmed by the same mistake.  The
only RMM convention it knows is where RIPAS is kept (bits [57:56], documented
in docs/rmm.md), so that tests can check RIPAS of invalid entries too.
"""

from __future__ import annotations

from dataclasses import dataclass

from cosim.memory import GuestMemory

OA_BITS = 0x0000_FFFF_FFFF_F000
OA_BITS_DS = 0x0003_FFFF_FFFF_F000
"""DS = 1: OA[49:12] in place; OA[51:50] come from descriptor bits [9:8]."""


@dataclass(frozen=True)
class Mapping:
    pa: int
    level: int
    readable: bool
    writable: bool
    executable: bool
    ns: bool
    memattr: int
    sh: int
    """The descriptor's SH field; -1 with DS = 1 (VTCR_EL2.SH0 applies)."""
    ripas: int


@dataclass(frozen=True)
class Fault:
    level: int
    desc: int

    @property
    def ripas(self) -> int:
        return (self.desc >> 56) & 3


@dataclass(frozen=True)
class Stage2:
    memory: GuestMemory
    root: int
    start_level: int
    s2sz: int
    ds: bool = False

    def oa(self, desc: int) -> int:
        if self.ds:
            return (desc & OA_BITS_DS) | ((desc >> 8) & 3) << 50
        return desc & OA_BITS

    def translate(self, ipa: int) -> Mapping | Fault:
        if ipa >> self.s2sz:
            raise ValueError("IPA beyond the input size: address size fault")
        level, table = self.start_level, self.root
        while True:
            shift = 12 + 9 * (3 - level)
            index = ipa >> shift if level == self.start_level else (ipa >> shift) & 0x1FF
            desc = self.memory.read_u64(table + 8 * index)
            if not desc & 1:
                return Fault(level, desc)
            is_table_or_page = bool(desc & 2)
            if level < 3 and is_table_or_page:
                table = self.oa(desc)
                level += 1
                continue
            if level == 3 and not is_table_or_page:
                raise AssertionError(f"reserved descriptor {desc:#x} at level 3")
            if level <= 0:
                raise AssertionError(f"block descriptor {desc:#x} at level {level}")
            offset_mask = (1 << shift) - 1
            assert self.oa(desc) & offset_mask == 0, "block OA not aligned"
            s2ap = (desc >> 6) & 3
            xn = (desc >> 53) & 3
            return Mapping(
                pa=(self.oa(desc) & ~offset_mask) | (ipa & offset_mask),
                level=level,
                readable=bool(s2ap & 1),
                writable=bool(s2ap & 2),
                executable=xn == 0,
                ns=bool(desc >> 55 & 1),
                memattr=(desc >> 2) & 0xF,
                sh=-1 if self.ds else (desc >> 8) & 3,
                ripas=(desc >> 56) & 3,
            )
