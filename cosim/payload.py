"""The NS payload and what it boots with: its image, an optional initrd and
the device tree, and where each goes in RAM.

    RAM base                                           carve-out
    | 2 MiB | payload (image_size) ... | initrd | DTB (2 MiB) | monitor + RMM |

The monitor enters the payload at NS-EL2 with the arm64 Linux boot protocol
(Documentation/arch/arm64/booting.rst): x0 = the device tree, MMU off.  An
arm64 Image is placed at a 2 MiB aligned base plus its text_offset and needs
image_size bytes there; the initrd sits right below the device tree and is
described in /chosen, as is the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import MIB, ConfigError, PlatformConfig
from .host.kernel_image import FLAG_BIG_ENDIAN, HEADER, IMAGE_MAGIC
from .machine import dtb

GRANULE = 4096
DTB_MAX = 2 * MIB
"""booting.rst: the device tree must not exceed 2 MiB (it gets a 2 MiB window)."""


@dataclass
class NsImages:
    """The payload and initrd bytes, and where they are loaded."""

    payload: bytes
    payload_address: int
    entry: int
    end: int
    """First byte after the memory the payload occupies (BSS included)."""
    initrd: bytes | None = None
    initrd_address: int = 0

    @property
    def initrd_range(self) -> tuple[int, int] | None:
        if self.initrd is None:
            return None
        return self.initrd_address, self.initrd_address + len(self.initrd)


@dataclass(frozen=True)
class _ImageHeader:
    text_offset: int
    image_size: int
    flags: int


def _image_header(data: bytes) -> _ImageHeader | None:
    """The arm64 Image header of `data` (cosim.host.kernel_image has its
    layout), or None: any other payload is loaded and entered as it is."""
    if len(data) < HEADER.size:
        return None
    _c0, _c1, text_offset, image_size, flags, _r2, _r3, _r4, magic, _r5 = HEADER.unpack_from(data)
    return _ImageHeader(text_offset, image_size, flags) if magic == IMAGE_MAGIC else None


def _read(what: str, path: Path, limit: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            raise ConfigError(f"{what} {path} is {size / MIB:.1f} MiB, more than the "
                              f"{limit / MIB:.0f} MiB of RAM there is room for (raise --ram)")
        return path.read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"{what} {path}: is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror or exc}") from None


def load_ns_images(config: PlatformConfig, base: int, dtb_address: int) -> NsImages:
    """Read the payload (and initrd) of `config` and place them in RAM from
    `base` (a 2 MiB aligned address) up to `dtb_address`; ConfigError if a
    file cannot be read or the images do not fit."""
    room = dtb_address - base
    payload_path = Path(config.payload)
    payload = _read("NS payload", payload_path, room)
    header = _image_header(payload)
    entry = base
    footprint = len(payload)
    if header is not None:
        if header.flags & FLAG_BIG_ENDIAN:
            raise ConfigError(f"NS payload {payload_path} is a big-endian arm64 Image; the "
                              "monitor enters NS-EL2 little-endian")
        entry = base + header.text_offset
        footprint = max(footprint, header.image_size)  # 0 (before Linux 3.17): unknown
    end = entry + footprint
    images = NsImages(payload=payload, payload_address=entry, entry=entry, end=end)
    top = dtb_address
    if config.initrd is not None:
        initrd = _read("initrd", Path(config.initrd), room)
        images.initrd = initrd
        images.initrd_address = (dtb_address - len(initrd)) & ~(GRANULE - 1)
        top = images.initrd_address
    if end > top:
        what = "and the initrd " if config.initrd is not None else ""
        raise ConfigError(
            f"NS payload {payload_path} ({footprint / MIB:.1f} MiB in memory) {what}do not fit "
            f"in the {room / MIB:.0f} MiB of RAM below the device tree (raise --ram)")
    return images


def ns_device_tree(qemu_dtb: bytes, images: NsImages, carveout: tuple[int, int],
                   bootargs: str | None) -> bytes:
    """QEMU's own device tree for this machine, edited for the NS payload: the
    carve-out reserved, PSCI with the SMC conduit, and /chosen."""
    tree = dtb.parse(qemu_dtb)
    dtb.reserve_memory(tree, "cca-cosim", *carveout)
    dtb.add_psci(tree)
    dtb.set_chosen(tree, bootargs, images.initrd_range)
    blob = dtb.to_blob(tree)
    if len(blob) > DTB_MAX:
        raise ConfigError(f"the device tree is {len(blob)} bytes, more than the 2 MiB the "
                          "boot protocol allows (a shorter --append?)")
    return blob
