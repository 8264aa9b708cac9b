"""The exit statuses of the `cosim` command (README, "Exit status")."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    """Done; for `cosim run`: the payload powered the machine off."""
    FAILED = 1
    """The machine failed: QEMU died, the monitor took an exception it cannot
    handle, the co-simulator hit a bug, QEMU stopped answering; or an output
    could not be written."""
    USAGE = 2
    """Bad arguments, configuration or input files."""
    VIOLATION = 3
    """GPT violations happened (unless --on-violation log)."""
    RESET = 4
    """`cosim run`: the payload reset the machine (PSCI SYSTEM_RESET)."""
    TIMEOUT = 124
    """`cosim run`: --timeout passed before the payload powered off (as timeout(1))."""
    INTERRUPTED = 130
    """SIGINT, SIGTERM or SIGHUP."""
    BROKEN_PIPE = 141
    """The reader of standard output went away (as a program killed by SIGPIPE)."""
