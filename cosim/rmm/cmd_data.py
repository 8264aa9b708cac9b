"""RMI_DATA_CREATE (B4.3.1), RMI_DATA_CREATE_UNKNOWN (B4.3.2), RMI_DATA_DESTROY
(B4.3.3), failure conditions in the order of each command's table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..arch import stage2
from ..arch.pas import GRANULE_SIZE
from .abi import RMI_MEASURE_CONTENT, Ripas, RmiStatus
from .cmd_realm import rd_realm
from .cmd_rtt import LPA2_OA_LIMIT, entry_is_valid, invalidate
from .errors import check, fail
from .granule import Granule, GranuleState
from .measurement import RIM_INDEX, Rim
from .realm import Realm, RealmState
from .results import Call
from .rtt import RttWalk
from .rtte import Hipas, Rtte

if TYPE_CHECKING:
    from .rmm import Rmm

DATA_FLAGS_MEASURE = RMI_MEASURE_CONTENT
"""RmiDataFlags.measure, bit 0; bits [63:1] are reserved (SBZ, B4.4.2) and no
failure condition reads them, so they are ignored (B1.6: "If no failure
pre-condition evaluates to true then the command succeeds")."""


def _data_arg(rmm: Rmm, data: int) -> Granule:
    return rmm.granule_arg(data, GranuleState.DELEGATED, "data")


def _protected_page(rmm: Rmm, realm: Realm, ipa: int) -> RttWalk:
    """ipa_align, ipa_bound, then (after the caller's realm checks) the walk."""
    check(not stage2.is_level_aligned(ipa, stage2.PAGE_LEVEL), "ipa_align")
    check(not realm.is_protected(ipa), "ipa_bound")
    return rmm.rtts(realm).walk(ipa, stage2.PAGE_LEVEL)


def _check_unassigned_page(w: RttWalk) -> None:
    check(w.level < stage2.PAGE_LEVEL, "rtt_walk", RmiStatus.ERROR_RTT, w.level)
    check(w.entry.hipas is not Hipas.UNASSIGNED, "rtte_state", RmiStatus.ERROR_RTT, w.level)


def data_create(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    rd, data, ipa, src, flags = a[0], a[1], a[2], a[3], a[4]
    with rmm.locked(owners=[rd], pas=[data, src]):
        rmm.ns_buffer_check(src, "src")
        g = _data_arg(rmm, data)
        realm = rd_realm(rmm, rd)
        call.realm = realm.id
        check(data >= LPA2_OA_LIMIT and not realm.lpa2, "data_bound2")
        check(not stage2.is_level_aligned(ipa, stage2.PAGE_LEVEL), "ipa_align")
        check(not realm.is_protected(ipa), "ipa_bound")
        check(realm.state is not RealmState.NEW, "realm_state", RmiStatus.ERROR_REALM)
        rtts = rmm.rtts(realm)
        w = rtts.walk(ipa, stage2.PAGE_LEVEL)
        _check_unassigned_page(w)
        rmm.memory.copy(data, src, GRANULE_SIZE)
        rtts.write(w.table, w.index, w.level, Rtte(Hipas.ASSIGNED, Ripas.RAM, data))
        rmm.transition(call, g, GranuleState.DATA, realm=realm, ipa=ipa)
        # B4.3.1.4: the descriptor's flags field is an RmmDataFlags (reserved
        # bits zero, C1.1, C1.11 "Unused bits ... MBZ").
        measure = flags & DATA_FLAGS_MEASURE
        rim = realm.measurements[RIM_INDEX]
        content = rmm.memory.view(data, GRANULE_SIZE) if measure else None
        rim[:] = Rim(realm.hash_algo).extend_data(bytes(rim), ipa, measure, content)
    return ()


def data_create_unknown(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    rd, data, ipa = a[0], a[1], a[2]
    with rmm.locked(owners=[rd], pas=[data]):
        g = _data_arg(rmm, data)
        realm = rd_realm(rmm, rd)
        call.realm = realm.id
        check(data >= LPA2_OA_LIMIT and not realm.lpa2, "data_bound2")
        rtts = rmm.rtts(realm)
        w = _protected_page(rmm, realm, ipa)
        _check_unassigned_page(w)
        rtts.write(w.table, w.index, w.level, Rtte(Hipas.ASSIGNED, w.entry.ripas, data))
        rmm.transition(call, g, GranuleState.DATA, realm=realm, ipa=ipa)
    return ()


_AFTER_DESTROY = {
    Ripas.RAM: Ripas.DESTROYED,
    Ripas.EMPTY: Ripas.EMPTY,
    Ripas.DESTROYED: Ripas.DESTROYED,
}


def _peek_data(rmm: Rmm, rd: int, ipa: int) -> list[int]:
    realm = rmm.realm_at(rd)
    if realm is None or not realm.is_protected(ipa):
        return []
    w = rmm.rtts(realm).walk(ipa, stage2.PAGE_LEVEL)
    ok = w.level == stage2.PAGE_LEVEL and w.entry.hipas is Hipas.ASSIGNED
    return [w.entry.addr] if ok else []


def data_destroy(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    rd, ipa = a[0], a[1]
    with rmm.locked(owners=[rd], extra=lambda: _peek_data(rmm, rd, ipa)):
        realm = rd_realm(rmm, rd)
        call.realm = realm.id
        rtts = rmm.rtts(realm)
        w = _protected_page(rmm, realm, ipa)
        if w.level < stage2.PAGE_LEVEL:
            fail("rtt_walk", RmiStatus.ERROR_RTT, w.level, out=(0, rtts.skip_non_live(w)))
        if w.entry.hipas is not Hipas.ASSIGNED:
            fail("rtte_state", RmiStatus.ERROR_RTT, w.level, out=(0, rtts.skip_non_live(w)))
        data = w.entry.addr
        rtts.write(w.table, w.index, w.level, Rtte(Hipas.UNASSIGNED, _AFTER_DESTROY[w.entry.ripas]))
        if entry_is_valid(w.entry):
            invalidate(call, realm, ipa, stage2.PAGE_LEVEL)
        rmm.transition(call, rmm.tracked(data), GranuleState.DELEGATED)
        return (data, rtts.skip_non_live(w))
