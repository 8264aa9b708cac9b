"""Device trees: QEMU's own for the running board, and the edits a payload
booted by our monitor needs.

With -bios, QEMU's virt board writes the device tree it generated for exactly
this machine (devices, CPUs, memory) to the start of RAM before the first
instruction runs; `read_blob` takes it from there while QEMU is still paused,
so the tree always matches the machine the payload runs on.
"""

from __future__ import annotations

import struct

import fdt

from ..memory import GuestMemory

FDT_MAGIC = 0xD00DFEED
_HEADER = struct.Struct(">II")
"""magic and totalsize, the first two big-endian words of a flattened tree
(devicetree specification, "FDT header")."""


class DeviceTreeError(ValueError):
    """No device tree where one was expected."""


def read_blob(memory: GuestMemory, pa: int) -> bytes:
    """The flattened device tree at `pa` in guest memory."""
    magic, size = _HEADER.unpack(memory.read(pa, _HEADER.size))
    if magic != FDT_MAGIC or not _HEADER.size < size <= memory.end - pa:
        raise DeviceTreeError(f"no device tree at PA {pa:#x} (magic {magic:#x}, size {size})")
    return memory.read(pa, size)


def parse(blob: bytes) -> fdt.FDT:
    return fdt.parse_dtb(blob)


def _cells(value: int, cells: int) -> list[int]:
    return [(value >> (32 * (cells - 1 - i))) & 0xFFFF_FFFF for i in range(cells)]


def reserve_memory(tree: fdt.FDT, name: str, base: int, size: int) -> None:
    """Add a no-map /reserved-memory region (devicetree spec 3.5)."""
    if not tree.exist_node("/reserved-memory"):
        node = fdt.Node("reserved-memory")
        node.append(fdt.PropWords("#address-cells", 2))
        node.append(fdt.PropWords("#size-cells", 2))
        node.append(fdt.Property("ranges"))
        tree.add_item(node, "/")
    region = fdt.Node(f"{name}@{base:x}")
    region.append(fdt.PropWords("reg", *_cells(base, 2), *_cells(size, 2)))
    region.append(fdt.Property("no-map"))
    tree.add_item(region, "/reserved-memory")


def add_psci(tree: fdt.FDT) -> None:
    """A PSCI 1.0 node with the SMC conduit, and CPUs brought up through it
    (Linux Documentation/devicetree/bindings/arm/psci.yaml)."""
    if tree.exist_node("/psci"):
        tree.remove_node("psci", "/")
    node = fdt.Node("psci")
    node.append(fdt.PropStrings("compatible", "arm,psci-1.0", "arm,psci-0.2"))
    node.append(fdt.PropStrings("method", "smc"))
    tree.add_item(node, "/")
    cpus = tree.get_node("/cpus")
    for cpu in cpus.nodes:
        if cpu.name.startswith("cpu@"):
            cpu.set_property("enable-method", "psci")


def set_chosen(tree: fdt.FDT, bootargs: str | None = None,
               initrd: tuple[int, int] | None = None) -> None:
    chosen = tree.get_node("/chosen")
    if bootargs is not None:
        chosen.set_property("bootargs", bootargs)
    if initrd is not None:
        start, end = initrd
        chosen.set_property("linux,initrd-start", [*_cells(start, 2)])
        chosen.set_property("linux,initrd-end", [*_cells(end, 2)])


def to_blob(tree: fdt.FDT) -> bytes:
    return tree.to_dtb(version=17)
