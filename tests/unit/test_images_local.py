"""`cosim images fetch --deb` end to end on small synthetic Debian packages (built here
with dpkg-deb, no network): reading .debs, finding the kernel, the config check, module
order, the initramfs, the manifest and load_images."""

from __future__ import annotations

import gzip
import json
import lzma
import re
import shutil
import stat
import subprocess
from pathlib import Path

import libarchive
import pytest

from cosim import cli
from cosim.images import (
    LOCAL_SUITE,
    ImagesError,
    ImagesMissing,
    fetch_images,
    is_arm64_image,
    load_images,
)
from cosim.images.fetch import FetchOptions
from cosim.images.kconfig import REQUIREMENTS, KernelConfigError
from cosim.images.modules import ModuleMissing, load_order, parse_modinfo

R7 = "7.3.4+deb13-arm64"
V7 = "7.3.4-1~bpo13+1"
R6 = "6.1.0-50-arm64"
REALM_CONFIG = "\n".join(f"CONFIG_{r.option}={r.allowed[-1]}" for r in REQUIREMENTS) + "\n"
PLACEHOLDER_MAP = b"ffffffffffffffff B The real System.map is in the linux-image-dbg package\n"
BUSYBOX = b"\x7fELF fake busybox"

pytestmark = pytest.mark.skipif(shutil.which("objcopy") is None or
                                shutil.which("dpkg-deb") is None,
                                reason="needs objcopy and dpkg-deb")


def arm64_image(size: int = 4096) -> bytes:
    image = bytearray(size)
    image[0x38:0x3c] = b"ARM\x64"
    return bytes(image)


def module_elf(tmp: Path, name: str, depends: str) -> bytes:
    """A relocatable ELF whose only section is .modinfo, as the kernel writes it."""
    info = tmp / f"{name}.modinfo"
    info.write_bytes(f"license=GPL\0depends={depends}\0name={name}\0vermagic=x\0".encode())
    out = tmp / f"{name}.o"
    subprocess.run(["objcopy", "-I", "binary", "-O", "elf64-little",
                    "--rename-section", ".data=.modinfo", str(info), str(out)], check=True,
                   cwd=tmp)
    return out.read_bytes()


def build_deb(tmp: Path, name: str, version: str, files: dict[str, bytes],
              arch: str = "arm64") -> Path:
    root = tmp / f"root-{name}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\n"
        "Maintainer: test <t@example.org>\nDescription: test package\n")
    for path, data in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    out = tmp / f"{name}_{version}_{arch}.deb"
    subprocess.run(["dpkg-deb", "-Zgzip", "--root-owner-group", "--build", str(root),
                    str(out)], check=True, capture_output=True)
    return out


def split_debs(tmp: Path, modules: dict[str, str] | None = None,
               config: str = REALM_CONFIG) -> list[Path]:
    """The 7.x packages: base (config...), binary (vmlinuz), modules (.ko.xz)."""
    if modules is None:
        modules = {"configfs": "", "tsm_report": "configfs", "arm-cca-guest": "tsm_report",
                   "industrialio-configfs": "configfs"}
    lib = f"usr/lib/modules/{R7}"
    dirs = {"configfs": "fs/configfs", "tsm_report": "drivers/virt/coco/guest",
            "arm-cca-guest": "drivers/virt/coco/arm-cca-guest"}
    ko = {f"{lib}/kernel/{dirs.get(n, 'drivers/iio')}/{n}.ko.xz":
          lzma.compress(module_elf(tmp, n.replace("-", "_"), dep))
          for n, dep in modules.items()}
    return [
        build_deb(tmp, f"linux-base-{R7}", V7, {
            f"{lib}/config": config.encode(), f"{lib}/System.map": PLACEHOLDER_MAP,
            f"{lib}/modules.builtin": b"kernel/drivers/tty/serial/amba-pl011.ko\n",
            f"{lib}/dtb/vendor/board.dtb": b"\xd0\x0d\xfe\xed"}),
        build_deb(tmp, f"linux-binary-{R7}", V7, {f"{lib}/vmlinuz": arm64_image()}),
        build_deb(tmp, f"linux-modules-{R7}", V7, ko),
    ]


def busybox_deb(tmp: Path) -> Path:
    return build_deb(tmp, "busybox-static", "1:1.35.0-4", {"bin/busybox": BUSYBOX,
                                                          "usr/share/doc/x": b"doc"})


