"""The saved CPU contexts of the world switch, as Python sees them.

Each per-CPU area holds `ns_ctx` (the host's state while a realm runs) and
`realm_ctx` (the running REC's state); both follow `layout.CONTEXT`.  Which
optional register groups the monitor switches is decided here from the CPU's
ID registers and written into the carve-out header at boot.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..memory import GuestMemory
from . import layout as L
from .boot import CpuFeatures

EL1_NAMES = [r.name for r in L.EL1_SYSREGS]
EL2_NAMES = [r.name for r in L.EL2_SYSREGS]
GIC_NAMES = [r.name for r in L.GIC_SYSREGS]
GIC_STATUS_NAMES = [r.name for r in L.GIC_STATUS_SYSREGS]
DEBUG_NAMES = [r.name for r in L.DEBUG_SYSREGS]


@dataclass(frozen=True)
class ContextShape:
    """What the monitor switches on this CPU."""

    groups: int
    bps: int
    wps: int
    lrs: int
    aprs: int
    sve_vl: int
    """Bytes per Z register at EL3's vector length (0 without SVE)."""

    def has(self, group: L.CtxGroup) -> bool:
        return bool(self.groups >> group & 1)

    def switched(self, reg: L.SysReg) -> bool:
        if reg.group is not None and not self.has(reg.group):
            return False
        name = reg.name
        if name.startswith(("dbgbvr", "dbgbcr")):
            return reg.index < self.bps
        if name.startswith(("dbgwvr", "dbgwcr")):
            return reg.index < self.wps
        if name.startswith("ich_lr"):
            return reg.index < self.lrs
        if name.startswith("ich_ap"):
            return reg.index < self.aprs
        return True


def shape_for(features: CpuFeatures) -> ContextShape:
    """Register groups from the ID registers (Arm ARM D19 field names in comments)."""
    f = features.field
    groups = 0

    def add(group: L.CtxGroup, present: bool) -> None:
        nonlocal groups
        if present:
            groups |= 1 << group

    add(L.CtxGroup.SVE, f("id_aa64pfr0_el1", 32) != 0)                     # SVE
    # ISAR1.APA/API/GPA/GPI, ISAR2.GPA3/APA3
    pauth = any(f("id_aa64isar1_el1", s) for s in (4, 8, 24, 28)) or \
        any(f("id_aa64isar2_el1", s) for s in (8, 12))
    add(L.CtxGroup.PAUTH, pauth)
    add(L.CtxGroup.CSV2, f("id_aa64pfr0_el1", 56) >= 2)                    # CSV2: SCXTNUM
    add(L.CtxGroup.TCR2, f("id_aa64mmfr3_el1", 0) != 0)                    # TCRX
    add(L.CtxGroup.SCTLR2, f("id_aa64mmfr3_el1", 4) != 0)                  # SCTLRX
    add(L.CtxGroup.S1PIE, f("id_aa64mmfr3_el1", 8) != 0)                   # S1PIE
    add(L.CtxGroup.S1POE, f("id_aa64mmfr3_el1", 16) != 0)                  # S1POE
    add(L.CtxGroup.GCS, f("id_aa64pfr1_el1", 44) != 0)                     # GCS
    add(L.CtxGroup.HCX, f("id_aa64mmfr1_el1", 40) != 0)                    # HCX
    add(L.CtxGroup.FGT, f("id_aa64mmfr0_el1", 56) != 0)                    # FGT
    add(L.CtxGroup.ECV, f("id_aa64mmfr0_el1", 60) >= 2)                    # ECV: CNTPOFF
    add(L.CtxGroup.PMU, f("id_aa64dfr0_el1", 8) not in (0, 0xF))           # PMUVer
    pribits = ((features["ich_vtr_el2"] >> 29) & 7) + 1                   # ICH_VTR_EL2.PRIbits
    return ContextShape(
        groups=groups,
        bps=f("id_aa64dfr0_el1", 12) + 1,                                   # BRPs
        wps=f("id_aa64dfr0_el1", 20) + 1,                                   # WRPs
        lrs=(features["ich_vtr_el2"] & 0x1F) + 1,                           # ListRegs
        aprs={5: 1, 6: 2, 7: 4}.get(pribits, 1),
        sve_vl=features["sve_max_vl"],
    )


def publish_shape(memory: GuestMemory, carveout_base: int, shape: ContextShape) -> None:
    h = L.CARVEOUT_HEADER
    memory.write_u64(carveout_base + h["ctx_groups"], shape.groups)
    memory.write_u64(carveout_base + h["num_bps"], shape.bps)
    memory.write_u64(carveout_base + h["num_wps"], shape.wps)
    memory.write_u64(carveout_base + h["num_lrs"], shape.lrs)
    memory.write_u64(carveout_base + h["num_aprs"], shape.aprs)


SPAN_FIRST = L.EL1_SYSREGS[0].name
SPAN_LAST = L.GIC_STATUS_SYSREGS[-1].name
SPAN_START = L.CONTEXT[SPAN_FIRST]
SPAN_WORDS = (L.CONTEXT[SPAN_LAST] - SPAN_START) // 8 + 1
"""The system registers lie contiguously in a context, from SCTLR_EL1 to the
GIC status registers: read and written in one go."""


GPRS_ST = struct.Struct("<31Q")
"""X0..X30 of a context or mailbox frame."""


def span_index(name: str) -> int:
    return (L.CONTEXT[name] - SPAN_START) // 8


class CpuContext:
    """One context area (`ns_ctx` or `realm_ctx`) of one CPU."""

    def __init__(self, memory: GuestMemory, base: int) -> None:
        self.memory = memory
        self.base = base
        self.span_base = base + SPAN_START
        self._span = self.span_base

    def read_span(self) -> list[int]:
        """Every system register of the context, indexed by span_index()."""
        return list(self.memory.read_u64s(self._span, SPAN_WORDS))

    def write_span(self, values: list[int]) -> None:
        self.memory.write_u64s(self._span, values)

    def _at(self, name: str) -> int:
        return self.base + L.CONTEXT[name]

    def get(self, name: str) -> int:
        return self.memory.read_u64(self._at(name))

    def put(self, name: str, value: int) -> None:
        self.memory.write_u64(self._at(name), value)

    def gprs(self) -> list[int]:
        return list(self.memory.read_u64s(self._at("gprs"), 31))

    def set_gprs(self, values: list[int] | tuple[int, ...]) -> None:
        self.memory.write_u64s(self._at("gprs"), values)

    def regs(self, names: list[str]) -> dict[str, int]:
        return {n: self.get(n) for n in names}

    def set_regs(self, values: dict[str, int]) -> None:
        for name, value in values.items():
            self.put(name, value)

    def blob(self) -> bytes:
        return self.memory.read(self.base, L.CONTEXT.size)

    def load_blob(self, data: bytes) -> None:
        self.memory.write(self.base, data)

    def clear(self) -> None:
        self.memory.zero(self.base, L.CONTEXT.size)


def ns_context(memory: GuestMemory, carveout_base: int, cpu: int) -> CpuContext:
    return CpuContext(memory, carveout_base + L.CARVEOUT_PERCPU_OFFSET + cpu * L.PERCPU_SIZE
                      + L.PERCPU["ns_ctx"])


def realm_context(memory: GuestMemory, carveout_base: int, cpu: int) -> CpuContext:
    return CpuContext(memory, carveout_base + L.CARVEOUT_PERCPU_OFFSET + cpu * L.PERCPU_SIZE
                      + L.PERCPU["realm_ctx"])
