"""Preparing the monitor for a run: its boot configuration (patched into a
copy of monitor.bin) and the CPU feature block it reports at boot."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..memory import GuestMemory
from . import layout as L


class MonitorImageError(Exception):
    """monitor.bin does not carry the boot configuration this cosim expects."""


@dataclass
class BootConfig:
    ram_base: int
    ram_size: int
    carveout_base: int
    carveout_size: int
    ns_entry: int
    ns_dtb: int
    num_cpus: int
    flags: int = 0
    gpccr: int = 0
    gptbr: int = 0
    rel2_vbar: int = 0


def patch_image(image: bytes, cfg: BootConfig) -> bytes:
    """Return a copy of monitor.bin with the boot configuration filled in."""
    off = L.BOOT_CONFIG_OFFSET
    layout = L.BOOT_CONFIG
    if len(image) < off + layout.size:
        raise MonitorImageError("monitor image is too small to hold a boot configuration")
    magic, version = struct.unpack_from("<QQ", image, off + layout["magic"])
    if magic != L.BOOT_MAGIC:
        raise MonitorImageError(f"monitor image has no boot configuration at {off:#x} "
                                "(magic mismatch): rebuild images/")
    if version != L.BOOT_CONFIG_VERSION:
        raise MonitorImageError(f"monitor image boot configuration is version {version}, this "
                                f"cosim writes version {L.BOOT_CONFIG_VERSION}: rebuild images/")
    out = bytearray(image)
    for name, value in vars(cfg).items():
        struct.pack_into("<Q", out, off + layout[name], value)
    return bytes(out)


@dataclass
class CpuFeatures:
    """ID registers of the boot CPU as the monitor read them at EL3."""

    regs: dict[str, int]

    def __getitem__(self, name: str) -> int:
        return self.regs[name]

    def field(self, reg: str, shift: int, width: int = 4) -> int:
        return (self.regs[reg] >> shift) & ((1 << width) - 1)

    @property
    def has_rme(self) -> bool:
        return self.field("id_aa64pfr0_el1", 52) != 0

    @property
    def has_sve(self) -> bool:
        return self.field("id_aa64pfr0_el1", 32) != 0

    @property
    def pa_bits(self) -> int:
        """Physical address size from ID_AA64MMFR0_EL1.PARange."""
        return {0: 32, 1: 36, 2: 40, 3: 42, 4: 44, 5: 48, 6: 52}.get(
            self.field("id_aa64mmfr0_el1", 0), 48)


def read_features(memory: GuestMemory, carveout_base: int) -> CpuFeatures:
    hdr = L.CARVEOUT_HEADER
    names = [*L.CPU_FEATURE_REGS, *L.CPU_FEATURE_EXTRA]
    regs = {name: memory.read_u64(carveout_base + hdr[f"feat_{name}"]) for name in names}
    return CpuFeatures(regs)
