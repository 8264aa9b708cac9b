"""AArch64 register facts the RMM needs to set up a vCPU (Arm ARM D1, D19)."""

from __future__ import annotations

NUM_GPRS = 31
"""X0..X30."""

PSTATE_MODE_EL1H = 0b0101
PSTATE_F = 1 << 6
PSTATE_I = 1 << 7
PSTATE_A = 1 << 8
PSTATE_D = 1 << 9
PSTATE_EL1H_DAIF_MASKED = PSTATE_MODE_EL1H | PSTATE_F | PSTATE_I | PSTATE_A | PSTATE_D
"""0x3C5: EL1 using SP_EL1, with Debug, SError, IRQ and FIQ masked (reset state)."""

SCTLR_EL1_RES1 = (1 << 11) | (1 << 20) | (1 << 22) | (1 << 23) | (1 << 28) | (1 << 29)
SCTLR_EL1_RESET = SCTLR_EL1_RES1
"""0x30D00800: MMU, caches and alignment checks off, little-endian (EE = 0)."""
SCTLR_EL1_EE = 1 << 25
"""Endianness of EL1 data accesses and stage-1 walks."""

# MPIDR_EL1 affinity fields (as a vCPU's MPIDR_EL1 holds them)
MPIDR_AFF0_SHIFT = 0
MPIDR_AFF1_SHIFT = 8
MPIDR_AFF2_SHIFT = 16
MPIDR_AFF3_SHIFT = 32
MPIDR_AFF_MASK = 0xFF

# -- PSTATE as saved in SPSR_ELx (AArch64), Arm ARM C5.2.19 --------------------------

PSTATE_MODE_MASK = 0b1111
PSTATE_MODE_EL0T = 0b0000
PSTATE_MODE_EL1T = 0b0100
PSTATE_DAIF = PSTATE_D | PSTATE_A | PSTATE_I | PSTATE_F
PSTATE_SSBS = 1 << 12
PSTATE_PAN = 1 << 22
PSTATE_NZCV = 0xF << 28

SCTLR_EL1_SPAN = 1 << 23
"""0: PSTATE.PAN is set on taking an exception to EL1."""
SCTLR_EL1_DSSBS = 1 << 44
"""The value PSTATE.SSBS takes on taking an exception to EL1."""

# Offsets of the exception vectors from VBAR_ELx (Arm ARM D1.3.2)
VECTOR_CURRENT_SP0 = 0x000
VECTOR_CURRENT_SPX = 0x200
VECTOR_LOWER_A64 = 0x400
VECTOR_LOWER_A32 = 0x600
VECTOR_SYNC = 0x000
VECTOR_IRQ = 0x080
VECTOR_FIQ = 0x100
VECTOR_SERROR = 0x180

INSTRUCTION_SIZE = 4


def pstate_el(pstate: int) -> int:
    """The exception level an AArch64 PSTATE/SPSR value describes."""
    return (pstate >> 2) & 0b11


def el1_vector_base_offset(pstate: int) -> int:
    """Which group of EL1 vectors an exception taken to EL1 from `pstate` uses:
    current EL with SP_EL0 (EL1t), current EL with SP_EL1 (EL1h), or lower EL."""
    mode = pstate & PSTATE_MODE_MASK
    if pstate_el(pstate) == 0:
        return VECTOR_LOWER_A64
    return VECTOR_CURRENT_SP0 if mode == PSTATE_MODE_EL1T else VECTOR_CURRENT_SPX


def el1_exception_pstate(pstate: int, sctlr_el1: int) -> int:
    """PSTATE after taking an exception to EL1 (AArch64.TakeException): EL1h with
    D, A, I, F masked; NZCV kept; PAN set unless SCTLR_EL1.SPAN; SSBS from
    SCTLR_EL1.DSSBS; everything else (IL, SS, BTYPE, UAO, ...) cleared."""
    new = (pstate & PSTATE_NZCV) | PSTATE_MODE_EL1H | PSTATE_DAIF
    if not sctlr_el1 & SCTLR_EL1_SPAN:
        new |= PSTATE_PAN
    else:
        new |= pstate & PSTATE_PAN
    if sctlr_el1 & SCTLR_EL1_DSSBS:
        new |= PSTATE_SSBS
    return new
