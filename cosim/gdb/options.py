"""The debugging options the commands share (`--gdb`, `--gdb-attach`,
`--break-on`, `--vmlinux`) and the Debugger they make."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from ..config import ConfigError, PlatformConfig
from .debugger import GDB, Debugger
from .elf import elf_facts
from .events import EventError, EventSpec, parse_event
from .kallsyms import KallsymsError, KernelSymbol, parse_system_map, read_kallsyms

DEBUG_TIMEOUT = 10.0 ** 7
"""The co-simulator's own waits while a debugger may hold the machine
stopped for as long as it likes: QEMU dying still ends them at once."""


def event_arg(text: str) -> EventSpec:
    try:
        return parse_event(text)
    except EventError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(p: argparse.ArgumentParser, *, vmlinux: bool = False) -> None:
    g = p.add_argument_group("debugging (docs/debugging.md)")
    g.add_argument("--gdb", action="store_true",
                   help="serve QEMU's gdbstub and wait for gdb before the vCPUs run; prints "
                        "the gdb-multiarch command that attaches")
    g.add_argument("--gdb-attach", action="store_true",
                   help="like --gdb, and start gdb-multiarch on this terminal, attached, "
                        "with the symbols loaded")
    g.add_argument("--break-on", type=event_arg, action="append", metavar="EVENT",
                   help="stop when a CCA event happens (repeatable; implies --gdb): gpt, "
                        "rmi:NAME[@REALM], rsi:NAME[@REALM], enter[@REALM.REC], "
                        "exit[:REASON][@REALM.REC]")
    if vmlinux:
        g.add_argument("--vmlinux", type=Path, metavar="ELF",
                       help="the realm kernel's vmlinux, for gdb's symbols (default: a real "
                            "System.map of the fetched kernel, else the kallsyms tables inside "
                            "the Image); debugging adds nokaslr to the kernel command line")


def debugging(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "gdb", False) or getattr(args, "gdb_attach", False)
                or getattr(args, "break_on", None))


def debugger_from_args(args: argparse.Namespace, cfg: PlatformConfig,
                       symbols: list[Path] | None = None, **kwargs: Any) -> Debugger | None:
    """A Debugger if any debugging option was given (then the platform's
    timeouts are lifted); None otherwise."""
    break_on = getattr(args, "break_on", None) or []
    attach = getattr(args, "gdb_attach", False)
    if not debugging(args):
        return None
    if getattr(args, "firmware", None) is not None:
        raise ConfigError("--gdb, --gdb-attach and --break-on work with our monitor and RMM, "
                          "not with --firmware")
    if attach and shutil.which(GDB) is None:
        raise ConfigError(f"--gdb-attach needs {GDB} (apt-get install gdb-multiarch)")
    cfg.start_timeout = cfg.call_timeout = DEBUG_TIMEOUT
    return Debugger(break_on=break_on, symbol_files=symbols, attach_gdb=attach, **kwargs,
                    announce=lambda text: print(f"cosim: {text}", file=sys.stderr, flush=True))


def kernel_symbols(vmlinux: Path | None, system_map: Path | None, image: bytes,
                   warn: Any) -> tuple[list[Path], list[KernelSymbol] | None]:
    """gdb's symbols for a realm kernel: (ELF files, symbol list to write as
    one): its vmlinux if given, else a real System.map, else the kallsyms
    tables inside the Image itself."""
    if vmlinux is not None:
        elf_facts(vmlinux)  # ConfigError if it is not an ELF file
        return [vmlinux], None
    if system_map is not None and system_map.exists():
        return [], parse_system_map(system_map.read_text(errors="replace"))
    try:
        return [], read_kallsyms(image)
    except KallsymsError as exc:
        warn(f"no symbols for the realm kernel ({exc}); give --vmlinux")
        return [], None
