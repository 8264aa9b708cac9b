"""What a user can choose about a co-simulated platform, and where the built
artefacts of this checkout are.  Imports nothing else of cosim."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

REPO_ROOT = Path(__file__).resolve().parent.parent
KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30

MAX_CPUS = 8
"""vCPUs the platform supports; cosim.machine.board re-exports it for the C side."""

CARVEOUT_DEFAULT_SIZE = 16 * MIB
PAYLOAD_DEFAULT_OFFSET = 2 * MIB
"""Where in RAM the NS payload is loaded (the arm64 Image's preferred 2 MiB)."""


class GptMode(StrEnum):
    AUTO = "auto"
    """hw when QEMU's CPU implements RME (probed at start), else plugin."""
    HW = "hw"
    """QEMU's granule protection check (needs -cpu max,x-rme=on)."""
    PLUGIN = "plugin"
    """The TCG plugin checks every access against the PAS table."""
    OFF = "off"


class ViolationPolicy(StrEnum):
    DEFAULT = "default"
    """hw: inject an external abort into the offender; plugin: halt."""
    HALT = "halt"
    """Stop the machine with its state preserved for GDB."""
    LOG = "log"
    """Record the violation and let the machine continue (plugin mode)."""


class ConfigError(ValueError):
    """A configuration that cannot work, with a message that says why."""


_E = TypeVar("_E", GptMode, ViolationPolicy)


def artefact(*parts: str) -> Path:
    """A built file of this checkout (images/build, qemu_plugin/build, ...)."""
    return REPO_ROOT.joinpath(*parts)


HOST_CHANNELS = ("sip", "poll")


def hoststub_bl33_image() -> Path:
    """The hoststub linked at TF-A's BL33 address (for --firmware)."""
    return artefact("images", "build", "hoststub-bl33.bin")


def hoststub_image() -> Path:
    """The built hoststub, the default NS payload."""
    return artefact("images", "build", "hoststub.bin")


def _as_enum(enum: type[_E], value: object, what: str) -> _E:
    """`value` as a member of `enum`: a member, or exactly one of its values."""
    if isinstance(value, enum):
        return value
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in enum)
        raise ConfigError(f"{what} must be one of {choices} (or {enum.__name__}), "
                          f"not {value!r}") from None


def unreadable(path: str | os.PathLike[str]) -> str | None:
    """Why `path` cannot be read as a file, or None if it can."""
    try:
        with open(path, "rb"):
            pass
    except IsADirectoryError:
        return "is a directory, not a file"
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


