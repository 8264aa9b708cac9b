"""The Python half of the world switch: between the RMM's model of a REC
(`Rec.context`, `Rec.gic`) and the monitor's per-CPU `realm_ctx`.

- RMI_REC_ENTER passed its checks (EnterRealm): complete the previous exit
  (`Rmm.realm_entry`), load the REC into realm_ctx (its saved state, then
  everything the RMM owns: GPRs, PC, PSTATE, EL1 registers, the GIC state the
  host gave, the EL2 configuration for running it) and answer ENTER_REALM.
- A realm exit (reason REALM_EXIT): copy what the CPU saved back into the
  REC, ask `Rmm.realm_exit`, and answer RESUME_REALM (the realm continues;
  registers Python changed go back) or EXIT_REALM (the host continues with
  RMI_REC_ENTER's X0 = the RMM's answer).

A REC may run on a different CPU each time: its complete saved state
(including FP/SVE and debug registers the RMM does not model) is kept here
as a snapshot of realm_ctx and loaded again only when the CPU holds another.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from ..arch.el2 import CNTHCTL_CNTPMASK, CNTHCTL_CNTVMASK
from ..arch.timer import CNT_CTL_IMASK
from ..memory import GuestMemory
from ..rmm.exits import RealmTrap, RecExitDecision, Resume, TrapKind
from ..rmm.rec import Rec
from ..rmm.results import EnterRealm
from ..trace import Trace
from . import layout as L
from .context import (
    EL1_NAMES,
    EL2_NAMES,
    ContextShape,
    CpuContext,
    ns_context,
    realm_context,
    span_index,
)
from .mailbox import Mailbox

SCTLR_EL2_MMU_OFF = 0x30C50830
"""R-EL2 runs its vector page with the MMU off (SCTLR_EL2 RES1 bits only)."""

TIMER_MASKS = (("cntv_ctl_el0", CNTHCTL_CNTVMASK), ("cntp_ctl_el0", CNTHCTL_CNTPMASK))
"""QEMU 10.0 does not mask a timer's interrupt for CNTHCTL_EL2.CNTVMASK /
CNTPMASK (measured: the realm exits with the same IRQ again and again).  So
while the RMM holds a timer masked, the switch also sets that timer's
CNTx_CTL_EL0.IMASK in the CPU, and takes it out again of what the RMM and the
host see.  The realm could read the forced IMASK while the mask is held."""


class WorldSwitch:
    def __init__(self, memory: GuestMemory, carveout_base: int, cpus: int, trace: Trace,
                 rel2_vbar: int, rmm: Callable[[], object],
                 shape: Callable[[], ContextShape | None]) -> None:
        self.memory = memory
        self.trace = trace
        self.rel2_vbar = rel2_vbar
        self._rmm = rmm
        self._shape = shape
        self._realm_ctx = [realm_context(memory, carveout_base, c) for c in range(cpus)]
        self._ns_ctx = [ns_context(memory, carveout_base, c) for c in range(cpus)]
        self._running: dict[int, EnterRealm] = {}
        self._snapshots: weakref.WeakKeyDictionary[Rec, tuple[int, bytes]] = \
            weakref.WeakKeyDictionary()
        self._loaded: dict[int, tuple[int, int]] = {}
        """CPU -> (id of the REC whose snapshot realm_ctx holds, its version)."""
        self._version = 0
        self._forced_imask: dict[int, int] = {}
        self._maps: tuple[ContextShape | None, list[tuple[str, int]], list[tuple[str, int]]] | \
            None = None
        self._el2_index = {n: span_index(n) for n in EL2_NAMES}
        self._el1_index = {n.upper(): span_index(n) for n in EL1_NAMES}
        self._timer_index = [(reg, span_index(reg), bit) for reg, bit in TIMER_MASKS]
        self._lock = threading.Lock()

    @property
    def rmm(self):  # type: ignore[no-untyped-def]
        return self._rmm()

    def _register_maps(self) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """(upper-case name, span index) of the EL1 and GIC registers this CPU
        switches: what a REC's context and GIC state hold."""
        shape = self._shape()
        if self._maps is None or self._maps[0] is not shape:
            def switched(regs: list[L.SysReg]) -> list[tuple[str, int]]:
                return [(r.name.upper(), span_index(r.name)) for r in regs
                        if shape is None or shape.switched(r)]
            self._maps = (shape, switched(L.EL1_SYSREGS),
                          switched([*L.GIC_SYSREGS, *L.GIC_STATUS_SYSREGS]))
        return self._maps[1], self._maps[2]

    def running(self, cpu: int) -> Rec | None:
        outcome = self._running.get(cpu)
        return outcome.rec if outcome is not None else None

    # -- entry --------------------------------------------------------------------------

    def enter(self, cpu: int, mb: Mailbox, outcome: EnterRealm) -> None:
        rec = outcome.rec
        flags = L.ActionFlag.TLBI_REALM if outcome.tlbi else 0
        decision = self.rmm.realm_entry(rec, outcome.enter)
        if decision is not None:
            # Completing the previous exit produced an exit: the realm does not run.
            assert isinstance(decision, RecExitDecision)
            mb.set_results((decision.x0,))
            self._trace_exit(cpu, rec, decision, ran=False)
            if flags:
                mb.add_flags(flags)
            return
        ctx = self._realm_ctx[cpu]
        self._load_snapshot(cpu, rec, ctx)
        c = rec.context
        el1_map, gic_map = self._register_maps()
        span = ctx.read_span()
        sysregs, gic = c.sysregs, rec.gic
        for name, i in el1_map:
            if name in sysregs:
                span[i] = sysregs[name]
        for name, i in gic_map:
            if name in gic:
                span[i] = gic[name]
        for i in self._el2_index.values():
            span[i] = 0
        for name, value in self.rmm.realm_el2_config(rec, outcome.enter).items():
            i = self._el2_index.get(name.lower())
            if i is not None:
                span[i] = value
        span[self._el2_index["vbar_el2"]] = self.rel2_vbar
        span[self._el2_index["sctlr_el2"]] = SCTLR_EL2_MMU_OFF
        cnthctl = span[self._el2_index["cnthctl_el2"]]
        forced = 0
        for _reg, i, bit in self._timer_index:
            if cnthctl & bit and not span[i] & CNT_CTL_IMASK:
                span[i] |= CNT_CTL_IMASK
                forced |= bit
        self._forced_imask[cpu] = forced
        ctx.write_span(span)
        ctx.set_gprs(c.gprs)
        ctx.put("pc", c.pc)
        ctx.put("pstate", c.pstate)
        mb.put("realm_sve", int(rec.realm.sve_en))
        self._running[cpu] = outcome
        if self.trace.active:
            self.trace.emit("world", cpu=cpu, event="enter", realm=rec.realm.id, rec=rec.index,
                            pc=c.pc)
        mb.set_action(L.Action.ENTER_REALM, flags)

    def _load_snapshot(self, cpu: int, rec: Rec, ctx: CpuContext) -> None:
        saved = self._snapshots.get(rec)
        if saved is None:
            ctx.clear()
            self._loaded.pop(cpu, None)
            return
        version, blob = saved
        if self._loaded.get(cpu) != (id(rec), version):
            ctx.load_blob(blob)
            self._loaded[cpu] = (id(rec), version)

    # -- exits ----------------------------------------------------------------------------

    def exit(self, cpu: int, mb: Mailbox) -> None:
        outcome = self._running.get(cpu)
        if outcome is None:
            raise RuntimeError(f"CPU {cpu} reported a realm exit but runs no REC")
        rec = outcome.rec
        ctx = self._realm_ctx[cpu]
        c = rec.context
        c.gprs = list(mb.frame())
        c.pc = mb.get("elr")
        c.pstate = mb.get("spsr")
        el1_map, gic_map = self._register_maps()
        span = ctx.read_span()
        sysregs, gic = c.sysregs, rec.gic
        for name, i in el1_map:
            sysregs[name] = span[i]
        forced = self._forced_imask.get(cpu, 0)
        for reg, _i, bit in self._timer_index:
            if forced & bit:
                sysregs[reg.upper()] &= ~CNT_CTL_IMASK
        for name, i in gic_map:
            gic[name] = span[i]
        trap = RealmTrap(TrapKind.from_vector_offset(ctx.get("vector")), esr=mb.get("esr"),
                         far=mb.get("far"), hpfar=mb.get("hpfar"))
        result = self.rmm.realm_exit(rec, trap)
        if isinstance(result, Resume):
            mb.set_frame(c.gprs)
            mb.put("elr", c.pc)
            mb.put("spsr", c.pstate)
            flags = 0
            if result.sysregs_changed:
                for name in result.sysregs_changed:
                    if name in self._el1_index:
                        span[self._el1_index[name]] = c.sysregs[name]
                ctx.write_span(span)
                flags = L.ActionFlag.RELOAD_EL1
            mb.set_action(L.Action.RESUME_REALM, flags)
            return
        assert isinstance(result, RecExitDecision)
        # Keep everything the CPU saved, for the next entry of this REC.
        ctx.set_gprs(c.gprs)
        ctx.put("sp_el0", mb.get("sp_el0"))
        ctx.put("pc", c.pc)
        ctx.put("pstate", c.pstate)
        with self._lock:
            self._version += 1
            version = self._version
        self._snapshots[rec] = (version, ctx.blob())
        self._loaded[cpu] = (id(rec), version)
        ns = self._ns_ctx[cpu]
        gprs = ns.gprs()
        gprs[0] = result.x0
        ns.set_gprs(gprs)
        del self._running[cpu]
        self._forced_imask.pop(cpu, None)
        self._trace_exit(cpu, rec, result, ran=True)
        mb.set_action(L.Action.EXIT_REALM)

    def _trace_exit(self, cpu: int, rec: Rec, d: RecExitDecision, ran: bool) -> None:
        if self.trace.active:
            self.trace.emit("world", cpu=cpu, event="exit" if ran else "exit-on-entry",
                            realm=rec.realm.id, rec=rec.index, reason=d.reason.name)

    def forget(self) -> None:
        """A system reset: no REC is running and no snapshot is current."""
        self._running.clear()
        self._loaded.clear()
        self._snapshots = weakref.WeakKeyDictionary()
        for ctx in self._realm_ctx:
            ctx.clear()
