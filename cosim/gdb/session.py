"""`cosim.gdb.GdbSession`: gdb-multiarch driven through GDB/MI (pygdbmi),
attached to a co-simulated machine, for tests and scripts.

    with GdbSession(script) as gdb:          # the session.gdb cosim --gdb wrote
        gdb.break_at("realm_main")
        stop = gdb.cont()
        print(gdb.cca("world"), hex(gdb.register("pc")))
        gdb.cca("break rmi:DATA_CREATE")
        gdb.cont()
        gdb.detach()

Every wait has a timeout (GdbTimeout); a command gdb refuses raises
GdbCommandError with gdb's message.
"""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path
from typing import Any

from pygdbmi.gdbcontroller import GdbController

from .debugger import GDB

DEFAULT_TIMEOUT = 60.0
POLL = 0.1


class GdbSessionError(Exception):
    pass


class GdbCommandError(GdbSessionError):
    """gdb answered ^error (the message is gdb's)."""


class GdbTimeout(GdbSessionError):
    pass


def _mi_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class GdbSession:
    def __init__(self, script: Path | str | None = None, *, gdb: str = GDB,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        """Start gdb; `script` (cosim's session.gdb) attaches it with the
        architecture, the extension and the symbols."""
        self.timeout = timeout
        self.mi = GdbController(command=[gdb, "--nx", "--quiet", "--interpreter=mi3"],
                                time_to_check_for_additional_output_sec=0.05)
        self._backlog: list[dict[str, Any]] = []
        self.stopped: dict[str, Any] | None = None
        """The payload of the last *stopped record."""
        self.console_log: list[str] = []
        if script is not None:
            self.console(f"source {script}", timeout=timeout)

    # -- plumbing -------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        proc = self.mi.gdb_process
        return proc.pid if proc is not None else None

    def _read(self, timeout: float) -> list[dict[str, Any]]:
        if self.mi.gdb_process is None or self.mi.gdb_process.poll() is not None:
            raise GdbSessionError("gdb is not running")
        out = self.mi.get_gdb_response(timeout_sec=timeout, raise_error_on_timeout=False)
        for r in out:
            if r.get("type") == "console" and r.get("payload"):
                self.console_log.append(r["payload"])
            if r.get("type") == "notify" and r.get("message") == "stopped":
                self.stopped = r.get("payload") or {}
        return out

    def command(self, mi_command: str, timeout: float | None = None
                ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Send one MI command: (its result record, everything that came
        with it).  GdbCommandError on ^error."""
        deadline = time.monotonic() + (timeout or self.timeout)
        self.mi.write(mi_command, read_response=False)
        seen: list[dict[str, Any]] = []
        while True:
            batch = self._read(POLL)
            for i, r in enumerate(batch):
                if r.get("type") == "result":
                    self._backlog += seen + batch[i + 1:]
                    seen += batch[:i]
                    if r.get("message") == "error":
                        msg = (r.get("payload") or {}).get("msg", "error")
                        raise GdbCommandError(msg)
                    return r, seen
            seen += batch
            if time.monotonic() > deadline:
                self._backlog += seen
                raise GdbTimeout(f"gdb did not answer {mi_command!r} within "
                                 f"{timeout or self.timeout:.0f} s")

    def console(self, cli_command: str, timeout: float | None = None) -> str:
        """A CLI command (what you would type at the gdb prompt): its output."""
        _, records = self.command(f"-interpreter-exec console {_mi_quote(cli_command)}",
                                  timeout)
        return "".join(r.get("payload") or "" for r in records
                       if r.get("type") == "console")

    def cca(self, args: str, timeout: float | None = None) -> str:
        """A `cca` command of the extension (GdbCommandError with its message on a mistake)."""
        return self.console(f"cca {args}", timeout).rstrip("\n")

    # -- execution ------------------------------------------------------------------------

    def wait_stopped(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the next *stopped record (also one already received)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, r in enumerate(self._backlog):
                if r.get("type") == "notify" and r.get("message") == "stopped":
                    del self._backlog[:i + 1]
                    with contextlib.suppress(GdbSessionError):
                        self._backlog += self._read(0.3)  # what the extension prints after
                    return r.get("payload") or {}
            self._backlog += self._read(POLL)
            if time.monotonic() > deadline:
                raise GdbTimeout(f"the target did not stop within {timeout or self.timeout:.0f} s")

    def _drop_old_stops(self) -> None:
        self._backlog = [r for r in self._backlog
                         if not (r.get("type") == "notify" and r.get("message") == "stopped")]

    def cont(self, timeout: float | None = None, wait: bool = True) -> dict[str, Any]:
        """`continue`; with `wait`, the *stopped payload (reason, frame, thread-id)."""
        self._drop_old_stops()
        self.command("-exec-continue")
        return self.wait_stopped(timeout) if wait else {}

    def stepi(self, timeout: float | None = None) -> dict[str, Any]:
        self._drop_old_stops()
        self.command("-exec-step-instruction")
        return self.wait_stopped(timeout)

    def step(self, timeout: float | None = None) -> dict[str, Any]:
        self._drop_old_stops()
        self.command("-exec-step")
        return self.wait_stopped(timeout)

    def interrupt(self, timeout: float | None = None) -> dict[str, Any]:
        """Stop the running target (what Ctrl-C does at the gdb prompt)."""
        self._drop_old_stops()
        proc = self.mi.gdb_process
        if proc is None or proc.poll() is not None:
            raise GdbSessionError("gdb is not running")
        proc.send_signal(signal.SIGINT)  # gdb sends the target its interrupt byte
        return self.wait_stopped(timeout)

    # -- breakpoints ------------------------------------------------------------------------

    def break_at(self, location: str, hardware: bool = True, temporary: bool = False) -> int:
        """A breakpoint at `location` (a symbol, or *ADDRESS): its number.
        Hardware by default: QEMU treats both alike, and it needs no memory write."""
        flags = ("-h " if hardware else "") + ("-t " if temporary else "")
        result, _ = self.command(f"-break-insert {flags}{location}")
        return int(result["payload"]["bkpt"]["number"])

    def delete_breakpoints(self) -> None:
        self.command("-break-delete")

    # -- state ----------------------------------------------------------------------------

    def evaluate(self, expression: str) -> str:
        result, _ = self.command(f"-data-evaluate-expression {_mi_quote(expression)}")
        return str(result["payload"]["value"])

    def register(self, name: str) -> int:
        """A register of the selected thread ("x0", "pc", "cpsr", "sp")."""
        value = self.evaluate(f"(unsigned long long)${name}")
        return int(value.split()[0], 0)

    def registers(self, *names: str) -> dict[str, int]:
        return {n: self.register(n) for n in names}

    def read_memory(self, address: int, size: int) -> bytes:
        result, _ = self.command(f"-data-read-memory-bytes {address:#x} {size}")
        return bytes.fromhex(result["payload"]["memory"][0]["contents"])

    def select_thread(self, thread: int) -> None:
        self.command(f"-thread-select {thread}")

    # -- ending ---------------------------------------------------------------------------

    def detach(self) -> None:
        self.command("-target-detach")

    def quit(self, timeout: float = 10.0) -> None:
        """End gdb (detaching first if attached); waits for the process."""
        proc = self.mi.gdb_process
        if proc is None:
            return
        with contextlib.suppress(Exception):
            self.mi.write("-gdb-exit", read_response=False)
        try:
            proc.wait(timeout)
        except Exception:
            proc.kill()
            proc.wait()
        self.close()

    def kill(self) -> None:
        """SIGKILL gdb (what a crash would do)."""
        proc = self.mi.gdb_process
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self.close()

    def close(self) -> None:
        proc = self.mi.gdb_process
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except Exception:
                proc.kill()
                proc.wait()
        with contextlib.suppress(Exception):
            self.mi.exit()

    def __enter__(self) -> GdbSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
