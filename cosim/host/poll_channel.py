"""The hoststub's polling channel: HOSTSTUB_NEXT without an SMC of ours.

The stub writes the call's arguments into its CPU's slot of the poll area
(layout POLL, in shared NS RAM), bumps `call`, and waits until `answer`
equals it.  One thread per CPU here watches `call` and serves it with the
same `HostStub.on_next` the SiP service uses, so host programs, requests
and their results work unchanged; each CPU's programs always run on its
own poller thread, as they run on its doorbell thread with the SiP channel.

This is what lets the hoststub (and the realm VMM on it) run as BL33 under
a third-party EL3 firmware: nothing in the channel needs our monitor.  It
costs latency, since both sides poll: see docs/firmware.md.
"""

from __future__ import annotations

import threading
import time

from ..memory import GuestMemory
from ..monitor import layout as L
from .stub import HostStub

SPIN_SECONDS = 50e-6
"""How long the poller polls with only a yield (sleep(0), which lets other
threads, e.g. our RMM's doorbell thread, take the GIL) after it served a
call: the next call usually follows within tens of microseconds."""
SLEEP_MIN = 20e-6
SLEEP_MAX = 1e-3
"""Then the poller sleeps SLEEP_MIN, doubling up to SLEEP_MAX, between polls."""


class StubImageError(Exception):
    """The image is no hoststub with a channel header."""


def stub_header(image: bytes) -> tuple[int, int]:
    """(channel, poll area address) from a hoststub image's header."""
    off = L.STUB_HEADER_OFFSET
    if len(image) < off + L.STUB_HEADER.size:
        raise StubImageError("the image is too small to be a hoststub")
    words = [int.from_bytes(image[off + 8 * i:off + 8 * i + 8], "little") for i in range(3)]
    if words[0] != L.STUB_HEADER_MAGIC:
        raise StubImageError("the image has no hoststub header (a hoststub built before "
                             "the polling channel?)")
    return words[1], words[2]


def with_channel(image: bytes, channel: L.StubChannel) -> bytes:
    """The hoststub image with its header's channel word set to `channel`."""
    stub_header(image)
    off = L.STUB_HEADER_OFFSET + L.STUB_HEADER["channel"]
    return image[:off] + int(channel).to_bytes(8, "little") + image[off + 8:]


class PollChannel:
    """Serves HOSTSTUB_NEXT for every CPU of `stub` through the poll area."""

    def __init__(self, stub: HostStub, memory: GuestMemory, area: int, cpus: int,
                 on_error=None) -> None:  # type: ignore[no-untyped-def]
        self.stub = stub
        self.memory = memory
        self.area = area
        self.cpus = cpus
        self.counter_hz = 0
        """CNTFRQ_EL0 as the stub reported it (0 until its first call)."""
        self.calls = 0
        self._on_error = on_error
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve, args=(cpu,), daemon=True,
                                          name=f"poll-cpu{cpu}") for cpu in range(cpus)]

    def slot(self, cpu: int) -> int:
        return self.area + cpu * L.POLL_SLOT.size

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            if t.is_alive() and t is not threading.current_thread():
                t.join(timeout=5.0)

    def _serve(self, cpu: int) -> None:
        mem, slot, P = self.memory, self.slot(cpu), L.POLL_SLOT
        served, sleep = time.monotonic(), SLEEP_MIN
        try:
            while not self._stop.is_set():
                call, answer, page, entry, index, freq = mem.read_u64s(slot, 6)
                if call == answer:
                    if time.monotonic() - served < SPIN_SECONDS:
                        time.sleep(0)
                        continue
                    time.sleep(sleep)
                    sleep = min(sleep * 2, SLEEP_MAX)
                    continue
                sleep = SLEEP_MIN
                if freq and freq != self.counter_hz:
                    self.counter_hz = freq
                    self.stub.set_counter_frequency(freq)
                self.stub.on_next(cpu, (L.SipFid.HOSTSTUB_NEXT, page, entry, index))
                self.calls += 1
                mem.write_u64(slot + P["answer"], call)
                served = time.monotonic()
        except Exception as exc:  # a dead poller would hang the stub: report it
            if self._on_error is not None and not self._stop.is_set():
                self._on_error(exc)
