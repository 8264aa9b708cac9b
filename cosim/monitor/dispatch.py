"""The Python half of the monitor: every doorbell lands here, is decoded from
the CPU's mailbox and turned into an RMM call, a platform service or an
action for the monitor.

This is the TCG plugin's handler (cosim.machine.plugin_link.PluginHandler):
each vCPU's doorbells arrive on that vCPU's own thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from ..arch import esr as esr_decode
from ..arch.gpt import PasTable
from ..machine.plugin_protocol import PLUGIN_WORLD_UNCHANGED, PluginReply
from ..memory import GuestMemory
from ..rmm.abi import (
    SMC64_STD_SERVICE_BASE,
    SMC_UNKNOWN,
    SMCCC_SVE_HINT,
    SMCCC_VERSION_FID,
    SMCCC_VERSION_VALUE,
    PsciFid,
    RmiFid,
)
from ..rmm.results import EnterRealm, RmiReturn
from ..trace import Trace
from . import layout as L
from .boot import CpuFeatures, read_features
from .mailbox import Mailbox
from .worlds import WorldSwitch

_REASON_SMC = int(L.Reason.SMC)
RMI_ROUTED_FIRST = SMC64_STD_SERVICE_BASE | 0x150
RMI_ROUTED_LAST = SMC64_STD_SERVICE_BASE | 0x18F
"""SMCs from the host in this range go to the RMM, whatever its ABI version;
the RMM answers the numbers it does not implement with SMC_UNKNOWN."""


def smc_name(fid: int) -> str:
    """A readable name for a function ID, for traces and reports."""
    for enum in (RmiFid, PsciFid, L.SipFid):
        try:
            return enum(fid).name if enum is not RmiFid else RmiFid(fid).rmi_name
        except ValueError:
            continue
    if fid == SMCCC_VERSION_FID:
        return "SMCCC_VERSION"
    return f"{fid:#010x}"


SmcService = Callable[[int, tuple[int, ...]], "tuple[int, ...] | None"]
"""A platform service: (cpu, x0..x17) -> the caller's new x0.., or None to
leave the registers as they are."""


class RmiHandler(Protocol):
    def handle_rmi(self, fid: int, args: tuple[int, ...], cpu: int = 0
                   ) -> RmiReturn | EnterRealm: ...


class MonitorFault(Exception):
    """The monitor reported an exception it cannot handle."""


class Monitor:
    def __init__(self, memory: GuestMemory, carveout_base: int, cpus: int, trace: Trace,
                 *, on_fatal: Callable[[Exception], None]) -> None:
        self.memory = memory
        self.carveout_base = carveout_base
        self.trace = trace
        self.mailboxes = [Mailbox(memory, carveout_base, cpu) for cpu in range(cpus)]
        self._on_fatal = on_fatal
        self.rmm: RmiHandler | None = None
        self.world: WorldSwitch | None = None
        """The world switch: RMI_REC_ENTER's EnterRealm and realm exits go there."""
        self.services: dict[int, SmcService] = {}
        self.gpf_handler: Callable[[int, Mailbox], None] | None = None
        self.violation_handler: Callable[..., int] | None = None
        self.on_boot: Callable[[CpuFeatures], None] | None = None
        self.features: CpuFeatures | None = None
        self.booted = threading.Event()
        self.cpus_up: set[int] = set()
        self.attacks: list[dict[str, int]] = []
        self.powered_off = threading.Event()
        self.on_power_off: Callable[[], None] | None = None
        self.reset_requested = threading.Event()
        """Set by PSCI SYSTEM_RESET."""
        self.reboot = True
        """Whether SYSTEM_RESET resets the board; if False the calling CPU halts
        at EL3 instead (`cosim run` ends the run there)."""
        self.gpt: PasTable | None = None
        """The PAS table, in hw GPT mode: a call that changed it gets TLBI PAALLOS."""
        self.gate: Callable[[int, Mailbox, int], bool] | None = None
        """A debugger's look at each SMC, realm exit and GPF before it is handled
        (cpu, mailbox, reason): True if it answered the mailbox itself."""

    # -- PluginHandler ----------------------------------------------------------------

    def on_doorbell(self, vcpu: int) -> int:
        mb = self.mailboxes[vcpu]
        reason = mb.reason()
        gate = self.gate
        if gate is not None and gate(vcpu, mb, reason):
            return PLUGIN_WORLD_UNCHANGED
        gpt = self.gpt
        generation = gpt.generation if gpt is not None else 0
        if reason == _REASON_SMC:
            self._smc(vcpu, mb)
        elif reason == L.Reason.REALM_EXIT and self.world is not None:
            self.world.exit(vcpu, mb)
        elif reason == L.Reason.CPU_UP:
            self.cpus_up.add(vcpu)
            self.trace.emit("cpu", cpu=vcpu, event="up", entry=mb.get("elr"),
                            x0=mb.frame()[0])
        elif reason == L.Reason.BOOT:
            self._boot()
        elif reason == L.Reason.GPF and self.gpf_handler is not None:
            self.gpf_handler(vcpu, mb)
        else:
            self._fatal(vcpu, mb, reason)
        if gpt is not None and gpt.generation != generation:
            # The GPT changed while serving this CPU: invalidate cached GPT
            # information on every PE before the caller sees the result.
            mb.add_flags(L.ActionFlag.TLBI_PAALLOS)
        return PLUGIN_WORLD_UNCHANGED

    def on_attack(self, vcpu: int, pc: int, el: int) -> None:
        record = {"cpu": vcpu, "pc": pc, "el": el}
        self.attacks.append(record)
        self.trace.emit("attack", cpu=vcpu, pc=pc, el=el,
                        message=f"doorbell instruction executed at EL{el} (PC {pc:#x}): "
                                "refused, only the EL3 monitor may ring it")

    def on_violation(self, vcpu: int, pc: int, pa: int, va: int, info: int, value: int) -> int:
        if self.violation_handler is None:
            return PluginReply.OK
        return self.violation_handler(vcpu, pc, pa, va, info, value)

    # -- reasons --------------------------------------------------------------------------

    def _boot(self) -> None:
        self.features = read_features(self.memory, self.carveout_base)
        self.trace.emit("monitor", event="boot", features={k: hex(v) for k, v in
                                                            self.features.regs.items()})
        if self.on_boot is not None:
            self.on_boot(self.features)
        self.booted.set()

    def _smc(self, cpu: int, mb: Mailbox) -> None:
        args = mb.smc_args()
        fid = args[0] & 0xFFFF_FFFF
        base_fid = fid & ~SMCCC_SVE_HINT
        if RMI_ROUTED_FIRST <= base_fid <= RMI_ROUTED_LAST and self.rmm is not None:
            outcome = self.rmm.handle_rmi(fid, args[1:], cpu)
            if type(outcome) is not RmiReturn:
                assert isinstance(outcome, EnterRealm)
                if self.world is None:
                    raise MonitorFault("RMI_REC_ENTER succeeded but no world switch is attached")
                self.world.enter(cpu, mb, outcome)
                return
            mb.set_results(outcome.x)
            if outcome.tlbi:
                mb.add_flags(L.ActionFlag.TLBI_REALM)
            return
        service = self.services.get(fid)
        if service is not None:
            result = service(cpu, args)
            if result is not None:
                mb.set_results(result)
            return
        results = self._firmware_call(cpu, fid, args, mb)
        mb.set_results(results)
        if self.trace.active:
            self.trace.emit("smc", cpu=cpu, fid=fid, name=smc_name(fid), args=list(args[1:4]),
                            ret=results[0])

    def _firmware_call(self, cpu: int, fid: int, args: tuple[int, ...], mb: Mailbox
                       ) -> tuple[int, ...]:
        """Standard calls the monitor forwards rather than owning: SMCCC
        discovery and the PSCI system power calls (DEN0028, DEN0022)."""
        if fid == SMCCC_VERSION_FID:
            return (SMCCC_VERSION_VALUE,)
        if fid in (PsciFid.SYSTEM_OFF, PsciFid.SYSTEM_RESET):
            off = fid == PsciFid.SYSTEM_OFF
            self.trace.emit("power", cpu=cpu, event="system-off" if off else "system-reset")
            if not off:
                self.reset_requested.set()
                if not self.reboot:
                    mb.set_action(L.Action.HALT)
                    return (0,)
                for other in self.mailboxes:
                    other.put("psci_state", L.PsciCpuState.OFF)
            mb.set_action(L.Action.POWER_OFF if off else L.Action.RESET)
            if off:
                if self.on_power_off is not None:
                    self.on_power_off()
                self.powered_off.set()
            return (0,)
        return (SMC_UNKNOWN,)

    def _fatal(self, cpu: int, mb: Mailbox, reason: int) -> None:
        esr = mb.get("esr")
        elr, spsr, far = mb.get("elr"), mb.get("spsr"), mb.get("far")
        el = (spsr >> 2) & 3
        what = esr_decode.describe(esr)
        msg = (f"monitor on CPU {cpu}: unhandled exception (mailbox reason {reason}): {what}; "
               f"ESR_EL3 {esr:#x}, ELR_EL3 {elr:#x}, FAR_EL3 {far:#x}, from EL{el}")
        self.trace.emit("monitor", event="fatal", cpu=cpu, esr=esr, elr=elr, far=far, el=el,
                        message=msg)
        mb.set_action(L.Action.HALT)
        self._on_fatal(MonitorFault(msg))
