"""The realm's device tree, as the VMM hands it to the guest kernel (x0 at
entry; measured into the RIM like the kernel): memory, CPUs brought up with
PSCI over SMC (a realm's PSCI calls go to the RMM), the GICv3, the generic
timer and the PL011 at the addresses `realm_map` names, and /chosen.

Bindings: Linux Documentation/devicetree/bindings (arm/cpus.yaml,
arm/psci.yaml, interrupt-controller/arm,gic-v3.yaml, timer/arm,arch_timer.yaml,
serial/pl011.yaml)."""

from __future__ import annotations

from dataclasses import dataclass

import fdt

from . import realm_map as M

GIC_PHANDLE = 1
CLOCK_PHANDLE = 2
GIC_SPI, GIC_PPI = 0, 1
IRQ_LEVEL_HIGH = 4
TIMER_PPIS = (13, 14, 11, 10)
"""Secure physical, Non-secure physical, virtual and hypervisor timers, as
PPI numbers (INTID - 16): the order arm,armv8-timer wants."""
UART_CLOCK_HZ = 24_000_000
DT_MAX_SIZE = 2 << 20
"""arm64 boot protocol: the device tree must not exceed 2 MiB."""


@dataclass(frozen=True)
class RealmDtConfig:
    ram_base: int
    ram_size: int
    mpidrs: list[int]
    bootargs: str
    initrd: tuple[int, int] | None = None
    """[start, end) of the initrd, if any."""


def _cells(value: int) -> list[int]:
    return [(value >> 32) & 0xFFFF_FFFF, value & 0xFFFF_FFFF]


def _node(name: str, *props: fdt.Property) -> fdt.Node:
    node = fdt.Node(name)
    for p in props:
        node.append(p)
    return node


def build(cfg: RealmDtConfig) -> bytes:
    """The device tree blob (version 17)."""
    tree = fdt.FDT()
    root = tree.root
    for p in (fdt.PropStrings("compatible", "linux,dummy-virt"),
              fdt.PropStrings("model", "cca-cosim realm"),
              fdt.PropWords("#address-cells", 2), fdt.PropWords("#size-cells", 2),
              fdt.PropWords("interrupt-parent", GIC_PHANDLE)):
        root.append(p)

    chosen = _node("chosen", fdt.PropStrings("stdout-path", f"/pl011@{M.UART_BASE:x}"))
    if cfg.bootargs:
        chosen.append(fdt.PropStrings("bootargs", cfg.bootargs))
    if cfg.initrd is not None:
        chosen.append(fdt.PropWords("linux,initrd-start", *_cells(cfg.initrd[0])))
        chosen.append(fdt.PropWords("linux,initrd-end", *_cells(cfg.initrd[1])))
    root.append(chosen)

    root.append(_node(f"memory@{cfg.ram_base:x}", fdt.PropStrings("device_type", "memory"),
                      fdt.PropWords("reg", *_cells(cfg.ram_base), *_cells(cfg.ram_size))))

    cpus = _node("cpus", fdt.PropWords("#address-cells", 1), fdt.PropWords("#size-cells", 0))
    for mpidr in cfg.mpidrs:
        cpus.append(_node(f"cpu@{mpidr:x}", fdt.PropStrings("device_type", "cpu"),
                          fdt.PropStrings("compatible", "arm,armv8"),
                          fdt.PropWords("reg", mpidr),
                          fdt.PropStrings("enable-method", "psci")))
    root.append(cpus)

    root.append(_node("psci", fdt.PropStrings("compatible", "arm,psci-1.0", "arm,psci-0.2"),
                      fdt.PropStrings("method", "smc")))

    gicr_size = M.GICR_STRIDE * len(cfg.mpidrs)
    root.append(_node(f"intc@{M.GICD_BASE:x}",
                      fdt.PropStrings("compatible", "arm,gic-v3"),
                      fdt.PropWords("#interrupt-cells", 3),
                      fdt.Property("interrupt-controller"),
                      fdt.PropWords("#redistributor-regions", 1),
                      fdt.PropWords("reg", *_cells(M.GICD_BASE), *_cells(M.GICD_SIZE),
                                    *_cells(M.GICR_BASE), *_cells(gicr_size)),
                      fdt.PropWords("phandle", GIC_PHANDLE)))

    timer_irqs = [w for ppi in TIMER_PPIS for w in (GIC_PPI, ppi, IRQ_LEVEL_HIGH)]
    root.append(_node("timer", fdt.PropStrings("compatible", "arm,armv8-timer"),
                      fdt.PropWords("interrupts", *timer_irqs),
                      fdt.Property("always-on")))

    root.append(_node("apb-pclk", fdt.PropStrings("compatible", "fixed-clock"),
                      fdt.PropWords("#clock-cells", 0),
                      fdt.PropWords("clock-frequency", UART_CLOCK_HZ),
                      fdt.PropStrings("clock-output-names", "clk24mhz"),
                      fdt.PropWords("phandle", CLOCK_PHANDLE)))
    root.append(_node(f"pl011@{M.UART_BASE:x}",
                      fdt.PropStrings("compatible", "arm,pl011", "arm,primecell"),
                      fdt.PropWords("reg", *_cells(M.UART_BASE), *_cells(M.UART_SIZE)),
                      fdt.PropWords("interrupts", GIC_SPI, M.UART_SPI, IRQ_LEVEL_HIGH),
                      fdt.PropWords("clocks", CLOCK_PHANDLE, CLOCK_PHANDLE),
                      fdt.PropStrings("clock-names", "uartclk", "apb_pclk")))
    blob = tree.to_dtb(version=17)
    if len(blob) > DT_MAX_SIZE:
        raise ValueError(f"the realm device tree is {len(blob)} bytes, more than 2 MiB")
    return blob
