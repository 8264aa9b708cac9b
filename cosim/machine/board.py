"""The QEMU `virt` board as the co-simulator uses it (-M virt,secure=on,
virtualization=on,gic-version=3): memory map facts measured on QEMU 10."""

from __future__ import annotations

from ..config import MAX_CPUS  # noqa: F401  (re-exported: CPU n has MPIDR Aff0 = n)

RAM_BASE = 0x4000_0000
"""Start of RAM; QEMU puts its own generated DTB here when booted with -bios."""

FLASH0_SIZE = 0x0400_0000
"""flash0 at PA 0, where -bios puts the firmware (Secure-only with secure=on)."""

UART_NS_BASE = 0x0900_0000
"""PL011 of the Non-secure world (the first -serial)."""

UART_SECURE_BASE = 0x0904_0000
"""Secure PL011 (the second -serial): the monitor's own log."""

SECURE_GPIO_BASE = 0x090B_0000
"""Secure PL061: pin 0 powers the board off, pin 1 resets it (gpio-pwr)."""

GICD_BASE = 0x0800_0000
GICR_BASE = 0x080A_0000
GICR_STRIDE = 0x2_0000
"""GICv3 distributor and redistributors (one 128 KiB frame pair per CPU)."""

MACHINE = "virt,secure=on,virtualization=on,gic-version=3"
