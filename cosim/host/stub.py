"""The Python side of images/hoststub: the NS-EL2 test host.

Each hoststub CPU asks for its next request with the SiP call HOSTSTUB_NEXT;
the call is served on that vCPU's doorbell thread, which blocks until a test
submits a request for the CPU.  So every SMC a test issues here really runs
on the CPU at NS-EL2 and travels through the monitor, and every load or store
really touches guest memory with the CPU's permissions.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import greenlet

from ..machine import board
from ..machine.machine import Machine
from ..memory import GuestMemory
from ..monitor import layout as L
from ..rmm.abi import PsciFid, RmiFid

SMC_REGS = 18
DEFAULT_COUNTER_HZ = 1_000_000_000
"""QEMU virt's generic timer frequency (until the monitor reports CNTFRQ_EL0)."""
GICR_SGI_FRAME = 0x10000
GICR_ISENABLER0 = 0x100

_STOP = object()
_YIELD = object()
_IDLE = object()
_COUNTED = (L.StubOp.SMC_LOOP, L.StubOp.SMC_PAIR_LOOP, L.StubOp.MEM_LOOP)
"""Requests the stub repeats `count` times (an unsigned count: -5 would be 2**64 - 5)."""

IDLE_WAIT = 0.001
IDLE_WAIT_MAX = 0.008
"""Seconds a CPU with no work sleeps in WFI (the stub's WAIT request) before
it asks again: IDLE_WAIT after work, doubling up to IDLE_WAIT_MAX while it
stays idle.  A vCPU blocked in a plugin callback keeps QEMU from completing
anything that needs every vCPU at a safe point (a broadcast TLB invalidation
such as the TLBI PAALLOS after every delegation, pausing the machine), so an
idle CPU never waits inside its doorbell: it waits in WFI, where QEMU does not
count it, and a new request waits at most IDLE_WAIT_MAX for it."""
NEXT_REQUEST_WAIT = 0.0002
"""How long the doorbell of a CPU that just finished a request waits for the
next one before the CPU goes idle (a test that submits requests back to back
should not pay a WFI round trip each; an idle CPU does not wait at all, so it
never holds up another CPU's TLB maintenance)."""


class HostStubError(Exception):
    """A request the stub could not carry out (bad request, CPU not up)."""


class ProgramCancelled(HostStubError):
    """The host program was cancelled (the machine is stopping): every stub
    request it makes from now on raises this."""


@dataclass
class StubResult:
    status: L.StubStatus
    ret: tuple[int, ...]
    fault_esr: int = 0
    fault_far: int = 0
    fault_elr: int = 0
    ticks: int = 0
    irqs: int = 0
    """REC_ENTER and WAIT: physical interrupts acknowledged afterwards."""
    done: int = 0
    """SMC_BATCH: how many SMCs ran."""
    console: bytes = b""
    """REC_ENTER: the console bytes the stub collected (ConsoleFlag.DR_WRITE)."""
    console_exits: int = 0
    """REC_ENTER: realm exits the stub completed itself (the console fast path)."""

    @property
    def faulted(self) -> bool:
        return self.status == L.StubStatus.FAULT

    @property
    def x0(self) -> int:
        return self.ret[0]


@dataclass
class _Request:
    op: L.StubOp
    addr: int = 0
    size: int = 0
    value: int = 0
    count: int = 0
    args: tuple[int, ...] = ()
    args2: tuple[int, ...] = ()
    batch: Sequence[Sequence[int]] = ()
    kick: int = 0
    console: tuple[int, int, int, int] | None = None
    """REC_ENTER: (UART page IPA, ConsoleFlag bits, FR value, CR value)."""
    done: threading.Event | None = None
    """Set when the result is in, for a thread waiting on it (submit makes it:
    a host program's requests are resumed by the doorbell and need none)."""
    result: StubResult | None = None
    lost: bool = False
    """The board was reset while the request was in flight."""


