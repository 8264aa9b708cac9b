"""TF-A's Firmware Image Package (FIP): a table of contents (ToC) of images
named by UUID, then the images.  Format facts (TF-A's documentation,
"Firmware Image Package"): a 16-byte header (name 0xAA640001, serial number,
flags) and 40-byte entries (UUID, offset from the FIP start, size, flags),
all little-endian, ended by an entry with the null UUID."""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field

TOC_NAME = 0xAA64_0001
HEADER = struct.Struct("<IIQ")
ENTRY = struct.Struct("<16sQQQ")
IMAGE_ALIGN = 16
"""Alignment of each image in a FIP we write."""

BL33 = uuid.UUID("d6d0eea7-fcea-d54b-9782-9934f234b6e4")
NAMES = {
    uuid.UUID("5ff9ec0b-4d22-3e4d-a544-c39d81c73f0a"): "tb-fw (BL2)",
    uuid.UUID("47d4086d-4cfe-9846-9b95-2950cbbd5a00"): "soc-fw (BL31)",
    uuid.UUID("05d0e189-53dc-1347-8d2b-500a4b7a3e38"): "tos-fw (BL32)",
    BL33: "nt-fw (BL33)",
    uuid.UUID("6c0762a6-12f2-4b56-92cb-ba8f633606d9"): "rmm-fw (RMM)",
    uuid.UUID("08b8f1d9-c9cf-9349-a962-6fbc6b7265cc"): "hw-config",
    uuid.UUID("6c0458ff-af6b-7d4f-82ed-aa27bc69bfd2"): "tb-fw-config",
    uuid.UUID("9979814b-0376-fb46-8c8e-8d267f7859e0"): "soc-fw-config",
    uuid.UUID("26257c1a-dbc6-7f47-8d96-c4c4b0248021"): "tos-fw-config",
    uuid.UUID("28da9815-93e8-7e44-ac66-1aaf801550f9"): "nt-fw-config",
    uuid.UUID("5807e16a-8459-47be-8ed5-648e8ddd0e0e"): "fw-config",
}


class FipError(Exception):
    """Not a FIP, or a damaged one (one line, for the user)."""


@dataclass
class FipImage:
    uuid: uuid.UUID
    data: bytes
    flags: int = 0

    @property
    def name(self) -> str:
        return NAMES.get(self.uuid, str(self.uuid))


@dataclass
class Fip:
    serial: int = 0
    flags: int = 0
    images: list[FipImage] = field(default_factory=list)
    size: int = 0
    """Bytes the FIP spans where it was read (up to its last image)."""

    def find(self, which: uuid.UUID) -> FipImage | None:
        return next((im for im in self.images if im.uuid == which), None)

    def replace(self, which: uuid.UUID, data: bytes) -> None:
        """Set the image `which` to `data` (appended when the FIP has none)."""
        image = self.find(which)
        if image is None:
            self.images.append(FipImage(which, data))
        else:
            image.data = data

    def pack(self) -> bytes:
        toc = HEADER.size + ENTRY.size * (len(self.images) + 1)
        offset = _align(toc)
        entries, body = [], bytearray()
        for im in self.images:
            entries.append(ENTRY.pack(im.uuid.bytes, offset, len(im.data), im.flags))
            body += im.data + bytes(_align(len(im.data)) - len(im.data))
            offset += _align(len(im.data))
        end = ENTRY.pack(bytes(16), offset, 0, 0)
        head = HEADER.pack(TOC_NAME, self.serial, self.flags) + b"".join(entries) + end
        return head + bytes(_align(toc) - len(head)) + bytes(body)


def _align(n: int) -> int:
    return (n + IMAGE_ALIGN - 1) // IMAGE_ALIGN * IMAGE_ALIGN


def is_fip(data: bytes, offset: int = 0) -> bool:
    return len(data) >= offset + HEADER.size and \
        struct.unpack_from("<I", data, offset)[0] == TOC_NAME


def parse(data: bytes, offset: int = 0) -> Fip:
    """The FIP that starts at `offset` of `data`."""
    if not is_fip(data, offset):
        raise FipError(f"no FIP at offset {offset:#x} (its ToC starts with {TOC_NAME:#x})")
    _name, serial, flags = HEADER.unpack_from(data, offset)
    fip = Fip(serial=serial, flags=flags)
    pos = offset + HEADER.size
    end = offset
    while True:
        if pos + ENTRY.size > len(data):
            raise FipError("the FIP's table of contents runs past the end of the file")
        raw, where, size, eflags = ENTRY.unpack_from(data, pos)
        pos += ENTRY.size
        if raw == bytes(16):
            break
        if offset + where + size > len(data):
            raise FipError(f"FIP image {NAMES.get(uuid.UUID(bytes=raw), uuid.UUID(bytes=raw))} "
                           f"runs past the end of the file")
        fip.images.append(FipImage(uuid.UUID(bytes=raw),
                                   bytes(data[offset + where:offset + where + size]), eflags))
        end = max(end, offset + where + size)
        if len(fip.images) > 64:
            raise FipError("the FIP's table of contents has no end")
    fip.size = max(end, pos) - offset
    return fip
