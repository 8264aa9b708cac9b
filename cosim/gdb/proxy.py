"""The co-simulator's gdb proxy: gdb connects here (TCP on 127.0.0.1), the
proxy relays to QEMU's gdbstub (an abstract Unix socket gdb cannot name)
and adds three things:

- `monitor cca ...` (GDB's qRcmd packet) is answered by the co-simulator
  itself: the `cca` commands of the GDB extension travel this way;
- catches: when a CCA event the user breaks on happens, the platform sends
  the responsible vCPU back to the instruction that caused it and asks the
  proxy to stop it there.  The proxy stops the VM, sets a hardware
  breakpoint on that instruction for the vCPU, resumes until it is hit,
  removes it, and reports that stop to gdb as the answer to its `continue`:
  gdb shows the vCPU at the SMC / faulting access / trapped instruction;
- clean ends: when gdb detaches, quits or dies, the proxy detaches from
  QEMU (QEMU removes every breakpoint and lets the VM run on).

QEMU's gdbstub stops the whole VM while a client connects, and a vCPU can
only stop between translation blocks: never inside a doorbell.  Every wait
for QEMU here has a timeout.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import select
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..trace import Trace
from . import rsp

REPLY_TIMEOUT = 30.0
"""How long QEMU may take to answer a packet or to stop the VM."""
CATCH_TIMEOUT = 10.0
"""How long a vCPU sent back to its instruction may take to reach it with
the VM running; then it is single-stepped there instead."""
CATCH_ATTEMPTS = 4
CATCH_STEPS = 20000
"""Single steps allowed to bring the vCPU to its instruction.  QEMU steps with
interrupts masked (its default SSTEP_NOIRQ): an interrupt that made a realm
exit, still pending, cannot be taken again before the instruction."""
REG_PC = 32
REG_CPSR = 33
"""QEMU's aarch64 gdb register numbers (x0..x30, sp, pc, cpsr)."""


@dataclass
class Catch:
    """Stop vCPU `cpu` at `pc` (at an EL below 3) and report it."""

    cpu: int
    pc: int
    description: str
    step: bool = False
    """Single-step there at once: the event is an interrupt, which a plain
    run would take again before reaching the instruction."""
    done: threading.Event = field(default_factory=threading.Event)
    stop_reply: str = ""
    cancelled: bool = False


