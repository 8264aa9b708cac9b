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
(including FP/SVE and debug registers the RMM does not model) stays in the
realm_ctx of the CPU it last ran on, and is copied out (a snapshot) only
when another REC needs that CPU or the REC runs on another CPU.
"""

from __future__ import annotations

import struct
import threading
import weakref
from collections.abc import Callable
from operator import itemgetter

from ..arch.el2 import CNTHCTL_CNTPMASK, CNTHCTL_CNTVMASK
from ..arch.timer import CNT_CTL_IMASK
from ..memory import GuestMemory
from ..rmm.abi import REC_ENTER_TRAP_WFE, REC_ENTER_TRAP_WFI
from ..rmm.exits import RealmTrap, RecExitDecision, Resume, TrapKind
from ..rmm.rec import Rec
from ..rmm.results import EnterRealm
from ..rmm.structs import RmiRecEnter
from ..trace import Trace
from . import layout as L
from .context import (
    EL1_NAMES,
    EL2_NAMES,
    GIC_NAMES,
    GIC_STATUS_NAMES,
    GPRS_ST,
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

TRAP_FLAGS = REC_ENTER_TRAP_WFI | REC_ENTER_TRAP_WFE
"""The RmiRecEnter flags the EL2 configuration depends on (HCR_EL2.TWI/TWE)."""

_EL1_FIRST, _EL1_END = span_index(EL1_NAMES[0]), span_index(EL1_NAMES[-1]) + 1
_EL2_FIRST, _EL2_END = span_index(EL2_NAMES[0]), span_index(EL2_NAMES[-1]) + 1
_GIC_ALL = [*GIC_NAMES, *GIC_STATUS_NAMES]
_GIC_FIRST, _GIC_END = span_index(_GIC_ALL[0]), span_index(_GIC_ALL[-1]) + 1
assert _EL1_END - _EL1_FIRST == len(EL1_NAMES) and _EL2_END - _EL2_FIRST == len(EL2_NAMES)
assert _GIC_END - _GIC_FIRST == len(_GIC_ALL)
"""The EL1, EL2 and GIC registers each lie contiguously in a context's span
(layout.CONTEXT): each group is written with one pack call."""


def _words(n: int) -> struct.Struct:
    return struct.Struct(f"<{n}Q")


_EL1_ST, _EL2_ST, _GIC_ST = (_words(_EL1_END - _EL1_FIRST), _words(_EL2_END - _EL2_FIRST),
                             _words(_GIC_END - _GIC_FIRST))
_EXIT_ST = _words(5)
"""Mailbox esr, elr, spsr, far, hpfar: consecutive (layout.MAILBOX)."""
assert [L.MAILBOX[n] for n in ("esr", "elr", "spsr", "far", "hpfar")] == \
    list(range(L.MAILBOX["esr"], L.MAILBOX["esr"] + 40, 8))
_PC_ST = _words(2)
"""Context pc, pstate: consecutive."""
assert L.CONTEXT["pstate"] == L.CONTEXT["pc"] + 8


class _Maps:
    """The registers one CPU shape switches, compiled for the hot path."""

    def __init__(self, shape: ContextShape | None) -> None:
        def switched(regs: list[L.SysReg]) -> list[L.SysReg]:
            return [r for r in regs if shape is None or shape.switched(r)]

        el1 = switched(L.EL1_SYSREGS)
        gic = switched([*L.GIC_SYSREGS, *L.GIC_STATUS_SYSREGS])
        self.el1_names = [n.upper() for n in EL1_NAMES]
        """Every EL1 register of the span, in order (unswitched ones are not
        loaded by the monitor: any value will do)."""
        self.gic_names = [n.upper() for n in _GIC_ALL]
        self.el1_saved = [r.name.upper() for r in el1]
        self.el1_get = itemgetter(*[span_index(r.name) for r in el1])
        self.gic_saved = [r.name.upper() for r in gic]
        self.gic_get = itemgetter(*[span_index(r.name) for r in gic])
        self.el1_zeros = [0] * len(self.el1_names)
        self.gic_zeros = [0] * len(self.gic_names)


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
        self._snapshots: weakref.WeakKeyDictionary[Rec, bytes] = weakref.WeakKeyDictionary()
        """REC -> its complete saved state, for RECs whose state no realm_ctx holds."""
        self._holder: dict[int, Rec] = {}
        """CPU -> the REC whose latest state that CPU's realm_ctx holds."""
        self._home: weakref.WeakKeyDictionary[Rec, int] = weakref.WeakKeyDictionary()
        """REC -> the CPU whose realm_ctx holds its latest state (the inverse)."""
        self._forced_imask: dict[int, int] = {}
        self._maps: tuple[ContextShape | None, _Maps] | None = None
        self._el2_cache: weakref.WeakKeyDictionary[Rec, dict[tuple[int, int], list[int]]] = \
            weakref.WeakKeyDictionary()
        """REC -> (trap flags, timer mask) -> the EL2 part of the span: what
        realm_el2_config gives for a REC changes only with those two."""
        self._el2_names = [n.upper() for n in EL2_NAMES]
        self._el1_index = {n.upper(): span_index(n) for n in EL1_NAMES}
        self._timer_index = [(reg.upper(), span_index(reg) - _EL1_FIRST, bit)
                             for reg, bit in TIMER_MASKS]
        self._cnthctl = span_index("cnthctl_el2") - _EL2_FIRST
        self._lock = threading.Lock()

    @property
    def rmm(self):  # type: ignore[no-untyped-def]
        return self._rmm()

    def _register_maps(self) -> _Maps:
        """The EL1 and GIC registers this CPU switches: what a REC's context
        and GIC state hold."""
        shape = self._shape()
        if self._maps is None or self._maps[0] is not shape:
            self._maps = (shape, _Maps(shape))
        return self._maps[1]

    def running(self, cpu: int) -> Rec | None:
        outcome = self._running.get(cpu)
        return outcome.rec if outcome is not None else None

    # -- entry --------------------------------------------------------------------------

    def _el2_values(self, rec: Rec, enter: RmiRecEnter) -> list[int]:
        key = (enter.flags & TRAP_FLAGS, rec.timer_mask)
        per_rec = self._el2_cache.get(rec)
        if per_rec is None:
            per_rec = self._el2_cache.setdefault(rec, {})
        values = per_rec.get(key)
        if values is None:
            config = self.rmm.realm_el2_config(rec, enter)
            regs = {name: config[name] for name in config}
            regs["VBAR_EL2"] = self.rel2_vbar
            regs["SCTLR_EL2"] = SCTLR_EL2_MMU_OFF
            values = [regs.get(name, 0) for name in self._el2_names]
            per_rec[key] = values
        return values

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
        m = self._register_maps()
        el1 = list(map(c.sysregs.get, m.el1_names, m.el1_zeros))
        el2 = self._el2_values(rec, outcome.enter)
        cnthctl = el2[self._cnthctl]
        forced = 0
        for _reg, i, bit in self._timer_index:
            if cnthctl & bit and not el1[i] & CNT_CTL_IMASK:
                el1[i] |= CNT_CTL_IMASK
                forced |= bit
        self._forced_imask[cpu] = forced
        mem, span = self.memory, ctx.span_base
        try:
            mem.pack_into(_EL1_ST, span + 8 * _EL1_FIRST, *el1)
            mem.pack_into(_EL2_ST, span + 8 * _EL2_FIRST, *el2)
            mem.pack_into(_GIC_ST, span + 8 * _GIC_FIRST,
                          *map(rec.gic.get, m.gic_names, m.gic_zeros))
            mem.pack_into(GPRS_ST, ctx.base + L.CONTEXT["gprs"], *c.gprs)
            mem.pack_into(_PC_ST, ctx.base + L.CONTEXT["pc"], c.pc, c.pstate)
        except struct.error as exc:
            raise ValueError(f"REC {rec.index}: a register value is not a 64-bit unsigned "
                             f"integer: {exc}") from exc
        mb.put("realm_sve", int(rec.realm.sve_en))
        self._running[cpu] = outcome
        if self.trace.active:
            self.trace.emit("world", cpu=cpu, event="enter", realm=rec.realm.id, rec=rec.index,
                            pc=c.pc)
        mb.set_action(L.Action.ENTER_REALM, flags)

    def _load_snapshot(self, cpu: int, rec: Rec, ctx: CpuContext) -> None:
        """Make realm_ctx of `cpu` hold `rec`'s latest state.  A REC's state
        stays in the realm_ctx of the CPU it last ran on (the monitor saves its
        debug and FP/SVE registers there only when it leaves the CPU to the
        host, after Python's last look), and is copied out only when another
        REC needs that CPU or the REC moves to another CPU.  The host has its
        REC_ENTER back - the monitor has finished leaving - before it can
        enter the REC anywhere else."""
        with self._lock:
            here = self._holder.get(cpu)
            if here is rec:
                return
            if here is not None:
                self._snapshots[here] = ctx.blob()
                self._home.pop(here, None)
            home = self._home.get(rec)
            if home is not None:
                ctx.load_blob(self._realm_ctx[home].blob())
                del self._holder[home]
            elif (saved := self._snapshots.pop(rec, None)) is not None:
                ctx.load_blob(saved)
            else:
                ctx.clear()
            self._holder[cpu] = rec
            self._home[rec] = cpu

    # -- exits ----------------------------------------------------------------------------

    def exit(self, cpu: int, mb: Mailbox) -> None:
        outcome = self._running.get(cpu)
        if outcome is None:
            raise RuntimeError(f"CPU {cpu} reported a realm exit but runs no REC")
        rec = outcome.rec
        ctx = self._realm_ctx[cpu]
        c = rec.context
        mem = self.memory
        c.gprs = list(mb.frame())
        esr, c.pc, c.pstate, far, hpfar = mem.unpack_from(_EXIT_ST, mb.esr_addr)
        m = self._register_maps()
        span = ctx.read_span()
        sysregs, gic = c.sysregs, rec.gic
        sysregs.update(zip(m.el1_saved, m.el1_get(span), strict=True))
        forced = self._forced_imask.get(cpu, 0)
        if forced:
            for reg, _i, bit in self._timer_index:
                if forced & bit:
                    sysregs[reg] &= ~CNT_CTL_IMASK
        gic.update(zip(m.gic_saved, m.gic_get(span), strict=True))
        trap = RealmTrap(TrapKind.from_vector_offset(ctx.get("vector")), esr=esr,
                         far=far, hpfar=hpfar)
        result = self.rmm.realm_exit(rec, trap)
        if isinstance(result, Resume):
            mb.set_frame(c.gprs)
            mem.pack_into(_PC_ST, mb.elr_addr, c.pc, c.pstate)
            flags = 0
            if result.sysregs_changed:
                for name in result.sysregs_changed:
                    i = self._el1_index.get(name)
                    if i is not None:
                        mem.write_u64(ctx.span_base + 8 * i, c.sysregs[name])
                flags = L.ActionFlag.RELOAD_EL1
            mb.set_action(L.Action.RESUME_REALM, flags)
            return
        assert isinstance(result, RecExitDecision)
        # Keep everything the CPU saved in realm_ctx, for the next entry of this
        # REC (the monitor adds the debug and FP/SVE registers as it leaves).
        mem.pack_into(GPRS_ST, ctx.base + L.CONTEXT["gprs"], *c.gprs)
        ctx.put("sp_el0", mb.get("sp_el0"))
        mem.pack_into(_PC_ST, ctx.base + L.CONTEXT["pc"], c.pc, c.pstate)
        self._ns_ctx[cpu].put("gprs", result.x0)  # the host's X0: RMI_REC_ENTER's result
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
        with self._lock:
            self._holder.clear()
            self._home = weakref.WeakKeyDictionary()
            self._snapshots = weakref.WeakKeyDictionary()
        self._el2_cache = weakref.WeakKeyDictionary()
        for ctx in self._realm_ctx:
            ctx.clear()
