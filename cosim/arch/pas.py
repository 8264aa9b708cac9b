"""Physical address spaces (PAS) of the Realm Management Extension and the
granule size the GPT works in.

The numbering is the one the architecture uses for the low two bits of a
GPI (Arm ARM, "Granule Protection Information"): 0b10xx selects a single PAS
with xx = 0 Secure, 1 Non-secure, 2 Root, 3 Realm.  QEMU's ARMSecuritySpace
uses the same numbers, so the plugin and the GPT encoder share them.
"""

from __future__ import annotations

from enum import IntEnum

GRANULE_SHIFT = 12
GRANULE_SIZE = 1 << GRANULE_SHIFT
GRANULE_MASK = GRANULE_SIZE - 1


class Pas(IntEnum):
    SECURE = 0
    NONSECURE = 1
    ROOT = 2
    REALM = 3

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {Pas.SECURE: "Secure", Pas.NONSECURE: "Non-secure", Pas.ROOT: "Root", Pas.REALM: "Realm"}


class World(IntEnum):
    """The security state a vCPU executes in; the PAS its accesses use by default."""

    SECURE = 0
    NONSECURE = 1
    ROOT = 2
    REALM = 3


def granule_align_down(pa: int) -> int:
    return pa & ~GRANULE_MASK


def is_granule_aligned(pa: int) -> bool:
    return pa & GRANULE_MASK == 0
