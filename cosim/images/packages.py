"""Which Debian packages make up a kernel, read from the package index.

Debian's `linux-image-arm64` metapackage depends on `linux-image-RELEASE (= V)`.
Since 7.x that package holds nothing itself: it depends on `linux-base-RELEASE`
(config, modules.builtin, a placeholder System.map), `linux-binary-RELEASE`
(vmlinuz, a raw arm64 Image) and `linux-modules-RELEASE` (the .ko.xz files), and
on initramfs tooling that a realm initramfs does not need.  Older kernels (6.1)
ship everything in `linux-image-RELEASE`.  Only the packages with files are
downloaded."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from debian.deb822 import Packages
from debian.debian_support import Version

from .cache import PackageRef
from .errors import ImagesError

METAPACKAGE = "linux-image-arm64"
IMAGE_PREFIX = "linux-image-"
PART_PREFIXES = ("linux-base-", "linux-binary-", "linux-modules-")
"""The 7.x split: packages of one release that hold its files."""
BUSYBOX = "busybox-static"


def kernel_package(name: str) -> bool:
    """Whether NAME may be part of a kernel (what resolve_kernel reads)."""
    return name.startswith("linux-")

Stanza = Mapping[str, str]


class PackageMissing(ImagesError):
    """A package (or version) is not in the suite."""


class PackageIndex(Protocol):
    """The stanzas of one suite's package index."""

    suite: str

    def stanzas(self, name: str) -> list[Stanza]:
        """Every stanza of package NAME in the suite (any version)."""
        ...


class TextIndex:
    """A PackageIndex over the text of a Packages file (tests, or a saved index)."""

    def __init__(self, suite: str, text: str,
                 keep: Callable[[str], bool] = lambda name: True) -> None:
        self.suite = suite
        self._by_name: dict[str, list[Stanza]] = {}
        for paragraph in text.split("\n\n"):
            first = paragraph.lstrip("\n").partition("\n")[0]
            if first.startswith("Package:") and keep(first[8:].strip()):
                stanza = Packages(paragraph)
                self._by_name.setdefault(stanza["Package"], []).append(stanza)

    def stanzas(self, name: str) -> list[Stanza]:
        return list(self._by_name.get(name, []))


@dataclass(frozen=True)
class KernelPackages:
    release: str
    """Kernel release (uname -r), e.g. 7.3.4+deb13-arm64."""
    package_version: str
    """Debian version of linux-image-RELEASE, e.g. 7.3.4-1~bpo13+1."""
    suite: str
    packages: tuple[PackageRef, ...]
    """The packages with files, the one holding the config first."""


def newest(stanzas: Iterable[Stanza]) -> Stanza | None:
    return max(stanzas, key=lambda s: Version(s["Version"]), default=None)


def package_ref(stanza: Stanza, suite: str) -> PackageRef:
    return PackageRef(name=stanza["Package"], version=stanza["Version"], suite=suite,
                      size=int(stanza.get("Size", 0) or 0), sha256=stanza.get("SHA256", ""))


def depends(stanza: Stanza) -> list[tuple[str, str | None]]:
    """(name, exact version or None) of each Depends entry, first alternative only."""
    found = []
    for alternatives in Packages(stanza).relations["depends"]:
        first = alternatives[0]
        version = first.get("version")
        exact = version[1] if version and version[0] == "=" else None
        found.append((first["name"], exact))
    return found


def _pick(index: PackageIndex, name: str, version: str | None) -> Stanza:
    stanzas = index.stanzas(name)
    if version is not None:
        stanzas = [s for s in stanzas if s["Version"] == version]
    found = newest(stanzas)
    if found is None:
        what = f"{name} {version}" if version else name
        raise PackageMissing(f"{what} is not in {index.suite}")
    return found


def resolve_kernel(index: PackageIndex, kernel_version: str | None = None) -> KernelPackages:
    """The packages of the newest kernel in INDEX's suite, or of KERNEL_VERSION: a kernel
    release (linux-image-RELEASE exists) or a version of the metapackage."""
    if kernel_version and index.stanzas(IMAGE_PREFIX + kernel_version):
        image = _pick(index, IMAGE_PREFIX + kernel_version, None)
    else:
        meta = _pick(index, METAPACKAGE, kernel_version)
        images = [(n, v) for n, v in depends(meta)
                  if n.startswith(IMAGE_PREFIX) and n != METAPACKAGE]
        if not images:
            raise PackageMissing(f"{METAPACKAGE} {meta['Version']} in {index.suite} depends on "
                                 f"no {IMAGE_PREFIX}RELEASE package")
        image = _pick(index, *images[0])
    release = image["Package"].removeprefix(IMAGE_PREFIX)
    parts = [(n, v) for n, v in depends(image)
             if n.startswith(PART_PREFIXES) and n.endswith("-" + release)]
    if parts:
        parts.sort(key=lambda nv: [nv[0].startswith(p) for p in PART_PREFIXES].index(True))
        refs = tuple(package_ref(_pick(index, n, v), index.suite) for n, v in parts)
    else:
        refs = (package_ref(image, index.suite),)
    return KernelPackages(release, image["Version"], index.suite, refs)


def resolve_busybox(index: PackageIndex) -> PackageRef:
    return package_ref(_pick(index, BUSYBOX, None), index.suite)

