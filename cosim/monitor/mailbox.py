"""Python's view of a CPU's per-CPU area in the carve-out: the mailbox the
monitor fills before ringing the doorbell, and the GPR frame Python edits to
answer."""

from __future__ import annotations

from ..memory import GuestMemory
from . import layout as L

FRAME_REGS = 31
SMC_ARGS = 18
"""SMCCC v1.2+: x0..x17 carry arguments and results."""


class Mailbox:
    def __init__(self, memory: GuestMemory, carveout_base: int, cpu: int) -> None:
        self.memory = memory
        self.cpu = cpu
        self.base = carveout_base + L.CARVEOUT_PERCPU_OFFSET + cpu * L.PERCPU_SIZE
        m = L.MAILBOX
        self._reason = self.base + m["reason"]
        self._action = self.base + m["action"]
        self._flags = self.base + m["flags"]
        self._frame = self.base + m["x"]
        self.esr_addr = self.base + m["esr"]
        self.elr_addr = self.base + m["elr"]
        self._field = {f.name: self.base + m[f.name] for f in m.fields}

    # hot path helpers -------------------------------------------------------

    def reason(self) -> int:
        return self.memory.read_u64(self._reason)

    def smc_args(self) -> tuple[int, ...]:
        """The caller's x0..x17."""
        return self.memory.read_u64s(self._frame, SMC_ARGS)

    def set_results(self, values: tuple[int, ...] | list[int]) -> None:
        """Write x0..x(n-1) of the caller; the others are left as they were."""
        self.memory.write_u64s(self._frame, values)

    def set_action(self, action: L.Action, flags: int = 0) -> None:
        self.memory.write_u64(self._action, action)
        if flags:
            self.memory.write_u64(self._flags, self.memory.read_u64(self._flags) | flags)

    def add_flags(self, flags: int) -> None:
        self.memory.write_u64(self._flags, self.memory.read_u64(self._flags) | flags)

    # everything else ---------------------------------------------------------------

    def get(self, name: str) -> int:
        return self.memory.read_u64(self._field[name])

    def put(self, name: str, value: int) -> None:
        self.memory.write_u64(self._field[name], value)

    def frame(self) -> tuple[int, ...]:
        return self.memory.read_u64s(self._frame, FRAME_REGS)

    def set_frame(self, values: list[int] | tuple[int, ...]) -> None:
        if len(values) != FRAME_REGS:
            raise ValueError(f"a frame has {FRAME_REGS} registers, not {len(values)}")
        self.memory.write_u64s(self._frame, values)

    def clear(self) -> None:
        """Zero the whole per-CPU area (before a (re)boot)."""
        self.memory.zero(self.base, L.PERCPU_SIZE)
