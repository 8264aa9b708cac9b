"""Machine: one running qemu-system-aarch64 with the cosim plugin, its RAM
mapped into this process, QMP, a GDB stub, and its serial ports.

Nothing the machine creates has a name in the file system: RAM and every
file QEMU reads are memfds it inherits (opened as /proc/self/fd/N), and all
sockets are in the abstract namespace.  If this process dies, the kernel
closes the plugin's control connection and the plugin makes QEMU exit; no
file is left behind.  `stop()` (also on `with` exit, on exceptions and on
Ctrl-C) ends QEMU, closes every connection and joins every thread.

The machine knows nothing of the monitor or the RMM: the owner hands it a
`PluginHandler` that answers doorbells.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from ..config import PlatformConfig
from ..memory import GuestMemory
from ..trace import Trace
from . import board
from .console import Console
from .errors import HandlerError, MachineError, MachineTimeout, QemuExited, QemuStartError
from .plugin_link import PluginHandler, PluginLink, unique_name
from .qemu import Blob, QemuCommand
from .qmp import Qmp

MEMFD_PATH = "/proc/self/fd/{}"
FIRST_FREE_FD = 3
"""Descriptors QEMU inherits are kept above stdin, stdout and stderr: when
cosim runs with one of those closed, a new descriptor would take its number
and the child's redirection of that stream would replace it."""


def memfd(name: str) -> int:
    """A close-on-exec memfd numbered above the standard streams."""
    fd = os.memfd_create(f"cosim-{name}", os.MFD_CLOEXEC)
    if fd >= FIRST_FREE_FD:
        return fd
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, FIRST_FREE_FD)
    finally:
        os.close(fd)


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Signal the process group QEMU leads (start_new_session): a --qemu
    wrapper's children go with it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


ALIVE_EVERY = 2.0
"""Seconds between checks that QEMU still answers QMP while something is awaited."""


