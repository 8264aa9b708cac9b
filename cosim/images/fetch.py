"""`cosim images fetch`: download the kernel and busybox through the private apt (or
take local .debs), check the kernel config, extract what is needed and build the
initramfs, all into the cache.  A cache that already satisfies the request is used
as it is, without the network; so is any cache when the mirror is unreachable."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from .apt import (
    Mirror,
    PrivateApt,
    machine_codename,
    machine_mirror,
    machine_proxies,
    sha256_file,
)
from .cache import (
    LOCAL_SUITE,
    CacheLayout,
    PackageRef,
    RealmImages,
    cache_lock,
    kernel_dir_name,
    read_manifest,
    with_current_initramfs,
    write_manifest,
)
from .debs import DebInfo, deb_info, read_files
from .errors import ImagesError, ImagesMissing, MirrorUnreachable
from .initramfs import InitramfsInputs, build_initramfs
from .kconfig import KernelConfigError, check_config, config_problems, parse_config
from .kernel import find_kernel, raw_image, wanted
from .modules import ModuleMissing, realm_modules
from .packages import (
    BUSYBOX,
    KernelPackages,
    PackageMissing,
    kernel_package,
    resolve_busybox,
    resolve_kernel,
)

DEFAULT_SUITES = ("trixie-backports", "sid")
"""Tried in order; the first whose newest kernel passes the config check is used."""
BUSYBOX_PATH = "bin/busybox"


@dataclass
class FetchOptions:
    cache: Path
    suites: Sequence[str] = DEFAULT_SUITES
    debs: Sequence[Path] = ()
    kernel_version: str | None = None
    check: bool = True
    """Fail when the kernel config lacks realm support (--no-check: warn only)."""
    refresh: bool = False
    """Ask the mirror for newer packages even when the cache satisfies the request."""
    mirror: Mirror | None = None
    """Default: the mirror the machine's apt sources name for its own suite."""


@dataclass
class FetchResult:
    images: RealmImages
    action: str
    """'cached', 'offline', 'up to date' or 'fetched'."""
    message: str
    seconds: float = 0.0
    downloaded: int = 0


def _say(text: str) -> None:
    print(f"cosim images: {text}", file=sys.stderr)


@dataclass
class _Kernel:
    """A kernel installed into its cache directory."""
    release: str
    image: Path
    config: Path
    system_map: Path | None
    modules: list[Path]
    problems: list[str] = field(default_factory=list)


def _satisfies(images: RealmImages, opts: FetchOptions) -> bool:
    """Whether cached IMAGES are what OPTS asks for (without --deb)."""
    if images.suite not in opts.suites:
        return False
    if opts.kernel_version and opts.kernel_version not in (images.version,
                                                           images.package_version):
        return False
    return images.realm_support or not opts.check


def _cached(cache: Path) -> RealmImages | None:
    """The images in CACHE, initramfs up to date (the caller holds the lock)."""
    try:
        return with_current_initramfs(read_manifest(cache))
    except ImagesMissing:
        return None


def fetch_images(opts: FetchOptions, say: Callable[[str], None] = _say) -> FetchResult:
    """Make OPTS.cache hold the requested images; see the module doc."""
    start = time.monotonic()
    layout = CacheLayout(opts.cache)
    with cache_lock(layout.root):
        existing = _cached(layout.root)
        if opts.debs:
            result = _fetch_local(layout, opts, existing, say)
        elif existing is not None and not opts.refresh and _satisfies(existing, opts):
            result = FetchResult(existing, "cached", f"cached: {existing.summary()} in "
                                 f"{layout.root} (--refresh looks for a newer one)")
        else:
            result = _fetch_apt(layout, opts, existing, say)
    result.seconds = time.monotonic() - start
    return result


# -- from the mirror ------------------------------------------------------------------------


