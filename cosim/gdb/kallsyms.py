"""The symbol table of an arm64 kernel Image, read from its own kallsyms
tables: Debian's kernel packages ship no real System.map (a placeholder
says it is in the -dbg package), but every kernel built with
CONFIG_KALLSYMS carries its symbols, compressed, for /proc/kallsyms.

What scripts/kallsyms.c emits (Linux 6.x/7.x), in this order:
kallsyms_num_syms (u32), kallsyms_names (per symbol: a length byte, two
if the top bit is set, then that many token numbers), kallsyms_markers (u32
offset into names of every 256th symbol), kallsyms_token_table (256
NUL-terminated strings), kallsyms_token_index (256 u16 offsets into the
table), kallsyms_offsets (per symbol, an s32 relative to its own place).
The tables are found by their shape: the token table holds the single
digits "0".."9" in a row, and its index is 256 increasing u16 that each
point just past a NUL.  Addresses are link-time VAs: boot with nokaslr.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

KIMAGE_VADDR = 0xFFFF_8000_8000_0000
"""Where an arm64 kernel's _text is linked (Linux >= 6.x: the 2 GiB of module
space above the start of the 48-bit kernel VA range)."""
_DIGITS = b"0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00"
_SEARCH = 0x4000
TOKENS = 256


class KallsymsError(Exception):
    """The Image holds no kallsyms tables this reader understands."""


@dataclass(frozen=True)
class KernelSymbol:
    address: int
    kind: str
    """The System.map type letter (T, t, D, d, B, b, R, r, ...)."""
    name: str


def _token_table(data: bytes) -> tuple[int, int, list[bytes]]:
    """(table offset, index offset, tokens)."""
    start = 0
    while (c := data.find(_DIGITS, start)) >= 0:
        start = c + 1
        for p in range(c + len(_DIGITS), min(len(data) - 2 * TOKENS, c + _SEARCH), 2):
            if data[p:p + 2] != b"\0\0":
                continue
            idx = struct.unpack_from(f"<{TOKENS}H", data, p)
            if not all(0 < idx[i + 1] - idx[i] < 256 for i in range(TOKENS - 1)):
                continue
            q = p
            while data[q - 1] == 0:
                q -= 1
            table = data.rfind(b"\0", 0, q) + 1 - idx[-1]
            if not 0 <= table <= c or not all(data[table + idx[i] - 1] == 0
                                              for i in range(1, TOKENS)):
                continue
            tokens = [data[table + i:data.index(b"\0", table + i)] for i in idx]
            return table, p, tokens
    raise KallsymsError("no kallsyms token table (a kernel without CONFIG_KALLSYMS?)")


def _markers(data: bytes, table: int) -> tuple[int, list[int]]:
    """(offset, values) of kallsyms_markers, which ends right before the table."""
    values: list[int] = []
    pos = table - 4  # both are 4-aligned: no padding between them
    while pos >= 0:
        v = struct.unpack_from("<I", data, pos)[0]
        if values and v >= values[-1]:
            raise KallsymsError("kallsyms_markers do not decrease towards their start")
        values.append(v)
        if v == 0:
            break
        pos -= 4
    values.reverse()
    return pos, values


def _name_length(data: bytes, pos: int) -> tuple[int, int]:
    n = data[pos]
    if n & 0x80:
        return (n & 0x7F) | (data[pos + 1] << 7), pos + 2
    return n, pos + 1


def _names_start(data: bytes, markers_at: int, markers: list[int]) -> tuple[int, int]:
    """(offset of kallsyms_names, number of symbols): names start right after
    the u32 count; a start is right when every 256th entry lands on its marker."""
    last = markers[-1]
    low, high = 256 * (len(markers) - 1) + 1, 256 * len(markers)
    for names in range(markers_at - last - 1, max(4, markers_at - last - 0x10_0000), -1):
        count = struct.unpack_from("<I", data, names - 4)[0]
        if not low <= count <= high:
            continue
        pos, ok = names, True
        for i in range(min(count, 256 * 2)):
            if i % 256 == 0 and pos - names != markers[i // 256]:
                ok = False
                break
            length, pos = _name_length(data, pos)
            pos += length
        if ok:
            return names, count
    raise KallsymsError("kallsyms_names not found before kallsyms_markers")


def read_kallsyms(data: bytes, base: int = KIMAGE_VADDR) -> list[KernelSymbol]:
    """The kernel's symbols, sorted by address (KallsymsError if not found).
    `data` is the raw Image, loaded so that its first byte is `base` (_text)."""
    table, index, tokens = _token_table(data)
    markers_at, markers = _markers(data, table)
    names, count = _names_start(data, markers_at, markers)
    offsets = (index + 2 * TOKENS + 3) & ~3
    raw = struct.unpack_from(f"<{count}i", data, offsets)
    out = []
    pos = names
    for i in range(count):
        length, pos = _name_length(data, pos)
        text = b"".join(tokens[t] for t in data[pos:pos + length]).decode("latin-1")
        pos += length
        address = base + offsets + 4 * i + raw[i]
        out.append(KernelSymbol(address, text[:1], text[1:]))
    if not any(s.name == "_text" and s.address == base for s in out):
        raise KallsymsError("kallsyms tables found, but _text is not where they should put it")
    out.sort(key=lambda s: s.address)
    return out


def system_map(symbols: list[KernelSymbol]) -> str:
    """The symbols as a System.map."""
    return "".join(f"{s.address:016x} {s.kind} {s.name}\n" for s in symbols)


def parse_system_map(text: str) -> list[KernelSymbol]:
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            try:
                out.append(KernelSymbol(int(parts[0], 16), parts[1], parts[2]))
            except ValueError:
                continue
    out.sort(key=lambda s: s.address)
    return out
