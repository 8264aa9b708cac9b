"""A firmware flash image for QEMU virt's -bios (flash0): BL1 at offset 0
and the FIP after it (TF-A's qemu platform: at PLAT_QEMU_FIP_BASE, 256 KiB).
`with_bl33` puts our hoststub in as BL33, where TF-A's BL2 loads it from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..machine import board
from . import fip as F

QEMU_FIP_OFFSET = 0x4_0000
"""Where TF-A's qemu platform looks for its FIP in flash0."""
SEARCH_STEP = 0x1000


class FirmwareError(Exception):
    """A firmware image that cannot be used (one line, for the user)."""


@dataclass
class Flash:
    data: bytes
    fip_offset: int
    fip: F.Fip

    @classmethod
    def read(cls, path: Path) -> Flash:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise FirmwareError(f"firmware {path}: {exc.strerror or exc}") from None
        return cls.parse(data, str(path))

    @classmethod
    def parse(cls, data: bytes, name: str = "firmware") -> Flash:
        if len(data) > board.FLASH0_SIZE:
            raise FirmwareError(f"{name} is {len(data)} bytes: flash0 holds "
                                f"{board.FLASH0_SIZE >> 20} MiB")
        offset = find_fip(data)
        if offset is None:
            raise FirmwareError(f"{name} holds no FIP (TF-A's firmware image package): "
                                "give the flash image TF-A's qemu build makes (qemu_fw.bios)")
        try:
            return cls(data, offset, F.parse(data, offset))
        except F.FipError as exc:
            raise FirmwareError(f"{name}: {exc}") from None

    def with_bl33(self, bl33: bytes) -> bytes:
        """The flash image with BL33 replaced by `bl33` (the rest unchanged)."""
        self.fip.replace(F.BL33, bl33)
        packed = self.fip.pack()
        out = self.data[:self.fip_offset] + packed
        tail = self.data[self.fip_offset + self.fip.size:]
        if len(out) < len(self.data) and not any(tail):
            out += bytes(len(self.data) - len(out))  # keep a padded image padded
        if len(out) > board.FLASH0_SIZE:
            raise FirmwareError("the firmware with our BL33 does not fit in flash0")
        return out


def find_fip(data: bytes) -> int | None:
    """The offset of the FIP in a flash image: TF-A qemu's, else the first
    4 KiB-aligned ToC."""
    if F.is_fip(data, QEMU_FIP_OFFSET):
        return QEMU_FIP_OFFSET
    for off in range(0, len(data), SEARCH_STEP):
        if F.is_fip(data, off):
            return off
    return None
