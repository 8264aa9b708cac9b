"""EL2 control registers the RMM programs for a realm (Arm ARM D23.2),
in their E2H = 0 (non-VHE) layout."""

from __future__ import annotations

# HCR_EL2
HCR_VM = 1 << 0
HCR_SWIO = 1 << 1
HCR_FMO = 1 << 3
HCR_IMO = 1 << 4
HCR_AMO = 1 << 5
HCR_FB = 1 << 9
HCR_BSU_SHIFT = 10
HCR_BSU_INNER_SHAREABLE = 0b01 << HCR_BSU_SHIFT
HCR_TWI = 1 << 13
HCR_TWE = 1 << 14
HCR_TID1 = 1 << 16
HCR_TID3 = 1 << 18
HCR_TSC = 1 << 19
HCR_TIDCP = 1 << 20
HCR_TACR = 1 << 21
HCR_TGE = 1 << 27
HCR_RW = 1 << 31
HCR_E2H = 1 << 34
HCR_TLOR = 1 << 35
HCR_TERR = 1 << 36
HCR_TEA = 1 << 37
HCR_APK = 1 << 40
HCR_API = 1 << 41

# VTCR_EL2
VTCR_T0SZ_SHIFT = 0
VTCR_SL0_SHIFT = 6
VTCR_IRGN0_SHIFT = 8
VTCR_ORGN0_SHIFT = 10
VTCR_SH0_SHIFT = 12
VTCR_TG0_SHIFT = 14
VTCR_PS_SHIFT = 16
VTCR_VS = 1 << 19
VTCR_RES1 = 1 << 31
VTCR_DS = 1 << 32
"""FEAT_LPA2: 52-bit descriptors (OA[51:50] in [9:8], no SH field)."""
VTCR_SL2 = 1 << 33
"""With DS = 1 and SL0 = 0b00: the walk starts at level -1."""
CACHE_WB_RA_WA = 0b01
SH_INNER_SHAREABLE = 0b11
TG0_4K = 0b00


def vtcr_sl0(start_level: int) -> int:
    """VTCR_EL2.SL0 for a 4 KiB granule: 0b10 level 0, 0b01 level 1, 0b00 level 2
    (and level -1 with SL2 = 1, see vtcr_start_level)."""
    if not 0 <= start_level <= 2:
        raise ValueError(f"stage-2 starting level {start_level} has no SL0 encoding")
    return 2 - start_level


def vtcr_start_level(start_level: int) -> int:
    """The VTCR_EL2 bits (SL0, SL2) that start a 4 KiB walk at `start_level`
    (-1 needs DS = 1; AArch64.S2StartLevel)."""
    if start_level == -1:
        return VTCR_SL2
    return vtcr_sl0(start_level) << VTCR_SL0_SHIFT


# VTTBR_EL2
VTTBR_VMID_SHIFT = 48
VTTBR_BADDR_MASK = ((1 << 48) - 1) & ~1
VTTBR_BADDR_HIGH_SHIFT = 2
"""52-bit table base (DS = 1): BADDR[51:48] are held in VTTBR_EL2[5:2]."""


def vttbr_baddr(table_pa: int, lpa2: bool) -> int:
    """The BADDR bits of VTTBR_EL2 for a starting table at `table_pa`."""
    if lpa2:
        high = (table_pa >> 48) & 0xF
        return (table_pa & VTTBR_BADDR_MASK & ~0x3F) | high << VTTBR_BADDR_HIGH_SHIFT
    return table_pa & VTTBR_BADDR_MASK

# CPTR_EL2 (HCR_EL2.E2H = 0)
HCRX_MSCEN = 1 << 11
"""HCRX_EL2.MSCEn: the FEAT_MOPS memory copy and set instructions are enabled
at EL1 and EL0 (they are UNDEFINED there when it is 0)."""

CPTR_RES1 = 0xFF | (1 << 9) | (1 << 12) | (1 << 13)
"""Bits [7:0], 9, 12 and 13 are RES1 (bit 12 is TSM with FEAT_SME: 1 traps SME)."""
CPTR_TZ = 1 << 8
CPTR_TFP = 1 << 10
CPTR_TSM = 1 << 12
CPTR_TTA = 1 << 20
CPTR_TAM = 1 << 30
CPTR_TCPAC = 1 << 31

# MDCR_EL2
MDCR_HPMN_MASK = 0x1F
MDCR_TPMCR = 1 << 5
MDCR_TPM = 1 << 6
MDCR_HPME = 1 << 7
MDCR_TDE = 1 << 8
MDCR_TDA = 1 << 9
MDCR_TDOSA = 1 << 10
MDCR_TDRA = 1 << 11
MDCR_E2PB_SHIFT = 12
MDCR_TPMS = 1 << 14
MDCR_HPMD = 1 << 17
MDCR_TTRF = 1 << 19
MDCR_HCCD = 1 << 23
MDCR_E2TB_SHIFT = 24

# VMPIDR_EL2 / MPIDR_EL1
MPIDR_RES1 = 1 << 31

# ZCR_EL2
ZCR_LEN_MASK = 0xF

# CNTHCTL_EL2 (HCR_EL2.E2H = 0)
CNTHCTL_EL1PCTEN = 1 << 0
CNTHCTL_EL1PCEN = 1 << 1
CNTHCTL_CNTPMASK = 1 << 18
"""FEAT_RME: mask the EL1 physical timer's interrupt in Realm state."""
CNTHCTL_CNTVMASK = 1 << 19
"""FEAT_RME: mask the EL1 virtual timer's interrupt in Realm state."""
