"""Addresses to names, from the symbol tables of ELF files (pyelftools)."""

from __future__ import annotations

import bisect
from pathlib import Path

from elftools.elf.elffile import ELFFile


class ElfSymbols:
    def __init__(self, paths: list[Path] | None = None) -> None:
        self._starts: list[int] = []
        self._entries: list[tuple[int, int, str, str]] = []  # start, size, name, file
        for p in paths or []:
            self.add(Path(p))

    def add(self, path: Path) -> None:
        with path.open("rb") as f:
            elf = ELFFile(f)
            table = elf.get_section_by_name(".symtab")
            if table is None:
                return
            for sym in table.iter_symbols():
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