class GdbProxy:
    def __init__(self, qemu_socket: str, commands: Callable[[str], str], *,
                 on_pause: Callable[[], None], on_resume: Callable[[], None],
                 on_caught: Callable[[Catch], None], on_session_end: Callable[[], None],
                 on_cancel: Callable[[Catch], None] | None = None,
                 trace: Trace | None = None, port: int = 0) -> None:
        """`qemu_socket`: the abstract socket name of QEMU's gdbstub;
        `commands`: answers the text after `monitor cca`."""
        self.qemu_socket = qemu_socket
        self._commands = commands
        self._on_pause = on_pause
        self._on_resume = on_resume
        self._on_caught = on_caught
        self._on_session_end = on_session_end
        self._on_cancel = on_cancel or (lambda c: None)
        self.trace = trace or Trace(history=0)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(1)
        self.port: int = self.listener.getsockname()[1]
        self.gdb: rsp.Link | None = None
        self.qemu: rsp.Link | None = None
        self.running = False
        """QEMU's VM runs under a gdb connection (only meaningful while connected)."""
        self.pending_stop: str | None = None
        """A stop that happened with no gdb waiting for it: the answer to its '?'."""
        self.last_catch: Catch | None = None
        self.connected = threading.Event()
        """Set while a gdb client is connected."""
        self.sessions = 0
        self._gdb_thread: str | None = None
        self._caught_here = False
        self._target_xml: list[str] = []
        """The target description gdb read through us (it names the system registers)."""
        self._multiprocess = False
        self._catches: queue.Queue[Catch] = queue.Queue()
        self._waiting: list[Catch] = []
        self._wake_r, self._wake_w = os.pipe()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="gdb-proxy", daemon=True)
        self._thread.start()

    # -- requests from other threads -----------------------------------------------------

    def catch(self, request: Catch) -> None:
        """Stop `request.cpu` at `request.pc` (asynchronously: the caller is a
        doorbell thread, and the VM cannot stop until it returns)."""
        self._catches.put(request)
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"c")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"q")
        self._thread.join(timeout=5)
        for link in (self.gdb, self.qemu):
            if link is not None:
                link.close()
        self.gdb = self.qemu = None
        self.listener.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        for c in self._drain_catches():
            c.cancelled = True
            c.done.set()

    # -- the proxy thread -------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._closed:
            try:
                self._step()
            except (rsp.RspError, OSError, TimeoutError) as exc:
                if self._closed:
                    return
                self.trace.emit("gdb", event="link-error", error=str(exc))
                self._end_session()

    def _step(self) -> None:
        links = [x for x in (self.gdb, self.qemu) if x is not None]
        ready_now = [x for x in links if x.pending()]
        if ready_now:
            ready: list[object] = ready_now
        else:
            watch: list[object] = [self._wake_r, *links]
            if self.gdb is None:
                watch.append(self.listener)
            ready, _, _ = select.select(watch, [], [])
        for r in ready:
            if r is self._wake_r:
                data = os.read(self._wake_r, 64)
                if b"q" in data:
                    return
                self._take_catches()
            elif r is self.listener:
                self._accept()
            elif r is self.gdb:
                self._from_gdb(self.gdb.read())
            elif r is self.qemu:
                self._from_qemu(self.qemu.read())

    def _drain_catches(self) -> list[Catch]:
        out = []
        while True:
            try:
                out.append(self._catches.get_nowait())
            except queue.Empty:
                return out

    # -- connections ------------------------------------------------------------------------

    def _connect_qemu(self) -> None:
        """Connect to the gdbstub (QEMU stops the VM for a new client) and
        switch it to no-ack mode."""
        self._on_pause()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect("\0" + self.qemu_socket)
        link = rsp.Link(sock, "QEMU's gdbstub")
        self.qemu = link
        link.send("QStartNoAckMode")
        if link.read_packet(REPLY_TIMEOUT) == "OK":
            link.ack_mode = False
        self.running = False

    def _accept(self) -> None:
        sock, _ = self.listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.gdb = rsp.Link(sock, "gdb")
        self.sessions += 1
        if self.qemu is None:
            self._connect_qemu()
        self.connected.set()
        self.trace.emit("gdb", event="attached")

    def _end_session(self) -> None:
        """gdb went away (detach, quit, killed) or a link broke: detach from
        QEMU so that the VM runs on without breakpoints."""
        had_gdb = self.gdb is not None
        if self.gdb is not None:
            self.gdb.close()
            self.gdb = None
        if self.qemu is not None:
            try:
                if self.running:
                    self._interrupt_qemu()
                self.qemu.send("D;1" if self._multiprocess else "D")
                if self.qemu.read_packet(REPLY_TIMEOUT) != "OK":
                    self.qemu.send("vCont;c")  # not detached: at least let the VM run
            except (rsp.RspError, OSError, TimeoutError):
                pass
            self.qemu.close()
            self.qemu = None
        self.running = False
        self.pending_stop = None
        for c in self._waiting + self._drain_catches():
            c.cancelled = True
            c.done.set()
        self._waiting.clear()
        self.connected.clear()
        self._on_resume()
        if had_gdb:
            self.trace.emit("gdb", event="detached")
            self._on_session_end()

    # -- gdb -> QEMU ------------------------------------------------------------------------

    def _from_gdb(self, item: rsp.Item) -> None:
        assert self.gdb is not None
        if item.kind == "interrupt":
            if self.running and self.qemu is not None:
                self._on_pause()
                self.qemu.send_raw(bytes((rsp.INTERRUPT,)))
            return
        if item.kind != "packet":
            return
        p = item.data
        gdb = self.gdb
        if p == "QStartNoAckMode":
            gdb.send("OK")
            gdb.ack_mode = False
            return
        if p.startswith("qRcmd,"):
            text = rsp.unhex_text(p[len("qRcmd,"):])
            words = text.split(None, 1)
            if words and words[0] == "cca":
                reply = self._commands(words[1] if len(words) > 1 else "")
                gdb.send(rsp.hex_text(reply) if reply else "OK")
                return
        if p == "?" and self.pending_stop is not None:
            gdb.send(self.pending_stop)
            return
        if p in ("k",) or p.startswith("vKill"):
            # gdb's `kill` ends the debugging session, not the co-simulated machine
            if p != "k":
                gdb.send("OK")
            self._end_session()
            return
        if p.startswith("D"):
            gdb.send("OK")
            self._end_session()
            return
        if rsp.is_resume(p) and not p.startswith("vCont?"):
            self.pending_stop = None
            if self._waiting or not self._catches.empty():
                self._waiting += self._drain_catches()
                self._run_catches(resume=p)
                return
            self._on_resume()
            self._to_qemu(p)
            self.running = True
            return
        if p.startswith("Hg"):
            self._gdb_thread = p[2:]
        self._to_qemu(p)
        self._relay_reply(p)

    def _to_qemu(self, packet: str) -> None:
        assert self.qemu is not None
        self.qemu.send(packet)

    def _relay_reply(self, request: str) -> None:
        """Forward QEMU's answer to `request` (console output 'O...' packets
        first, for qRcmd)."""
        assert self.qemu is not None and self.gdb is not None
        while True:
            reply = self.qemu.read_packet(REPLY_TIMEOUT)
            if request.startswith("qSupported"):
                self._multiprocess = "multiprocess+" in reply
            elif request.startswith("qXfer:features:read") and reply[:1] in "ml":
                self._target_xml.append(reply[1:])
            self.gdb.send(reply)
            if not (request.startswith("qRcmd") and reply.startswith("O") and reply != "OK"):
                return

    # -- QEMU -> gdb ------------------------------------------------------------------------

    def _from_qemu(self, item: rsp.Item) -> None:
        if item.kind != "packet":
            return
        p = item.data
        if rsp.is_stop_reply(p):
            self.running = False
            if p[0] in "WX":
                self._on_resume()
            thread = rsp.stop_thread(p) if p[0] == "T" else None
            if thread is not None:
                self._gdb_thread = thread  # gdb now takes it as the current thread
        if self.gdb is not None:
            self.gdb.send(p)
        elif rsp.is_stop_reply(p):
            self.pending_stop = p

    # -- catches ------------------------------------------------------------------------------

    def _take_catches(self) -> None:
        new = self._drain_catches()
        if not new:
            return
        self._waiting += new
        if self.qemu is None:
            self._connect_qemu()  # no gdb yet: stop here and wait for one
            self._run_catches()
        elif self.running:
            self._interrupt_qemu()
            self._run_catches()
        # else: gdb holds the VM stopped; the catches run at its next resume

    def _interrupt_qemu(self) -> None:
        """Stop the running VM and swallow the stop reply."""
        assert self.qemu is not None
        self._on_pause()
        self.qemu.send_raw(bytes((rsp.INTERRUPT,)))
        while not rsp.is_stop_reply(self.qemu.read_packet(REPLY_TIMEOUT)):
            pass
        self.running = False

    def _tid(self, cpu: int) -> str:
        return f"p1.{cpu + 1:x}" if self._multiprocess else f"{cpu + 1:x}"

    def _request(self, packet: str) -> str:
        assert self.qemu is not None
        self.qemu.send(packet)
        return self.qemu.read_packet(REPLY_TIMEOUT)

    def read_pc_el(self, cpu: int) -> tuple[int, int]:
        """(PC, PSTATE.EL) of vCPU `cpu` (the VM is stopped)."""
        if self._request(f"Hg{self._tid(cpu)}") != "OK":
            raise rsp.RspError(f"QEMU has no vCPU {cpu}")
        pc = rsp.le_hex_to_int(self._request(f"p{REG_PC:x}"))
        cpsr = rsp.le_hex_to_int(self._request(f"p{REG_CPSR:x}"))
        return pc, (cpsr >> 2) & 3

    def vcpu_state(self, cpu: int) -> tuple[int, int]:
        """read_pc_el, leaving QEMU's current thread as gdb believes it is."""
        try:
            return self.read_pc_el(cpu)
        finally:
            self._restore_thread()

    def register_numbers(self) -> dict[str, int]:
        """Register name -> gdb number, from the target description."""
        text = "".join(self._target_xml)
        return {m.group(1).upper(): int(m.group(2))
                for m in re.finditer(r'<reg name="(\w+)"[^>]*?regnum="(\d+)"', text)}

    def read_registers(self, cpu: int, names: list[str]) -> dict[str, int]:
        """Registers of vCPU `cpu` by name (the VM is stopped); KeyError for
        one the target does not describe."""
        numbers = self.register_numbers()
        if self._request(f"Hg{self._tid(cpu)}") != "OK":
            raise rsp.RspError(f"QEMU has no vCPU {cpu}")
        try:
            return {n: rsp.le_hex_to_int(self._request(f"p{numbers[n]:x}")) for n in names}
        finally:
            self._restore_thread()

    def _restore_thread(self) -> None:
        if self._gdb_thread is not None:
            self._request(f"Hg{self._gdb_thread}")

    def _run_catches(self, resume: str = "vCont;c") -> None:
        """The VM is stopped: bring each waiting catch's vCPU to its PC; the
        first one caught is reported to gdb (the others stay queued for the
        next resume)."""
        assert self.qemu is not None
        while self._waiting:
            c = self._waiting.pop(0)
            stop = self._catch(c)
            if stop is None:
                c.cancelled = True
                self._on_cancel(c)
                c.done.set()
                self.trace.emit("gdb", event="catch-failed", cpu=c.cpu, pc=c.pc,
                                what=c.description)
                if self.pending_stop is not None and self.pending_stop[0] in "WX":
                    if self.gdb is not None:
                        self.gdb.send(self.pending_stop)
                    return
                continue
            c.stop_reply = stop
            self.last_catch = c
            self._on_caught(c)
            c.done.set()
            self.running = False
            self.trace.emit("gdb", event="caught", cpu=c.cpu, pc=c.pc, what=c.description)
            if self.gdb is not None:
                self.gdb.send(stop)
            else:
                self.pending_stop = stop
            return
        # nothing to report: let the VM run as gdb asked (with no gdb: detach)
        if self.gdb is None:
            self._end_session()
            return
        self._on_resume()
        self._to_qemu(resume)
        self.running = True

    def _catch(self, c: Catch) -> str | None:
        """Run the VM until vCPU c.cpu is at c.pc (below EL3): the stop reply."""
        self._caught_here = False
        try:
            for _ in range(CATCH_ATTEMPTS):
                pc, el = self.read_pc_el(c.cpu)
                if pc == c.pc and el < 3:
                    self._caught_here = True
                    return f"T05thread:{self._tid(c.cpu)};"
                stop = None if c.step else self._run_to(c)
                if stop is None:
                    return self._step_to(c)
                if stop[0] in "WX":
                    self.pending_stop = stop
                    return None
                thread = rsp.stop_thread(stop)
                if thread is not None and rsp.thread_cpu(thread) == c.cpu:
                    pc, el = self.read_pc_el(c.cpu)
                    if pc == c.pc and el < 3:
                        self._caught_here = True
                        return stop
            return self._step_to(c)
        finally:
            # gdb takes the thread of a stop reply as the stub's current one
            # (remote.c record_currthread): leave QEMU on the caught vCPU.
            if self.qemu is not None and not self.running:
                if self._caught_here:
                    self._gdb_thread = self._tid(c.cpu)
                self._restore_thread()

    def _run_to(self, c: Catch) -> str | None:
        """Continue with a hardware breakpoint at c.pc: the stop reply, or None
        if nothing stopped within CATCH_TIMEOUT (the VM is stopped again)."""
        assert self.qemu is not None
        bp = f"{c.pc:x},4"
        kind = "1" if self._request(f"Z1,{bp}") == "OK" else "0"
        if kind == "0":
            self._request(f"Z0,{bp}")
        self._on_resume()
        self._to_qemu("vCont;c")
        self.running = True
        try:
            stop = self.qemu.read_packet(CATCH_TIMEOUT)
            while not rsp.is_stop_reply(stop):
                stop = self.qemu.read_packet(CATCH_TIMEOUT)
        except TimeoutError:
            self._interrupt_qemu()
            stop = None
        self.running = False
        if stop is None or stop[0] not in "WX":
            self._request(f"z{kind},{bp}")
        return stop

    def _step_to(self, c: Catch) -> str | None:
        """Single-step vCPU c.cpu (interrupts masked) until it is at c.pc."""
        tid = self._tid(c.cpu)
        for _ in range(CATCH_STEPS):
            stop = self._request(f"vCont;s:{tid}")
            while not rsp.is_stop_reply(stop):
                stop = self.qemu.read_packet(REPLY_TIMEOUT)  # type: ignore[union-attr]
            if stop[0] in "WX":
                self.pending_stop = stop
                return None
            pc, el = self.read_pc_el(c.cpu)
            if pc == c.pc and el < 3:
                self._caught_here = True
                return f"T05thread:{self._tid(c.cpu)};"
        return None
