"""Feature ID register fields (Arm ARM D23.2): where each 4-bit field sits.

Pure layout facts; which values a realm may see is RMM policy
(``cosim.rmm.id_regs``).  Every field listed here is 4 bits wide.
"""

from __future__ import annotations

FIELD_WIDTH = 4

ID_AA64PFR0_EL1 = {
    "EL0": 0,
    "EL1": 4,
    "EL2": 8,
    "EL3": 12,
    "FP": 16,
    "AdvSIMD": 20,
    "GIC": 24,
    "RAS": 28,
    "SVE": 32,
    "SEL2": 36,
    "MPAM": 40,
    "AMU": 44,
    "DIT": 48,
    "RME": 52,
    "CSV2": 56,
    "CSV3": 60,
}
ID_AA64PFR1_EL1 = {
    "BT": 0,
    "SSBS": 4,
    "MTE": 8,
    "RAS_frac": 12,
    "MPAM_frac": 16,
    "SME": 24,
    "RNDR_trap": 28,
    "CSV2_frac": 32,
    "NMI": 36,
    "MTE_frac": 40,
    "GCS": 44,
    "THE": 48,
    "MTEX": 52,
    "DF2": 56,
    "PFAR": 60,
}
ID_AA64DFR0_EL1 = {
    "DebugVer": 0,
    "TraceVer": 4,
    "PMUVer": 8,
    "BRPs": 12,
    "PMSS": 16,
    "WRPs": 20,
    "SEBEP": 24,
    "CTX_CMPs": 28,
    "PMSVer": 32,
    "DoubleLock": 36,
    "TraceFilt": 40,
    "TraceBuffer": 44,
    "MTPMU": 48,
    "BRBE": 52,
    "ExtTrcBuff": 56,
    "HPMN0": 60,
}
ID_AA64ISAR1_EL1 = {
    "DPB": 0,
    "APA": 4,
    "API": 8,
    "JSCVT": 12,
    "FCMA": 16,
    "LRCPC": 20,
    "GPA": 24,
    "GPI": 28,
    "FRINTTS": 32,
    "SB": 36,
    "SPECRES": 40,
    "BF16": 44,
    "DGH": 48,
    "I8MM": 52,
    "XS": 56,
    "LS64": 60,
}
ID_AA64ISAR2_EL1 = {
    "WFxT": 0,
    "RPRES": 4,
    "GPA3": 8,
    "APA3": 12,
    "MOPS": 16,
    "BC": 20,
    "PAC_frac": 24,
    "CLRBHB": 28,
    "SYSREG_128": 32,
    "SYSINSTR_128": 36,
    "PRFMSLC": 40,
    "PCDPHINT": 44,
    "RPRFM": 48,
    "CSSC": 52,
    "LUT": 56,
    "ATS1A": 60,
}
ID_AA64MMFR0_EL1 = {
    "PARange": 0,
    "ASIDBits": 4,
    "BigEnd": 8,
    "SNSMem": 12,
    "BigEndEL0": 16,
    "TGran16": 20,
    "TGran64": 24,
    "TGran4": 28,
    "TGran16_2": 32,
    "TGran64_2": 36,
    "TGran4_2": 40,
    "ExS": 44,
    "FGT": 56,
    "ECV": 60,
}
ID_AA64MMFR1_EL1 = {
    "HAFDBS": 0,
    "VMIDBits": 4,
    "VH": 8,
    "HPDS": 12,
    "LO": 16,
    "PAN": 20,
    "SpecSEI": 24,
    "XNX": 28,
    "TWED": 32,
    "ETS": 36,
    "HCX": 40,
    "AFP": 44,
    "nTLBPA": 48,
    "TIDCP1": 52,
    "CMOW": 56,
    "ECBHB": 60,
}
ID_AA64MMFR2_EL1 = {
    "CnP": 0,
    "UAO": 4,
    "LSM": 8,
    "IESB": 12,
    "VARange": 16,
    "CCIDX": 20,
    "NV": 24,
    "ST": 28,
    "AT": 32,
    "IDS": 36,
    "FWB": 40,
    "TTL": 48,
    "BBM": 52,
    "EVT": 56,
    "E0PD": 60,
}

PMCR_EL0_E = 1 << 0
PMCR_EL0_N_SHIFT = 11
PMCR_EL0_N_MASK = 0x1F << PMCR_EL0_N_SHIFT

PMUVER_IMPDEF = 0xF
"""ID_AA64DFR0_EL1.PMUVer 0b1111: an IMPLEMENTATION DEFINED PMU, not PMUv3."""
PMUVER_V3P1 = 4
PMUVER_V3P5 = 6
DEBUGVER_V8 = 6

EL_AARCH64_ONLY = 1
"""ID_AA64PFR0_EL1.EL0/EL1 = 0b0001: AArch64 only at that exception level."""

TGRAN4_LPA2 = 0b0001
"""ID_AA64MMFR0_EL1.TGran4: 4 KiB granule with 52-bit addresses (FEAT_LPA2)."""
TGRAN4_2_AS_STAGE1 = 0b0000
TGRAN4_2_LPA2 = 0b0011
"""ID_AA64MMFR0_EL1.TGran4_2: stage 2 support as TGran4 says, or 4 KiB stage 2
with 52-bit addresses."""


def stage2_has_lpa2(mmfr0: int) -> bool:
    """Whether a 4 KiB-granule stage 2 can use 52-bit descriptors (VTCR_EL2.DS)."""
    tgran4_2 = get_field(mmfr0, ID_AA64MMFR0_EL1["TGran4_2"])
    if tgran4_2 == TGRAN4_2_AS_STAGE1:
        return get_field(mmfr0, ID_AA64MMFR0_EL1["TGran4"]) == TGRAN4_LPA2
    return tgran4_2 == TGRAN4_2_LPA2


PARANGE_BITS = {0: 32, 1: 36, 2: 40, 3: 42, 4: 44, 5: 48, 6: 52}
"""ID_AA64MMFR0_EL1.PARange (and VTCR_EL2.PS / TCR_ELx.IPS) encodings."""


def get_field(value: int, shift: int) -> int:
    return (value >> shift) & ((1 << FIELD_WIDTH) - 1)


def set_field(value: int, shift: int, field: int) -> int:
    mask = ((1 << FIELD_WIDTH) - 1) << shift
    return (value & ~mask) | ((field << shift) & mask)


def parange_for(bits: int) -> int:
    """The smallest PARange encoding covering `bits` address bits."""
    for enc, width in sorted(PARANGE_BITS.items()):
        if width >= bits:
            return enc
    raise ValueError(f"no PARange encoding covers {bits} bits")
