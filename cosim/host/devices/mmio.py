"""MMIO dispatch: which emulated device an access at an IPA reaches."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Protocol


class MmioDevice(Protocol):
    name: str

    def read(self, offset: int, size: int, cpu: int) -> int:
        """A load of `size` bytes (1, 2, 4 or 8) at `offset` by vCPU `cpu`."""

    def write(self, offset: int, size: int, value: int, cpu: int) -> None:
        """A store of the low `size` bytes of `value`."""


@dataclass(frozen=True)
class Region:
    base: int
    size: int
    device: MmioDevice

    @property
    def end(self) -> int:
        return self.base + self.size


class MmioBus:
    """Non-overlapping regions, looked up by address."""

    def __init__(self) -> None:
        self._regions: list[Region] = []
        self._bases: list[int] = []

    def add(self, base: int, size: int, device: MmioDevice) -> None:
        region = Region(base, size, device)
        for r in self._regions:
            if r.base < region.end and region.base < r.end:
                raise ValueError(f"{device.name} at [{base:#x}, {region.end:#x}) overlaps "
                                 f"{r.device.name} at [{r.base:#x}, {r.end:#x})")
        self._regions.append(region)
        self._regions.sort(key=lambda r: r.base)
        self._bases = [r.base for r in self._regions]

    def find(self, address: int) -> Region | None:
        i = bisect.bisect_right(self._bases, address) - 1
        if i >= 0 and address < self._regions[i].end:
            return self._regions[i]
        return None

    @property
    def regions(self) -> list[Region]:
        return list(self._regions)
