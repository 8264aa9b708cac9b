"""The realm's EL1 timers while the host has control of their interrupts.

A realm's virtual and physical EL1 timers raise physical PPIs that reach
R-EL2 as IRQs, i.e. exits to the host; the host answers by injecting the
matching virtual interrupt through a list register.  So that the realm can
then run and take it, the RMM masks the timer's physical interrupt with
CNTHCTL_EL2.CNTVMASK / CNTPMASK (FEAT_RME: they mask the EL1 timers' outputs
in the Realm security state without changing what the realm reads in
CNTx_CTL_EL0):

- on every realm exit, a timer whose output is asserted (ENABLE, ISTATUS and
  not IMASK) and not yet masked is masked, and the host is told: a trap the
  RMM would have handled inside becomes an RMI_EXIT_IRQ (fact sheet §6.12:
  an IRQ exit whenever a timer's output changed);
- on every entry, a masked timer whose output is no longer asserted (the
  realm disabled or re-armed it) is unmasked.
"""

from __future__ import annotations

from ..arch import el2 as R
from ..arch.timer import output_asserted as asserted
from .rec import Rec

TIMERS = (("CNTV_CTL_EL0", R.CNTHCTL_CNTVMASK), ("CNTP_CTL_EL0", R.CNTHCTL_CNTPMASK))


def mask_on_exit(rec: Rec) -> bool:
    """Mask every newly asserted timer; True if one was (the host must hear of it)."""
    changed = False
    for reg, bit in TIMERS:
        if asserted(rec.context.sysregs.get(reg, 0)) and not rec.timer_mask & bit:
            rec.timer_mask |= bit
            changed = True
    return changed


def unmask_on_entry(rec: Rec) -> None:
    for reg, bit in TIMERS:
        if rec.timer_mask & bit and not asserted(rec.context.sysregs.get(reg, 0)):
            rec.timer_mask &= ~bit
