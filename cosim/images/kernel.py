"""Finding a kernel's files among those read from Debian kernel packages.

7.x packages put everything under /usr/lib/modules/RELEASE/ (vmlinuz, config,
System.map, modules.builtin, kernel/**.ko.xz); older ones use /boot/vmlinuz-RELEASE,
/boot/config-RELEASE, /boot/System.map-RELEASE and /lib/modules/RELEASE/."""

from __future__ import annotations

import gzip
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from .errors import ImagesError

ARM64_IMAGE_MAGIC = b"ARM\x64"
ARM64_IMAGE_MAGIC_OFFSET = 0x38
"""Documentation/arch/arm64/booting.rst: the Image header's magic field."""
GZIP_MAGIC = b"\x1f\x8b"

_MODULE_DIRS = ("usr/lib/modules", "lib/modules")
_TOP_FILES = ("vmlinuz", "config", "System.map", "modules.builtin")
_BOOT_FILES = re.compile(r"^(vmlinuz|config|System\.map)-(.+)$")
_SYMBOL = re.compile(r"^[0-9a-fA-F]+ [Tt] \S+$", re.MULTILINE)


def wanted(path: PurePosixPath) -> bool:
    """Files of a kernel package that the images need (no dtbs, no docs)."""
    parts = path.parts
    if len(parts) == 2 and parts[0] == "boot":
        return _BOOT_FILES.match(parts[1]) is not None
    for base in _MODULE_DIRS:
        n = len(PurePosixPath(base).parts)
        if parts[:n] == PurePosixPath(base).parts and len(parts) > n + 1:
            rest = parts[n + 1:]
            return (len(rest) == 1 and rest[0] in _TOP_FILES) or (
                rest[0] == "kernel" and ".ko" in rest[-1])
    return False


def is_arm64_image(head: bytes) -> bool:
    """Whether HEAD (the first 64 bytes or more) starts a raw arm64 Image."""
    return head[ARM64_IMAGE_MAGIC_OFFSET:ARM64_IMAGE_MAGIC_OFFSET + 4] == ARM64_IMAGE_MAGIC


def raw_image(data: bytes, what: str) -> bytes:
    """DATA as a raw arm64 Image (a gzip-compressed vmlinuz is decompressed)."""
    if data[:2] == GZIP_MAGIC:
        data = gzip.decompress(data)
    if not is_arm64_image(data[:64]):
        raise ImagesError(f"{what} is not an arm64 Image (no 'ARM\\x64' magic at 0x38)")
    return data


def system_map_is_real(text: str) -> bool:
    """7.x linux-base ships a one-line placeholder that points at the -dbg package."""
    return _SYMBOL.search(text) is not None


Files = Mapping[PurePosixPath, bytes]
"""Files read from kernel packages (cosim.images.debs.read_files), by relative path."""


@dataclass(frozen=True)
class KernelTree:
    release: str
    image: bytes
    """The raw arm64 Image."""
    config: str
    system_map: bytes | None
    """None when absent or only a placeholder."""
    modules: dict[PurePosixPath, bytes]
    """Every shipped module file (compressed as shipped) by path."""
    builtin: str
    """modules.builtin: the modules compiled into the kernel ('' if not shipped)."""


def _first(files: Files, *paths: PurePosixPath) -> PurePosixPath | None:
    return next((p for p in paths if p in files), None)


def find_kernel(files: Files, what: str) -> KernelTree:
    """The kernel in FILES (WHAT names the packages in errors)."""
    releases = set()
    for path in files:
        parts = path.parts
        if parts[0] == "boot" and (m := _BOOT_FILES.match(parts[-1])):
            releases.add(m.group(2))
        for base in _MODULE_DIRS:
            n = len(PurePosixPath(base).parts)
            if str(PurePosixPath(*parts[:n])) == base and len(parts) > n + 1:
                releases.add(parts[n])
    if not releases:
        raise ImagesError(f"{what} hold no kernel (no /usr/lib/modules/RELEASE or "
                          "/boot/vmlinuz-RELEASE)")
    if len(releases) > 1:
        raise ImagesError(f"{what} hold several kernels: {', '.join(sorted(releases))}")
    release = releases.pop()
    dirs = [PurePosixPath(base, release) for base in _MODULE_DIRS]
    boot = PurePosixPath("boot")

    def find(name: str, boot_name: str) -> PurePosixPath | None:
        return _first(files, *(d / name for d in dirs), boot / f"{boot_name}-{release}")

    image = find("vmlinuz", "vmlinuz")
    config = find("config", "config")
    if image is None:
        raise ImagesError(f"{what} hold no kernel image for {release} (with a 7.x kernel, "
                          f"give linux-binary-{release} too)")
    if config is None:
        raise ImagesError(f"{what} hold no config for {release} (with a 7.x kernel, "
                          f"give linux-base-{release} too)")
    system_map = find("System.map", "System.map")
    map_bytes = files[system_map] if system_map is not None else None
    if map_bytes is not None and not system_map_is_real(map_bytes.decode(errors="replace")):
        map_bytes = None
    modules = {p: data for p, data in files.items()
               if any(p.is_relative_to(d / "kernel") for d in dirs)}
    builtin = _first(files, *(d / "modules.builtin" for d in dirs))
    return KernelTree(release, raw_image(files[image], f"{image} of {what}"),
                      files[config].decode(errors="replace"), map_bytes,
                      modules,
                      files[builtin].decode(errors="replace") if builtin else "")
