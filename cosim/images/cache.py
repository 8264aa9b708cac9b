"""Where the realm images live and what the manifest there says about them.

Layout of a cache directory (docs/images.md):

    manifest.json            what is installed: versions, suites, packages, file names
    kernel-RELEASE/          Image, config, System.map (if real), modules/*.ko
    busybox/busybox          busybox-static for arm64
    initramfs.cpio.gz        built from the two above and cosim/images/init.sh
    apt/                     the private apt configuration, state and downloads
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .errors import ImagesMissing
from .initramfs import InitramfsInputs, build_initramfs, recipe

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
INITRAMFS = "initramfs.cpio.gz"
BUSYBOX_DIR = "busybox"
APT_DIR = "apt"
LOCK = ".lock"
LOCAL_SUITE = "local .deb"
"""RealmImages.suite of a kernel taken from --deb files."""


def default_cache_dir() -> Path:
    """$COSIM_CACHE, else $XDG_CACHE_HOME/cca-cosim, else ~/.cache/cca-cosim."""
    if os.environ.get("COSIM_CACHE"):
        return Path(os.environ["COSIM_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "cca-cosim"


def kernel_dir_name(release: str) -> str:
    return f"kernel-{release}"


@dataclass(frozen=True)
class PackageRef:
    """One Debian package the images were made from."""
    name: str
    version: str
    suite: str
    size: int = 0
    """Bytes of the .deb (from the package index, or the local file)."""
    sha256: str = ""


@dataclass(frozen=True)
class RealmImages:
    kernel: Path
    """The raw arm64 Image (not compressed; gzip-compressed vmlinuz is unpacked)."""
    initrd: Path
    """The initramfs (newc cpio, gzip)."""
    version: str
    """Kernel release, e.g. 7.3.4+deb13-arm64."""
    package_version: str
    """Debian version of the kernel packages, e.g. 7.3.4-1~bpo13+1."""
    suite: str
    """Where the kernel came from: a suite name, or LOCAL_SUITE."""
    config: Path
    system_map: Path | None
    """None when the package ships only a placeholder (7.x: the real one is in -dbg)."""
    cache: Path
    modules: tuple[Path, ...] = ()
    """The decompressed modules in the initramfs, in load order."""
    busybox: Path | None = None
    busybox_version: str = ""
    packages: tuple[PackageRef, ...] = ()
    realm_support: bool = True
    """The config check passed; False only when fetched with --no-check."""
    config_problems: tuple[str, ...] = ()
    """What the config check found missing (with --no-check)."""
    mirror: str = ""
    fetched_at: str = ""
    initramfs_recipe: str = ""
    """Hash of what the initramfs was built from (cosim.images.initramfs.recipe)."""

    def describe(self) -> str:
        rows = [
            f"kernel     {self.version} (Debian {self.package_version}, {self.suite})",
            f"realm      {'supported' if self.realm_support else 'NOT supported: ' + '; '.join(self.config_problems)}",
            f"busybox    {self.busybox_version}",
            f"modules    {', '.join(p.name for p in self.modules) or '(none)'}",
        ]
        files = [("Image", self.kernel), ("initramfs", self.initrd), ("config", self.config),
                 ("System.map", self.system_map)]
        for label, path in files:
            if path is None:
                rows.append(f"{label:<10} (not shipped: placeholder only)")
            else:
                rows.append(f"{label:<10} {path}  {_size(path)}")
        for p in self.packages:
            size = f"  {p.size / 1e6:.1f} MB" if p.size else ""
            rows.append(f"package    {p.name} {p.version} ({p.suite}){size}")
        rows.append(f"cache      {self.cache}  {_size_tree(self.cache)}")
        if self.fetched_at:
            rows.append(f"fetched    {self.fetched_at}" + (f" from {self.mirror}" if self.mirror else ""))
        return "\n".join(rows)

    def summary(self) -> str:
        """One line: the kernel and where it came from."""
        realm = "" if self.realm_support else " (no realm support: fetched with --no-check)"
        return f"linux {self.version} (Debian {self.package_version}, {self.suite}){realm}"


def _size(path: Path) -> str:
    try:
        return f"{path.stat().st_size / 1e6:.1f} MB"
    except OSError:
        return "(missing)"


def _size_tree(root: Path) -> str:
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    return f"{total / 1e6:.1f} MB in all"


# -- the manifest ---------------------------------------------------------------------------

_PATH_FIELDS = ("kernel", "initrd", "config", "system_map", "busybox")


def write_manifest(images: RealmImages) -> None:
    """Write images' manifest atomically, paths relative to images.cache."""
    data = asdict(images)
    data["format"] = MANIFEST_FORMAT
    del data["cache"]
    for name in _PATH_FIELDS:
        path = getattr(images, name)
        data[name] = None if path is None else str(path.relative_to(images.cache))
    data["modules"] = [str(p.relative_to(images.cache)) for p in images.modules]
    tmp = images.cache / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, images.cache / MANIFEST)


