"""A serial port of the machine: QEMU connects to a socket Python listens on,
and everything the guest prints is kept, echoed on request, and searchable."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import IO

from .errors import MachineTimeout


class Console:
    def __init__(self, name: str, label: str, *, echo: IO[str] | None = None,
                 limit: int = 4 << 20) -> None:
        self.name = name
        self.label = label
        self._echo = echo
        self._limit = limit
        self._buf = bytearray()
        self._dropped = 0
        self._cond = threading.Condition()
        self._conn: socket.socket | None = None
        self._closed = False
        self.echo_error: Exception | None = None
        """Why echoing stopped (e.g. BrokenPipeError: the reader of stdout left)."""
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self._server.bind("\0" + name)
        self._server.listen(1)
        self._thread = threading.Thread(target=self._run, name=f"console-{label}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self._server.accept()
        except OSError:
            return
        self._conn = conn
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if self._echo is not None:
                try:
                    self._echo.write(data.decode("utf-8", "replace"))
                    self._echo.flush()
                except (OSError, ValueError) as exc:  # a closed or broken stream
                    self.echo_error = exc
                    self._echo = None
            with self._cond:
                self._buf += data
                if len(self._buf) > self._limit:
                    cut = len(self._buf) - self._limit
                    del self._buf[:cut]
                    self._dropped += cut
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def text(self) -> str:
        with self._cond:
            return self._buf.decode("utf-8", "replace")

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def wait_for(self, pattern: str, timeout: float,
                 check: Callable[[], None] | None = None) -> re.Match[str]:
        """Wait until the output matches `pattern` (a regex); `check` is called
        periodically and may raise to abort (e.g. because QEMU died)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = rx.search(self._buf.decode("utf-8", "replace"))
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise MachineTimeout(
                        f"{self.label} did not print /{pattern}/ within {timeout:.0f} s; "
                        f"last output:\n  " + "\n  ".join(self.tail(10).splitlines()))
                self._cond.wait(min(left, 0.2))
                if check is not None:
                    self._cond.release()
                    try:
                        check()
                    finally:
                        self._cond.acquire()

    def send(self, data: bytes) -> None:
        if self._conn is None:
            raise MachineTimeout(f"{self.label} is not connected")
        self._conn.sendall(data)

    def close(self) -> None:
        for s in (self._conn, self._server):
            if s is None:
                continue
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._thread.join(timeout=2)