class Machine:
    def __init__(self, config: PlatformConfig, handler: PluginHandler, *, bios: bytes,
                 blobs: list[tuple[bytes | str, int]], plugin_args: list[str] | None = None,
                 shared_fds: list[int] | None = None, trace: Trace | None = None,
                 console_echo: IO[str] | None = None,
                 on_stop: Callable[[], None] | None = None,
                 on_pause: Callable[[], None] | None = None,
                 on_resume: Callable[[], None] | None = None) -> None:
        """`bios`: the monitor image; `blobs`: (bytes or path, PA) loaded at every
        reset; `shared_fds`: extra fds QEMU inherits (e.g. the plugin's PAS
        table); `on_stop`: called first in stop() to release vCPUs the owner
        keeps blocked in doorbells."""
        self.config = config
        self.trace = trace or Trace(history=0)
        self._handler = handler
        self._bios = bios
        self._blobs = blobs
        self._plugin_args = plugin_args or []
        self._shared_fds = shared_fds or []
        self._console_echo = console_echo
        self._on_stop = on_stop
        self._on_pause = on_pause
        self._on_resume = on_resume
        self._fds: list[int] = []
        self._failure: MachineError | None = None
        self._failed = threading.Event()
        self._stopping = False
        self._stopped = False
        self._exit_expected = False
        self.exited = threading.Event()
        """Set when QEMU has exited (an expected power-off, or a failure)."""
        self._lock = threading.Lock()
        self._stderr = bytearray()
        self._stderr_reader: threading.Thread | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.ram: GuestMemory | None = None
        self.link: PluginLink | None = None
        self.console: Console | None = None
        self.monitor_log: Console | None = None
        self.qmp: Qmp | None = None
        self.gdb_socket = unique_name("gdb")
        self.command: QemuCommand | None = None

    # -- life cycle -----------------------------------------------------------------

    def __enter__(self) -> Machine:
        self.start()
        self.resume()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _memfd(self, name: str, data: bytes | None = None, size: int = 0) -> int:
        fd = memfd(name)
        self._fds.append(fd)
        if data is not None:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        if size:
            os.ftruncate(fd, size)
        return fd

    def start(self) -> None:
        """Start QEMU paused, with RAM mapped and every connection up."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        cfg = self.config
        ram_fd = self._memfd("ram", size=cfg.ram_size)
        self.ram = GuestMemory.from_fd(board.RAM_BASE, ram_fd, cfg.ram_size)
        bios_fd = self._memfd("monitor", self._bios)
        blobs = []
        for i, (data, address) in enumerate(self._blobs):
            if isinstance(data, bytes):
                path = MEMFD_PATH.format(self._memfd(f"blob{i}", data))
            else:
                path = str(data)
            blobs.append(Blob(path, address))
        pass_fds = [ram_fd, bios_fd, *[fd for fd in self._fds if fd not in (ram_fd, bios_fd)],
                    *self._shared_fds]

        self.link = PluginLink(unique_name("plugin"), self._handler, self._handler_failed)
        self.console = Console(unique_name("serial0"), "console", echo=self._console_echo)
        self.monitor_log = Console(unique_name("serial1"), "monitor log")
        qmp_name = unique_name("qmp")
        self.command = QemuCommand(
            qemu=cfg.qemu, cpus=cfg.cpus, ram_size=cfg.ram_size, cpu_model=cfg.cpu_model,
            bios=MEMFD_PATH.format(bios_fd), ram_path=MEMFD_PATH.format(ram_fd), blobs=blobs,
            plugin=cfg.plugin, plugin_args=[f"sock={self.link.name}", *self._plugin_args],
            qmp_socket=qmp_name, gdb_socket=self.gdb_socket,
            serial_sockets=[self.console.name, self.monitor_log.name],
            extra_args=list(cfg.extra_qemu_args))
        args = self.command.args()
        self.trace.emit("machine", event="start", argv=args)
        try:
            self.proc = subprocess.Popen(args, pass_fds=pass_fds, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         start_new_session=True)
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                raise  # out of descriptors: not QEMU's fault
            raise QemuStartError(f"cannot run {cfg.qemu}: {exc.strerror or exc}") from exc
        self._stderr_reader = threading.Thread(target=self._read_stderr, name="qemu-stderr",
                                               daemon=True)
        self._stderr_reader.start()
        threading.Thread(target=self._watch_process, name="qemu-watch", daemon=True).start()

        deadline = time.monotonic() + cfg.start_timeout
        while not self.link.control_connected.wait(0.05):
            self._check_started()
            if time.monotonic() > deadline:
                raise QemuStartError(f"the TCG plugin did not connect within "
                                     f"{cfg.start_timeout:.0f} s{self._stderr_note()}")
        self.qmp = Qmp(qmp_name)
        self.qmp.connect(max(1.0, deadline - time.monotonic()), self._check_started)
        self.trace.emit("machine", event="started", pid=self.proc.pid)

    def resume(self) -> None:
        """Let the vCPUs run (QEMU starts paused, so the owner can attach first)."""
        if self.qmp is None:
            raise MachineError("the machine is not started")
        if self._on_resume is not None:
            self._on_resume()
        self.qmp.execute("cont")
        self.trace.emit("machine", event="running")

    def _check_started(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            time.sleep(0.1)  # let the stderr reader catch QEMU's last words
            note = self._stderr_note() or (f" and printed nothing: is '{self.config.qemu}' "
                                           "qemu-system-aarch64?")
            raise QemuStartError(f"QEMU exited with status {self.proc.returncode} while "
                                 f"starting{note}")
        self.check()

    def _stderr_note(self) -> str:
        text = self.stderr_text().strip()
        return (":\n  " + "\n  ".join(text.splitlines()[-15:])) if text else ""

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for chunk in iter(lambda: self.proc.stderr.read1(4096), b""):  # type: ignore[union-attr]
            with self._lock:
                self._stderr += chunk
                del self._stderr[:-65536]

    def stderr_text(self) -> str:
        with self._lock:
            return self._stderr.decode("utf-8", "replace")

    def _watch_process(self) -> None:
        assert self.proc is not None
        code = self.proc.wait()
        self.exited.set()
        if self._stopping or (self._exit_expected and code == 0):
            self.trace.emit("machine", event="exited", returncode=code)
            return
        time.sleep(0.1)  # let the readers drain
        console = self.console.tail(10) if self.console else ""
        self.fail(QemuExited(code, self.stderr_text(), console))

    def _handler_failed(self, exc: BaseException, tb: str) -> None:
        self.fail(HandlerError(f"the co-simulator failed while serving the plugin: "
                               f"{exc!r}\n{tb}"))

    def expect_exit(self) -> None:
        """The guest is powering the board off: QEMU's exit is not a failure."""
        self._exit_expected = True

    # -- failures -------------------------------------------------------------------------

    def fail(self, error: MachineError) -> None:
        """Record the first failure, end QEMU, and wake everyone who waits."""
        with self._lock:
            if self._failure is None:
                self._failure = error
        self.trace.emit("machine", event="failure", error=str(error).splitlines()[0])
        self._failed.set()
        if self.proc is not None and self.proc.poll() is None:
            kill_group(self.proc)

    @property
    def failure(self) -> MachineError | None:
        return self._failure

    def check(self) -> None:
        """Raise the recorded failure, if any."""
        if self._failure is not None:
            raise self._failure

    def wait(self, event: threading.Event, timeout: float, what: str) -> None:
        """Wait for `event`, raising the machine's failure if it fails first;
        a wait longer than ALIVE_EVERY also checks that QEMU still answers QMP,
        so a QEMU that was stopped (SIGSTOP) is named as the cause rather than
        the event that did not come."""
        deadline = time.monotonic() + timeout
        next_alive = time.monotonic() + ALIVE_EVERY
        while not event.wait(0.05):
            self.check()
            now = time.monotonic()
            if now > deadline:
                raise MachineTimeout(f"{what} did not happen within {timeout:.0f} s")
            if now >= next_alive and self.qmp is not None and self.running:
                self.check_alive()
                next_alive = time.monotonic() + ALIVE_EVERY
        self.check()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and not self._stopping

    # -- control ---------------------------------------------------------------------------

    def pause(self) -> None:
        """Stop the vCPUs (QMP stop) without waiting: a vCPU may be inside a
        plugin callback, and QEMU answers only once all have paused.  The
        owner's on_pause hook first releases vCPUs it keeps waiting."""
        if self._on_pause is not None:
            self._on_pause()
        if self.qmp is not None:
            self.qmp.execute_nowait("stop")

    def status(self, timeout: float = 10.0) -> dict[str, Any]:
        if self.qmp is None:
            raise MachineError("QMP is not connected")
        return self.qmp.execute("query-status", timeout=timeout)

    def check_alive(self, timeout: float = 10.0) -> None:
        """Raise the recorded failure, or fail now if QEMU no longer answers QMP
        within `timeout` (it was stopped with SIGSTOP, or it hangs)."""
        self.check()
        try:
            self.status(timeout)
        except MachineTimeout:
            if self.proc is None or self.proc.poll() is not None:
                self.check()
                raise
            state = _process_state(self.proc.pid)
            why = " (it is stopped: SIGSTOP or a debugger?)" if state in ("T", "t") else ""
            self.fail(MachineTimeout(f"QEMU (pid {self.proc.pid}) stopped answering QMP for "
                                     f"{timeout:.0f} s{why}; it was killed"))
            self.check()

    def kill(self) -> None:
        """End QEMU at once (SIGKILL), as part of stopping: not a failure."""
        self._stopping = True
        if self.proc is not None and self.proc.poll() is None:
            kill_group(self.proc)
            self.proc.wait()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopping = True
        if self._on_stop is not None and self.proc is not None and self.proc.poll() is None:
            try:
                self._on_stop()
            except Exception as exc:
                self.trace.emit("machine", event="stop-hook-failed", error=repr(exc))
        self._end_qemu()
        if self._stderr_reader is not None:
            self._stderr_reader.join(timeout=2)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        for closer in (self.qmp, self.link, self.console, self.monitor_log):
            if closer is not None:
                closer.close()
        if self.ram is not None:
            # BufferError: someone still holds a view; the mapping goes with the process
            with contextlib.suppress(BufferError):
                self.ram.close()
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
        self._stopped = True
        self.trace.emit("machine", event="stopped",
                        returncode=None if self.proc is None else self.proc.returncode)

    def _end_qemu(self) -> None:
        """QMP quit (SIGTERM while QMP is not up yet), SIGKILL after
        stop_timeout; then whatever is left of QEMU's process group."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            if self.qmp is not None and self.qmp.connected:
                self.qmp.execute_nowait("quit")
            else:
                kill_group(proc, signal.SIGTERM)
            try:
                proc.wait(self.config.stop_timeout)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                proc.wait(self.config.stop_timeout)
        kill_group(proc)


def _process_state(pid: int) -> str:
    """The state letter of /proc/PID/stat (R, S, T, Z, ...), or '?'."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"