class Program:
    """Host code that runs on one hoststub CPU's own doorbell thread, inside a
    greenlet: each stub request it makes (an SMC, a WAIT, ...) switches back
    to the doorbell, which hands the request to the CPU and resumes the
    program with the result at the CPU's next HOSTSTUB_NEXT.  So a realm's
    run loop costs no thread hand-over per exit, and reads like blocking code.

    A program must not block its thread (no Event.wait, no requests for other
    CPUs): it waits with the stub's WAIT request instead."""

    def __init__(self, cpu: int, fn: Callable[[], Any], name: str) -> None:
        self.cpu = cpu
        self.name = name
        self._fn = fn
        self.glet: greenlet.greenlet | None = None
        self.finished = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.cancelled = False
        self.held: _Request | None = None
        """The next request, kept back while the machine is pausing."""

    def _body(self) -> None:
        try:
            self.result = self._fn()
        except BaseException as exc:  # recorded for wait(); never kills the doorbell
            self.error = exc
        finally:
            self.finished.set()

    def step(self, result: StubResult | None) -> _Request | None:
        """Resume the program (on the CPU's doorbell thread) with the result of
        its last request; returns its next request, or None when it ended."""
        if self.glet is None:
            self.glet = greenlet.greenlet(self._body)
            nxt = self.glet.switch()
        else:
            nxt = self.glet.switch(result)
        return nxt if isinstance(nxt, _Request) else None

    def wait(self, machine: Machine, timeout: float) -> Any:
        """Wait (from any other thread) for the program to end; re-raise its error."""
        machine.wait(self.finished, timeout, f"host program {self.name} on CPU {self.cpu}")
        if self.error is not None:
            raise self.error
        return self.result


class _Cpu:
    def __init__(self) -> None:
        self.requests: queue.Queue[object] = queue.Queue()
        self.page = 0
        self.current: _Request | None = None
        self.seq = 0
        self.ready = threading.Event()
        self.exited = False
        self.program: Program | None = None
        self.idle = 0
        """Ticks of the CPU's current idle WAIT (0: it did work last)."""


