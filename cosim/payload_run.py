"""`cosim run`: boot an NS payload and watch it until it ends.

A run ends when the payload powers the machine off (PSCI SYSTEM_OFF: exit 0)
or resets it (SYSTEM_RESET), when --timeout passes, when a GPT violation
halts the machine, or when the machine fails (QEMU dies or stops answering,
the monitor takes an exception it cannot handle: a MachineError with its
diagnosis).  The payload's console goes to `out` as it prints; GPT
violation reports, and what ended the run, go to `err`.
"""

from __future__ import annotations

import contextlib
import select
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import IO

from .cli_text import ViolationPrinter, describe_platform
from .config import PlatformConfig
from .exit_status import ExitStatus
from .machine.machine import ALIVE_EVERY
from .platform import Platform, PlatformDebugger
from .trace import Trace

POLL = 0.1
"""Seconds between looks at how the run is going (power off, reset, halt, output)."""
CONSOLE_DRAIN = 5.0
"""Seconds a powered-off QEMU gets to exit, so that its last output arrives."""
TAIL_LINES = 10


class End(Enum):
    POWER_OFF = "power-off"
    RESET = "reset"
    TIMEOUT = "timeout"
    HALTED = "halted"
    OUTPUT_GONE = "output-gone"


def _say(err: IO[str] | None, text: str) -> None:
    if err is None:
        return
    with contextlib.suppress(OSError, ValueError):
        err.write(text + "\n")
        err.flush()


def _reader_gone(out: IO[str] | None) -> Callable[[], bool]:
    """A test for `out` being a pipe or socket whose reader has left (poll()
    reports an error on the writing end), without writing to it."""
    try:
        fd = out.fileno() if out is not None else -1
    except (OSError, ValueError):
        fd = -1
    if fd < 0:
        return lambda: False
    poller = select.poll()
    poller.register(fd, 0)  # POLLERR and POLLHUP are always reported

    def gone() -> bool:
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))

    return gone


def watch(p: Platform, timeout: float | None, out: IO[str] | None = None) -> End:
    """Wait until the run ends; raises the machine's failure if it fails."""
    assert p.machine is not None
    if p.monitor is None:
        return _watch_firmware(p, timeout, out)
    assert p.guard is not None
    output_gone = _reader_gone(out)
    start = time.monotonic()
    next_alive = start + ALIVE_EVERY
    while True:
        if p.monitor.powered_off.wait(POLL):
            return End.POWER_OFF
        p.machine.check()
        if p.monitor.reset_requested.is_set():
            return End.RESET
        if p.guard.halted.is_set():
            return End.HALTED
        if (p.machine.console is not None and p.machine.console.echo_error is not None) \
                or output_gone():
            return End.OUTPUT_GONE
        now = time.monotonic()
        if timeout is not None and now - start >= timeout:
            return End.TIMEOUT
        if now >= next_alive:
            p.machine.check_alive()
            next_alive = time.monotonic() + ALIVE_EVERY


def _watch_firmware(p: Platform, timeout: float | None, out: IO[str] | None) -> End:
    """--firmware: the user's firmware powers the board off by ending QEMU."""
    assert p.machine is not None
    output_gone = _reader_gone(out)
    start = time.monotonic()
    while not p.machine.exited.wait(POLL):
        p.machine.check()
        if output_gone():
            return End.OUTPUT_GONE
        if timeout is not None and time.monotonic() - start >= timeout:
            return End.TIMEOUT
    p.machine.check()
    return End.POWER_OFF


def _ended(p: Platform, end: End, name: str, timeout: float | None, seconds: float,
           err: IO[str] | None) -> ExitStatus:
    assert p.machine is not None and p.machine.console is not None
    if end == End.POWER_OFF:
        p.machine.exited.wait(CONSOLE_DRAIN)
        _say(err, f"cosim: {name} powered the machine off (PSCI SYSTEM_OFF) after "
                  f"{seconds:.1f} s")
        return ExitStatus.OK
    if end == End.RESET:
        _say(err, f"cosim: {name} reset the machine (PSCI SYSTEM_RESET) after {seconds:.1f} s; "
                  "the run ends here")
        return ExitStatus.RESET
    if end == End.HALTED:
        assert p.guard is not None
        where = ", ".join(f"CPU {cpu} at PC {pc:#x}" for cpu, pc in sorted(p.guard.held.items()))
        _say(err, "cosim: the machine halted on a GPT violation (--on-violation halt)"
                  + (f"; held: {where}" if where else "") + "; the run ends here")
        return ExitStatus.VIOLATION
    if end == End.OUTPUT_GONE:
        return ExitStatus.BROKEN_PIPE
    tail = p.machine.console.tail(TAIL_LINES).strip()
    last = ("its last console output:\n  " + "\n  ".join(tail.splitlines())) if tail \
        else "it printed nothing on the console"
    _say(err, f"cosim: {name} did not power off within {timeout:g} s; {last}")
    return ExitStatus.TIMEOUT


def run_payload(cfg: PlatformConfig, trace: Trace, timeout: float | None,
                out: IO[str] | None, err: IO[str] | None,
                debugger: PlatformDebugger | None = None) -> ExitStatus:
    """Boot `cfg.payload` and watch it until the run ends; the exit status.
    A reset ends the run: the calling CPU halts instead of rebooting."""
    cfg.reboot = False
    name = Path(cfg.payload).name
    status = ExitStatus.FAILED
    with ViolationPrinter(trace, err) as shown:
        try:
            with Platform(cfg, trace=trace, console_echo=out, debugger=debugger) as p:
                _say(err, describe_platform(cfg))
                started = time.monotonic()
                end = watch(p, timeout, out)
                status = _ended(p, end, name, timeout, time.monotonic() - started, err)
        finally:
            violated = shown.finish(cfg.on_violation)
    if violated and status != ExitStatus.BROKEN_PIPE:
        return ExitStatus.VIOLATION
    return status
