"""The realm's view of the CPU's feature ID registers.

HCR_EL2.TID3 traps every read of the feature ID space (op0=3, op1=0, CRn=0,
CRm=1..7) to the RMM, which answers from the CPU's real registers
(``RmmConfig.cpu_id_regs``) after applying the realm feature rules:

* features the realm parameters control follow them: SVE (ID_AA64PFR0_EL1.SVE,
  ID_AA64ZFR0_EL1) only with the SVE flag; the PMU (PMUVer, HPMN0, MTPMU) only
  with the PMU flag, and PMCR_EL0.N as the realm's counter count (through
  MDCR_EL2.HPMN); breakpoints and watchpoints (BRPs, WRPs) as configured;
* features the RMM does not virtualise for realms read as absent: EL2 and
  Secure EL2, RME, MPAM, AMU, SME, MTE, GCS, NMI, RNDR trapping, the trace,
  SPE, TRBE, BRBE and PMU-snapshot extensions, LS64, 128-bit system registers,
  LORegions, every ID_AA64MMFR3/MMFR4/PFR2/DFR1/DFR2/AFR/SMFR0/FPFR0 feature,
  and the EL2-only MMFR fields (VMIDBits, VH, XNX, TWED, HCX, NV, FWB, EVT,
  FGT, ECV beyond level 1);
* realms are AArch64-only at EL1 and EL0, so the AArch32 ID registers read as
  zero; the debug architecture is reported as Armv8 and only one
  context-aware breakpoint;
* PARange is the smallest encoding that covers the realm's IPA width, so a
  realm's "physical" addresses are its IPAs;
* everything else (the ISA registers, the rest of MMFR0..2, PFR0's FP,
  AdvSIMD, GIC, RAS, DIT, CSV2/CSV3, EL3, ...) is the CPU's own value, and
  any unallocated encoding reads as zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..arch import idregs as F
from ..arch.idregs import get_field, set_field
from ..arch.sysreg import is_id_group3, sysreg_encoding, sysreg_name
from .realm import Realm

Rule = Callable[[int, Realm], int]


def _zero(*fields: int) -> Callable[[int], int]:
    def clear(value: int) -> int:
        for shift in fields:
            value = set_field(value, shift, 0)
        return value

    return clear


def _pfr0(v: int, realm: Realm) -> int:
    f = F.ID_AA64PFR0_EL1
    v = _zero(f["EL2"], f["SEL2"], f["MPAM"], f["AMU"], f["RME"])(v)
    for el in ("EL0", "EL1"):
        v = set_field(v, f[el], min(get_field(v, f[el]), F.EL_AARCH64_ONLY))
    if not realm.sve_en:
        v = set_field(v, f["SVE"], 0)
    return v


def _keep_only(v: int, fields: Mapping[str, int], kept: tuple[str, ...]) -> int:
    out = 0
    for name in kept:
        out = set_field(out, fields[name], get_field(v, fields[name]))
    return out


def _pfr1(v: int, realm: Realm) -> int:
    return _keep_only(v, F.ID_AA64PFR1_EL1, ("BT", "SSBS", "RAS_frac", "CSV2_frac"))


def _dfr0(v: int, realm: Realm) -> int:
    f = F.ID_AA64DFR0_EL1
    pmu = realm.pmu_en and get_field(v, f["PMUVer"]) not in (0, F.PMUVER_IMPDEF)
    out = _keep_only(v, f, ("DoubleLock",) + (("PMUVer", "MTPMU", "HPMN0") if pmu else ()))
    out = set_field(out, f["DebugVer"], min(get_field(v, f["DebugVer"]), F.DEBUGVER_V8))
    out = set_field(out, f["BRPs"], realm.num_bps)
    out = set_field(out, f["WRPs"], realm.num_wps)
    return out  # CTX_CMPs 0: one context-aware breakpoint


def _zfr0(v: int, realm: Realm) -> int:
    return v if realm.sve_en else 0


def _isar1(v: int, realm: Realm) -> int:
    return set_field(v, F.ID_AA64ISAR1_EL1["LS64"], 0)


def _isar2(v: int, realm: Realm) -> int:
    f = F.ID_AA64ISAR2_EL1
    return _zero(f["SYSREG_128"], f["SYSINSTR_128"])(v)


def _mmfr0(v: int, realm: Realm) -> int:
    f = F.ID_AA64MMFR0_EL1
    parange = min(F.parange_for(realm.s2sz), get_field(v, f["PARange"]))
    v = set_field(v, f["PARange"], parange)
    v = set_field(v, f["FGT"], 0)
    return set_field(v, f["ECV"], min(get_field(v, f["ECV"]), 1))


def _mmfr1(v: int, realm: Realm) -> int:
    f = F.ID_AA64MMFR1_EL1
    return _zero(f["VMIDBits"], f["VH"], f["LO"], f["XNX"], f["TWED"], f["HCX"])(v)


def _mmfr2(v: int, realm: Realm) -> int:
    f = F.ID_AA64MMFR2_EL1
    return _zero(f["NV"], f["FWB"], f["EVT"])(v)


def _same(v: int, realm: Realm) -> int:
    return v


def _none(v: int, realm: Realm) -> int:
    return 0


_RULES: dict[str, Rule] = {
    "ID_AA64PFR0_EL1": _pfr0,
    "ID_AA64PFR1_EL1": _pfr1,
    "ID_AA64PFR2_EL1": _none,
    "ID_AA64ZFR0_EL1": _zfr0,
    "ID_AA64SMFR0_EL1": _none,
    "ID_AA64FPFR0_EL1": _none,
    "ID_AA64DFR0_EL1": _dfr0,
    "ID_AA64DFR1_EL1": _none,
    "ID_AA64DFR2_EL1": _none,
    "ID_AA64AFR0_EL1": _none,
    "ID_AA64AFR1_EL1": _none,
    "ID_AA64ISAR0_EL1": _same,
    "ID_AA64ISAR1_EL1": _isar1,
    "ID_AA64ISAR2_EL1": _isar2,
    "ID_AA64ISAR3_EL1": _same,
    "ID_AA64MMFR0_EL1": _mmfr0,
    "ID_AA64MMFR1_EL1": _mmfr1,
    "ID_AA64MMFR2_EL1": _mmfr2,
    "ID_AA64MMFR3_EL1": _none,
    "ID_AA64MMFR4_EL1": _none,
}
"""Every ID register a realm reads; anything else in the TID3 space (the AArch32
registers and unallocated encodings) reads as zero."""


def realm_pmcr_el0(cpu_id_regs: Mapping[str, int], realm: Realm) -> int:
    """PMCR_EL0 as the realm reads it: N is its number of event counters."""
    pmcr = cpu_id_regs.get("pmcr_el0", 0) & ~F.PMCR_EL0_N_MASK
    n = realm.pmu_num_ctrs if realm.pmu_en else 0
    return pmcr | (n << F.PMCR_EL0_N_SHIFT)


def realm_id_value(cpu_id_regs: Mapping[str, int], realm: Realm, name: str) -> int:
    """The value the realm reads from the ID register `name` (any case, or a
    generic S3_0_C0_Cm_n name).  Also answers "PMCR_EL0" (the realm's view,
    provided by MDCR_EL2.HPMN rather than a trap) and "MIDR_EL1" (VPIDR_EL2)."""
    canonical = sysreg_name(sysreg_encoding(name))
    if canonical == "PMCR_EL0":
        return realm_pmcr_el0(cpu_id_regs, realm)
    if canonical == "MIDR_EL1":
        return cpu_id_regs.get("midr_el1", 0)
    rule = _RULES.get(canonical)
    if rule is None:
        if not is_id_group3(sysreg_encoding(canonical)):
            raise KeyError(f"{name} is not a feature ID register")
        return 0
    return rule(cpu_id_regs.get(canonical.lower(), 0), realm)
