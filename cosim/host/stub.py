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
from dataclasses import dataclass, field

from ..machine import board
from ..machine.machine import Machine
from ..memory import GuestMemory
from ..monitor import layout as L
from ..rmm.abi import PsciFid

SMC_REGS = 18
GICR_SGI_FRAME = 0x10000
GICR_ISENABLER0 = 0x100

_STOP = object()
_YIELD = object()

IDLE_WAIT = 0.002
"""Seconds a CPU with no work waits inside its doorbell before it is told to
ask again.  A vCPU blocked in a plugin callback keeps QEMU from completing
anything that needs every vCPU at a safe point (a broadcast TLB invalidation
such as TLBI PAALLOS, pausing the machine), so no vCPU may wait there for
long: an idle CPU costs a doorbell round trip every IDLE_WAIT instead."""


class HostStubError(Exception):
    """A request the stub could not carry out (bad request, CPU not up)."""


@dataclass
class StubResult:
    status: L.StubStatus
    ret: tuple[int, ...]
    fault_esr: int = 0
    fault_far: int = 0
    fault_elr: int = 0
    ticks: int = 0
    progress: int = 0
    """SMC_LIST_LOOP: how many SMCs of the list returned zero."""

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
    smcs: tuple[tuple[int, ...], ...] = ()
    done: threading.Event = field(default_factory=threading.Event)
    result: StubResult | None = None
    lost: bool = False
    """The board was reset while the request was in flight."""


class _Cpu:
    def __init__(self) -> None:
        self.requests: queue.Queue[object] = queue.Queue()
        self.page = 0
        self.current: _Request | None = None
        self.seq = 0
        self.ready = threading.Event()
        self.exited = False


class HostStub:
    def __init__(self, machine: Machine, cpus: int) -> None:
        self.machine = machine
        self._cpus = [_Cpu() for _ in range(cpus)]
        self.secondary_entry = 0
        self._pausing = False

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
        if state.current is not None:
            req, state.current = state.current, None
            base = state.page
            req.result = StubResult(
                status=L.StubStatus(mem.read_u64(base + s["status"])),
                ret=mem.read_u64s(base + s["ret"], SMC_REGS),
                fault_esr=mem.read_u64(base + s["fault_esr"]),
                fault_far=mem.read_u64(base + s["fault_far"]),
                fault_elr=mem.read_u64(base + s["fault_elr"]),
                ticks=mem.read_u64(base + s["ticks"]),
                progress=mem.read_u64(base + s["progress"]))
            req.done.set()
        state.page = page
        state.ready.set()
        item: object
        if self._pausing and state.requests.empty():
            item = _YIELD
        else:
            try:
                item = state.requests.get(timeout=IDLE_WAIT)
            except queue.Empty:
                item = _YIELD
        if item is _YIELD:
            mem.write_u64(page + s["op"], L.StubOp.YIELD)
            return (0,)
        if item is _STOP:
            mem.write_u64(page + s["op"], L.StubOp.EXIT)
            state.exited = True
            return (0,)
        assert isinstance(item, _Request)
        state.seq += 1
        mem.write_u64(page + s["seq"], state.seq)
        mem.write_u64(page + s["op"], item.op)
        mem.write_u64(page + s["addr"], item.addr)
        mem.write_u64(page + s["size"], item.size)
        mem.write_u64(page + s["value"], item.value)
        mem.write_u64(page + s["count"], item.count)
        mem.write_u64s(page + s["args"], [*item.args, *[0] * (SMC_REGS - len(item.args))])
        mem.write_u64s(page + s["args2"], [*item.args2, *[0] * (SMC_REGS - len(item.args2))])
        if item.smcs:
            n = L.STUB_LIST_SMC_REGS
            mem.write_u64s(page + s["list"], [v for regs in item.smcs
                                              for v in (*regs, *[0] * (n - len(regs)))])
        state.current = item
        return (0,)

    def reset(self) -> None:
        """The board was reset: requests in flight are lost, CPUs restart."""
        for state in self._cpus:
            if state.current is not None:
                state.current.lost = True
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
        for state in self._cpus:
            state.requests.put(_STOP)

    # -- requests (any thread) ------------------------------------------------------

    def wait_ready(self, cpu: int = 0, timeout: float | None = None) -> None:
        self.machine.wait(self._cpus[cpu].ready,
                          timeout or self.machine.config.start_timeout,
                          f"hoststub on CPU {cpu} asking for work")

    def submit(self, cpu: int, request: _Request) -> _Request:
        if not 0 <= cpu < len(self._cpus):
            raise HostStubError(f"no CPU {cpu}: the machine has {len(self._cpus)}")
        state = self._cpus[cpu]
        if state.exited:
            raise HostStubError(f"hoststub on CPU {cpu} has exited")
        if not state.ready.is_set():
            raise HostStubError(f"hoststub on CPU {cpu} is not running (start_secondaries?)")
        state.requests.put(request)
        return request

    def result(self, request: _Request, timeout: float | None = None) -> StubResult:
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
        return self.result(self.submit(cpu, request), timeout)

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

    def smc_list_loop(self, smcs: list[tuple[int, ...]], count: int, cpu: int = 0,
                      timeout: float | None = None) -> StubResult:
        """`count` times the SMCs `smcs` (x0.. each) back to back in one request,
        stopping at the first non-zero x0: `progress` counts the SMCs that
        returned zero, `ticks` the time the loop took."""
        if not 1 <= len(smcs) <= L.STUB_LIST_MAX:
            raise HostStubError(f"an SMC list holds 1..{L.STUB_LIST_MAX} calls, not {len(smcs)}")
        for regs in smcs:
            if not 1 <= len(regs) <= L.STUB_LIST_SMC_REGS:
                raise HostStubError(f"an SMC of a list takes 1..{L.STUB_LIST_SMC_REGS} "
                                    f"registers, not {len(regs)}")
        masked = tuple(tuple(r & (2**64 - 1) for r in regs) for regs in smcs)
        return self.call(_Request(L.StubOp.SMC_LIST_LOOP, size=len(smcs), count=count,
                                  smcs=masked), cpu, timeout)

    def smc_check(self, *regs: int, marker: int, cpu: int = 0,
                  timeout: float | None = None) -> tuple[StubResult, int]:
        """The SMC with the host's other registers holding `marker`; returns the
        result and how many of those registers changed across the call."""
        res = self.call(_Request(L.StubOp.SMC_CHECK, value=marker,
                                 args=tuple(r & (2**64 - 1) for r in regs)), cpu, timeout)
        return res, res.ticks

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