def read_manifest(cache: Path) -> RealmImages:
    """The images the manifest in CACHE names; ImagesMissing if it is absent, malformed or
    names a file that is gone."""
    path = cache / MANIFEST
    missing = f"no realm images in {cache}: run `cosim images fetch`"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ImagesMissing(missing) from None
    except (OSError, ValueError) as exc:
        raise ImagesMissing(f"unreadable manifest {path} ({exc}): run `cosim images fetch`") from None
    if not isinstance(data, dict) or data.pop("format", None) != MANIFEST_FORMAT:
        raise ImagesMissing(f"{path} has an unknown format: run `cosim images fetch --refresh`")
    try:
        for name in _PATH_FIELDS:
            if data.get(name) is not None:
                data[name] = cache / data[name]
        data["modules"] = tuple(cache / p for p in data.get("modules", ()))
        data["packages"] = tuple(PackageRef(**p) for p in data.get("packages", ()))
        data["config_problems"] = tuple(data.get("config_problems", ()))
        images = RealmImages(cache=cache, **data)
    except (TypeError, KeyError) as exc:
        raise ImagesMissing(f"{path} is malformed ({exc}): run `cosim images fetch --refresh`") from None
    needed: Sequence[Path | None] = (images.kernel, images.config, images.busybox, *images.modules)
    for p in needed:
        if p is not None and not p.is_file():
            raise ImagesMissing(f"{p} is missing from the cache: run `cosim images fetch --refresh`")
    return images


@dataclass(frozen=True)
class CacheLayout:
    """The paths of one cache directory."""
    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def initramfs(self) -> Path:
        return self.root / INITRAMFS

    @property
    def busybox_dir(self) -> Path:
        return self.root / BUSYBOX_DIR

    @property
    def apt(self) -> Path:
        return self.root / APT_DIR

    def kernel_dir(self, release: str) -> Path:
        return self.root / kernel_dir_name(release)


@contextmanager
def cache_lock(root: Path) -> Iterator[None]:
    """Hold the cache's lock (one fetch or rebuild at a time; other users wait)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / LOCK).open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"cosim images: waiting for another user of {root}", file=sys.stderr)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def with_current_initramfs(images: RealmImages) -> RealmImages:
    """IMAGES, with the initramfs rebuilt first if it was made from another /init (or other
    inputs) than this checkout's.  The caller holds the cache lock."""
    if images.busybox is None:
        raise ImagesMissing(f"{images.cache / MANIFEST} names no busybox: run `cosim images "
                            "fetch --refresh`")
    inputs = InitramfsInputs(images.busybox, images.modules)
    current = recipe(inputs)
    if images.initrd.is_file() and current == images.initramfs_recipe:
        return images
    images = replace(images, initramfs_recipe=build_initramfs(inputs, images.initrd))
    write_manifest(images)
    return images


def initramfs_is_current(images: RealmImages) -> bool:
    return (images.busybox is not None and images.initrd.is_file()
            and recipe(InitramfsInputs(images.busybox, images.modules))
            == images.initramfs_recipe)


def load_images(cache: Path | None = None) -> RealmImages:
    """The images in CACHE (default: default_cache_dir()), never touching the network.
    Raises ImagesMissing (one line) when there are none.  If the initramfs is older than
    this checkout's /init (its recipe differs), it is rebuilt from the cached busybox and
    modules first."""
    root = cache if cache is not None else default_cache_dir()
    images = read_manifest(root)
    if initramfs_is_current(images):
        return images
    with cache_lock(root):
        return with_current_initramfs(read_manifest(root))
