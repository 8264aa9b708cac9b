"""Running realms from the host side: one REC's run loop (RMI_REC_ENTER and
the exits it returns), and the driver of images/realm-tests' realmstub,
which asks the host for work through RSI_HOST_CALL.

Every REC_ENTER here is a real SMC issued by the hoststub on a chosen CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..arch.gicv3 import ICH_LR_GROUP, ICH_LR_PRIORITY_SHIFT, ICH_LR_STATE_SHIFT
from ..arch.pas import GRANULE_SIZE
from ..arch.timer import VIRTUAL_TIMER_PPI, output_asserted
from ..config import artefact
from ..memory import GuestMemory
from ..monitor import layout as L
from ..rmm.abi import RecExitReason as ExitReason
from ..rmm.structs import RmiRecEnter, RmiRecExit, RmiRecRun
from .realm import HostRealm, HostRec
from .rmi import RmiClient

LR_STATE_PENDING = 0b01


def pending_lr(intid: int, priority: int = 0xA0) -> int:
    """A GICv3 list register holding a pending Group 1 virtual interrupt
    (GICv3 architecture specification, "ICH_LR<n>_EL2")."""
    return (LR_STATE_PENDING << ICH_LR_STATE_SHIFT | ICH_LR_GROUP
            | priority << ICH_LR_PRIORITY_SHIFT | intid)


class RealmStubError(Exception):
    pass


@dataclass
class RecRunner:
    """The run loop of one REC, as a host drives it."""

    rmi: RmiClient
    memory: GuestMemory
    rec: HostRec
    exits: list[RmiRecExit] = field(default_factory=list)
    enter_smc: Callable[[int, int], None] | None = None
    """How to issue RMI_REC_ENTER(rec, run), when not through `rmi` (a test
    that checks the host's registers across the call)."""

    def enter(self, flags: int = 0, gprs: list[int] | None = None, gicv3_hcr: int = 0,
              lrs: list[int] | None = None) -> RmiRecExit:
        enter = RmiRecEnter(flags=flags, gprs=[*(gprs or []), *[0] * (31 - len(gprs or []))],
                            gicv3_hcr=gicv3_hcr,
                            gicv3_lrs=[*(lrs or []), *[0] * (16 - len(lrs or []))])
        self.memory.zero(self.rec.run, GRANULE_SIZE)
        enter.pack(self.memory, self.rec.run)
        if self.enter_smc is not None:
            self.enter_smc(self.rec.pa, self.rec.run)
        else:
            self.rmi.rec_enter(self.rec.pa, self.rec.run)
        out = RmiRecRun.unpack(self.memory, self.rec.run).exit
        self.exits.append(out)
        return out


ExitHandler = Callable[[RmiRecExit], "dict[str, object] | None"]
"""Called for an exit that is not the realmstub asking for work; returns the
keyword arguments of the next RecRunner.enter (None: enter with nothing)."""


def realmstub_image() -> bytes:
    return Path(artefact("images", "build", "realmstub.bin")).read_bytes()


class RealmStubDriver:
    """Drives one REC running the realmstub: each request is answered at the
    stub's next RSI_HOST_CALL.  Exits in between (MMIO, interrupts, PSCI,
    RIPAS changes) go to `on_exit`, with sensible defaults: interrupts are
    re-entered, and a realm timer that fired is injected through a list
    register, as KVM does."""

    def __init__(self, runner: RecRunner, realm: HostRealm | None = None,
                 on_exit: ExitHandler | None = None) -> None:
        self.runner = runner
        self.realm = realm
        self.on_exit = on_exit
        self.backed: list[int] = []
        self.pending: dict[str, object] = {}
        self.last: RmiRecExit | None = None

    def _default(self, ex: RmiRecExit) -> dict[str, object]:
        ec = ex.esr >> 26
        if ex.exit_reason == ExitReason.SYNC and ec in (0x20, 0x24) and self.realm is not None:
            ipa = (ex.hpfar >> 4) << 12
            if ipa < 1 << (self.realm.spec.ipa_bits - 1):
                # RIPAS RAM without data: back it, as KVM does on a stage-2 fault.
                self.realm.back(ipa)
                self.backed.append(ipa)
                return {}
        if ex.exit_reason in (ExitReason.IRQ, ExitReason.FIQ):
            if output_asserted(ex.cntv_ctl):
                return {"lrs": [pending_lr(VIRTUAL_TIMER_PPI)]}
            return {}
        raise RealmStubError(f"unexpected realm exit {ExitReason(ex.exit_reason).name}: "
                             f"esr {ex.esr:#x} hpfar {ex.hpfar:#x} gprs[0] {ex.gprs[0]:#x}")

    def run_until_call(self, **enter: object) -> RmiRecExit:
        """Enter, handling exits, until the realmstub makes a host call."""
        while True:
            ex = self.runner.enter(**enter)  # type: ignore[arg-type]
            self.last = ex
            if ex.exit_reason == ExitReason.HOST_CALL:
                if ex.imm == 0xDEAD:
                    raise RealmStubError(f"realmstub took an unexpected exception: "
                                         f"ESR_EL1 {ex.gprs[0]:#x} ELR_EL1 {ex.gprs[1]:#x}")
                return ex
            handled = self.on_exit(ex) if self.on_exit is not None else None
            enter = handled if handled is not None else self._default(ex)

    def start(self) -> RmiRecExit:
        ex = self.run_until_call()
        if ex.imm != L.REALMSTUB_NEXT:
            raise RealmStubError(f"realmstub's first host call has imm {ex.imm:#x}")
        return ex

    def request(self, op: L.RealmOp, *args: int) -> list[int]:
        """Run one request; returns the result GPRs of the stub's next host call."""
        ex = self.run_until_call(gprs=[int(op), *[a & (2**64 - 1) for a in args]])
        if ex.imm == L.REALMSTUB_MARKED:
            # The marked call: the realm's registers hold markers while the host
            # has control.  Return to it; the results come with the next call.
            self.marked_exit = ex
            ex = self.run_until_call(gprs=[0] * 31)
        if ex.imm != L.REALMSTUB_NEXT:
            raise RealmStubError(f"realmstub made host call {ex.imm:#x}, expected NEXT")
        return list(ex.gprs)

    def smc(self, *regs: int) -> list[int]:
        res = self.request(L.RealmOp.SMC, *regs)
        return res[1:19]


def build_realmstub_realm(realm: HostRealm, ram_size: int = 2 << 20, recs: int = 1,
                          measure: bool = True) -> list[HostRec]:
    """Create (not activate) a realm running the realmstub: RIPAS RAM over
    [REALMSTUB_IPA, +ram_size), the image measured in, REC 0 runnable at the
    image entry and RECs 1.. not runnable (PSCI CPU_ON brings them up)."""
    image = realmstub_image()
    base = L.REALMSTUB_IPA
    realm.init_ripas(base, base + ram_size)
    realm.populate(base, image, measure=measure)
    out = [realm.create_rec(pc=base, gprs=(0,), runnable=True)]
    for _ in range(1, recs):
        out.append(realm.create_rec(pc=0, runnable=False))
    return out
