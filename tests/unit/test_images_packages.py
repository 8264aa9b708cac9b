"""Choosing the kernel packages from package metadata, and the kernel config check."""

from __future__ import annotations

import re

import pytest

from cosim.images.kconfig import (
    REQUIREMENTS,
    KernelConfigError,
    check_config,
    config_problems,
    parse_config,
)
from cosim.images.packages import (
    PackageMissing,
    TextIndex,
    kernel_package,
    resolve_busybox,
    resolve_kernel,
)

R7 = "7.3.4+deb13-arm64"
V7 = "7.3.4-1~bpo13+1"
R6 = "7.2.9+deb13-arm64"
V6 = "7.2.9-1~bpo13+1"


def stanza(name: str, version: str, depends: str = "", size: int = 1000) -> str:
    dep = f"Depends: {depends}\n" if depends else ""
    return (f"Package: {name}\nVersion: {version}\nArchitecture: arm64\n{dep}"
            f"Filename: pool/main/l/{name}_{version}_arm64.deb\nSize: {size}\n"
            f"SHA256: {'ab' * 32}\nDescription: x\n")


def split_kernel(release: str, version: str) -> list[str]:
    """The 7.x packages of one release, as the index lists them."""
    return [
        stanza("linux-image-arm64", version,
               f"linux-base-arm64 (= {version}), linux-image-{release} (= {version}), "
               f"linux-modules-arm64 (= {version})"),
        stanza(f"linux-image-{release}", version,
               f"dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, "
               f"linux-modules-{release} (= {version}), linux-base-{release} (= {version}), "
               f"linux-binary-{release} (= {version})"),
        stanza(f"linux-base-{release}", version, size=4_725_456),
        stanza(f"linux-binary-{release}", version, f"linux-base-{release} (= {version})",
               size=12_231_124),
        stanza(f"linux-modules-{release}", version, f"kmod, linux-base-{release} (= {version})",
               size=86_036_480),
        stanza("initramfs-tools", "0.148"),
    ]


def index(*stanzas: str, suite: str = "trixie-backports") -> TextIndex:
    return TextIndex(suite, "\n".join(stanzas))


def test_split_kernel_downloads_only_the_packages_with_files() -> None:
    k = resolve_kernel(index(*split_kernel(R7, V7)))
    assert (k.release, k.package_version, k.suite) == (R7, V7, "trixie-backports")
    assert [p.name for p in k.packages] == [f"linux-base-{R7}", f"linux-binary-{R7}",
                                            f"linux-modules-{R7}"]
    assert [p.size for p in k.packages] == [4_725_456, 12_231_124, 86_036_480]
    assert all(p.version == V7 and p.sha256 == "ab" * 32 for p in k.packages)


def test_old_style_kernel_is_one_package() -> None:
    text = [stanza("linux-image-arm64", "6.1.176-1", "linux-image-6.1.0-50-arm64 (= 6.1.176-1)"),
            stanza("linux-image-6.1.0-50-arm64", "6.1.176-1",
                   "kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | "
                   "linux-initramfs-tool", size=59_515_068)]
    k = resolve_kernel(index(*text, suite="bookworm"))
    assert k.release == "6.1.0-50-arm64"
    assert [(p.name, p.size) for p in k.packages] == [("linux-image-6.1.0-50-arm64", 59_515_068)]


def test_newest_metapackage_wins_and_a_version_can_be_chosen() -> None:
    both = index(*split_kernel(R6, V6), *split_kernel(R7, V7))
    assert resolve_kernel(both).release == R7
    assert resolve_kernel(both, V6).release == R6              # a metapackage version
    assert resolve_kernel(both, R6).package_version == V6      # a kernel release
    with pytest.raises(PackageMissing, match=r"linux-image-arm64 9\.9 is not in trixie-backports"):
        resolve_kernel(both, "9.9")


def test_debian_version_order() -> None:
    """7.10 is newer than 7.9, and ~bpo sorts before the release it backports."""
    older = split_kernel("7.9.1+deb13-arm64", "7.9.1-1")
    newer = split_kernel("7.10.1+deb13-arm64", "7.10.1-1~bpo13+1")
    assert resolve_kernel(index(*older, *newer)).release == "7.10.1+deb13-arm64"


def test_missing_packages_are_named() -> None:
    with pytest.raises(PackageMissing, match="linux-image-arm64 is not in sid"):
        resolve_kernel(index(stanza("busybox-static", "1:1.37.0-6"), suite="sid"))
    broken = split_kernel(R7, V7)
    del broken[3]   # linux-binary
    with pytest.raises(PackageMissing, match=re.escape(f"linux-binary-{R7} {V7} is not in")):
        resolve_kernel(index(*broken))


def test_busybox_and_the_name_filter() -> None:
    idx = TextIndex("bookworm", "\n".join([stanza("busybox-static", "1:1.35.0-4+deb12u1+b1"),
                                           stanza("busybox", "1:1.35.0-4"),
                                           *split_kernel(R7, V7)]),
                    keep=lambda name: name == "busybox-static" or kernel_package(name))
    assert resolve_busybox(idx).version == "1:1.35.0-4+deb12u1+b1"
    assert idx.stanzas("busybox") == [] and idx.stanzas("initramfs-tools") == []


# -- config check --------------------------------------------------------------------------------

GOOD = "\n".join(["# Automatically generated file", *(f"CONFIG_{r.option}={r.allowed[-1]}"
                                                      for r in REQUIREMENTS), "CONFIG_HZ=250"])


def test_good_config_passes() -> None:
    check_config(GOOD, R7)
    assert parse_config(GOOD)["HZ"] == "250"


def test_missing_realm_guest_support_is_named() -> None:
    text = GOOD.replace("CONFIG_ARM_CCA_GUEST=m", "# CONFIG_ARM_CCA_GUEST is not set")
    with pytest.raises(KernelConfigError) as info:
        check_config(text, "6.12.48+deb13-arm64")
    msg = str(info.value)
    assert "CONFIG_ARM_CCA_GUEST is not set" in msg and "6.12.48+deb13-arm64" in msg
    assert "--no-check" in msg and "\n" not in msg


def test_absent_options_and_wrong_values() -> None:
    text = "\n".join(line for line in GOOD.splitlines()
                     if "TSM_REPORTS" not in line).replace("PL011_CONSOLE=y", "PL011_CONSOLE=m")
    problems = config_problems(parse_config(text))
    assert problems[0].startswith("CONFIG_TSM_REPORTS is not set, need y or m")
    assert any(p.startswith("CONFIG_SERIAL_AMBA_PL011_CONSOLE is =m, need y") for p in problems)
    with pytest.raises(KernelConfigError, match=r"TSM_REPORTS.*\(and 1 more\)"):
        check_config(text, R7)
