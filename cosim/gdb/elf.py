"""ELF facts for debugging (pyelftools: entry, load segments, symbols, build
id), and the symbol-only ELF file that gives gdb a kernel's symbols when
all there is is a symbol list (a System.map, or the Image's kallsyms).

pyelftools reads ELF files but does not write them; the symbol file is the
least gdb needs (ELF64 header, a NOBITS .text over the symbols' range,
.symtab, .strtab, .shstrtab), written with struct.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from ..config import ConfigError
from .kallsyms import KernelSymbol

EM_AARCH64 = 183
ET_EXEC = 2
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS = 1, 2, 3, 8
SHF_ALLOC, SHF_EXECINSTR = 0x2, 0x4
STB_LOCAL, STB_GLOBAL = 0, 1
STT_OBJECT, STT_FUNC = 1, 2
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")


@dataclass
class ElfFacts:
    path: Path
    entry: int
    segments: list[tuple[int, int, int]] = field(default_factory=list)
    """Loadable segments: (virtual address, physical address, memory size)."""
    build_id: str | None = None
    symbols: dict[str, int] = field(default_factory=dict)

    def address(self, name: str) -> int:
        if name not in self.symbols:
            raise KeyError(f"{self.path.name} has no symbol {name}")
        return self.symbols[name]


def elf_facts(path: Path) -> ElfFacts:
    """What gdb and the tests need to know about an ELF file (ConfigError if
    it is not one)."""
    try:
        with path.open("rb") as f:
            elf = ELFFile(f)
            facts = ElfFacts(path, elf["e_entry"])
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_LOAD":
                    facts.segments.append((seg["p_vaddr"], seg["p_paddr"], seg["p_memsz"]))
            note_section = elf.get_section_by_name(".note.gnu.build-id")
            if note_section is not None:
                for note in note_section.iter_notes():
                    if note["n_type"] == "NT_GNU_BUILD_ID":
                        facts.build_id = note["n_desc"]
            table = elf.get_section_by_name(".symtab")
            for sym in table.iter_symbols() if table is not None else []:
                if sym.name and not sym.name.startswith("$") and sym["st_shndx"] != "SHN_ABS":
                    facts.symbols.setdefault(sym.name, sym["st_value"])
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    except (ELFError, ValueError) as exc:
        raise ConfigError(f"{path} is not an ELF file ({exc})") from None
    return facts


def _strtab(names: list[str]) -> tuple[bytes, list[int]]:
    data = bytearray(b"\0")
    offsets = []
    for n in names:
        offsets.append(len(data))
        data += n.encode("latin-1") + b"\0"
    return bytes(data), offsets


def write_symbol_elf(symbols: list[KernelSymbol], path: Path) -> None:
    """An ELF file with just these symbols (functions for t/T, objects for the
    rest; sized up to the next symbol), for gdb's add-symbol-file."""
    syms = sorted((s for s in symbols if s.kind.upper() not in ("A", "U", "W", "V")),
                  key=lambda s: s.address)
    if not syms:
        raise ConfigError("no symbols to write")
    low, high = syms[0].address, syms[-1].address + 4
    strtab, name_offsets = _strtab([s.name for s in syms])
    shstr, (n_text, n_symtab, n_strtab, n_shstrtab) = _strtab(
        [".text", ".symtab", ".strtab", ".shstrtab"])
    symtab = bytearray(_SYM.size)  # the null symbol
    for i, s in enumerate(syms):
        size = (syms[i + 1].address - s.address) if i + 1 < len(syms) else 4
        kind = STT_FUNC if s.kind in "tTwW" else STT_OBJECT
        bind = STB_LOCAL if s.kind.islower() else STB_GLOBAL
        symtab += _SYM.pack(name_offsets[i], (bind << 4) | kind, 0, 1, s.address,
                            min(size, 1 << 24))
    # locals must come first in .symtab: sh_info = index of the first global
    entries = [symtab[j:j + _SYM.size] for j in range(0, len(symtab), _SYM.size)]
    locals_ = [e for e in entries[1:] if e[4] >> 4 == STB_LOCAL]
    globals_ = [e for e in entries[1:] if e[4] >> 4 != STB_LOCAL]
    symtab = entries[0] + b"".join(locals_) + b"".join(globals_)
    first_global = 1 + len(locals_)
    off_symtab = _EHDR.size
    off_strtab = off_symtab + len(symtab)
    off_shstr = off_strtab + len(strtab)
    off_shdr = (off_shstr + len(shstr) + 7) & ~7
    sections = [
        _SHDR.pack(0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        _SHDR.pack(n_text, SHT_NOBITS, SHF_ALLOC | SHF_EXECINSTR, low, off_symtab, high - low,
                   0, 0, 4096, 0),
        _SHDR.pack(n_symtab, SHT_SYMTAB, 0, 0, off_symtab, len(symtab), 3, first_global, 8,
                   _SYM.size),
        _SHDR.pack(n_strtab, SHT_STRTAB, 0, 0, off_strtab, len(strtab), 0, 0, 1, 0),
        _SHDR.pack(n_shstrtab, SHT_STRTAB, 0, 0, off_shstr, len(shstr), 0, 0, 1, 0),
    ]
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = _EHDR.pack(ident, ET_EXEC, EM_AARCH64, 1, 0, 0, off_shdr, 0, _EHDR.size, 0, 0,
                        _SHDR.size, len(sections), 4)
    blob = header + symtab + strtab + shstr
    blob += bytes(off_shdr - len(blob)) + b"".join(sections)
    path.write_bytes(blob)
