"""RECs (Realm Execution Contexts): one vCPU of a realm, as plain data.

The realm-execution code loads ``Rec.context`` into the CPU on entry and saves
it back on exit; it mutates a REC's attributes only while the REC is RUNNING
(it owns it then) or while holding ``rec.realm.lock``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ..arch.aarch64 import (
    MPIDR_AFF1_SHIFT,
    MPIDR_AFF2_SHIFT,
    MPIDR_AFF3_SHIFT,
    MPIDR_AFF_MASK,
    NUM_GPRS,
    PSTATE_EL1H_DAIF_MASKED,
    SCTLR_EL1_RESET,
)
from .abi import (
    REC_MPIDR_AFF0_MASK,
    REC_MPIDR_AFF1_SHIFT,
    REC_MPIDR_AFF2_SHIFT,
    REC_MPIDR_AFF3_SHIFT,
    Ripas,
)
from .realm import Realm


class RecState(Enum):
    READY = "READY"
    RUNNING = "RUNNING"


class AttestState(Enum):
    NO_ATTEST_IN_PROGRESS = "NO_ATTEST_IN_PROGRESS"
    ATTEST_IN_PROGRESS = "ATTEST_IN_PROGRESS"


@dataclass
class VcpuContext:
    """Architectural vCPU state: X0..X30, PC, PSTATE and EL1 system registers."""

    gprs: list[int] = field(default_factory=lambda: [0] * NUM_GPRS)
    pc: int = 0
    pstate: int = PSTATE_EL1H_DAIF_MASKED
    sysregs: dict[str, int] = field(default_factory=lambda: {"SCTLR_EL1": SCTLR_EL1_RESET})

    def reset(
        self, pc: int, gprs: list[int] | tuple[int, ...] = (), sctlr_el1: int = SCTLR_EL1_RESET
    ) -> None:
        """Warm-boot state: given PC and leading GPRs, everything else zero/reset."""
        self.gprs = [*gprs, *[0] * (NUM_GPRS - len(gprs))][:NUM_GPRS]
        self.pc = pc
        self.pstate = PSTATE_EL1H_DAIF_MASKED
        self.sysregs = {"SCTLR_EL1": sctlr_el1}


@dataclass
class PsciRequest:
    """A realm PSCI call naming another vCPU, waiting for RMI_PSCI_COMPLETE."""

    fid: int
    target_mpidr: int
    """The realm's X1: MPIDR_EL1 layout (Aff3 in [39:32])."""
    entry: int = 0
    context_id: int = 0


@dataclass
class EmulatableAbort:
    """What the RMM keeps of the last exit's emulatable data abort (ESR ISS)."""

    ipa: int
    write: bool
    srt: int
    sas: int
    sse: bool
    sf: bool


@dataclass(frozen=True)
class UnprotectedAbort:
    """The last exit was a data abort at an unprotected IPA: what injecting a
    synchronous external abort for it (RmiRecEnter.flags.INJECT_SEA) needs."""

    esr: int
    far: int
    ipa: int


@dataclass(frozen=True)
class SysregExit:
    """The last exit was a trapped MSR/MRS the host emulates."""

    rt: int
    read: bool


@dataclass(eq=False)
class Rec:
    realm: Realm = field(repr=False)
    pa: int
    index: int
    mpidr: int
    """RmiRecMpidr as the host gave it (Aff3 in [31:24]), reserved bits cleared."""
    aux: tuple[int, ...]
    runnable: bool
    state: RecState = RecState.READY
    context: VcpuContext = field(default_factory=VcpuContext)
    psci_pending: PsciRequest | None = None
    emulatable_abort: EmulatableAbort | None = None
    ripas_addr: int = 0
    ripas_top: int = 0
    ripas_value: Ripas = Ripas.EMPTY
    ripas_destroyed: bool = False
    """The pending RSI_IPA_STATE_SET request: [ripas_addr, ripas_top) -> ripas_value."""
    host_call_pending: bool = False
    host_call_ipa: int = 0
    attest_state: AttestState = AttestState.NO_ATTEST_IN_PROGRESS
    attest_challenge: bytes = b""
    attest_token: bytes | None = field(default=b"", repr=False)
    """The CCA token being copied out by RSI_ATTESTATION_TOKEN_CONTINUE (None:
    it could not be made, CONTINUE reports RSI_ERROR_UNKNOWN)."""
    attest_offset: int = 0
    """Bytes of `attest_token` copied so far."""
    gic: dict[str, int] = field(default_factory=dict)
    """GICv3 virtual CPU interface state: ICH_HCR_EL2, ICH_VMCR_EL2, ICH_MISR_EL2,
    ICH_LR<n>_EL2 (n < the RMM's list register count)."""
    timers: dict[str, int] = field(default_factory=dict)
    timer_mask: int = 0
    """CNTHCTL_EL2.CNTVMASK/CNTPMASK bits the RMM holds for this REC (timers)."""
    run_pa: int = 0
    """The RmiRecRun granule of the RMI_REC_ENTER that is running this REC."""
    cpu: int = 0
    """The physical CPU that issued that RMI_REC_ENTER."""
    ripas_pending: bool = False
    """An RSI_IPA_STATE_SET request waits for the host (RMI_EXIT_RIPAS_CHANGE)."""
    unprotected_abort: UnprotectedAbort | None = None
    sysreg_exit: SysregExit | None = None

    @property
    def vmpidr_el1(self) -> int:
        """The MPIDR_EL1 value the realm reads on this vCPU."""
        return rec_mpidr_to_mpidr_el1(self.mpidr)


def rec_mpidr_index(mpidr: int) -> int:
    """REC index of an RmiRecMpidr: Aff0[3:0] | Aff1 << 4 | Aff2 << 12 | Aff3 << 20."""
    aff0 = mpidr & REC_MPIDR_AFF0_MASK
    aff1 = (mpidr >> REC_MPIDR_AFF1_SHIFT) & 0xFF
    aff2 = (mpidr >> REC_MPIDR_AFF2_SHIFT) & 0xFF
    aff3 = (mpidr >> REC_MPIDR_AFF3_SHIFT) & 0xFF
    return aff0 | aff1 << 4 | aff2 << 12 | aff3 << 20


def rec_mpidr_to_mpidr_el1(mpidr: int) -> int:
    aff3 = (mpidr >> REC_MPIDR_AFF3_SHIFT) & MPIDR_AFF_MASK
    return (mpidr & 0xFFFFFF) | aff3 << MPIDR_AFF3_SHIFT


def mpidr_el1_to_rec_mpidr(mpidr_el1: int) -> int:
    """A realm's MPIDR argument (e.g. PSCI CPU_ON target) in RmiRecMpidr layout."""
    aff = [
        (mpidr_el1 >> s) & MPIDR_AFF_MASK
        for s in (0, MPIDR_AFF1_SHIFT, MPIDR_AFF2_SHIFT, MPIDR_AFF3_SHIFT)
    ]
    return (
        aff[0]
        | aff[1] << REC_MPIDR_AFF1_SHIFT
        | aff[2] << REC_MPIDR_AFF2_SHIFT
        | aff[3] << REC_MPIDR_AFF3_SHIFT
    )