def _fetch_apt(layout: CacheLayout, opts: FetchOptions, existing: RealmImages | None,
               say: Callable[[str], None]) -> FetchResult:
    codename = machine_codename()
    mirror = opts.mirror or machine_mirror(codename)
    proxies = machine_proxies()
    failures = []
    for suite in opts.suites:
        apt = PrivateApt(layout.apt, mirror, [suite, codename], proxies)
        say(f"looking for a kernel in {suite} (busybox from {codename}) at {mirror.uri}")
        try:
            apt.update()
        except MirrorUnreachable as exc:
            if existing is not None and _satisfies(existing, opts):
                return FetchResult(existing, "offline", f"offline, using the cache: "
                                   f"{existing.summary()} ({exc})")
            raise
        try:
            kernel = resolve_kernel(apt.index(suite, kernel_package), opts.kernel_version)
        except PackageMissing as exc:
            failures.append(str(exc))
            if suite != opts.suites[-1]:
                say(f"{exc}; trying the next suite")
            continue
        busybox = resolve_busybox(apt.index(codename, BUSYBOX.__eq__))
        if existing is not None and _same_kernel(existing, kernel) and (
                existing.realm_support or not opts.check):
            if existing.busybox_version == busybox.version:
                return FetchResult(existing, "up to date", f"up to date: {existing.summary()}")
            return _update_busybox(layout, apt, existing, busybox, say)
        try:
            return _download_and_install(layout, apt, kernel, busybox, opts, say)
        except (KernelConfigError, ModuleMissing) as exc:   # only raised with opts.check
            failures.append(str(exc))
            if suite != opts.suites[-1]:
                say(f"{exc}; trying the next suite")
    if len(failures) == 1:
        raise ImagesError(failures[0])
    raise ImagesError("no usable kernel: " + "; ".join(failures))


def _same_kernel(images: RealmImages, kernel: KernelPackages) -> bool:
    return (images.suite, images.version, images.package_version) == (
        kernel.suite, kernel.release, kernel.package_version)


def _download_and_install(layout: CacheLayout, apt: PrivateApt, kernel: KernelPackages,
                          busybox: PackageRef, opts: FetchOptions,
                          say: Callable[[str], None]) -> FetchResult:
    start = time.monotonic()
    first, rest = kernel.packages[0], kernel.packages[1:]
    say(f"found linux {kernel.release} (Debian {kernel.package_version}) in {kernel.suite}: "
        f"{', '.join(p.name for p in kernel.packages)}")
    try:
        debs = apt.download([first], desc=f"download {first.name}")
        if opts.check:   # look at the config before the large downloads
            config = _config_of(deb_info(debs[first.name]))
            if config is not None:
                check_config(config, kernel.release)
        debs.update(apt.download([*rest, busybox],
                                 desc=f"download {len(rest) + 1} packages"))
        kernel_debs = [deb_info(debs[p.name]) for p in kernel.packages]
        refs = [replace(p, sha256=sha256_file(debs[p.name])) for p in kernel.packages]
        busybox = replace(busybox, sha256=sha256_file(debs[busybox.name]))
        installed = _install_kernel(layout, kernel_debs, opts.check, say)
        bb = _install_busybox(layout, deb_info(debs[busybox.name]))
        images = _finish(layout, installed, bb, busybox.version, kernel.package_version,
                         kernel.suite, (*refs, busybox), apt.mirror.uri)
    finally:
        apt.clean_downloads()
    size = sum(p.size for p in (*kernel.packages, busybox))
    took = time.monotonic() - start
    return FetchResult(images, "fetched", f"fetched {images.summary()} and busybox-static "
                       f"{busybox.version}: {size / 1e6:.0f} MB in {took:.1f} s; initramfs "
                       f"{images.initrd.stat().st_size / 1e6:.1f} MB; cache {layout.root}",
                       downloaded=size)


def _config_of(deb: DebInfo) -> str | None:
    files = read_files(deb, lambda p: wanted(p) and p.name.startswith("config"))
    return next(iter(files.values())).decode(errors="replace") if files else None


