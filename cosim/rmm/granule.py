"""Granules: the RMM's state per 4 KiB of delegable memory, and the locks on them.

Only granules that are not UNDELEGATED have a record; an absent record means
UNDELEGATED.  A record is changed only by a command that holds the lock
stripe of its address (see ``LockStripes``) and, for granules owned by a
realm (RD, REC, REC_AUX, DATA, RTT), the realm's lock as well.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from ..arch.pas import GRANULE_MASK, GRANULE_SHIFT
from ..arch.stage2 import table_span

if TYPE_CHECKING:
    from .realm import Realm
    from .rec import Rec


class GranuleState(Enum):
    UNDELEGATED = "UNDELEGATED"
    DELEGATED = "DELEGATED"
    RD = "RD"
    REC = "REC"
    REC_AUX = "REC_AUX"
    DATA = "DATA"
    RTT = "RTT"


@dataclass(eq=False)
class Granule:
    """One tracked granule.  ``realm``/``rec``/``ipa``/``level`` describe what owns
    it, for reports; the RTTs in memory remain the truth for mappings."""

    pa: int
    state: GranuleState = GranuleState.DELEGATED
    realm: Realm | None = None
    rec: Rec | None = None
    ipa: int | None = None
    """DATA: the IPA it is mapped at; RTT: the base of the IPA range it covers."""
    level: int | None = None
    """RTT: its level."""

    def describe(self) -> str:
        s = self.state
        realm = f"realm {self.realm.id}" if self.realm is not None else "no realm"
        if s is GranuleState.DATA:
            return f"DATA of {realm} at IPA {self.ipa:#x}"
        if s is GranuleState.RTT and self.level is not None and self.ipa is not None:
            top = self.ipa + table_span(self.level)
            return f"RTT level {self.level} of {realm} covering IPA [{self.ipa:#x}, {top:#x})"
        if s is GranuleState.REC and self.rec is not None:
            return f"REC {self.rec.index} (MPIDR {self.rec.mpidr:#x}) of {realm}"
        if s is GranuleState.REC_AUX and self.rec is not None:
            return f"REC_AUX of REC {self.rec.index} of {realm}"
        if s is GranuleState.RD:
            return f"RD of {realm}"
        return s.value


class LockStripes:
    """A fixed set of locks; granule PA -> stripe by granule number.

    A command takes every stripe it needs in one go, in ascending stripe order,
    after any realm locks: that global order rules out deadlock.
    """

    def __init__(self, count: int = 1024) -> None:
        self._locks = [threading.Lock() for _ in range(count)]
        self._count = count

    def stripe(self, pa: int) -> int:
        return (pa >> GRANULE_SHIFT) % self._count

    def acquire(self, pas: Iterable[int]) -> list[int]:
        count = self._count
        held = sorted({(pa >> GRANULE_SHIFT) % count for pa in pas})
        locks = self._locks
        for s in held:
            locks[s].acquire()
        return held

    def release(self, held: list[int]) -> None:
        locks = self._locks
        for s in reversed(held):
            locks[s].release()


def is_granule_aligned(pa: int) -> bool:
    return pa & GRANULE_MASK == 0
