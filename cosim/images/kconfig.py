"""The kernel configuration a realm guest needs on cca-cosim, checked against the
config file that Debian's kernel package ships."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ImagesError

BUILT_IN = ("y",)
BUILT_IN_OR_MODULE = ("y", "m")


@dataclass(frozen=True)
class Requirement:
    option: str
    """Without the CONFIG_ prefix."""
    allowed: tuple[str, ...]
    why: str


REQUIREMENTS = (
    Requirement("ARM_CCA_GUEST", BUILT_IN_OR_MODULE, "realm guest support, RSI and arm-cca-guest"),
    Requirement("TSM_REPORTS", BUILT_IN_OR_MODULE, "configfs TSM reports, for attestation"),
    Requirement("CONFIGFS_FS", BUILT_IN_OR_MODULE, "configfs, where TSM reports live"),
    Requirement("ARM64_4K_PAGES", BUILT_IN, "4 KiB pages, the RMM's granule"),
    Requirement("SERIAL_AMBA_PL011", BUILT_IN, "the PL011 UART the VMM emulates"),
    Requirement("SERIAL_AMBA_PL011_CONSOLE", BUILT_IN, "a console on the PL011"),
    Requirement("ARM_GIC_V3", BUILT_IN, "the GICv3 the VMM emulates"),
    Requirement("ARM_ARCH_TIMER", BUILT_IN, "the generic timer"),
    Requirement("ARM_PSCI_FW", BUILT_IN, "PSCI, for secondary CPUs and power off"),
    Requirement("BLK_DEV_INITRD", BUILT_IN, "an initramfs"),
    Requirement("RD_GZIP", BUILT_IN, "a gzip-compressed initramfs"),
    Requirement("DEVTMPFS", BUILT_IN, "devtmpfs for /dev"),
    Requirement("BINFMT_SCRIPT", BUILT_IN, "#! scripts, for /init"),
    Requirement("MODULES", BUILT_IN, "loadable modules"),
)

_LINE = re.compile(r"^CONFIG_(\w+)=(.*)$")
_NOT_SET = re.compile(r"^# CONFIG_(\w+) is not set$")


class KernelConfigError(ImagesError):
    """The kernel lacks an option a realm guest needs."""


def parse_config(text: str) -> dict[str, str]:
    """Option (without CONFIG_) -> value ('y', 'm', 'n' for '# ... is not set', or the
    literal for numbers and strings)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if m := _LINE.match(line.strip()):
            values[m.group(1)] = m.group(2)
        elif m := _NOT_SET.match(line.strip()):
            values[m.group(1)] = "n"
    return values


def config_problems(values: Mapping[str, str]) -> list[str]:
    """One 'CONFIG_X=... (why): found ...' entry per unmet requirement, in REQUIREMENTS'
    order (the realm options first)."""
    problems = []
    for r in REQUIREMENTS:
        found = values.get(r.option)
        if found not in r.allowed:
            want = "y or m" if r.allowed == BUILT_IN_OR_MODULE else "y"
            now = "not set" if found in (None, "n") else f"={found}"
            problems.append(f"CONFIG_{r.option} is {now}, need {want} ({r.why})")
    return problems


def check_config(text: str, release: str) -> None:
    """Raise KernelConfigError naming the first missing option (and how many more)."""
    problems = config_problems(parse_config(text))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise KernelConfigError(f"kernel {release} cannot run as a realm guest here: "
                                f"{problems[0]}{more}; choose another --suite or --deb, or "
                                "give --no-check")
