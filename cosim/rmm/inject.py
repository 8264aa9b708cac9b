"""Exceptions the RMM injects into a realm's EL1: synchronous external aborts
and Undefined Instruction, taken as the architecture would (AArch64.TakeException).
"""

from __future__ import annotations

from ..arch import esr as E
from ..arch.aarch64 import (
    SCTLR_EL1_RESET,
    VECTOR_SYNC,
    el1_exception_pstate,
    el1_vector_base_offset,
    pstate_el,
)
from .exits import Resume
from .rec import Rec

VBAR_EL1_MASK = ~0x7FF & 0xFFFF_FFFF_FFFF_FFFF
"""VBAR_EL1[10:0] are RES0."""
INJECTED_SYSREGS = ("ESR_EL1", "FAR_EL1", "ELR_EL1", "SPSR_EL1")


def take_sync_exception(rec: Rec, esr: int, elr: int, far: int | None) -> tuple[str, ...]:
    """Enter the realm's EL1 synchronous vector with syndrome `esr`; returns the
    EL1 registers written."""
    ctx = rec.context
    s = ctx.sysregs
    s["ESR_EL1"] = esr
    s["ELR_EL1"] = elr
    s["SPSR_EL1"] = ctx.pstate
    changed = ["ESR_EL1", "ELR_EL1", "SPSR_EL1"]
    if far is not None:
        s["FAR_EL1"] = far
        changed.append("FAR_EL1")
    vbar = s.get("VBAR_EL1", 0) & VBAR_EL1_MASK
    ctx.pc = vbar + el1_vector_base_offset(ctx.pstate) + VECTOR_SYNC
    ctx.pstate = el1_exception_pstate(ctx.pstate, s.get("SCTLR_EL1", SCTLR_EL1_RESET))
    return tuple(changed)


def _from_el0(rec: Rec) -> bool:
    return pstate_el(rec.context.pstate) == 0


def inject_data_sea(rec: Rec, esr_el2: int, far: int) -> Resume:
    """A synchronous external abort on the data access that trapped: the
    realm's PC stays at the faulting instruction."""
    ec = E.Ec.DABT_LOWER if _from_el0(rec) else E.Ec.DABT_CURRENT
    esr = E.make(ec, E.FSC_SYNC_EXTERNAL | (esr_el2 & E.DABT_WNR))
    changed = take_sync_exception(rec, esr, rec.context.pc, far)
    return Resume("synchronous external abort injected (data)", changed)


def inject_instruction_sea(rec: Rec, far: int) -> Resume:
    ec = E.Ec.IABT_LOWER if _from_el0(rec) else E.Ec.IABT_CURRENT
    changed = take_sync_exception(rec, E.make(ec, E.FSC_SYNC_EXTERNAL), rec.context.pc, far)
    return Resume("synchronous external abort injected (instruction fetch)", changed)


def inject_undefined(rec: Rec, elr: int, why: str) -> Resume:
    """An Undefined Instruction exception for the instruction at `elr`."""
    changed = take_sync_exception(rec, E.make(E.Ec.UNKNOWN, 0), elr, None)
    return Resume(f"undefined instruction injected ({why})", changed)
