"""Exception syndrome decoding (Arm ARM D24.2 "ESR_ELx"): exception classes
and the data/instruction abort ISS fields the RMM and the reports need."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

EC_SHIFT = 26
IL = 1 << 25
ISS_MASK = (1 << 25) - 1


class Ec(IntEnum):
    UNKNOWN = 0x00
    WFX = 0x01
    FP_ASIMD = 0x07
    ILLEGAL_STATE = 0x0E
    SVC64 = 0x15
    HVC64 = 0x16
    SMC64 = 0x17
    SYSREG = 0x18
    SVE = 0x19
    SME = 0x1D
    GPC = 0x1E
    IABT_LOWER = 0x20
    IABT_CURRENT = 0x21
    PC_ALIGNMENT = 0x22
    DABT_LOWER = 0x24
    DABT_CURRENT = 0x25
    SP_ALIGNMENT = 0x26
    SERROR = 0x2F
    BREAKPOINT_LOWER = 0x30
    STEP_LOWER = 0x32
    WATCHPOINT_LOWER = 0x34
    BRK64 = 0x3C


_EC_TEXT = {
    Ec.UNKNOWN: "unknown reason (undefined instruction)",
    Ec.WFX: "WFI/WFE trapped",
    Ec.FP_ASIMD: "FP/SIMD access trapped",
    Ec.ILLEGAL_STATE: "illegal execution state",
    Ec.SVC64: "SVC",
    Ec.HVC64: "HVC",
    Ec.SMC64: "SMC",
    Ec.SYSREG: "system register access trapped",
    Ec.SVE: "SVE access trapped",
    Ec.SME: "SME access trapped",
    Ec.GPC: "granule protection check fault",
    Ec.IABT_LOWER: "instruction abort from a lower EL",
    Ec.IABT_CURRENT: "instruction abort",
    Ec.PC_ALIGNMENT: "PC alignment fault",
    Ec.DABT_LOWER: "data abort from a lower EL",
    Ec.DABT_CURRENT: "data abort",
    Ec.SP_ALIGNMENT: "SP alignment fault",
    Ec.SERROR: "SError",
    Ec.BREAKPOINT_LOWER: "breakpoint",
    Ec.STEP_LOWER: "software step",
    Ec.WATCHPOINT_LOWER: "watchpoint",
    Ec.BRK64: "BRK instruction",
}

# Data abort ISS (Arm ARM D24.2.40 "ISS encoding for an exception from a Data Abort")
DABT_ISV = 1 << 24
DABT_SAS_SHIFT = 22
DABT_SSE = 1 << 21
DABT_SRT_SHIFT = 16
DABT_SF = 1 << 15
DABT_AR = 1 << 14
DABT_FNV = 1 << 10
DABT_EA = 1 << 9
DABT_S1PTW = 1 << 7
DABT_WNR = 1 << 6
FSC_MASK = 0x3F

# Fault status codes (DFSC/IFSC)
FSC_TRANSLATION_L0 = 0x04
FSC_ACCESS_FLAG_L0 = 0x08
FSC_PERMISSION_L0 = 0x0C
FSC_SYNC_EXTERNAL = 0x10
FSC_GPF_ON_WALK_L0 = 0x24
FSC_GPF = 0x28


def ec_of(esr: int) -> int:
    return (esr >> EC_SHIFT) & 0x3F


def make(ec: int, iss: int, il: bool = True) -> int:
    return (ec << EC_SHIFT) | (IL if il else 0) | (iss & ISS_MASK)


@dataclass(frozen=True)
class DataAbort:
    """The fields of a data abort syndrome that say what the access was."""

    isv: bool
    size: int
    """Access size in bytes (valid when isv)."""
    sign_extend: bool
    register: int
    """Xt of the load/store (valid when isv; 31 means XZR)."""
    sixty_four: bool
    write: bool
    fsc: int
    s1ptw: bool

    @classmethod
    def decode(cls, esr: int) -> DataAbort:
        return cls(isv=bool(esr & DABT_ISV), size=1 << ((esr >> DABT_SAS_SHIFT) & 3),
                   sign_extend=bool(esr & DABT_SSE), register=(esr >> DABT_SRT_SHIFT) & 0x1F,
                   sixty_four=bool(esr & DABT_SF), write=bool(esr & DABT_WNR),
                   fsc=esr & FSC_MASK, s1ptw=bool(esr & DABT_S1PTW))


def fsc_text(fsc: int) -> str:
    level = fsc & 3
    kind = fsc & ~3
    names = {0x04: "translation fault", 0x08: "access flag fault", 0x0C: "permission fault",
             0x24: "granule protection fault on walk"}
    if fsc == FSC_SYNC_EXTERNAL:
        return "synchronous external abort"
    if fsc == FSC_GPF:
        return "granule protection fault"
    if kind in names:
        return f"{names[kind]}, level {level}"
    return f"fault status {fsc:#04x}"


def describe(esr: int) -> str:
    ec = ec_of(esr)
    try:
        text = _EC_TEXT[Ec(ec)]
    except (ValueError, KeyError):
        text = f"exception class {ec:#04x}"
    if ec in (Ec.DABT_LOWER, Ec.DABT_CURRENT, Ec.IABT_LOWER, Ec.IABT_CURRENT):
        da = DataAbort.decode(esr)
        text += f" ({fsc_text(da.fsc)}"
        if ec in (Ec.DABT_LOWER, Ec.DABT_CURRENT):
            text += ", write" if da.write else ", read"
        text += ")"
    return f"{text} [EC {ec:#04x}]"
