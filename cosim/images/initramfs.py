"""The realm initramfs: busybox-static, the realm modules and /init, written as a
gzip-compressed newc cpio archive with libarchive (libarchive-c).

libarchive writes the /dev/console character node (5, 1) from a header alone,
so building needs no mknod and no root.  Every entry has owner 0:0 and mtime 0
and the gzip header no timestamp: the same inputs give the same bytes, so the
realm's measurement of the initramfs is reproducible.  Only /bin/sh is missing
from the archive as a link: /init runs `busybox --install -s /bin` first (busybox
knows its applets; libarchive-c 5's linkpath attribute writes hard links)."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from . import protocol
from .errors import ImagesError
from .progress import bar

INIT_TEMPLATE = "init.sh"
RECIPE_VERSION = 1
"""Bump when the archive's layout changes (not needed for init.sh or input changes)."""
MODULE_DIR = "lib/modules"
DIRECTORIES = ("bin", "dev", "proc", "sys", "tmp", "root", "lib", MODULE_DIR)
CONSOLE = ("dev/console", 5, 1)
"""The kernel opens /dev/console for init's stdin/out/err before devtmpfs is mounted."""

_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


@dataclass(frozen=True)
class InitramfsInputs:
    busybox: Path
    modules: Sequence[Path]
    """Decompressed .ko files in load order."""

    def module_names(self) -> list[str]:
        return [p.name for p in self.modules]


def render_init(module_files: Sequence[str]) -> str:
    """init.sh with its @NAME@ placeholders filled from cosim.images.protocol."""
    template = resources.files(__package__).joinpath(INIT_TEMPLATE).read_text()

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "MODULES":
            return " ".join(module_files)
        value = getattr(protocol, name, None)
        if not isinstance(value, str | int):
            raise ImagesError(f"{INIT_TEMPLATE}: no protocol constant {name}")
        return str(value)

    return _PLACEHOLDER.sub(fill, template)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recipe(inputs: InitramfsInputs) -> str:
    """A hash of everything the archive is made of: when it changes, rebuild."""
    h = hashlib.sha256(f"initramfs v{RECIPE_VERSION}\n".encode())
    h.update(render_init(inputs.module_names()).encode())
    for path in (inputs.busybox, *inputs.modules):
        h.update(f"{path.name} {_sha256(path)}\n".encode())
    return h.hexdigest()


def build_initramfs(inputs: InitramfsInputs, out: Path) -> str:
    """Write the archive to OUT (atomically); returns its recipe."""
    import libarchive  # loads libarchive.so: only when an archive is written
    files = [("init", render_init(inputs.module_names()).encode(), 0o755),
             ("bin/busybox", inputs.busybox.read_bytes(), 0o755)]
    files += [(f"{MODULE_DIR}/{p.name}", p.read_bytes(), 0o644) for p in inputs.modules]
    owner = {"uid": 0, "gid": 0, "mtime": 0}
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    progress = bar("initramfs", sum(len(data) for _, data, _ in files))
    try:
        with libarchive.file_writer(str(tmp), "cpio_newc", "gzip",
                                    options="gzip:!timestamp") as archive:
            for d in DIRECTORIES:
                archive.add_file_from_memory(d, 0, b"", filetype=stat.S_IFDIR,
                                             permission=0o755, **owner)
            path, major, minor = CONSOLE
            archive.add_file_from_memory(path, 0, b"", filetype=stat.S_IFCHR, permission=0o600,
                                         rdevmajor=major, rdevminor=minor, **owner)
            for path, data, mode in files:
                archive.add_file_from_memory(path, len(data), data, permission=mode, **owner)
                progress.update(len(data))
        os.replace(tmp, out)
    except (libarchive.ArchiveError, OSError) as exc:
        raise ImagesError(f"cannot write the initramfs {out}: {exc}") from None
    finally:
        progress.close()
        tmp.unlink(missing_ok=True)
    return recipe(inputs)