@dataclass
class PlatformConfig:
    cpus: int = 1
    ram_size: int = 1 * GIB
    carveout_size: int = CARVEOUT_DEFAULT_SIZE
    rme: bool = True
    """-cpu max,x-rme=on: the CPU implements FEAT_RME."""
    gpt: GptMode = GptMode.AUTO
    """GPT enforcement; `auto` is resolved at start (see choose_gpt)."""
    on_violation: ViolationPolicy = ViolationPolicy.DEFAULT
    qemu: str = "qemu-system-aarch64"
    plugin: Path = field(default_factory=lambda: artefact("qemu_plugin", "build", "libcosim.so"))
    monitor: Path = field(default_factory=lambda: artefact("images", "build", "monitor.bin"))
    payload: Path = field(default_factory=hoststub_image)
    """The NS-EL2 image: the hoststub, or a Linux kernel Image."""
    initrd: Path | None = None
    """An initramfs for a Linux payload, loaded below the device tree and
    described in /chosen (linux,initrd-start/-end)."""
    bootargs: str | None = None
    """The kernel command line, /chosen/bootargs (None: QEMU's, i.e. none)."""
    payload_offset: int = PAYLOAD_DEFAULT_OFFSET
    reboot: bool = True
    """PSCI SYSTEM_RESET reboots the board; False: the calling CPU halts at EL3
    and the monitor's reset_requested is set (`cosim run` ends there)."""
    host_channel: str = "sip"
    """How the hoststub asks Python for work: "sip" (HOSTSTUB_NEXT through our
    monitor) or "poll" (a mailbox in shared NS RAM; see docs/firmware.md)."""
    firmware: Path | None = None
    """A user's flash image (TF-A + TF-RMM for QEMU virt) booted with -bios
    instead of our monitor and Python RMM; the hoststub is its BL33 and uses
    the polling channel; the GPT is the firmware's own."""
    extra_qemu_args: list[str] = field(default_factory=list)
    symbol_files: list[Path] = field(default_factory=list)
    """ELF files whose symbols name PCs in reports (the hoststub's is added)."""
    start_timeout: float = 30.0
    """Seconds for QEMU to start and the monitor to report that EL3 is up."""
    call_timeout: float = 120.0
    """Seconds one host request may take before the run is declared hung."""
    stop_timeout: float = 5.0
    """Seconds QEMU gets to quit before it is killed."""

    def __post_init__(self) -> None:
        self.gpt = _as_enum(GptMode, self.gpt, "gpt")
        self.on_violation = _as_enum(ViolationPolicy, self.on_violation, "on_violation")

    def choose_gpt(self) -> GptMode:
        """What `auto` stands for: hw on an RME CPU, else plugin; plugin too when
        violations are only to be logged (in hw mode an access never happens,
        so there is nothing to continue past)."""
        if self.gpt != GptMode.AUTO:
            return self.gpt
        if self.rme and self.on_violation != ViolationPolicy.LOG:
            return GptMode.HW
        return GptMode.PLUGIN

    def validate(self) -> None:
        self.__post_init__()
        if not 1 <= self.cpus <= MAX_CPUS:
            raise ConfigError(f"cpus must be 1..{MAX_CPUS}, not {self.cpus}")
        if self.ram_size % (2 * MIB) or self.ram_size < 128 * MIB:
            raise ConfigError(f"RAM size must be a multiple of 2 MiB and at least 128 MiB, "
                              f"not {self.ram_size:#x}")
        if self.carveout_size % (2 * MIB) or self.carveout_size < 2 * MIB:
            raise ConfigError(f"carve-out size must be a non-zero multiple of 2 MiB, "
                              f"not {self.carveout_size:#x}")
        if self.carveout_size > self.ram_size // 4:
            raise ConfigError("the carve-out must be at most a quarter of RAM")
        if self.gpt == GptMode.HW and not self.rme:
            raise ConfigError("--gpt hw needs a CPU with RME (-cpu max,x-rme=on)")
        if self.on_violation == ViolationPolicy.LOG and self.gpt == GptMode.HW:
            raise ConfigError("--on-violation log is for --gpt plugin: in hw mode the access "
                              "never happens, so there is nothing to continue past")
        if self.host_channel not in HOST_CHANNELS:
            raise ConfigError(f"host channel must be one of {', '.join(HOST_CHANNELS)}, "
                              f"not {self.host_channel!r}")
        if self.firmware is not None:
            problem = unreadable(self.firmware)
            if problem is not None:
                raise ConfigError(f"firmware {self.firmware}: {problem}")
            if not self.rme:
                raise ConfigError("--firmware needs a CPU with RME (the firmware's RMM "
                                  "runs in the Realm world)")
            if self.gpt != GptMode.AUTO:
                raise ConfigError("--gpt is for our RMM: with --firmware the GPT is the "
                                  "firmware's own (QEMU's granule protection check)")
        if self.bootargs is not None and "\0" in self.bootargs:
            raise ConfigError("the kernel command line cannot contain a NUL character")
        if shutil.which(self.qemu) is None and not os.access(self.qemu, os.X_OK):
            raise ConfigError(f"QEMU binary '{self.qemu}' not found (run ci/install.sh)")
        built = {artefact("qemu_plugin", "build", "libcosim.so"),
                 artefact("images", "build", "monitor.bin"), hoststub_image()}
        for what, path in (("TCG plugin", self.plugin), ("monitor image", self.monitor),
                           ("NS payload", self.payload), ("initrd", self.initrd)):
            if path is None:
                continue
            problem = unreadable(path)
            if problem is None:
                continue
            if Path(path) in built and not Path(path).exists():
                problem += " (run ci/install.sh to build it)"
            raise ConfigError(f"{what} {path}: {problem}")

    @property
    def cpu_model(self) -> str:
        return "max,x-rme=on" if self.rme else "max"
