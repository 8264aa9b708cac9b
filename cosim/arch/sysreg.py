"""System register encodings (op0, op1, CRn, CRm, op2) and their names (Arm ARM D23).

Only the registers a trapped realm access can name in practice are listed
by name; every other encoding is called ``S<op0>_<op1>_C<n>_C<m>_<op2>``, the
generic assembler spelling.  Names are upper-case, as in the Arm ARM.
"""

from __future__ import annotations

import re

from .esr import SysregEncoding

_NAMED: dict[SysregEncoding, str] = {
    # identification (HCR_EL2.TID3 traps op0=3, op1=0, CRn=0, CRm=1..7)
    (3, 0, 0, 0, 0): "MIDR_EL1",
    (3, 0, 0, 0, 5): "MPIDR_EL1",
    (3, 0, 0, 0, 6): "REVIDR_EL1",
    (3, 0, 0, 1, 0): "ID_PFR0_EL1",
    (3, 0, 0, 1, 1): "ID_PFR1_EL1",
    (3, 0, 0, 1, 2): "ID_DFR0_EL1",
    (3, 0, 0, 1, 3): "ID_AFR0_EL1",
    (3, 0, 0, 1, 4): "ID_MMFR0_EL1",
    (3, 0, 0, 1, 5): "ID_MMFR1_EL1",
    (3, 0, 0, 1, 6): "ID_MMFR2_EL1",
    (3, 0, 0, 1, 7): "ID_MMFR3_EL1",
    (3, 0, 0, 2, 0): "ID_ISAR0_EL1",
    (3, 0, 0, 2, 1): "ID_ISAR1_EL1",
    (3, 0, 0, 2, 2): "ID_ISAR2_EL1",
    (3, 0, 0, 2, 3): "ID_ISAR3_EL1",
    (3, 0, 0, 2, 4): "ID_ISAR4_EL1",
    (3, 0, 0, 2, 5): "ID_ISAR5_EL1",
    (3, 0, 0, 2, 6): "ID_MMFR4_EL1",
    (3, 0, 0, 2, 7): "ID_ISAR6_EL1",
    (3, 0, 0, 3, 0): "MVFR0_EL1",
    (3, 0, 0, 3, 1): "MVFR1_EL1",
    (3, 0, 0, 3, 2): "MVFR2_EL1",
    (3, 0, 0, 3, 4): "ID_PFR2_EL1",
    (3, 0, 0, 3, 5): "ID_DFR1_EL1",
    (3, 0, 0, 3, 6): "ID_MMFR5_EL1",
    (3, 0, 0, 4, 0): "ID_AA64PFR0_EL1",
    (3, 0, 0, 4, 1): "ID_AA64PFR1_EL1",
    (3, 0, 0, 4, 2): "ID_AA64PFR2_EL1",
    (3, 0, 0, 4, 4): "ID_AA64ZFR0_EL1",
    (3, 0, 0, 4, 5): "ID_AA64SMFR0_EL1",
    (3, 0, 0, 4, 7): "ID_AA64FPFR0_EL1",
    (3, 0, 0, 5, 0): "ID_AA64DFR0_EL1",
    (3, 0, 0, 5, 1): "ID_AA64DFR1_EL1",
    (3, 0, 0, 5, 2): "ID_AA64DFR2_EL1",
    (3, 0, 0, 5, 4): "ID_AA64AFR0_EL1",
    (3, 0, 0, 5, 5): "ID_AA64AFR1_EL1",
    (3, 0, 0, 6, 0): "ID_AA64ISAR0_EL1",
    (3, 0, 0, 6, 1): "ID_AA64ISAR1_EL1",
    (3, 0, 0, 6, 2): "ID_AA64ISAR2_EL1",
    (3, 0, 0, 6, 3): "ID_AA64ISAR3_EL1",
    (3, 0, 0, 7, 0): "ID_AA64MMFR0_EL1",
    (3, 0, 0, 7, 1): "ID_AA64MMFR1_EL1",
    (3, 0, 0, 7, 2): "ID_AA64MMFR2_EL1",
    (3, 0, 0, 7, 3): "ID_AA64MMFR3_EL1",
    (3, 0, 0, 7, 4): "ID_AA64MMFR4_EL1",
    (3, 1, 0, 0, 0): "CCSIDR_EL1",
    (3, 1, 0, 0, 1): "CLIDR_EL1",
    (3, 1, 0, 0, 4): "GMID_EL1",
    (3, 1, 0, 0, 7): "AIDR_EL1",
    (3, 2, 0, 0, 0): "CSSELR_EL1",
    (3, 3, 0, 0, 1): "CTR_EL0",
    (3, 3, 0, 0, 7): "DCZID_EL0",
    # system control
    (3, 0, 1, 0, 0): "SCTLR_EL1",
    (3, 0, 1, 0, 1): "ACTLR_EL1",
    (3, 0, 1, 0, 2): "CPACR_EL1",
    (3, 0, 1, 2, 1): "TRFCR_EL1",
    (3, 0, 13, 0, 7): "SCXTNUM_EL1",
    (3, 3, 13, 0, 7): "SCXTNUM_EL0",
    # RAS error records (HCR_EL2.TERR)
    (3, 0, 5, 3, 0): "ERRIDR_EL1",
    (3, 0, 5, 3, 1): "ERRSELR_EL1",
    (3, 0, 5, 4, 0): "ERXFR_EL1",
    (3, 0, 5, 4, 1): "ERXCTLR_EL1",
    (3, 0, 5, 4, 2): "ERXSTATUS_EL1",
    (3, 0, 5, 4, 3): "ERXADDR_EL1",
    (3, 0, 5, 5, 0): "ERXMISC0_EL1",
    (3, 0, 5, 5, 1): "ERXMISC1_EL1",
    # LORegions (HCR_EL2.TLOR)
    (3, 0, 10, 4, 0): "LORSA_EL1",
    (3, 0, 10, 4, 1): "LOREA_EL1",
    (3, 0, 10, 4, 2): "LORN_EL1",
    (3, 0, 10, 4, 3): "LORC_EL1",
    (3, 0, 10, 4, 7): "LORID_EL1",
    # GICv3 CPU interface
    (3, 0, 4, 6, 0): "ICC_PMR_EL1",
    (3, 0, 12, 11, 1): "ICC_DIR_EL1",
    (3, 0, 12, 11, 3): "ICC_RPR_EL1",
    (3, 0, 12, 11, 5): "ICC_SGI1R_EL1",
    (3, 1, 12, 11, 6): "ICC_ASGI1R_EL1",
    (3, 2, 12, 11, 7): "ICC_SGI0R_EL1",
    # PMU
    (3, 3, 9, 12, 0): "PMCR_EL0",
    (3, 3, 9, 12, 1): "PMCNTENSET_EL0",
    (3, 3, 9, 12, 2): "PMCNTENCLR_EL0",
    (3, 3, 9, 12, 3): "PMOVSCLR_EL0",
    (3, 3, 9, 12, 4): "PMSWINC_EL0",
    (3, 3, 9, 12, 5): "PMSELR_EL0",
    (3, 3, 9, 12, 6): "PMCEID0_EL0",
    (3, 3, 9, 12, 7): "PMCEID1_EL0",
    (3, 3, 9, 13, 0): "PMCCNTR_EL0",
    (3, 3, 9, 13, 1): "PMXEVTYPER_EL0",
    (3, 3, 9, 13, 2): "PMXEVCNTR_EL0",
    (3, 3, 9, 14, 0): "PMUSERENR_EL0",
    (3, 0, 9, 14, 1): "PMINTENSET_EL1",
    (3, 0, 9, 14, 2): "PMINTENCLR_EL1",
    (3, 3, 9, 14, 3): "PMOVSSET_EL0",
    (3, 3, 14, 15, 7): "PMCCFILTR_EL0",
    # debug
    (2, 0, 0, 2, 2): "MDSCR_EL1",
    (2, 0, 1, 0, 0): "MDRAR_EL1",
    (2, 0, 1, 0, 4): "OSLAR_EL1",
    (2, 0, 1, 1, 4): "OSLSR_EL1",
    (2, 0, 1, 3, 4): "OSDLR_EL1",
    (2, 3, 0, 1, 0): "MDCCSR_EL0",
    (2, 3, 0, 4, 0): "DBGDTR_EL0",
    (2, 0, 7, 8, 6): "DBGCLAIMSET_EL1",
    (2, 0, 7, 9, 6): "DBGCLAIMCLR_EL1",
    (2, 0, 7, 14, 6): "DBGAUTHSTATUS_EL1",
    # generic timer
    (3, 3, 14, 0, 0): "CNTFRQ_EL0",
    (3, 3, 14, 2, 1): "CNTP_CTL_EL0",
    (3, 3, 14, 2, 2): "CNTP_CVAL_EL0",
    (3, 3, 14, 3, 1): "CNTV_CTL_EL0",
    (3, 3, 14, 3, 2): "CNTV_CVAL_EL0",
}
for _n in range(16):
    _NAMED[(2, 0, 0, _n, 4)] = f"DBGBVR{_n}_EL1"
    _NAMED[(2, 0, 0, _n, 5)] = f"DBGBCR{_n}_EL1"
    _NAMED[(2, 0, 0, _n, 6)] = f"DBGWVR{_n}_EL1"
    _NAMED[(2, 0, 0, _n, 7)] = f"DBGWCR{_n}_EL1"

