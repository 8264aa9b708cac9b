"""`cosim firmware show FILE` and `cosim firmware pack FLASH -o OUT`."""

from __future__ import annotations

import sys
from pathlib import Path

from ..config import hoststub_bl33_image
from ..host.poll_channel import StubImageError, stub_header, with_channel
from ..monitor import layout as L
from . import fip as F
from .flash import FirmwareError, Flash

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _err(text: str) -> int:
    print(f"cosim: {text}", file=sys.stderr)
    return EXIT_USAGE


def show(path: Path) -> int:
    try:
        flash = Flash.read(path)
    except FirmwareError as exc:
        return _err(str(exc))
    print(f"{path}: FIP at offset {flash.fip_offset:#x}, {flash.fip.size} bytes, "
          f"{len(flash.fip.images)} images")
    for im in flash.fip.images:
        extra = ""
        if im.uuid == F.BL33:
            try:
                channel, area = stub_header(im.data)
                extra = (f"  (our hoststub, {L.StubChannel(channel).name.lower()} channel, "
                         f"poll area {area:#x})")
            except (StubImageError, ValueError):
                extra = ""
        print(f"  {im.name:<16} {len(im.data):>9} bytes{extra}")
    if flash.fip.find(F.BL33) is None:
        print("  (no BL33: `cosim firmware pack` adds one)")
    return EXIT_OK


def pack(path: Path, bl33: Path | None, output: Path) -> int:
    """Write `output`: the flash image `path` with BL33 replaced."""
    try:
        flash = Flash.read(path)
        if bl33 is None:
            data = with_channel(hoststub_bl33_image().read_bytes(), L.StubChannel.POLL)
        else:
            data = Path(bl33).read_bytes()
        packed = flash.with_bl33(data)
    except (FirmwareError, StubImageError) as exc:
        return _err(str(exc))
    except OSError as exc:
        return _err(f"{exc.filename or 'hoststub-bl33'}: {exc.strerror or exc}")
    try:
        output.write_bytes(packed)
    except OSError as exc:
        return _err(f"cannot write {output}: {exc.strerror or exc}")
    print(f"{output}: {len(packed)} bytes, BL33 {len(data)} bytes "
          f"(TF-A's qemu platform loads it at {L.FIRMWARE_BL33_BASE:#x})")
    return EXIT_OK