class HostStub:
    def __init__(self, machine: Machine, cpus: int) -> None:
        self.machine = machine
        self._cpus = [_Cpu() for _ in range(cpus)]
        self.secondary_entry = 0
        self._pausing = False
        self._idle_ticks = int(IDLE_WAIT * DEFAULT_COUNTER_HZ)

    def set_counter_frequency(self, hz: int) -> None:
        """CNTFRQ_EL0 (from the monitor's boot report): for idle waits."""
        self._idle_ticks = max(1, int(IDLE_WAIT * hz))

    @property
    def memory(self) -> GuestMemory:
        assert self.machine.ram is not None
        return self.machine.ram

    # -- the SiP service (runs on the vCPU's doorbell thread) -------------------------

    def on_next(self, cpu: int, args: tuple[int, ...]) -> tuple[int, ...]:
        state = self._cpus[cpu]
        page = args[1]
        self.secondary_entry = args[2]
        mem = self.memory
        s = L.STUB_REQUEST
        done: _Request | None = None
        if state.current is not None:
            done, state.current = state.current, None
            done.result = self._read_result(state.page, done.console is not None)
            if done.done is not None:
                done.done.set()
        state.page = page
        state.ready.set()
        item = self._program_step(state, done)
        if item is None:
            if self._pausing and state.requests.empty():
                item = _YIELD
            else:
                try:
                    if done is not None:
                        item = state.requests.get(timeout=NEXT_REQUEST_WAIT)
                    else:
                        item = state.requests.get_nowait()
                except queue.Empty:
                    item = _IDLE
        if item is _YIELD:
            mem.write_u64(page + s["op"], L.StubOp.YIELD)
            return (0,)
        if item is _IDLE:
            state.idle = state.idle * 2 if state.idle else self._idle_ticks
            state.idle = min(state.idle, self._idle_ticks * round(IDLE_WAIT_MAX / IDLE_WAIT))
            mem.write_u64s(page + s["op"], [L.StubOp.WAIT, 0, 0, 0, state.idle])
            return (0,)
        state.idle = 0
        if item is _STOP:
            mem.write_u64(page + s["op"], L.StubOp.EXIT)
            state.exited = True
            return (0,)
        assert isinstance(item, _Request)
        state.seq += 1
        mem.write_u64s(page, [state.seq, item.op, item.addr, item.size, item.value, item.count])
        mem.write_u64s(page + s["args"], [*item.args, *[0] * (SMC_REGS - len(item.args))])
        if item.args2:
            mem.write_u64s(page + s["args2"],
                           [*item.args2, *[0] * (SMC_REGS - len(item.args2))])
        mem.write_u64(page + s["kick"], item.kick)
        if item.console is not None:
            mem.write_u64s(page + s["console_ipa"], item.console)
        elif item.op == L.StubOp.REC_ENTER:
            mem.write_u64(page + s["console_flags"], 0)
        if item.batch:
            regs = L.STUB_BATCH_REGS
            mem.write_u64s(page + s["batch"], [v for smc in item.batch
                                               for v in (*smc, *[0] * (regs - len(smc)))])
        state.current = item
        return (0,)

    def _read_result(self, base: int, console: bool = False) -> StubResult:
        s = L.STUB_REQUEST
        mem = self.memory
        status, ret = mem.read_u64(base + s["status"]), mem.read_u64s(base + s["ret"], SMC_REGS)
        if status == L.StubStatus.OK:
            ticks, _kick, irqs, done = mem.read_u64s(base + s["ticks"], 4)
            result = StubResult(L.StubStatus.OK, ret, ticks=ticks, irqs=irqs, done=done)
            if console:
                n, result.console_exits = mem.read_u64s(base + s["console_len"], 2)
                if n:
                    result.console = mem.read(base + s["console_buf"],
                                              min(n, L.STUB_CONSOLE_MAX))
            return result
        esr, far, elr, ticks = mem.read_u64s(base + s["fault_esr"], 4)
        return StubResult(L.StubStatus(status), ret, fault_esr=esr, fault_far=far,
                          fault_elr=elr, ticks=ticks)

    def _program_step(self, state: _Cpu, done: _Request | None) -> object | None:
        """Advance the CPU's program, if it has one: its next request, _YIELD
        while the machine pauses, or None (no program, or it just ended)."""
        prog = state.program
        if prog is None:
            return None
        if prog.held is None:
            nxt = prog.step(done.result if done is not None else None)
            if nxt is None:
                state.program = None
                return None
            prog.held = nxt
        if self._pausing:
            return _YIELD
        nxt, prog.held = prog.held, None
        return nxt

    def start_program(self, cpu: int, fn: Callable[[], Any], name: str = "program") -> Program:
        """Run `fn` on `cpu`'s doorbell thread (see Program); it starts at the
        CPU's next request for work."""
        state = self._cpu(cpu)
        if state.program is not None:
            raise HostStubError(f"CPU {cpu} already runs host program {state.program.name}")
        if not state.ready.is_set():
            raise HostStubError(f"hoststub on CPU {cpu} is not running (start_secondaries?)")
        prog = Program(cpu, fn, name)
        state.program = prog
        return prog

    def cancel_programs(self) -> None:
        """Make every running program's next stub request raise ProgramCancelled."""
        for state in self._cpus:
            if state.program is not None:
                state.program.cancelled = True

    def current_cpu(self) -> int | None:
        """The CPU whose program the caller runs in, None outside programs."""
        current = greenlet.getcurrent()
        for cpu, state in enumerate(self._cpus):
            if state.program is not None and state.program.glet is current:
                return cpu
        return None

    def _running_program(self, cpu: int) -> Program | None:
        """The program of `cpu` if the caller runs inside it."""
        prog = self._cpus[cpu].program if 0 <= cpu < len(self._cpus) else None
        if prog is not None and prog.glet is not None and greenlet.getcurrent() is prog.glet:
            return prog
        current = greenlet.getcurrent()
        for state in self._cpus:
            if state.program is not None and state.program.glet is current:
                raise HostStubError(f"host program {state.program.name} on CPU "
                                    f"{state.program.cpu} asked for a request on CPU {cpu}: "
                                    "a program may only use its own CPU")
        return None

    def reset(self) -> None:
        """The board was reset: requests in flight are lost, CPUs restart."""
        for state in self._cpus:
            if state.current is not None:
                state.current.lost = True
                if state.current.done is not None:
                    state.current.done.set()
            state.current = None
            state.ready.clear()
            state.exited = False

    def pause(self) -> None:
        """The machine is about to be paused (QMP stop, a debugger): a vCPU
        blocked here waiting for work would keep QEMU from pausing, so release
        them and let idle CPUs spin through YIELD until the pause takes hold."""
        self._pausing = True
        for state in self._cpus:
            state.requests.put(_YIELD)

    def unpause(self) -> None:
        self._pausing = False

    def shutdown(self) -> None:
        """Release every CPU blocked waiting for a request (machine stop)."""
        self.cancel_programs()
        for state in self._cpus:
            state.requests.put(_STOP)

    # -- requests (any thread) ------------------------------------------------------

    def wait_ready(self, cpu: int = 0, timeout: float | None = None) -> None:
        self.machine.wait(self._cpus[cpu].ready,
                          timeout or self.machine.config.start_timeout,
                          f"hoststub on CPU {cpu} asking for work")

    def _cpu(self, cpu: int) -> _Cpu:
        if not 0 <= cpu < len(self._cpus):
            raise HostStubError(f"no CPU {cpu}: the machine has {len(self._cpus)}")
        return self._cpus[cpu]

    @staticmethod
    def _check_count(request: _Request) -> None:
        if request.op in _COUNTED and not 1 <= request.count < 1 << 63:
            raise HostStubError(f"a {request.op.name} request needs a count of at least 1, "
                                f"not {request.count}")

    def submit(self, cpu: int, request: _Request) -> _Request:
        self._check_count(request)
        state = self._cpu(cpu)
        if self._running_program(cpu) is not None:
            raise HostStubError("a host program cannot submit a request without waiting "
                                "for it (use call)")
        if state.exited:
            raise HostStubError(f"hoststub on CPU {cpu} has exited")
        if not state.ready.is_set():
            raise HostStubError(f"hoststub on CPU {cpu} is not running (start_secondaries?)")
        request.done = threading.Event()
        state.requests.put(request)
        return request

    def result(self, request: _Request, timeout: float | None = None) -> StubResult:
        assert request.done is not None, "result() of a request that was not submitted"
        self.machine.wait(request.done, timeout or self.machine.config.call_timeout,
                          f"hoststub {request.op.name} request")
        if request.lost:
            raise HostStubError(f"the {request.op.name} request was lost: the board was reset")
        assert request.result is not None
        if request.result.status == L.StubStatus.BAD_REQUEST:
            raise HostStubError(f"hoststub refused the {request.op.name} request "
                                f"(size {request.size}, address {request.addr:#x})")
        return request.result

    def call(self, request: _Request, cpu: int = 0, timeout: float | None = None) -> StubResult:
        self._check_count(request)
        prog = self._running_program(cpu)
        if prog is None:
            return self.result(self.submit(cpu, request), timeout)
        # Inside the CPU's program: hand the request to the doorbell and
        # continue with its result at the CPU's next HOSTSTUB_NEXT.
        if prog.cancelled:
            raise ProgramCancelled(f"host program {prog.name} on CPU {cpu} was cancelled")
        assert prog.glet is not None and prog.glet.parent is not None
        result = prog.glet.parent.switch(request)
        if prog.cancelled:
            raise ProgramCancelled(f"host program {prog.name} on CPU {cpu} was cancelled")
        request.result = result
        if result.status == L.StubStatus.BAD_REQUEST:
            raise HostStubError(f"hoststub refused the {request.op.name} request "
                                f"(size {request.size}, address {request.addr:#x})")
        return result

    def smc(self, *regs: int, cpu: int = 0, timeout: float | None = None) -> StubResult:
        """Issue `SMC #0` with x0.. = regs from the CPU; returns x0..x17."""
        if not 1 <= len(regs) <= SMC_REGS:
            raise HostStubError(f"an SMC takes 1..{SMC_REGS} registers, not {len(regs)}")
        return self.call(_Request(L.StubOp.SMC, args=tuple(r & (2**64 - 1) for r in regs)),
                         cpu, timeout)

    def smc_async(self, *regs: int, cpu: int = 0) -> _Request:
        return self.submit(cpu, _Request(L.StubOp.SMC, args=tuple(r & (2**64 - 1) for r in regs)))

    def smc_loop(self, *regs: int, count: int, cpu: int = 0,
                 timeout: float | None = None) -> StubResult:
        """The same SMC `count` times back to back; `ticks` says how long it took."""
        return self.call(_Request(L.StubOp.SMC_LOOP, count=count, args=tuple(regs)), cpu, timeout)

    def smc_pair_loop(self, first: tuple[int, ...], second: tuple[int, ...], count: int,
                      cpu: int = 0, timeout: float | None = None) -> StubResult:
        """`count` times the SMC `first` then the SMC `second`, stopping at the
        first non-zero x0; `ticks` says how long it took."""
        return self.call(_Request(L.StubOp.SMC_PAIR_LOOP, count=count, args=tuple(first),
                                  args2=tuple(second)), cpu, timeout)

    def smc_check(self, *regs: int, marker: int, cpu: int = 0,
                  timeout: float | None = None) -> tuple[StubResult, int]:
        """The SMC with the host's other registers holding `marker`; returns the
        result and how many of those registers changed across the call."""
        res = self.call(_Request(L.StubOp.SMC_CHECK, value=marker,
                                 args=tuple(r & (2**64 - 1) for r in regs)), cpu, timeout)
        return res, res.ticks

    def rec_enter(self, rec: int, run: int, cpu: int = 0, kick: int = 0,
                  slice_end: int = 0,
                  console: tuple[int, int, int, int] | None = None) -> StubResult:
        """RMI_REC_ENTER(rec, run) from the CPU, sending the kick SGI to the CPUs
        in `kick` first, with the EL2 timer armed for CNTPCT_EL0 = `slice_end`
        (0: none) so that the realm exits by then; pending interrupts are
        acknowledged after it returns.  With `console` = (UART page IPA,
        ConsoleFlag bits, FR, CR) the stub completes those PL011 accesses
        itself and enters the realm again (the result's `console` bytes and
        `console_exits`)."""
        return self.call(_Request(L.StubOp.REC_ENTER, args=(RmiFid.REC_ENTER, rec, run),
                                  kick=kick, value=slice_end, console=console), cpu)

    def wait(self, deadline: int = 0, cpu: int = 0, kick: int = 0) -> StubResult:
        """Idle the CPU in WFI until an interrupt: a kick, or CNTPCT_EL0 reaching
        `deadline` (0: no deadline).  `ticks` is the counter when it woke."""
        return self.call(_Request(L.StubOp.WAIT, value=deadline, kick=kick), cpu)

    def smc_batch(self, smcs: Sequence[Sequence[int]], cpu: int = 0,
                  kick: int = 0, repeat: int = 1) -> StubResult:
        """Up to STUB_BATCH_MAX SMCs (x0..x5 each) back to back, `repeat` times
        over, stopping after the first whose x0 is not 0: `done` says how many
        ran, `ret` holds the last one's results, `ticks` how long they took."""
        if not 1 <= len(smcs) <= L.STUB_BATCH_MAX:
            raise HostStubError(f"a batch holds 1..{L.STUB_BATCH_MAX} SMCs, not {len(smcs)}")
        for smc in smcs:
            if not 1 <= len(smc) <= L.STUB_BATCH_REGS:
                raise HostStubError(f"a batched SMC takes 1..{L.STUB_BATCH_REGS} registers")
        batch = [tuple(r & (2**64 - 1) for r in smc) for smc in smcs]
        return self.call(_Request(L.StubOp.SMC_BATCH, count=len(batch), batch=batch,
                                  kick=kick, value=repeat), cpu)

    def load_async(self, addr: int, size: int = 8, cpu: int = 0) -> _Request:
        """Submit a load without waiting (e.g. one that will stop the machine)."""
        return self.submit(cpu, _Request(L.StubOp.LOAD, addr=addr, size=size))

    def load(self, addr: int, size: int = 8, cpu: int = 0) -> StubResult:
        return self.call(_Request(L.StubOp.LOAD, addr=addr, size=size), cpu)

    def store(self, addr: int, value: int, size: int = 8, cpu: int = 0) -> StubResult:
        return self.call(_Request(L.StubOp.STORE, addr=addr, size=size, value=value), cpu)

    def mem_loop(self, addr: int, size: int, passes: int, cpu: int = 0,
                 timeout: float | None = None) -> StubResult:
        return self.call(_Request(L.StubOp.MEM_LOOP, addr=addr, size=size, count=passes),
                         cpu, timeout)

    def gic_enable_ppi(self, intid: int, cpu: int = 0) -> None:
        """Enable a private interrupt in this CPU's redistributor, as the host
        kernel does for the timer PPIs it gives its guests (GICv3 spec,
        "GICR_ISENABLER0")."""
        if not 16 <= intid < 32:
            raise HostStubError(f"INTID {intid} is not a PPI")
        addr = board.GICR_BASE + cpu * board.GICR_STRIDE + GICR_SGI_FRAME + GICR_ISENABLER0
        res = self.store(addr, 1 << intid, size=4, cpu=cpu)
        if res.faulted:
            raise HostStubError(f"the GIC redistributor of CPU {cpu} refused the write")

    def doorbell(self, cpu: int = 0) -> StubResult:
        """Execute the doorbell instruction at NS-EL2: an attack the plugin must refuse."""
        return self.call(_Request(L.StubOp.DOORBELL), cpu)

    def start_secondaries(self) -> None:
        """Bring CPUs 1.. up with PSCI CPU_ON, as a host kernel would; each
        enters the stub's secondary entry with its index as context id."""
        for cpu in range(1, len(self._cpus)):
            res = self.smc(PsciFid.CPU_ON_64, cpu, self.secondary_entry, cpu)
            if res.x0 != 0:
                raise HostStubError(f"PSCI CPU_ON of CPU {cpu} failed: {res.x0:#x}")
        for cpu in range(1, len(self._cpus)):
            self.wait_ready(cpu)
