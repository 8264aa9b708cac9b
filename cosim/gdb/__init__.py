"""Debugging realms with GDB (docs/debugging.md): the gdb proxy and the
`cca` commands served by a running platform (Debugger), the GDB extension
(extension.py, runs inside gdb), and GdbSession, gdb driven from Python."""

from .debugger import Debugger
from .events import EventError, EventSpec, parse_event
from .session import GdbCommandError, GdbSession, GdbSessionError, GdbTimeout

__all__ = ["Debugger", "EventError", "EventSpec", "GdbCommandError", "GdbSession",
           "GdbSessionError", "GdbTimeout", "parse_event"]
