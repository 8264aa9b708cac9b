"""What a protected IPA of a realm maps to right now: the RTT walk the RSI
handlers and the abort classification use (callers hold ``realm.lock``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..arch import stage2
from .abi import Ripas
from .realm import Realm
from .rtte import Hipas, Rtte

if TYPE_CHECKING:
    from .rmm import Rmm


@dataclass(frozen=True)
class IpaState:
    ipa: int
    level: int
    """Level of the RTT entry the walk ended at."""
    entry: Rtte

    @property
    def pa(self) -> int | None:
        """The PA the realm reaches at `ipa`, if the page is ASSIGNED with RIPAS RAM."""
        e = self.entry
        if e.hipas is Hipas.ASSIGNED and e.ripas is Ripas.RAM:
            return e.addr + (self.ipa & (stage2.entry_size(self.level) - 1))
        return None

    @property
    def ripas(self) -> Ripas | None:
        return self.entry.ripas if self.entry.has_ripas else None


def ipa_state(rmm: Rmm, realm: Realm, ipa: int) -> IpaState:
    """Walk the realm's RTTs for a protected `ipa` as far as they go."""
    w = rmm.rtts(realm).walk(ipa, stage2.PAGE_LEVEL)
    return IpaState(ipa, w.level, w.entry)
