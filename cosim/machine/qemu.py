"""The QEMU command line of a co-simulated machine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import board


def opt_value(text: str) -> str:
    """`text` as a value inside a QEMU option list (KEY=VALUE,...): a comma
    is written twice."""
    return text.replace(",", ",,")


@dataclass
class Blob:
    """A file QEMU's generic loader copies into guest memory at every reset."""

    path: str
    address: int


@dataclass
class QemuCommand:
    qemu: str
    cpus: int
    ram_size: int
    cpu_model: str
    bios: str
    ram_path: str
    """mem-path of the RAM backend (a /proc/self/fd/N memfd path)."""
    blobs: list[Blob] = field(default_factory=list)
    plugin: Path | None = None
    plugin_args: list[str] = field(default_factory=list)
    qmp_socket: str | None = None
    gdb_socket: str | None = None
    serial_sockets: list[str] = field(default_factory=list)
    """Abstract socket names Python listens on, one per -serial, in order."""
    extra_args: list[str] = field(default_factory=list)

    def machine_args(self) -> list[str]:
        """The arguments that define the hardware (and so the device tree)."""
        return [
            "-M", board.MACHINE,
            "-cpu", self.cpu_model,
            "-smp", str(self.cpus),
            "-m", f"{self.ram_size // (1 << 20)}M",
            "-nodefaults", "-display", "none",
            *self.extra_args,
        ]

    def args(self) -> list[str]:
        args = [self.qemu, *self.machine_args()]
        args += [
            "-object", f"memory-backend-file,id=ram,size={self.ram_size},"
                       f"mem-path={self.ram_path},share=on",
            "-machine", "memory-backend=ram",
            "-bios", self.bios,
            "-S",
        ]
        for blob in self.blobs:
            args += ["-device", f"loader,file={opt_value(blob.path)},addr={blob.address:#x},"
                                "force-raw=on"]
        for i, name in enumerate(self.serial_sockets):
            args += ["-chardev", f"socket,id=serial{i},path={name},abstract=on,server=off",
                     "-serial", f"chardev:serial{i}"]
        if self.qmp_socket:
            args += ["-chardev", f"socket,id=qmp,path={self.qmp_socket},abstract=on,"
                                 "server=on,wait=off",
                     "-mon", "chardev=qmp,mode=control"]
        if self.gdb_socket:
            args += ["-chardev", f"socket,id=gdb,path={self.gdb_socket},abstract=on,"
                                 "server=on,wait=off",
                     "-gdb", "chardev:gdb"]
        if self.plugin:
            args += ["-plugin", ",".join([opt_value(str(self.plugin)), *self.plugin_args])]
        return args
