"""The debugger side of a running platform: the gdb proxy, the `cca`
commands' view of the platform, CCA event breakpoints, and the gdb script
that attaches a gdb with the right architecture and symbols.

    dbg = Debugger(break_on=[parse_event("rmi:DATA_CREATE")], announce=print)
    with Platform(cfg, debugger=dbg) as p:   # QEMU waits for gdb's `continue`
        ...

Stopping on an event (the design, docs/debugging.md): every RMI, RSI, realm
exit and GPF reaches Python through a doorbell while the responsible vCPU
waits at EL3.  When one matches a breakpoint, Python does not handle it: it
answers so that the monitor returns the vCPU to the instruction that caused
it with all its registers as they were (the SMC: ELR_EL3 - 4; the trapped
realm instruction or the faulting access: their ELR), and asks the proxy to
stop that vCPU there.  Until the stop, the vCPU may execute the instruction
again and come back: it is sent back again.  Once stopped, the next doorbell
of that vCPU from that instruction is handled normally: after `continue` the
instruction executes exactly once.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..arch.pas import GRANULE_MASK, Pas
from ..config import ConfigError, GptMode, artefact
from ..monitor import layout as L
from ..monitor.context import realm_context
from ..monitor.mailbox import Mailbox
from ..rmm.abi import SMCCC_SVE_HINT
from ..rmm.exits import TrapKind
from . import commands
from .elf import write_symbol_elf
from .events import EventSpec, Occurrence, exit_reason, matches, rmi_name, rsi_name
from .kallsyms import KIMAGE_VADDR, KernelSymbol
from .proxy import Catch, GdbProxy

GDB = "gdb-multiarch"
EXTENSION = Path(__file__).with_name("extension.py")
SMC_SIZE = 4

_REASON_SMC = int(L.Reason.SMC)
_REASON_EXIT = int(L.Reason.REALM_EXIT)
_REASON_GPF = int(L.Reason.GPF)


class Debugger:
    def __init__(self, *, break_on: list[EventSpec] | None = None,
                 symbol_files: list[Path] | None = None,
                 announce: Callable[[str], None] | None = None,
                 attach_gdb: bool = False, gdb: str = GDB,
                 kernel_symbols: list[KernelSymbol] | None = None,
                 kernel_ipa: int | None = None) -> None:
        """`break_on`: CCA events to stop on; `symbol_files`: ELF files for gdb
        besides the monitor's and the hoststub's; `attach_gdb`: start gdb
        in the foreground on this terminal; `kernel_symbols`: a realm
        kernel's symbol list (System.map or kallsyms), turned into an ELF
        file for gdb; `kernel_ipa`: where the VMM placed that kernel."""
        self.kernel_symbols = kernel_symbols
        self.kernel_ipa = kernel_ipa
        self._breaks: list[EventSpec] = list(break_on or [])
        self.extra_symbols = [Path(p) for p in symbol_files or []]
        self._announce = announce or (lambda text: None)
        self.attach_gdb = attach_gdb
        self.gdb = gdb
        self.platform: Any = None
        self.proxy: GdbProxy | None = None
        self.tmpdir: Path | None = None
        self.script: Path | None = None
        self.gdb_process: subprocess.Popen[bytes] | None = None
        self.caught: list[Occurrence] = []
        self._lock = threading.Lock()
        self._state: dict[int, tuple[str, tuple[int, int]]] = {}
        """vCPU -> ("catching" | "skip", (reason, PC)) of the event being stopped on."""
        self._pending: dict[int, Occurrence] = {}
        self._contexts: dict[int, Any] = {}
        self._unreported: Occurrence | None = None

    # -- life cycle (called by Platform) ------------------------------------------------

    def attach(self, platform: Any) -> None:
        """The machine is started (paused) and the monitor's Python half exists."""
        self.platform = platform
        machine = platform.machine
        self.proxy = GdbProxy(machine.gdb_socket, lambda text: commands.answer(self, text),
                              on_pause=self._pause, on_resume=self._resume,
                              on_caught=self._caught, on_session_end=self._session_end,
                              on_cancel=self._cancelled,
                              trace=platform.trace)
        for spec in self._breaks:
            try:
                self._check_event(spec)
            except commands.CommandError as exc:
                raise ConfigError(f"--break-on {spec}: {exc}") from None
        platform.monitor.gate = self.gate
        self.tmpdir = Path(tempfile.mkdtemp(prefix="cosim-gdb-"))
        self.script = self.tmpdir / "session.gdb"
        notes = ""
        if self.kernel_symbols:
            kernel_elf = self.tmpdir / "kernel-symbols.elf"
            write_symbol_elf(self.kernel_symbols, kernel_elf)
            self.extra_symbols.append(kernel_elf)
            if self.kernel_ipa is not None:
                offset = (self.kernel_ipa - KIMAGE_VADDR) & (2**64 - 1)
                notes = (f"\n  the realm kernel's symbols are at its link addresses (boot with "
                         f"nokaslr); for its MMU-off entry code at IPA {self.kernel_ipa:#x}: "
                         f"add-symbol-file {kernel_elf} -o {offset:#x}")
        self.script.write_text(self.gdb_script())
        how = "starting" if self.attach_gdb else "attach with:"
        self._announce(f"gdb: the machine waits for gdb; {how}\n  {self.command()}\n"
                       f"  (or in gdb: target remote 127.0.0.1:{self.proxy.port}){notes}")
        if self.attach_gdb:
            self.gdb_process = subprocess.Popen([self.gdb, "-q", "-x", str(self.script)])

    def start_vm(self) -> None:
        """Instead of resuming the machine: gdb's `continue` will (the
        gdbstub holds the VM until then)."""

    def close(self) -> None:
        if self.gdb_process is not None and self.gdb_process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.gdb_process.wait(0.5)
        if self.proxy is not None:
            self.proxy.close()
        if self.gdb_process is not None and self.gdb_process.poll() is None:
            self.gdb_process.terminate()
            try:
                self.gdb_process.wait(5)
            except subprocess.TimeoutExpired:
                self.gdb_process.kill()
                self.gdb_process.wait()
        if self.platform is not None and self.platform.monitor is not None:
            self.platform.monitor.gate = None
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    @property
    def gdb_alive(self) -> bool:
        return self.gdb_process is not None and self.gdb_process.poll() is None

    # -- gdb script ---------------------------------------------------------------------

    def symbol_files(self) -> list[Path]:
        p = self.platform
        files = [artefact("images", "build", "monitor.elf")]
        if p is not None and p.runs_hoststub:
            files.append(artefact("images", "build", "hoststub.elf"))
        files += [Path(f) for f in p.config.symbol_files] if p is not None else []
        files += self.extra_symbols
        out: list[Path] = []
        for f in files:
            f = f.resolve()
            if f.exists() and f not in out:
                out.append(f)
        return out

    def gdb_script(self) -> str:
        assert self.proxy is not None
        lines = ["set pagination off", "set confirm off", "set architecture aarch64",
                 f"source {EXTENSION}"]
        lines += [f"add-symbol-file {f}" for f in self.symbol_files()]
        lines += [f"target remote 127.0.0.1:{self.proxy.port}"]
        return "\n".join(lines) + "\n"

    def command(self) -> str:
        return f"{self.gdb} -q -x {shlex.quote(str(self.script))}"

    # -- hooks for the proxy ---------------------------------------------------------------

    def _pause(self) -> None:
        stub = getattr(self.platform, "stub", None)
        if stub is not None:
            stub.pause()

    def _resume(self) -> None:
        stub = getattr(self.platform, "stub", None)
        if stub is not None:
            stub.unpause()

    def _caught(self, c: Catch) -> None:
        with self._lock:
            state = self._state.get(c.cpu)
            if state is not None and state[0] == "catching":
                self._state[c.cpu] = ("skip", state[1])
            occ = self._pending.pop(c.cpu, None)
        if occ is not None:
            self.caught.append(occ)
            self._unreported = occ
            self._announce(f"gdb: stopped on {occ.describe()}")

    def _cancelled(self, c: Catch) -> None:
        """The vCPU could not be stopped at its instruction: let the event be
        handled when it comes back."""
        with self._lock:
            self._state.pop(c.cpu, None)
            occ = self._pending.pop(c.cpu, None)
        if occ is not None:
            self._announce(f"gdb: could not stop at {occ.describe()}; it is handled")

    def _session_end(self) -> None:
        """gdb went away: forget every event breakpoint and let the machine run."""
        with self._lock:
            self._breaks = []
            self._state.clear()
            self._pending.clear()

    # -- CCA events ------------------------------------------------------------------------

    def gate(self, cpu: int, mb: Mailbox, reason: int) -> bool:
        """Called for every doorbell before it is handled: True if this one
        is an event being stopped on (the vCPU was sent back to its instruction)."""
        if not self._breaks and not self._state:
            return False
        if reason not in (_REASON_SMC, _REASON_EXIT, _REASON_GPF):
            return False
        occs = self._occurrences(cpu, mb, reason)
        if not occs:
            return False
        key = (reason, occs[0].pc)
        with self._lock:
            state = self._state.get(cpu)
            if state is not None:
                mode, where = state
                if where == key:
                    if mode == "catching":  # back before the stop took hold
                        self._rewind(mb, reason)
                        return True
                    del self._state[cpu]  # the stopped-at event: handled, once
                    return False
                if mode == "catching":
                    return False  # something else first (an interrupt): handled
                del self._state[cpu]
            hit = next((o for o in occs if any(matches(s, o) for s in self._breaks)), None)
            if hit is None or self.proxy is None:
                return False
            self._state[cpu] = ("catching", key)
            self._pending[cpu] = hit
        self._rewind(mb, reason)
        asynchronous = hit.kind == "exit" and any(
            o.name in ("irq", "fiq", "serror") for o in occs if o.kind == "exit")
        self.proxy.catch(Catch(cpu, hit.pc, hit.describe(), step=asynchronous))
        return True

    @staticmethod
    def _rewind(mb: Mailbox, reason: int) -> None:
        if reason == _REASON_SMC:
            mb.put("elr", mb.get("elr") - SMC_SIZE)  # ELR_EL3 of an SMC is the next one
            mb.set_action(L.Action.RETURN)
        elif reason == _REASON_GPF:
            mb.set_action(L.Action.RETURN)  # ELR_EL3 of a GPF is the faulting access
        else:
            mb.set_action(L.Action.RESUME_REALM)  # ELR_EL2 of the trap, registers untouched

    def _occurrences(self, cpu: int, mb: Mailbox, reason: int) -> list[Occurrence]:
        p = self.platform
        rmm = p.rmm
        if reason == _REASON_GPF:
            return [Occurrence("gpt", cpu, mb.get("elr"), detail=f"FAR {mb.get('far'):#x}")]
        if reason == _REASON_SMC:
            args = mb.smc_args()
            fid = args[0] & 0xFFFF_FFFF & ~SMCCC_SVE_HINT
            name = rmi_name(fid)
            if name is None:
                return []
            pc = mb.get("elr") - SMC_SIZE
            realm = rec = None
            if rmm is not None:
                r = rmm.realm_at(args[1])
                target = rmm.rec_at(args[1])
                if target is not None:
                    r, rec = target.realm, target.index
                realm = r.id if r is not None else None
            out = [Occurrence("rmi", cpu, pc, name, realm, rec)]
            if name == "RMI_REC_ENTER":
                out.append(Occurrence("enter", cpu, pc, None, realm, rec))
            return out
        running = p.world.running(cpu) if p.world is not None else None
        if running is None:
            return []
        ctx = self._contexts.get(cpu)
        if ctx is None:
            ctx = self._contexts[cpu] = realm_context(p.memory, p.carveout_base, cpu)
        kind = TrapKind.from_vector_offset(ctx.get("vector")).name
        x0 = mb.frame()[0] & 0xFFFF_FFFF
        why = exit_reason(kind, mb.get("esr"), x0)
        realm, rec, pc = running.realm.id, running.index, mb.get("elr")
        out = [Occurrence("exit", cpu, pc, why, realm, rec)]
        if kind == "SYNC" and (mb.get("esr") >> 26) & 0x3F == 0x17:
            name = rsi_name(x0)
            if name is not None:
                out.insert(0, Occurrence("rsi", cpu, pc, name, realm, rec))
        return out

    # -- CcaView ---------------------------------------------------------------------------

    @property
    def rmm(self) -> Any:
        return self.platform.rmm

    def ram_range(self) -> tuple[int, int]:
        p = self.platform
        return p.ram_base, p.ram_base + p.config.ram_size

    def pas_of(self, pa: int) -> Pas:
        return Pas(self.platform.gpt.get(pa & ~GRANULE_MASK))

    def describe_granule(self, pa: int) -> str:
        return self.platform.describe_granule(pa)

    def events(self, last: int) -> list[dict[str, Any]]:
        return [dict(e) for e in self.platform.trace.find(lambda e: e["kind"] != "gdb",
                                                           last=last)]

    def granule_history(self, pa: int, last: int) -> list[dict[str, Any]]:
        return self.platform.trace.find(lambda e: e["kind"] == "granule" and e.get("pa") == pa,
                                        last=last)

    def cpus(self) -> int:
        return self.platform.config.cpus

    def cpu_state(self, cpu: int) -> tuple[int, int]:
        assert self.proxy is not None
        return self.proxy.vcpu_state(cpu)

    def stage1_registers(self, cpu: int) -> dict[str, int]:
        assert self.proxy is not None
        # QEMU names SCTLR_EL1 by its AArch32-shared name
        names = {"SCTLR_EL1": "SCTLR", "TCR_EL1": "TCR_EL1", "TTBR0_EL1": "TTBR0_EL1",
                 "TTBR1_EL1": "TTBR1_EL1"}
        try:
            regs = self.proxy.read_registers(cpu, list(names.values()))
            return {ours: regs[qemu] for ours, qemu in names.items()}
        except KeyError as exc:
            raise commands.CommandError(f"QEMU does not show register {exc}") from None

    def running_rec(self, cpu: int) -> Any:
        world = self.platform.world
        return world.running(cpu) if world is not None else None

    def breaks(self) -> list[EventSpec]:
        return list(self._breaks)

    def add_break(self, spec: EventSpec) -> None:
        self._check_event(spec)
        with self._lock:
            self._breaks = [*self._breaks, spec]

    def delete_break(self, index: int | None) -> int:
        with self._lock:
            if index is None:
                n, self._breaks = len(self._breaks), []
                return n
            self._breaks = [s for i, s in enumerate(self._breaks, 1) if i != index]
            return 1

    def last_stop(self) -> str | None:
        with self._lock:
            occ, self._unreported = self._unreported, None
        return occ.describe() if occ is not None else None

    def _check_event(self, spec: EventSpec) -> None:
        if spec.kind == "gpt" and self.platform is not None and \
                self.platform.config.gpt != GptMode.HW:
            raise commands.CommandError(
                "stopping on a GPT violation needs --gpt hw (in plugin mode the access has "
                "happened already and the plugin holds the machine itself)")
