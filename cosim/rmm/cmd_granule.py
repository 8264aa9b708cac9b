"""RMI_GRANULE_DELEGATE and RMI_GRANULE_UNDELEGATE."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..arch.pas import Pas
from .errors import check
from .granule import GranuleState
from .results import Call

if TYPE_CHECKING:
    from .rmm import Rmm


def granule_delegate(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    addr = a[0]
    with rmm.locked(pas=[addr]):
        rmm.granule_arg(addr, GranuleState.UNDELEGATED, "gran")
        check(rmm.gpt.get(addr) is not Pas.NONSECURE, "gran_gpt")
        rmm.delegate(call, addr)
    return ()


def granule_undelegate(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    addr = a[0]
    with rmm.locked(pas=[addr]):
        g = rmm.granule_arg(addr, GranuleState.DELEGATED, "gran")
        rmm.undelegate(call, g)
    return ()
