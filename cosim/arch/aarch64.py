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