def archive_entries(path: Path) -> dict[str, tuple[int, int, int, int, bytes]]:
    """pathname -> (mode, uid, rdevmajor, rdevminor, data) of a cpio archive."""
    found = {}
    with libarchive.file_reader(str(path)) as archive:
        for e in archive:
            data = b"".join(e.get_blocks())
            found[e.pathname] = (e.mode, e.uid, e.rdevmajor, e.rdevminor, data)
    return found


def test_split_kernel_from_local_debs(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    debs = [*split_debs(tmp_path), busybox_deb(tmp_path)]
    result = fetch_images(FetchOptions(cache, debs=debs), say=lambda s: None)
    imgs = result.images
    assert result.action == "fetched"
    assert (imgs.version, imgs.package_version, imgs.suite) == (R7, V7, LOCAL_SUITE)
    assert imgs.realm_support and imgs.config_problems == ()
    assert imgs.system_map is None, "the placeholder System.map is not kept"
    assert [p.name for p in imgs.modules] == ["configfs.ko", "tsm_report.ko",
                                              "arm_cca_guest.ko"]
    assert is_arm64_image(imgs.kernel.read_bytes()[:64])
    assert imgs.config.read_text() == REALM_CONFIG
    assert {p.name for p in imgs.packages} == {f"linux-base-{R7}", f"linux-binary-{R7}",
                                               f"linux-modules-{R7}", "busybox-static"}

    entries = archive_entries(imgs.initrd)
    mode, uid, major, minor, _ = entries["dev/console"]
    assert stat.S_ISCHR(mode) and (major, minor) == (5, 1) and uid == 0
    assert entries["bin/busybox"][4] == BUSYBOX and entries["bin/busybox"][0] & 0o111
    init = entries["init"][4].decode()
    assert init.startswith("#!/bin/busybox sh") and entries["init"][0] & 0o111
    assert 'MODULES="configfs.ko tsm_report.ko arm_cca_guest.ko"' in init
    ko = entries["lib/modules/arm_cca_guest.ko"][4]
    assert ko.startswith(b"\x7fELF") and b"depends=tsm_report" in ko   # decompressed
    assert not any("iio" in name or "dtb" in name for name in entries)

    again = fetch_images(FetchOptions(cache, debs=debs), say=lambda s: None)
    assert again.action == "cached" and again.images == imgs
    assert load_images(cache) == imgs


def test_initramfs_is_reproducible_and_rebuilt_when_init_changes(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    imgs = fetch_images(FetchOptions(cache, debs=[*split_debs(tmp_path), busybox_deb(tmp_path)]),
                        say=lambda s: None).images
    first = imgs.initrd.read_bytes()
    manifest = json.loads((cache / "manifest.json").read_text())
    manifest["initramfs_recipe"] = "built from an older init.sh"
    (cache / "manifest.json").write_text(json.dumps(manifest))
    imgs.initrd.write_bytes(b"stale")
    rebuilt = load_images(cache)
    assert rebuilt.initrd.read_bytes() == first, "same inputs, same bytes"
    assert rebuilt.initramfs_recipe == imgs.initramfs_recipe
    assert json.loads((cache / "manifest.json").read_text())["initramfs_recipe"] == \
        imgs.initramfs_recipe


@pytest.mark.timeout(60)
def test_fetch_rebuilds_a_stale_initramfs_under_its_own_lock(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    debs = [*split_debs(tmp_path), busybox_deb(tmp_path)]
    imgs = fetch_images(FetchOptions(cache, debs=debs), say=lambda s: None).images
    first = imgs.initrd.read_bytes()
    imgs.initrd.unlink()
    again = fetch_images(FetchOptions(cache, debs=debs), say=lambda s: None)
    assert again.action == "cached" and again.images.initrd.read_bytes() == first


def test_old_kernel_without_realm_support(tmp_path: Path) -> None:
    """Debian 12's 6.1: one linux-image package with /boot files; no realm support."""
    cache = tmp_path / "cache"
    fetch_images(FetchOptions(cache, debs=[*split_debs(tmp_path), busybox_deb(tmp_path)]),
                 say=lambda s: None)
    config = REALM_CONFIG.replace("CONFIG_ARM_CCA_GUEST=m", "# CONFIG_ARM_CCA_GUEST is not set")
    config = config.replace("CONFIG_TSM_REPORTS=m\n", "")
    real_map = b"ffff800080000000 T _text\nffff800080010000 T start_kernel\n"
    old = build_deb(tmp_path, f"linux-image-{R6}", "6.1.176-1", {
        f"boot/vmlinuz-{R6}": gzip.compress(arm64_image()),
        f"boot/config-{R6}": config.encode(), f"boot/System.map-{R6}": real_map,
        f"lib/modules/{R6}/kernel/fs/configfs/configfs.ko": module_elf(tmp_path, "configfs", "")})

    with pytest.raises(KernelConfigError, match="CONFIG_ARM_CCA_GUEST is not set"):
        fetch_images(FetchOptions(cache, debs=[old]), say=lambda s: None)

    said: list[str] = []
    imgs = fetch_images(FetchOptions(cache, debs=[old], check=False), say=said.append).images
    assert (imgs.version, imgs.package_version, imgs.realm_support) == (R6, "6.1.176-1", False)
    assert imgs.config_problems[0].startswith("CONFIG_ARM_CCA_GUEST is not set")
    assert imgs.kernel.read_bytes() == arm64_image(), "gzip-compressed vmlinuz is unpacked"
    assert imgs.system_map is not None and imgs.system_map.read_bytes() == real_map
    assert [p.name for p in imgs.modules] == ["configfs.ko"]
    assert imgs.busybox_version == "1:1.35.0-4", "busybox reused from the cache"
    assert any("lacks realm support" in s for s in said)
    assert any("ships no tsm_report" in s for s in said)
    assert not (cache / f"kernel-{R7}").exists(), "the replaced kernel is removed"
    assert load_images(cache).version == R6


def test_missing_module_fails_with_its_name(tmp_path: Path) -> None:
    debs = [*split_debs(tmp_path, modules={"configfs": "", "tsm_report": "configfs"}),
            busybox_deb(tmp_path)]
    message = re.escape(f"kernel {R7} ships no module arm_cca_guest")
    with pytest.raises(ModuleMissing, match=message):
        fetch_images(FetchOptions(tmp_path / "cache", debs=debs), say=lambda s: None)


def test_missing_kernel_parts_are_named(tmp_path: Path) -> None:
    base, _, modules = split_debs(tmp_path)
    with pytest.raises(ImagesError, match=re.escape(f"give linux-binary-{R7} too")):
        fetch_images(FetchOptions(tmp_path / "cache", debs=[base, modules,
                                                            busybox_deb(tmp_path)]),
                     say=lambda s: None)
    other = build_deb(tmp_path, "hello", "1.0", {"usr/bin/hello": b"x"})
    with pytest.raises(ImagesError, match="holds hello, neither a linux-"):
        fetch_images(FetchOptions(tmp_path / "cache", debs=[base, other]), say=lambda s: None)


def test_load_order_from_depends() -> None:
    deps = {"a": ["b", "c"], "b": ["c"], "c": [], "d": ["a", "builtin_x"]}
    plan = load_order(["d"], deps, {"builtin_x"}, deps.__getitem__)
    assert plan.order == ["c", "b", "a", "d"] and plan.builtin == ["builtin_x"]
    plan = load_order(["a", "gone"], {"a": ["lost"]}, set(), lambda n: ["lost"])
    assert plan.missing == ["lost (needed by a)", "gone"]
    with pytest.raises(ImagesError, match="cycle: x -> y -> x"):
        load_order(["x"], ["x", "y"], set(), {"x": ["y"], "y": ["x"]}.__getitem__)
    assert parse_modinfo(b"depends=a,b\0name=m\0\0") == {"depends": ["a,b"], "name": ["m"]}


def test_cli_show_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    assert cli.main(["images", "show", "--cache", str(empty)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"cosim images: no realm images in {empty}: run `cosim images fetch`"
    with pytest.raises(ImagesMissing):
        load_images(empty)

    not_deb = tmp_path / "kernel.deb"
    not_deb.write_bytes(b"nope")
    assert cli.main(["images", "fetch", "--cache", str(empty), "--deb", str(not_deb)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"cosim images: {not_deb} is not a Debian package")
    assert len(err.splitlines()) == 1

    cache = tmp_path / "cache"
    debs = [str(p) for p in (*split_debs(tmp_path), busybox_deb(tmp_path))]
    assert cli.main(["images", "fetch", "--cache", str(cache), "--deb", *debs]) == 0
    assert cli.main(["images", "show", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert f"kernel     {R7} (Debian {V7}, {LOCAL_SUITE})" in out
    assert "System.map (not shipped: placeholder only)" in out
