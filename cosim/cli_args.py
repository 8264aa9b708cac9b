"""argparse types the commands share (and the benchmarks use): each turns a
bad value into argparse's one-line usage error instead of a traceback later.

    p.add_argument("--runs", type=positive_int)
    p.add_argument("--trace", type=output_file)
    p.add_argument("--symbols", type=elf_file)
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from .config import unreadable


def _int_at_least(text: str, least: int) -> int:
    try:
        n = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if n < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, not {n}")
    return n


def positive_int(text: str) -> int:
    """A count of at least 1."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """A count that may be 0."""
    return _int_at_least(text, 0)


def positive_seconds(text: str) -> float:
    """A duration in seconds, more than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text}")
    return value


def readable_file(text: str) -> Path:
    """An existing file this process can read."""
    problem = unreadable(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{text}: {problem}")
    return Path(text)


def elf_file(text: str) -> Path:
    """A readable ELF file."""
    path = readable_file(text)
    with path.open("rb") as f:
        if f.read(4) != b"\x7fELF":
            raise argparse.ArgumentTypeError(f"{text} is not an ELF file")
    return path


def output_file(text: str) -> Path:
    """A file this process can create or write: opened for appending to find
    out (nothing is truncated yet; a file created here is removed again)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory, not a file")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: directory {path.parent} does not exist")
    existed = path.exists()
    try:
        with path.open("a"):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text}: {exc.strerror or exc}") from None
    if not existed:
        path.unlink(missing_ok=True)
    return path


def regex(text: str) -> re.Pattern[str]:
    """A Python regular expression."""
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"'{text}' is not a regular expression: {exc}") \
            from None


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")
