"""GPT violations: catch, attribute, explain.

One `Violation` per access that crossed a PAS boundary, from either
enforcement point (a GPF the monitor reported in hw mode, or the plugin's
check in plugin mode).  Each becomes a report a person can act on (which
granule, what the RMM says it is, who touched it and how the granule got
there) and a `gpt_violation` event on the trace stream.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .arch import esr as esr_decode
from .arch.gpt import PasTable
from .arch.pas import GRANULE_MASK, Pas, World
from .config import GptMode, ViolationPolicy
from .machine import plugin_protocol as P
from .monitor import layout as L
from .monitor.mailbox import Mailbox
from .symbols import ElfSymbols
from .trace import Trace

HISTORY = 5
"""How many granule transitions a report lists."""

# GPF syndrome (Arm ARM "ISS encoding for a GPC exception"): bit 20 InD
# (instruction fetch), bit 6 WnR.
GPC_IND = 1 << 20
GPC_WNR = 1 << 6
# The injected abort (Arm ARM "ISS encoding for a Data Abort"): a synchronous
# external abort, not on a walk, FAR valid.
SEA_FSC = esr_decode.FSC_SYNC_EXTERNAL

_WORLD_NAME = {World.SECURE: "Secure", World.NONSECURE: "Non-secure", World.ROOT: "Root",
               World.REALM: "Realm"}


def world_of_scr(scr: int) -> World:
    """The security state SCR_EL3.{NSE,NS} selects (Arm ARM, "SCR_EL3")."""
    ns, nse = scr & 1, (scr >> 62) & 1
    if nse:
        return World.REALM if ns else World.ROOT
    return World.NONSECURE if ns else World.SECURE


@dataclass
class Violation:
    mode: str
    cpu: int
    world: int
    el: int | None
    pc: int
    va: int | None
    pa: int
    write: bool
    fetch: bool = False
    size: int | None = None
    value: int | None = None
    granule: int = 0
    pas: str = ""
    rmm_state: str = ""
    symbol: str | None = None
    history: list[str] = field(default_factory=list)
    action: str = ""

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Violation:
        """The violation a `gpt_violation` trace event records."""
        return cls(**{f.name: event[f.name] for f in fields(cls) if f.name in event})

    def summary(self) -> str:
        who = f"{_WORLD_NAME.get(World(self.world), '?')}" + \
            (f" EL{self.el}" if self.el is not None else "")
        what = "instruction fetch" if self.fetch else ("store" if self.write else "load")
        size = f" of {self.size} bytes" if self.size else ""
        return f"{who} {what}{size} at PA {self.pa:#x}"

    def report(self) -> str:
        lines = [f"GPT violation ({self.mode} mode): {self.summary()}"]
        lines.append(f"  granule {self.granule:#x}: {self.pas} PAS, RMM state: {self.rmm_state}")
        where = f"  by CPU {self.cpu} at PC {self.pc:#x}"
        if self.symbol:
            where += f" ({self.symbol})"
        if self.va is not None:
            where += f", VA {self.va:#x}"
        lines.append(where)
        if self.write and self.value is not None:
            lines.append(f"  value stored: {self.value:#x}")
        if self.history:
            lines.append("  how the granule got there (oldest first):")
            lines += [f"    {h}" for h in self.history]
        else:
            lines.append("  how the granule got there: no RMI command changed it "
                         "(carve-out or never delegated)")
        lines.append(f"  action: {self.action}")
        return "\n".join(lines)


class ViolationGuard:
    """Handles both enforcement points' reports with the configured policy."""

    def __init__(self, mode: GptMode, policy: ViolationPolicy, gpt: PasTable, trace: Trace,
                 symbols: ElfSymbols, describe: Callable[[int], str],
                 pause: Callable[[], None]) -> None:
        self.mode = mode
        self.policy = policy
        self.gpt = gpt
        self.trace = trace
        self.symbols = symbols
        self.describe = describe
        self.pause = pause
        self.violations: list[Violation] = []
        self.halted = threading.Event()
        """Set while the machine is halted on a violation (policy halt)."""
        self.held: dict[int, int] = {}
        """Plugin mode, while halted: vCPU -> the PC the plugin holds it at."""
        self._lock = threading.Lock()
        self._hold = threading.Condition()
        self._holding = False
        self._halts = 0
        """Counts releases: a vCPU held by an earlier halt goes when it changes."""
        self._closed = False

    def _history(self, granule: int) -> list[str]:
        events = self.trace.find(lambda e: e["kind"] == "granule" and e.get("pa") == granule,
                                 last=HISTORY)
        out = []
        for e in events:
            where = f" at IPA {e['ipa']:#x}" if e.get("ipa") is not None else ""
            realm = f" of realm {e['realm']}" if e.get("realm") is not None else ""
            out.append(f"t={e['t']:.6f} {e['cmd']}: {e['old']} -> {e['new']}{realm}{where}")
        return out

    def _record(self, v: Violation) -> None:
        v.granule = v.pa & ~GRANULE_MASK
        pas = self.gpt.get(v.granule) if self.gpt.covers(v.granule) else None
        v.pas = Pas(pas).label if pas is not None else "outside RAM"
        v.rmm_state = self.describe(v.granule)
        v.symbol = self.symbols.resolve(v.pc)
        v.history = self._history(v.granule)
        with self._lock:
            self.violations.append(v)
        self.trace.emit("gpt_violation", **asdict(v), message=v.summary())

    # -- hw mode: the monitor took a GPF to EL3 ---------------------------------------

    def on_gpf(self, cpu: int, mb: Mailbox) -> None:
        esr, spsr, scr = mb.get("esr"), mb.get("spsr"), mb.get("scr")
        mfar = mb.get("mfar")
        pa = mfar & ((1 << 56) - 1) & ~GRANULE_MASK | (mb.get("far") & GRANULE_MASK)
        src_el = (spsr >> 2) & 3
        fetch = bool(esr & GPC_IND)
        v = Violation(mode="hw", cpu=cpu, world=world_of_scr(scr), el=src_el, pc=mb.get("elr"),
                      va=mb.get("far"), pa=pa, write=bool(esr & GPC_WNR) and not fetch,
                      fetch=fetch)
        if self.policy == ViolationPolicy.HALT:
            v.action = ("machine halted with the offender's state preserved: attach GDB "
                        "(ELR_EL3 holds the faulting PC)")
            mb.set_action(L.Action.HALT)
            self.pause()
            self.halted.set()
        else:
            ec = esr_decode.Ec.IABT_LOWER if fetch else esr_decode.Ec.DABT_LOWER
            target_el = src_el if src_el else 1
            if target_el == src_el:
                ec = esr_decode.Ec(ec + 1)  # the "current EL" class
            iss = SEA_FSC | (esr_decode.DABT_WNR if v.write else 0)
            mb.put("inject_esr", esr_decode.make(ec, iss))
            mb.put("inject_far", mb.get("far"))
            mb.set_action(L.Action.INJECT_SEA)
            v.action = f"synchronous external abort injected into EL{target_el}"
        self._record(v)

    # -- plugin mode: the TCG plugin's check failed --------------------------------------

    def on_plugin_violation(self, cpu: int, pc: int, pa: int, va: int, info: int,
                            value: int) -> int:
        el = (info >> P.VIOLATION_EL_SHIFT) & 0xFF
        v = Violation(mode="plugin", cpu=cpu, world=(info >> P.VIOLATION_WORLD_SHIFT) & 3,
                      el=None if el == P.VIOLATION_EL_UNKNOWN else el, pc=pc, va=va, pa=pa,
                      write=bool(info & P.VIOLATION_STORE), size=info & P.VIOLATION_SIZE_MASK,
                      value=value)
        if self.policy == ViolationPolicy.LOG:
            v.action = "logged; the machine continues (the access has happened)"
            self._record(v)
            return P.PluginReply.OK
        if self._closed:
            v.action = "logged; the machine is shutting down"
            self._record(v)
            return P.PluginReply.OK
        v.action = (f"machine halted: CPU {cpu} is held inside this access (done: plugin mode "
                    "detects after the fact), no later instruction ran; the other vCPUs are "
                    "held at their next load or store")
        with self._hold:
            self._holding = True
        self._record(v)
        self.halted.set()
        return P.PluginReply.STOP

    def on_held(self, cpu: int, pc: int, offender: int) -> None:
        """The plugin holds `cpu` at `pc` (runs on that vCPU's plugin thread):
        keep it there until release()."""
        with self._hold:
            if not self._holding:
                return
            self.held[cpu] = pc
            halt = self._halts
            while self._holding and self._halts == halt:
                self._hold.wait()

    @property
    def holding(self) -> bool:
        """Whether the plugin holds the vCPUs (plugin mode, halted)."""
        return self._holding

    def release(self) -> None:
        """Let every vCPU held after a plugin-mode violation go on."""
        with self._hold:
            self._holding = False
            self._halts += 1
            self.held.clear()
            self._hold.notify_all()
        self.halted.clear()

    def close(self) -> None:
        """The machine is stopping: release every vCPU and hold none again."""
        self._closed = True
        self.release()