def _update_busybox(layout: CacheLayout, apt: PrivateApt, existing: RealmImages,
                    busybox: PackageRef, say: Callable[[str], None]) -> FetchResult:
    say(f"busybox-static {existing.busybox_version} -> {busybox.version}")
    try:
        deb = apt.download([busybox], desc="download busybox-static")[busybox.name]
        busybox = replace(busybox, sha256=sha256_file(deb))
        path = _install_busybox(layout, deb_info(deb))
    finally:
        apt.clean_downloads()
    packages = tuple(p for p in existing.packages if p.name != BUSYBOX) + (busybox,)
    images = replace(existing, busybox=path, busybox_version=busybox.version,
                     packages=packages)
    images = replace(images, initramfs_recipe=build_initramfs(
        InitramfsInputs(path, images.modules), images.initrd))
    write_manifest(images)
    return FetchResult(images, "fetched", f"updated busybox-static to {busybox.version}: "
                       f"{images.summary()}")


# -- from local .debs -------------------------------------------------------------------------


def _fetch_local(layout: CacheLayout, opts: FetchOptions, existing: RealmImages | None,
                 say: Callable[[str], None]) -> FetchResult:
    infos = [deb_info(p) for p in opts.debs]
    kernel_debs = [i for i in infos if i.name.startswith("linux-")]
    busybox_debs = [i for i in infos if i.name == BUSYBOX]
    for i in infos:
        if i not in kernel_debs and i not in busybox_debs:
            raise ImagesError(f"{i.path} holds {i.name}, neither a linux-* kernel package "
                              f"nor {BUSYBOX}")
        if i.architecture not in ("arm64", "all"):
            raise ImagesError(f"{i.path} is for {i.architecture}, not arm64")
    if not kernel_debs:
        raise ImagesError("no linux-* kernel package among the --deb files")
    refs = tuple(PackageRef(i.name, i.version, LOCAL_SUITE, i.path.stat().st_size,
                            sha256_file(i.path)) for i in infos)
    if (existing is not None and existing.suite == LOCAL_SUITE and not opts.refresh
            and set(refs) <= set(existing.packages)
            and (existing.realm_support or not opts.check)):
        return FetchResult(existing, "cached", f"cached: {existing.summary()} in {layout.root}")
    installed = _install_kernel(layout, kernel_debs, opts.check, say)
    if busybox_debs:
        bb_version = busybox_debs[0].version
        busybox = _install_busybox(layout, busybox_debs[0])
    elif existing is not None and existing.busybox is not None:
        bb_version, busybox = existing.busybox_version, existing.busybox
        refs += tuple(p for p in existing.packages if p.name == BUSYBOX)
    else:
        bb_version, busybox, ref = _fetch_busybox(layout, opts, say)
        refs += (ref,)
    image_deb = next((i for i in kernel_debs if i.name.startswith(("linux-binary-",
                                                                   "linux-image-"))),
                     kernel_debs[0])
    images = _finish(layout, installed, busybox, bb_version, image_deb.version, LOCAL_SUITE,
                     refs, "")
    return FetchResult(images, "fetched", f"installed {images.summary()} from "
                       f"{len(kernel_debs)} local package(s); cache {layout.root}")


def _fetch_busybox(layout: CacheLayout, opts: FetchOptions,
                   say: Callable[[str], None]) -> tuple[str, Path, PackageRef]:
    codename = machine_codename()
    mirror = opts.mirror or machine_mirror(codename)
    apt = PrivateApt(layout.apt, mirror, [codename], machine_proxies())
    say(f"fetching busybox-static from {codename} at {mirror.uri}")
    try:
        apt.update()
        ref = resolve_busybox(apt.index(codename, BUSYBOX.__eq__))
        deb = apt.download([ref], desc="download busybox-static")[ref.name]
        ref = replace(ref, sha256=sha256_file(deb))
        return ref.version, _install_busybox(layout, deb_info(deb)), ref
    except MirrorUnreachable as exc:
        raise ImagesError(f"no busybox in the cache and {exc}; give --deb "
                          "busybox-static_VERSION_arm64.deb too") from None
    finally:
        apt.clean_downloads()


