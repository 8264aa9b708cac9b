"""The arm64 Linux Image header (Linux Documentation/arch/arm64/booting.rst,
"Call the kernel image"): a 64-byte header at the start of the Image that
says where the kernel wants to be placed and how much memory it occupies."""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = struct.Struct("<IIQQQQQQII")
"""code0, code1, text_offset, image_size, flags, res2, res3, res4, magic, res5."""
MAGIC = 0x644D5241
"""b"ARM\\x64" read as a little-endian u32, at offset 0x38."""
FLAG_BIG_ENDIAN = 1 << 0
LEGACY_TEXT_OFFSET = 0x80000
"""text_offset of kernels older than 3.17, whose image_size is 0."""


@dataclass(frozen=True)
class Arm64Image:
    text_offset: int
    """Offset from a 2 MiB aligned base at which the Image must be placed."""
    image_size: int
    """Bytes from the load address the kernel occupies (BSS included); 0 if
    the kernel does not say (then: unknown, use the file size)."""
    flags: int

    @property
    def big_endian(self) -> bool:
        return bool(self.flags & FLAG_BIG_ENDIAN)

    def footprint(self, file_size: int) -> int:
        """Bytes of memory the kernel needs at its load address."""
        return max(file_size, self.image_size)


def parse_image_header(data: bytes) -> Arm64Image | None:
    """The header of an arm64 Image, or None if `data` does not start with one
    (any other payload: it is loaded and entered as it is)."""
    if len(data) < HEADER.size:
        return None
    (_code0, _code1, text_offset, image_size, flags, _r2, _r3, _r4, magic,
     _r5) = HEADER.unpack_from(data)
    if magic != MAGIC:
        return None
    if image_size == 0:
        text_offset = LEGACY_TEXT_OFFSET
    return Arm64Image(text_offset=text_offset, image_size=image_size, flags=flags)
