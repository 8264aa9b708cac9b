"""QMP: an asyncio qemu.qmp client on a thread of its own, behind a small
synchronous facade that any thread may call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from qemu.qmp import EventListener, QMPClient

from .errors import MachineError, MachineTimeout

logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)


class Qmp:
    def __init__(self, socket_name: str) -> None:
        self._address = "\0" + socket_name
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="qmp", daemon=True)
        self._thread.start()
        self._client: QMPClient | None = None
        self._event_callbacks: list[Callable[[dict[str, Any]], None]] = []
        self._event_task: asyncio.Future[None] | None = None

    def _run(self, coro: Any, timeout: float) -> Any:
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except TimeoutError as exc:
            fut.cancel()
            raise MachineTimeout(f"QMP did not answer within {timeout:.0f} s") from exc

    def connect(self, timeout: float, alive: Callable[[], None]) -> None:
        """Connect, retrying until QEMU has created its socket; `alive` raises
        if QEMU has gone meanwhile."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            alive()
            client = QMPClient("cosim")
            try:
                self._run(client.connect(self._address), 5)
                self._client = client
                self._event_task = asyncio.run_coroutine_threadsafe(self._pump(client), self._loop)
                return
            except Exception as exc:
                last = exc
                time.sleep(0.05)
        raise MachineTimeout(f"could not connect to QMP within {timeout:.0f} s ({last})")

    async def _pump(self, client: QMPClient) -> None:
        listener = EventListener()
        with client.listener(listener):
            async for event in listener:
                for cb in list(self._event_callbacks):
                    cb(dict(event))

    def on_event(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self._event_callbacks.append(callback)

    def execute(self, cmd: str, arguments: dict[str, Any] | None = None,
                timeout: float = 10.0) -> Any:
        if self._client is None:
            raise MachineError("QMP is not connected")
        return self._run(self._client.execute(cmd, arguments), timeout)

    @property
    def connected(self) -> bool:
        return self._client is not None

    def execute_nowait(self, cmd: str, arguments: dict[str, Any] | None = None) -> None:
        """Send a command without waiting for its answer (e.g. `stop` while a
        vCPU is blocked in the plugin: QEMU answers only once it can pause).
        Its outcome, an error included, is dropped (QEMU may exit first)."""
        if self._client is not None:
            fut = asyncio.run_coroutine_threadsafe(self._client.execute(cmd, arguments),
                                                   self._loop)
            fut.add_done_callback(_drop_outcome)

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._run(self._client.disconnect(), 2)
            self._client = None
        if self._event_task is not None:
            self._event_task.cancel()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=2)
        if not self._thread.is_alive():
            self._loop.close()


def _drop_outcome(fut: Any) -> None:
    if not fut.cancelled():
        fut.exception()