# -- installing into the cache ----------------------------------------------------------------


def _install_kernel(layout: CacheLayout, debs: Sequence[DebInfo], check: bool,
                    say: Callable[[str], None]) -> _Kernel:
    """Read DEBS, check the config, write the Image, config, System.map and the realm
    modules into kernel-RELEASE/ (replacing an older one of the same release)."""
    what = ", ".join(d.path.name for d in debs)
    files = {}
    for deb in debs:
        files.update(read_files(deb, wanted))
    tree = find_kernel(files, what)
    del files
    problems = config_problems(parse_config(tree.config))
    if check:
        check_config(tree.config, tree.release)
    elif problems:
        say(f"warning: kernel {tree.release} lacks realm support ({problems[0]}); "
            "kept because of --no-check")
    modules, plan = realm_modules(tree.modules, tree.builtin, tree.release, check)
    if plan.missing:
        say(f"warning: kernel {tree.release} ships no {', '.join(plan.missing)}")
    final = layout.kernel_dir(tree.release)
    with tempfile.TemporaryDirectory(dir=layout.root, prefix=".kernel-") as tmp:
        staging = Path(tmp) / "kernel"
        (staging / "modules").mkdir(parents=True)
        (staging / "Image").write_bytes(tree.image)
        (staging / "config").write_text(tree.config)
        if tree.system_map is not None:
            (staging / "System.map").write_bytes(tree.system_map)
        for m in modules:
            (staging / "modules" / f"{m.name}.ko").write_bytes(m.elf)
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    return _Kernel(tree.release, final / "Image", final / "config",
                   final / "System.map" if tree.system_map is not None else None,
                   [final / "modules" / f"{m.name}.ko" for m in modules], problems)


def _install_busybox(layout: CacheLayout, deb: DebInfo) -> Path:
    if deb.architecture != "arm64":
        raise ImagesError(f"{deb.path} is busybox for {deb.architecture}, not arm64")
    files = read_files(deb, lambda p: str(p) == BUSYBOX_PATH)
    if not files:
        raise ImagesError(f"{deb.path} holds no /{BUSYBOX_PATH}")
    layout.busybox_dir.mkdir(exist_ok=True)
    target = layout.busybox_dir / "busybox"
    tmp = target.with_name(".busybox.tmp")
    tmp.write_bytes(next(iter(files.values())))
    tmp.chmod(0o755)
    tmp.replace(target)
    return target


def _finish(layout: CacheLayout, kernel: _Kernel, busybox: Path, busybox_version: str,
            package_version: str, suite: str, packages: Sequence[PackageRef],
            mirror: str) -> RealmImages:
    """Build the initramfs, write the manifest, remove what it no longer names."""
    inputs = InitramfsInputs(busybox, kernel.modules)
    recipe = build_initramfs(inputs, layout.initramfs)
    images = RealmImages(
        kernel=kernel.image, initrd=layout.initramfs, version=kernel.release,
        package_version=package_version, suite=suite, config=kernel.config,
        system_map=kernel.system_map, cache=layout.root, modules=tuple(kernel.modules),
        busybox=busybox, busybox_version=busybox_version, packages=tuple(packages),
        realm_support=not kernel.problems, config_problems=tuple(kernel.problems),
        mirror=mirror, fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
        initramfs_recipe=recipe)
    write_manifest(images)
    keep = kernel_dir_name(kernel.release)
    for old in layout.root.glob("kernel-*"):
        if old.name != keep and old.is_dir():
            shutil.rmtree(old)
    return images
