"""The kernel modules the realm initramfs loads, and their load order.

Debian ships no modules.dep, so the order comes from each module's own
`depends=` field in its .modinfo ELF section (what depmod reads too)."""

from __future__ import annotations

import gzip
import io
import lzma
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from .errors import ImagesError

REALM_MODULES = ("configfs", "tsm_report", "arm_cca_guest")
"""What /init loads: configfs (for the TSM report interface), the TSM report
module, and the realm guest driver that provides the report.  Their own
dependencies are added in front."""


class ModuleMissing(ImagesError):
    """A module (or one it depends on) is neither shipped nor built in."""


def module_name(filename: str) -> str:
    """'arm-cca-guest.ko.xz' -> 'arm_cca_guest' (the kernel's name for it)."""
    return filename.split(".ko", 1)[0].replace("-", "_")


def decompress(name: str, data: bytes) -> bytes:
    """The ELF bytes of the .ko, .ko.xz or .ko.gz file NAME holding DATA."""
    if name.endswith(".ko.xz"):
        return lzma.decompress(data)
    if name.endswith(".ko.gz"):
        return gzip.decompress(data)
    if name.endswith(".ko"):
        return data
    raise ImagesError(f"{name}: unsupported module compression (only .ko, .ko.xz, .ko.gz)")


def parse_modinfo(section: bytes) -> dict[str, list[str]]:
    """The key=value strings of a .modinfo section (NUL-separated) by key."""
    info: dict[str, list[str]] = {}
    for item in section.split(b"\0"):
        key, sep, value = item.decode(errors="replace").partition("=")
        if sep:
            info.setdefault(key, []).append(value)
    return info


def modinfo(elf: bytes, what: str) -> dict[str, list[str]]:
    try:
        section = ELFFile(io.BytesIO(elf)).get_section_by_name(".modinfo")
    except ELFError as exc:
        raise ImagesError(f"{what} is not an ELF module: {exc}") from None
    if section is None:
        raise ImagesError(f"{what} has no .modinfo section")
    return parse_modinfo(section.data())


def module_depends(info: Mapping[str, list[str]]) -> list[str]:
    return [d for v in info.get("depends", []) for d in v.split(",") if d]


def index_modules(files: Iterable[PurePosixPath]) -> dict[str, PurePosixPath]:
    """Module name -> file, for every .ko* file among FILES."""
    return {module_name(p.name): p for p in sorted(files) if ".ko" in p.name}


def read_builtin(text: str) -> set[str]:
    """The names in a modules.builtin file (kernel/fs/configfs/configfs.ko per line)."""
    return {module_name(PurePosixPath(line.strip()).name)
            for line in text.splitlines() if line.strip()}


@dataclass
class LoadPlan:
    order: list[str] = field(default_factory=list)
    """Module names in load order (dependencies first)."""
    builtin: list[str] = field(default_factory=list)
    """Wanted modules that are compiled into the kernel (nothing to load)."""
    missing: list[str] = field(default_factory=list)
    """Wanted modules neither shipped nor built in ("name (needed by x)")."""


def load_order(wanted: Sequence[str], available: Iterable[str], builtin: set[str],
               depends_of: Callable[[str], list[str]]) -> LoadPlan:
    """Order WANTED and their dependencies so that each comes after what it depends on.
    AVAILABLE are the shipped modules, DEPENDS_OF reads one's depends= field."""
    shipped = set(available)
    plan = LoadPlan()
    state: dict[str, str] = {}

    def visit(name: str, needed_by: str | None, path: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if name in path:
            raise ImagesError(f"module dependency cycle: {' -> '.join((*path, name))}")
        if name in builtin:
            if name not in plan.builtin:
                plan.builtin.append(name)
            state[name] = "done"
            return
        if name not in shipped:
            plan.missing.append(name + (f" (needed by {needed_by})" if needed_by else ""))
            state[name] = "done"
            return
        for dep in depends_of(name):
            visit(dep, name, (*path, name))
        plan.order.append(name)
        state[name] = "done"

    for name in wanted:
        visit(name, None, ())
    return plan


@dataclass(frozen=True)
class Module:
    name: str
    elf: bytes
    """Decompressed: busybox insmod takes plain ELF."""


def realm_modules(shipped: Mapping[PurePosixPath, bytes], builtin_text: str, release: str,
                  required: bool) -> tuple[list[Module], LoadPlan]:
    """The decompressed REALM_MODULES and their dependencies among the SHIPPED module
    files, in load order.  With REQUIRED, a missing one is an error."""
    files = index_modules(shipped)
    elves: dict[str, bytes] = {}

    def depends_of(name: str) -> list[str]:
        path = files[name]
        elves[name] = decompress(path.name, shipped[path])
        return module_depends(modinfo(elves[name], str(path)))

    plan = load_order(REALM_MODULES, files, read_builtin(builtin_text), depends_of)
    if plan.missing and required:
        raise ModuleMissing(f"kernel {release} ships no module {', '.join(plan.missing)} "
                            "and does not have it built in")
    return [Module(n, elves[n]) for n in plan.order], plan
