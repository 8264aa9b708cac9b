"""The arm64 Linux kernel `Image` header (Linux Documentation/arch/arm64/
booting.rst, "Call the kernel image"): what a VMM needs to place a kernel.

    u32 code0; u32 code1; u64 text_offset; u64 image_size; u64 flags;
    u64 res2; u64 res3; u64 res4; u32 magic = "ARM\\x64"; u32 res5 (PE offset)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

IMAGE_MAGIC = b"ARM\x64"
HEADER = struct.Struct("<IIQQQQQQ4sI")
FLAG_BIG_ENDIAN = 1 << 0
FLAG_PAGE_SIZE_SHIFT = 1
FLAG_PAGE_SIZE_MASK = 0b11
PAGE_SIZE_4K = 1
FLAG_PLACE_ANYWHERE = 1 << 3
IMAGE_ALIGN = 2 << 20
"""The Image must sit at a 2 MiB aligned base plus text_offset."""


class KernelImageError(ValueError):
    """The file is not an arm64 kernel Image the VMM can boot."""


@dataclass(frozen=True)
class KernelImage:
    path: Path
    data: bytes
    text_offset: int
    image_size: int
    """Bytes the kernel occupies once running (its BSS included)."""
    flags: int

    @classmethod
    def load(cls, path: Path) -> KernelImage:
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise KernelImageError(f"kernel {path} does not exist") from None
        except IsADirectoryError:
            raise KernelImageError(f"kernel {path} is a directory, not an Image") from None
        except OSError as exc:
            raise KernelImageError(f"cannot read kernel {path}: {exc.strerror}") from None
        return cls.parse(path, data)

    @classmethod
    def parse(cls, path: Path, data: bytes) -> KernelImage:
        if len(data) < HEADER.size:
            raise KernelImageError(f"{path} is too short ({len(data)} bytes) to be an arm64 "
                                   "kernel Image")
        _c0, _c1, text_offset, image_size, flags, _r2, _r3, _r4, magic, _r5 = \
            HEADER.unpack_from(data)
        if magic != IMAGE_MAGIC:
            hint = ""
            if data[:2] == b"\x1f\x8b":
                hint = " (it is gzip-compressed: give the uncompressed Image)"
            elif data[:4] == b"\x7fELF":
                hint = " (it is an ELF file such as vmlinux: give arch/arm64/boot/Image)"
            elif data[:2] == b"MZ" and b"zimg" in data[:0x40]:
                hint = " (it is an EFI zboot image: give the uncompressed Image)"
            raise KernelImageError(f"{path} is not an arm64 kernel Image: no 'ARM\\x64' magic "
                                   f"at offset 0x38{hint}")
        if flags & FLAG_BIG_ENDIAN:
            raise KernelImageError(f"{path} is a big-endian kernel; realms here are "
                                   "little-endian")
        page = (flags >> FLAG_PAGE_SIZE_SHIFT) & FLAG_PAGE_SIZE_MASK
        if page not in (0, PAGE_SIZE_4K):
            raise KernelImageError(f"{path} is built for {16 if page == 2 else 64} KiB pages; "
                                   "the realm's RMM v1.0 stage 2 uses 4 KiB granules and this "
                                   "VMM only boots 4 KiB-page kernels")
        if image_size == 0:
            # Kernels before 3.17: the effective size is unknown; be generous.
            image_size = max(len(data), 1) + (8 << 20)
        return cls(Path(path), data, text_offset, image_size, flags)

    @property
    def entry_offset(self) -> int:
        """Offset of the entry point from the 2 MiB aligned base."""
        return self.text_offset
