"""What the platform reports when a realm leaves EL1/EL0, what the RMM answers,
and how RmiRecExit records are built (fact sheet sections 2.11, 4.3, 6.12).

``RealmTrap`` is the platform's report; ``Resume`` and ``RecExitDecision``
are the two answers of ``Rmm.realm_exit``.  The ESR sanitisation masks say
which syndrome bits the host may see for each kind of exit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ..arch import esr as E
from ..arch import gicv3
from ..arch.aarch64 import VECTOR_FIQ, VECTOR_IRQ, VECTOR_SERROR, VECTOR_SYNC
from ..arch.gicv3 import MAX_LIST_REGISTERS
from ..arch.idregs import PMCR_EL0_E
from .abi import PmuOverflowStatus, RecExitReason
from .cmd_rec import HOST_ICH_HCR_BITS
from .rec import Rec
from .structs import RmiRecExit

# -- the platform's report -------------------------------------------------------------


class TrapKind(Enum):
    """Which R-EL2 vector (lower EL, AArch64) the realm's exception arrived at."""

    SYNC = "SYNC"
    IRQ = "IRQ"
    FIQ = "FIQ"
    SERROR = "SERROR"

    @classmethod
    def from_vector_offset(cls, offset: int) -> TrapKind:
        """0x400/0x480/0x500/0x580 (or the offset within a vector group)."""
        return _BY_VECTOR[offset & 0x180]


_BY_VECTOR = {
    VECTOR_SYNC: TrapKind.SYNC,
    VECTOR_IRQ: TrapKind.IRQ,
    VECTOR_FIQ: TrapKind.FIQ,
    VECTOR_SERROR: TrapKind.SERROR,
}


@dataclass(frozen=True)
class RealmTrap:
    """What the CPU reported when the realm left EL1/EL0 for R-EL2.

    The platform has saved the realm's registers into ``rec.context`` and its
    GIC state into ``rec.gic`` before handing this to ``Rmm.realm_exit``."""

    kind: TrapKind
    esr: int = 0
    """ESR_EL2 (SYNC and SERROR)."""
    far: int = 0
    """FAR_EL2 (aborts)."""
    hpfar: int = 0
    """HPFAR_EL2 (stage-2 aborts)."""


# -- the RMM's answers -------------------------------------------------------------------


@dataclass(frozen=True)
class Resume:
    """The realm continues: load ``rec.context`` (GPRs, PC, PSTATE and the
    `sysregs_changed` EL1 registers may have changed) and return to it."""

    reason: str
    """What the RMM did, for traces and debugging (e.g. "RSI_VERSION")."""
    sysregs_changed: tuple[str, ...] = ()
    """EL1 system registers the RMM wrote (an exception was injected)."""


@dataclass(frozen=True)
class RecExitDecision:
    """The REC left for the host.

    The RMM has already written `exit` into the host's RmiRecRun granule
    (``rec.run_pa + 0x800``) and made the REC READY (``rec_enter_complete``).
    The platform restores the host and returns `x0` as RMI_REC_ENTER's X0:
    RMI_SUCCESS, or RMI_ERROR_INPUT if the run granule stopped being Non-secure
    while the realm ran (the exit could not be written)."""

    rec: Rec = field(repr=False)
    exit: RmiRecExit
    x0: int

    @property
    def reason(self) -> RecExitReason:
        return RecExitReason(self.exit.exit_reason)


# -- building exits ------------------------------------------------------------------------

ESR_EMULATABLE_DABT_MASK = (
    E.EC_MASK
    | E.DABT_ISV
    | (0b11 << E.DABT_SAS_SHIFT)
    | E.DABT_SF
    | (0b11 << 11)  # SET
    | E.DABT_FNV
    | E.DABT_EA
    | E.DABT_WNR
    | E.FSC_MASK
)
"""0xFDC09E7F: what the host sees of an emulatable data abort (no SRT, SSE, AR, IL)."""
ESR_NONEMULATABLE_ABORT_MASK = E.EC_MASK | (0b11 << 11) | E.DABT_FNV | E.DABT_EA | E.FSC_MASK
"""0xFC001E3F: EC, SET, FnV, EA and the fault status code."""
ESR_SERROR_MASK = E.SERROR_IDS | (0b111 << E.SERROR_AET_SHIFT) | E.DABT_EA | E.FSC_MASK
"""0x01001E3F: IDS, AET, EA, DFSC (the EC is not reported)."""
ESR_WFX_MASK = E.EC_MASK | 1
"""EC and TI[0] (WFI or WFE)."""
ICH_HCR_EXIT_MASK = gicv3.ICH_HCR_EOICOUNT_MASK | HOST_ICH_HCR_BITS
"""ICH_HCR_EL2 bits reported to the host: EOIcount and the bits it may set."""


