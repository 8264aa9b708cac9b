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
    PAUTH = 0x09
    LS64 = 0x0A
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
    Ec.PAUTH: "pointer authentication trapped",
    Ec.LS64: "LD64B/ST64B trapped",
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


EC_MASK = 0x3F << EC_SHIFT

# Fault status codes that only a stage-2 walk reports to EL2 with HPFAR_EL2
# valid: translation, access flag and permission faults at levels 0..3.
_STAGE2_FAULT_KINDS = (FSC_TRANSLATION_L0, FSC_ACCESS_FLAG_L0, FSC_PERMISSION_L0)


def ec_of(esr: int) -> int:
    return (esr >> EC_SHIFT) & 0x3F


def fsc_is_stage2_fault(fsc: int) -> bool:
    """A translation, access flag or permission fault (levels 0..3)."""
    return (fsc & ~3) in _STAGE2_FAULT_KINDS


def translation_fault(level: int) -> int:
    """The DFSC/IFSC of a translation fault at `level` (0..3)."""
    return FSC_TRANSLATION_L0 + level


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

    @property
    def access_mask(self) -> int:
        return (1 << (8 * self.size)) - 1

    def loaded_value(self, value: int) -> int:
        """What a load of `value` leaves in its target register: the access size
        taken, sign-extended if SSE, and limited to 32 bits for a W register (SF = 0)."""
        value &= self.access_mask
        bits = 8 * self.size
        if self.sign_extend and value >> (bits - 1):
            value -= 1 << bits
        return value & (0xFFFF_FFFF_FFFF_FFFF if self.sixty_four else 0xFFFF_FFFF)


# HPFAR_EL2 (Arm ARM D24.2.60): FIPA[43:4] holds IPA[51:12] of a stage-2 fault.
HPFAR_FIPA_SHIFT = 4
HPFAR_FIPA_MASK = ((1 << 40) - 1) << HPFAR_FIPA_SHIFT
PAGE_OFFSET_MASK = 0xFFF


def hpfar_of_ipa(ipa: int) -> int:
    return ((ipa >> 12) << HPFAR_FIPA_SHIFT) & HPFAR_FIPA_MASK


def fault_ipa(hpfar: int, far: int) -> int:
    """The faulting IPA: the page from HPFAR_EL2, the offset from FAR_EL2."""
    return ((hpfar & HPFAR_FIPA_MASK) >> HPFAR_FIPA_SHIFT << 12) | (far & PAGE_OFFSET_MASK)


# ISS of a trapped MSR, MRS or system instruction (EC 0x18, D24.2.56)
SYSREG_READ = 1 << 0
"""Direction: 1 = MRS (read), 0 = MSR (write)."""
SYSREG_CRM_SHIFT = 1
SYSREG_RT_SHIFT = 5
SYSREG_CRN_SHIFT = 10
SYSREG_OP1_SHIFT = 14
SYSREG_OP2_SHIFT = 17
SYSREG_OP0_SHIFT = 20
XZR = 31
"""Register number 31 in a load/store or MRS/MSR names the zero register."""

SysregEncoding = tuple[int, int, int, int, int]
"""(op0, op1, CRn, CRm, op2)."""


@dataclass(frozen=True)
class SysregAccess:
    """A trapped MRS/MSR: the register's encoding, the GPR and the direction."""

    op0: int
    op1: int
    crn: int
    crm: int
    op2: int
    rt: int
    read: bool

    @classmethod
    def decode(cls, esr: int) -> SysregAccess:
        return cls(op0=(esr >> SYSREG_OP0_SHIFT) & 3, op1=(esr >> SYSREG_OP1_SHIFT) & 7,
                   crn=(esr >> SYSREG_CRN_SHIFT) & 0xF, crm=(esr >> SYSREG_CRM_SHIFT) & 0xF,
                   op2=(esr >> SYSREG_OP2_SHIFT) & 7, rt=(esr >> SYSREG_RT_SHIFT) & 0x1F,
                   read=bool(esr & SYSREG_READ))

    @property
    def encoding(self) -> SysregEncoding:
        return (self.op0, self.op1, self.crn, self.crm, self.op2)

    def iss(self) -> int:
        return ((self.op0 << SYSREG_OP0_SHIFT) | (self.op1 << SYSREG_OP1_SHIFT)
                | (self.crn << SYSREG_CRN_SHIFT) | (self.crm << SYSREG_CRM_SHIFT)
                | (self.op2 << SYSREG_OP2_SHIFT) | (self.rt << SYSREG_RT_SHIFT)
                | (SYSREG_READ if self.read else 0))


# ISS of a trapped WFI/WFE (EC 0x01): TI[1:0]
WFX_TI_MASK = 0b11
WFX_TI_WFE = 0b01
"""TI bit 0: 0 = WFI or WFIT, 1 = WFE or WFET."""

# ISS of an SError (EC 0x2F)
SERROR_IDS = 1 << 24
SERROR_AET_SHIFT = 10

# ISS of HVC/SMC (EC 0x16/0x17): the immediate
HVC_SMC_IMM_MASK = 0xFFFF


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
