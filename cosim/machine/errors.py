"""What can go wrong with a running machine, each with a message that says
what happened and what was seen last."""

from __future__ import annotations


class MachineError(Exception):
    """Base class: the co-simulated machine cannot go on."""


class QemuStartError(MachineError):
    """QEMU did not start, or did not come up within the start timeout."""


class QemuExited(MachineError):
    """QEMU exited while the run still needed it."""

    def __init__(self, returncode: int | None, stderr: str, console: str) -> None:
        self.returncode = returncode
        self.stderr = stderr
        self.console = console
        how = "was killed by a signal" if returncode is not None and returncode < 0 else \
            f"exited with status {returncode}"
        parts = [f"QEMU {how} while the run was in progress"]
        if stderr.strip():
            parts.append("QEMU said:\n  " + "\n  ".join(stderr.strip().splitlines()[-15:]))
        if console.strip():
            last = console.strip().splitlines()[-10:]
            parts.append("last console output:\n  " + "\n  ".join(last))
        super().__init__("\n".join(parts))


class HandlerError(MachineError):
    """A Python handler of a doorbell or plugin message raised: the RMM or the
    platform has a bug.  The machine was stopped; the traceback is attached."""


class MachineTimeout(MachineError):
    """Something the run waited for did not happen in time."""
