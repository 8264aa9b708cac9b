"""SMCs from a realm: RSI, PSCI and the SMCCC calls the RMM answers itself.

Anything else gets SMC_UNKNOWN (-1) without an exit, as does
SMCCC_ARCH_FEATURES (fact sheet section 1: the RMM advertises no SMCCC
architecture features or workarounds to realms).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..arch.aarch64 import INSTRUCTION_SIZE
from .abi import (
    SMC_UNKNOWN,
    SMCCC_ARCH_FEATURES_FID,
    SMCCC_FID_MASK,
    SMCCC_SVE_HINT,
    SMCCC_VERSION_FID,
    SMCCC_VERSION_VALUE,
    is_psci_fid,
)
from .exits import SmcResult, done
from .psci import handle_psci
from .rec import Rec
from .rsi import RSI_HANDLERS

if TYPE_CHECKING:
    from .rmm import Rmm

RESULT_REGS = 4
"""Handled calls return X0..X3; the registers a call does not define read as 0."""


def realm_smc_fid(x0: int) -> int:
    """The function ID: W0 without the SMCCC v1.3 SVE hint."""
    return x0 & SMCCC_FID_MASK & ~SMCCC_SVE_HINT


def handle_realm_smc(rmm: Rmm, rec: Rec) -> SmcResult:
    x = rec.context.gprs
    fid = realm_smc_fid(x[0])
    handler = RSI_HANDLERS.get(fid)
    if handler is not None:
        return handler(rmm, rec, x)
    if is_psci_fid(fid):
        return handle_psci(rec, fid, x)
    if fid == SMCCC_VERSION_FID:
        return done("SMCCC_VERSION", SMCCC_VERSION_VALUE)
    if fid == SMCCC_ARCH_FEATURES_FID:
        return done("SMCCC_ARCH_FEATURES", SMC_UNKNOWN)
    return done(f"unknown SMC {fid:#010x}", SMC_UNKNOWN)


def apply_result(rec: Rec, result: SmcResult) -> None:
    """Write the call's results into the REC's registers and step over the SMC."""
    ctx = rec.context
    if result.regs is not None:
        regs = [int(r) & 0xFFFF_FFFF_FFFF_FFFF for r in result.regs]
        regs += [0] * (RESULT_REGS - len(regs))
        ctx.gprs[: len(regs)] = regs
    if result.advance:
        ctx.pc += INSTRUCTION_SIZE
