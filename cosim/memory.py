"""GuestMemory: the one way Python touches guest physical memory.

In the co-simulation the buffer is an mmap of QEMU's RAM backend (a memfd that
QEMU maps with share=on), so physical address PA is buffer offset PA - base and
stores are visible to the guest immediately, and vice versa.  Unit tests use a
bytearray of the same shape.  Every access is bounds-checked; all multi-byte
helpers are little-endian, as the Arm architecture and the RMM ABI are.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterable, Sequence
from typing import Any

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_U64S: dict[int, struct.Struct] = {}


def _u64s(count: int) -> struct.Struct:
    """The struct of `count` little-endian u64s (cached: mailboxes and RTTs
    use the same few counts over and over)."""
    st = _U64S.get(count)
    if st is None:
        st = _U64S[count] = struct.Struct(f"<{count}Q")
    return st


_ZERO_PAGE_SIZE = 0x1000
_ZERO_PAGE = bytes(_ZERO_PAGE_SIZE)
"""Scrubbing a 4 KiB granule, the commonest fill, copies this instead of
building zeros each time."""


class GuestMemoryError(Exception):
    """An access outside the guest memory this object covers."""


class GuestMemory:
    """A window of guest physical memory [base, base + size)."""

    def __init__(self, base: int, buffer: bytearray | mmap.mmap, *, name: str = "ram") -> None:
        self.base = base
        self.size = len(buffer)
        self.end = base + self.size
        self.name = name
        self._buf = buffer
        self._view = memoryview(buffer)
        self._closed = False

    # -- construction -------------------------------------------------------

    @classmethod
    def anonymous(cls, base: int, size: int, *, name: str = "ram") -> GuestMemory:
        """A zero-filled bytearray: what unit tests use instead of QEMU's RAM."""
        return cls(base, bytearray(size), name=name)

    @classmethod
    def from_fd(cls, base: int, fd: int, size: int, *, name: str = "ram") -> GuestMemory:
        """Map `size` bytes of the file `fd` shared, as QEMU maps it."""
        if os.fstat(fd).st_size < size:
            os.ftruncate(fd, size)
        return cls(base, mmap.mmap(fd, size, flags=mmap.MAP_SHARED), name=name)

    def close(self) -> None:
        """Unmap; every later access raises GuestMemoryError."""
        self._closed = True
        self.size = 0
        self.end = self.base
        self._view.release()
        if isinstance(self._buf, mmap.mmap):
            self._buf.close()

    # -- bounds ---------------------------------------------------------------

    def contains(self, pa: int, length: int = 1) -> bool:
        return length >= 0 and self.base <= pa and pa + length <= self.end

    def _offset(self, pa: int, length: int) -> int:
        off = pa - self.base
        if off < 0 or length < 0 or off + length > self.size:
            if self._closed:
                raise GuestMemoryError(f"guest memory '{self.name}' is gone: the platform "
                                       "has stopped")
            raise GuestMemoryError(
                f"access of {length} bytes at PA {pa:#x} is outside {self.name} "
                f"[{self.base:#x}, {self.end:#x})"
            )
        return off

    # -- bytes ----------------------------------------------------------------

    def read(self, pa: int, length: int) -> bytes:
        off = self._offset(pa, length)
        return bytes(self._view[off : off + length])

    def write(self, pa: int, data: bytes | bytearray | memoryview) -> None:
        off = self._offset(pa, len(data))
        self._view[off : off + len(data)] = data

    def view(self, pa: int, length: int) -> memoryview:
        """A zero-copy view; valid until close().  Used for hashing and copies."""
        off = self._offset(pa, length)
        return self._view[off : off + length]

    def fill(self, pa: int, length: int, value: int = 0) -> None:
        off = self._offset(pa, length)
        self._view[off : off + length] = bytes([value]) * length

    def zero(self, pa: int, length: int) -> None:
        off = self._offset(pa, length)
        self._view[off : off + length] = _ZERO_PAGE if length == _ZERO_PAGE_SIZE else bytes(length)

    def is_zero(self, pa: int, length: int) -> bool:
        off = self._offset(pa, length)
        return not any(self._view[off : off + length])

    def copy(self, dst: int, src: int, length: int) -> None:
        s = self._offset(src, length)
        d = self._offset(dst, length)
        self._view[d : d + length] = self._view[s : s + length]

    # -- integers -------------------------------------------------------------

    def read_u8(self, pa: int) -> int:
        return self._view[self._offset(pa, 1)]

    def write_u8(self, pa: int, value: int) -> None:
        self._view[self._offset(pa, 1)] = value & 0xFF

    def read_u16(self, pa: int) -> int:
        return _U16.unpack_from(self._buf, self._offset(pa, 2))[0]

    def write_u16(self, pa: int, value: int) -> None:
        _U16.pack_into(self._buf, self._offset(pa, 2), value & 0xFFFF)

    def read_u32(self, pa: int) -> int:
        return _U32.unpack_from(self._buf, self._offset(pa, 4))[0]

    def write_u32(self, pa: int, value: int) -> None:
        _U32.pack_into(self._buf, self._offset(pa, 4), value & 0xFFFF_FFFF)

    def read_u64(self, pa: int) -> int:
        return _U64.unpack_from(self._buf, self._offset(pa, 8))[0]

    def write_u64(self, pa: int, value: int) -> None:
        _U64.pack_into(self._buf, self._offset(pa, 8), value & 0xFFFF_FFFF_FFFF_FFFF)

    def read_u64s(self, pa: int, count: int) -> tuple[int, ...]:
        return _u64s(count).unpack_from(self._buf, self._offset(pa, 8 * count))

    def write_u64s(self, pa: int, values: Sequence[int] | Iterable[int]) -> None:
        vals = [v & 0xFFFF_FFFF_FFFF_FFFF for v in values]
        _u64s(len(vals)).pack_into(self._buf, self._offset(pa, 8 * len(vals)), *vals)

    def unpack_from(self, st: struct.Struct, pa: int) -> tuple[Any, ...]:
        """A whole precompiled structure at `pa`, in one call."""
        return st.unpack_from(self._buf, self._offset(pa, st.size))

    def pack_into(self, st: struct.Struct, pa: int, *values: Any) -> None:
        """Write a whole precompiled structure at `pa` straight into memory."""
        st.pack_into(self._buf, self._offset(pa, st.size), *values)

    def read_uint(self, pa: int, size: int) -> int:
        """Read an unsigned little-endian integer of 1, 2, 4 or 8 bytes."""
        return int.from_bytes(self.read(pa, size), "little")

    def write_uint(self, pa: int, size: int, value: int) -> None:
        self.write(pa, (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little"))
