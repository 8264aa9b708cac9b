"""The realm's IPA map as this VMM builds it: where the emulated devices and
guest RAM are (the device tree it generates says the same)."""

from __future__ import annotations

GICD_BASE = 0x0800_0000
GICD_SIZE = 0x1_0000
GICR_BASE = 0x080A_0000
GICR_STRIDE = 0x2_0000
"""Each vCPU's redistributor: RD_base frame then SGI_base frame (64 KiB each)."""
GICR_MAX_CPUS = 8
UART_BASE = 0x0900_0000
UART_SIZE = 0x1000
UART_SPI = 1
"""The PL011's interrupt: SPI 1 (INTID 33)."""
RAM_BASE = 0x8000_0000
"""Guest RAM (protected IPA space; kvmtool's arm64 RAM base)."""
DEFAULT_IPA_BITS = 40
"""KVM's default IPA width."""