_BY_NAME = {name: enc for enc, name in _NAMED.items()}
_GENERIC = re.compile(r"^S([0-3])_([0-7])_C(\d+)_C(\d+)_([0-7])$")

ICC_DIR_EL1 = _BY_NAME["ICC_DIR_EL1"]
ICC_SGI1R_EL1 = _BY_NAME["ICC_SGI1R_EL1"]
ICC_ASGI1R_EL1 = _BY_NAME["ICC_ASGI1R_EL1"]
ICC_SGI0R_EL1 = _BY_NAME["ICC_SGI0R_EL1"]


def sysreg_name(encoding: SysregEncoding) -> str:
    """The register's architectural name, or its generic S<op0>_<op1>_C<n>_C<m>_<op2> name."""
    name = _NAMED.get(encoding)
    if name is not None:
        return name
    op0, op1, crn, crm, op2 = encoding
    return f"S{op0}_{op1}_C{crn}_C{crm}_{op2}"


def sysreg_encoding(name: str) -> SysregEncoding:
    """The encoding of a register name (any case) or of a generic S..._C.._C.._. name."""
    upper = name.upper()
    enc = _BY_NAME.get(upper)
    if enc is not None:
        return enc
    m = _GENERIC.match(upper)
    if m is None or int(m.group(3)) > 15 or int(m.group(4)) > 15:
        raise KeyError(f"unknown system register {name!r}")
    op0, op1, crn, crm, op2 = (int(g) for g in m.groups())
    return (op0, op1, crn, crm, op2)


def is_id_group3(encoding: SysregEncoding) -> bool:
    """The feature ID space HCR_EL2.TID3 traps: op0=3, op1=0, CRn=0, CRm=1..7."""
    op0, op1, crn, crm, _ = encoding
    return op0 == 3 and op1 == 0 and crn == 0 and 1 <= crm <= 7
