"""Addresses to names, from the symbol tables of ELF files (pyelftools)."""

from __future__ import annotations

import bisect
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from .config import ConfigError


class ElfSymbols:
    def __init__(self, paths: list[Path] | None = None) -> None:
        self._starts: list[int] = []
        self._entries: list[tuple[int, int, str, str]] = []  # start, size, name, file
        for p in paths or []:
            self.add(Path(p))

    def add(self, path: Path) -> None:
        """Add the symbols of the ELF file `path` (ConfigError if it is not one)."""
        try:
            with path.open("rb") as f:
                elf = ELFFile(f)
                table = elf.get_section_by_name(".symtab")
                symbols = list(table.iter_symbols()) if table is not None else []
        except IsADirectoryError:
            raise ConfigError(f"symbol file {path}: is a directory, not a file") from None
        except OSError as exc:
            raise ConfigError(f"symbol file {path}: {exc.strerror or exc}") from None
        except (ELFError, ValueError) as exc:
            raise ConfigError(f"symbol file {path} is not an ELF file ({exc})") from None
        for sym in symbols:
            if not sym.name or sym.name.startswith("$") or sym["st_shndx"] == "SHN_ABS":
                continue  # mapping symbols and absolute constants name no code
            if sym["st_info"]["type"] in ("STT_FUNC", "STT_NOTYPE", "STT_OBJECT"):
                self._entries.append((sym["st_value"], sym["st_size"], sym.name, path.name))
        self._entries.sort()
        self._starts = [e[0] for e in self._entries]

    def resolve(self, address: int) -> str | None:
        """'name+0xoff in file', or None when no symbol precedes the address."""
        i = bisect.bisect_right(self._starts, address) - 1
        if i < 0:
            return None
        start, size, name, file = self._entries[i]
        if size and address >= start + size and address - start > 0x10000:
            return None
        return f"{name}+{address - start:#x} in {file}"
