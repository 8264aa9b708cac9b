"""The generic timer's control register (Arm ARM "CNTV_CTL_EL0", "CNTP_CTL_EL0")
and the PPIs the virt board wires the EL1 timers to."""

from __future__ import annotations

CNT_CTL_ENABLE = 1 << 0
CNT_CTL_IMASK = 1 << 1
CNT_CTL_ISTATUS = 1 << 2

VIRTUAL_TIMER_PPI = 27
"""INTID of the EL1 virtual timer (Arm BSA; QEMU virt)."""
PHYSICAL_TIMER_PPI = 30
"""INTID of the EL1 physical timer."""


def output_asserted(ctl: int) -> bool:
    """The timer's interrupt output: enabled, condition met, not masked
    (Arm ARM "Operation of the generic timer")."""
    return ctl & (CNT_CTL_ENABLE | CNT_CTL_IMASK | CNT_CTL_ISTATUS) == \
        CNT_CTL_ENABLE | CNT_CTL_ISTATUS
