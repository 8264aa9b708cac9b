"""The realm's console as the user sees it: what the guest writes to its
UART goes to the terminal (or any byte stream) and into a capture the VMM
and tests search; what the user types goes into the UART.

On a terminal, input is raw (the guest's shell does the line editing, and
Ctrl-C goes to the guest); Ctrl-A then x ends the run, as in QEMU.  Input
from a pipe or file is fed as it comes, without any escape handling, and its
end is typed into the guest as Ctrl-D (EOT): the guest's shell then exits and
the realm powers off, so `cosim realm run </dev/null` (CI, `docker run`
without -t) ends instead of waiting at a prompt forever."""

from __future__ import annotations

import contextlib
import os
import select
import termios
import threading
import time
import tty
from collections.abc import Callable
from typing import IO

ESCAPE = 0x01
"""Ctrl-A: the next key is for cosim (x: quit)."""
QUIT_KEY = ord("x")
CAPTURE_LIMIT = 4 << 20
"""Bytes of console output kept for searching (the oldest are dropped)."""
POLL_INTERVAL = 0.01
EOT = b"\x04"
"""What the end of the input stream is typed as (Ctrl-D: end of file for the guest's tty)."""
HOLD_LIMIT = 1 << 20
"""Bytes of input read ahead while input is held (see hold_input_until)."""
EOT_REPEAT = 1.0
"""Seconds between EOTs after the input ended: Linux's PL011 driver drains the
receive FIFO when the port starts up, so an EOT typed before the guest reads
its console would be lost; the guest's shell exits at the first one it reads."""


class RealmConsole:
    def __init__(self, echo: IO[bytes] | None = None) -> None:
        self._echo = echo
        self._lock = threading.Lock()
        self._capture = bytearray()
        self._dropped = 0
        self._line_start = 0
        self._watchers: list[tuple[bytes, threading.Event, list[float]]] = []
        self.t0 = time.monotonic()
        self.quit_requested = threading.Event()
        self._input_thread: threading.Thread | None = None
        self._stop_input = threading.Event()
        self._saved_tty: list | None = None
        self._tty_fd = -1
        self._input_gate: threading.Event | None = None

    # -- output (vCPU threads) ----------------------------------------------------------------

    def output(self, data: bytes) -> None:
        with self._lock:
            self._capture += data
            if len(self._capture) > CAPTURE_LIMIT:
                cut = len(self._capture) - CAPTURE_LIMIT // 2
                del self._capture[:cut]
                self._dropped += cut
                self._line_start = max(0, self._line_start - cut)
            if b"\n" in data and self._watchers:
                self._check_watchers()
        if self._echo is not None:
            try:
                self._echo.write(data)
                if b"\n" in data:
                    self._echo.flush()
            except (OSError, ValueError):
                self._echo = None  # the terminal went away; keep capturing

    def _check_watchers(self) -> None:
        end = self._capture.rfind(b"\n") + 1
        chunk = bytes(self._capture[self._line_start:end])
        self._line_start = end
        now = time.monotonic() - self.t0
        for marker, event, when in self._watchers:
            if not event.is_set() and marker in chunk:
                when.append(now)
                event.set()

    def watch(self, marker: bytes) -> tuple[threading.Event, list[float]]:
        """An event set when a complete output line contains `marker`, and a
        list that then holds the time (seconds since the console started)."""
        event, when = threading.Event(), []
        with self._lock:
            if marker in self._capture[:self._line_start]:
                when.append(time.monotonic() - self.t0)
                event.set()
            self._watchers.append((marker, event, when))
        return event, when

    def text(self) -> str:
        with self._lock:
            return self._capture.decode("utf-8", "replace")

    def tail(self, lines: int = 10) -> str:
        return "\n".join(self.text().rstrip("\n").splitlines()[-lines:])

    def flush(self) -> None:
        if self._echo is not None:
            with contextlib.suppress(OSError, ValueError):
                self._echo.flush()

    # -- input (a thread of its own) --------------------------------------------------------------

    def hold_input_until(self, marker: bytes) -> None:
        """Feed no input before a guest output line holds `marker` (our /init's
        ready line): the guest's UART driver empties the receive FIFO while it
        starts the port, so bytes that come before, as piped input does, are lost."""
        self._input_gate = self.watch(marker)[0]

    def start_input(self, stream: IO[bytes], feed: Callable[[bytes], int],
                    room: Callable[[], int]) -> None:
        """Read `stream` and feed the UART (as fast as its FIFO takes it)."""
        fd = stream.fileno()
        if os.isatty(fd):
            with contextlib.suppress(termios.error):
                self._saved_tty = termios.tcgetattr(fd)
                self._tty_fd = fd
                tty.setraw(fd)
        self._input_thread = threading.Thread(target=self._read_input, args=(fd, feed, room),
                                              name="realm-console-input", daemon=True)
        self._input_thread.start()

    def _read_input(self, fd: int, feed: Callable[[bytes], int],
                    room: Callable[[], int]) -> None:
        escaped = False
        raw = self._saved_tty is not None
        pending = b""
        ended = False
        gate = self._input_gate
        while not self._stop_input.is_set():
            held = gate is not None and not gate.is_set()
            if not ended and ((held and len(pending) < HOLD_LIMIT) or not pending):
                # Read on while input is held, so that Ctrl-A x still quits.
                ready, _, _ = select.select([fd], [], [], 0.1)
                if not ready:
                    continue
                try:
                    data = os.read(fd, 256)
                except OSError:
                    data = b""
                if not data:
                    # The input ended (a pipe or file, or a terminal hung up): the
                    # guest sees end of file on its tty, as from a typed Ctrl-D.
                    ended = True
                    pending += EOT
                    continue
                if raw:
                    out = bytearray()
                    for b in data:
                        if escaped:
                            escaped = False
                            if b == QUIT_KEY:
                                self.quit_requested.set()
                                return
                            out.append(b)
                        elif b == ESCAPE:
                            escaped = True
                        else:
                            out.append(b)
                    data = bytes(out)
                pending += data
                continue
            if held:
                time.sleep(POLL_INTERVAL)
                continue
            if not pending:     # ended: type EOT again until the run ends
                self._stop_input.wait(EOT_REPEAT)
                pending = EOT
            if room() > 0:
                pending = pending[feed(pending):]
            else:
                time.sleep(POLL_INTERVAL)

    def close(self) -> None:
        self._stop_input.set()
        if self._input_thread is not None:
            self._input_thread.join(timeout=1)
        if self._saved_tty is not None:
            with contextlib.suppress(termios.error, OSError, ValueError):
                termios.tcsetattr(self._tty_fd, termios.TCSADRAIN, self._saved_tty)
            self._saved_tty = None
        self.flush()