def sync_exit(esr: int = 0, far: int = 0, hpfar: int = 0) -> RmiRecExit:
    return RmiRecExit(exit_reason=RecExitReason.SYNC, esr=esr, far=far, hpfar=hpfar)


def emulated_stage2_abort(ipa: int, level: int) -> RmiRecExit:
    """The exit the RMM generates when an RSI call needs a realm page that is
    RIPAS RAM but not mapped: a data abort, translation fault at the level the
    walk stopped, FAR 0, HPFAR = the page (fact sheet 4.3)."""
    return sync_exit(
        esr=(E.Ec.DABT_LOWER << E.EC_SHIFT) | E.translation_fault(level),
        hpfar=E.hpfar_of_ipa(ipa),
    )


def pmu_overflow(rec: Rec) -> PmuOverflowStatus:
    """ACTIVE if the realm's PMU has an enabled counter overflow interrupt pending."""
    if not rec.realm.pmu_en:
        return PmuOverflowStatus.NOT_ACTIVE
    s = rec.context.sysregs
    pending = s.get("PMOVSSET_EL0", 0) & s.get("PMINTENSET_EL1", 0) & s.get("PMCNTENSET_EL0", 0)
    enabled = s.get("PMCR_EL0", 0) & PMCR_EL0_E
    return PmuOverflowStatus.ACTIVE if pending and enabled else PmuOverflowStatus.NOT_ACTIVE


def fill_common(rec: Rec, rec_exit: RmiRecExit, num_lrs: int) -> None:
    """What every exit reports: EL1 timers as the realm sees them, the GIC
    virtual interface and the PMU overflow status."""
    s = rec.context.sysregs
    rec_exit.cntp_ctl = s.get("CNTP_CTL_EL0", 0)
    rec_exit.cntp_cval = s.get("CNTP_CVAL_EL0", 0)
    rec_exit.cntv_ctl = s.get("CNTV_CTL_EL0", 0)
    rec_exit.cntv_cval = s.get("CNTV_CVAL_EL0", 0)
    g = rec.gic
    rec_exit.gicv3_hcr = g.get("ICH_HCR_EL2", 0) & ICH_HCR_EXIT_MASK
    rec_exit.gicv3_lrs = [*map(g.get, LR_NAMES[:num_lrs], _ZEROS), *_ZEROS[num_lrs:]]
    rec_exit.gicv3_misr = g.get("ICH_MISR_EL2", 0)
    rec_exit.gicv3_vmcr = g.get("ICH_VMCR_EL2", 0)
    rec_exit.pmu_ovf_status = pmu_overflow(rec)


def lr_name(index: int) -> str:
    return f"ICH_LR{index}_EL2"


LR_NAMES = tuple(lr_name(i) for i in range(MAX_LIST_REGISTERS))
_ZEROS = (0,) * MAX_LIST_REGISTERS


@dataclass
class SmcResult:
    """The outcome of one SMC from the realm (an RSI, PSCI or SMCCC call)."""

    name: str
    regs: tuple[int, ...] | None = None
    """X0, X1, ... to return (X1..X3 are zeroed when not given); None leaves the
    registers alone (the call completes on the next entry, or is retried)."""
    exit: RmiRecExit | None = None
    """Exit to the host (RIPAS change, host call, PSCI, emulated stage-2 abort)."""
    advance: bool = True
    """Step over the SMC; False re-executes it on the next entry."""


def done(name: str, *regs: int) -> SmcResult:
    """A call the RMM completes at once."""
    return SmcResult(name, tuple(regs))
