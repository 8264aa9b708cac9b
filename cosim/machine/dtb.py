"""Device trees: QEMU's own for the configured board (`-machine dumpdtb`),
and the edits a payload booted by our monitor needs."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import fdt

from .errors import QemuStartError


def dump_qemu_dtb(dumpdtb_args: list[str], timeout: float = 30.0) -> fdt.FDT:
    """Run QEMU once with dumpdtb= and parse what it wrote.  `dumpdtb_args`
    must contain the literal placeholder {out} for the output path."""
    with tempfile.TemporaryDirectory(prefix="cosim-dtb-") as tmp:
        out = str(Path(tmp) / "qemu.dtb")
        args = [a.replace("{out}", out) for a in dumpdtb_args]
        try:
            proc = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise QemuStartError(f"QEMU did not dump its device tree within {timeout:.0f} s") \
                from exc
        except OSError as exc:
            raise QemuStartError(f"cannot run {args[0]}: {exc}") from exc
        if proc.returncode != 0 or not Path(out).exists():
            raise QemuStartError("QEMU refused the machine configuration:\n  "
                                 + "\n  ".join(proc.stderr.strip().splitlines()[-10:]))
        return fdt.parse_dtb(Path(out).read_bytes())


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
