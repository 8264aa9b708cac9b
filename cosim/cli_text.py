"""Sentences the command line prints about a platform, and the GPT violation
reports it shows as they happen."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import IO

from .config import GptMode, PlatformConfig, ViolationPolicy
from .trace import Event, Trace
from .violations import Violation

SUMMARY_LINES = 10
"""How many violations the end-of-run summary lists one by one."""


def describe_platform(cfg: PlatformConfig) -> str:
    if cfg.firmware is not None:
        return (f"cosim: {cfg.cpus} CPU(s), {cfg.ram_size >> 20} MiB RAM, -cpu {cfg.cpu_model}, "
                f"firmware {cfg.firmware} (its own RMM; GPT: the firmware's, enforced by "
                "QEMU's granule protection check)")
    why = {GptMode.HW: "QEMU's granule protection check",
           GptMode.PLUGIN: "checked by the TCG plugin after each access",
           GptMode.OFF: "not enforced"}.get(cfg.gpt, "")
    return (f"cosim: {cfg.cpus} CPU(s), {cfg.ram_size >> 20} MiB RAM, -cpu {cfg.cpu_model}, "
            f"GPT enforcement: {cfg.gpt.value} ({why})")


class ViolationPrinter:
    """Prints every GPT violation's report to `out` as it happens (from the
    thread that detected it) and a summary at the end.

        with ViolationPrinter(trace, sys.stderr) as shown:
            ...run...
        status = shown.finish(policy)   # prints the summary
    """

    def __init__(self, trace: Trace, out: IO[str] | None) -> None:
        self.violations: list[Violation] = []
        self._out = out
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] = trace.subscribe(self._on_event)

    def __enter__(self) -> ViolationPrinter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._unsubscribe()

    def _write(self, text: str) -> None:
        if self._out is None:
            return
        try:
            self._out.write(text + "\n")
            self._out.flush()
        except (OSError, ValueError):  # stderr closed or gone: the count still holds
            self._out = None

    def _on_event(self, event: Event) -> None:
        if event["kind"] != "gpt_violation":
            return
        v = Violation.from_event(event)
        with self._lock:
            self.violations.append(v)
            self._write(f"cosim: {v.report()}")

    def finish(self, policy: ViolationPolicy) -> bool:
        """Print the summary; True if the run must fail because of violations
        (any violation, unless the policy is `log`)."""
        self._unsubscribe()
        with self._lock:
            found = list(self.violations)
        if not found:
            return False
        lines = [f"cosim: {len(found)} GPT violation{'s' if len(found) > 1 else ''} in this "
                 "run (reports above):"]
        lines += [f"  CPU {v.cpu} at PC {v.pc:#x}: {v.summary()}" for v in found[:SUMMARY_LINES]]
        if len(found) > SUMMARY_LINES:
            lines.append(f"  ... and {len(found) - SUMMARY_LINES} more")
        self._write("\n".join(lines))
        return policy != ViolationPolicy.LOG
