"""RTT structure and unprotected-mapping commands: RMI_RTT_CREATE, RMI_RTT_DESTROY,
RMI_RTT_FOLD, RMI_RTT_READ_ENTRY, RMI_RTT_MAP_UNPROTECTED, RMI_RTT_UNMAP_UNPROTECTED."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..arch import stage2
from .abi import Ripas, RmiStatus, RttEntryState, s64
from .cmd_realm import rd_realm
from .errors import check
from .granule import GranuleState
from .realm import Realm
from .results import Call, TlbInvalidation
from .rtte import (
    HOST_NS_ADDR_MASK,
    HOST_NS_ATTR_MASK,
    HOST_NS_MEMATTR_RESERVED,
    UNASSIGNED_NS,
    Hipas,
    Rtte,
    child_entries,
    fold,
    host_ns_desc,
)

if TYPE_CHECKING:
    from .rmm import Rmm

LPA2_OA_LIMIT = 1 << stage2.MAX_OA_BITS
"""Without LPA2 a realm's RTTs can only hold 48-bit output addresses."""


def structure_level(realm: Realm, level: int) -> bool:
    """Levels RTT_CREATE, RTT_DESTROY and RTT_FOLD accept: below the starting level."""
    return realm.rtt_level_start < level <= stage2.PAGE_LEVEL


def mapping_level(realm: Realm, level: int) -> bool:
    """Levels at which a block/page mapping can exist in this realm's RTTs."""
    return max(stage2.MIN_BLOCK_LEVEL, realm.rtt_level_start) <= level <= stage2.PAGE_LEVEL


def invalidate(call: Call, realm: Realm, ipa: int, level: int) -> None:
    call.tlbi.append(
        TlbInvalidation(realm.vmid, stage2.align_down(ipa, level), stage2.entry_size(level))
    )


def entry_is_valid(entry: Rtte) -> bool:
    """Whether the CPU can use the descriptor (so changing it needs TLB maintenance)."""
    return entry.hipas in (Hipas.ASSIGNED_NS, Hipas.TABLE) or (
        entry.hipas is Hipas.ASSIGNED and entry.ripas is Ripas.RAM
    )


def _peek_table(rmm: Rmm, rd: int, ipa: int, level: int) -> list[int]:
    """The child RTT a structure command on (rd, ipa, level) would take (for locking)."""
    realm = rmm.realm_at(rd)
    if realm is None or not structure_level(realm, level) or not 0 <= ipa < realm.ipa_limit:
        return []
    w = rmm.rtts(realm).walk(ipa, level - 1)
    return [w.entry.addr] if w.level == level - 1 and w.entry.hipas is Hipas.TABLE else []


def _structure_args(rmm: Rmm, call: Call, rd: int, ipa: int, level: int) -> Realm:
    realm = rd_realm(rmm, rd)
    call.realm = realm.id
    check(not structure_level(realm, level), "level_bound")
    check(not stage2.is_level_aligned(ipa, level - 1), "ipa_align")
    check(ipa >= realm.ipa_limit, "ipa_bound")
    return realm


def rtt_create(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    rd, rtt, ipa, level = a[0], a[1], a[2], s64(a[3])
    with rmm.locked(owners=[rd], pas=[rtt]):
        realm = _structure_args(rmm, call, rd, ipa, level)
        g = rmm.granule_arg(rtt, GranuleState.DELEGATED, "rtt")
        check(rtt >= LPA2_OA_LIMIT and not realm.lpa2, "rtt_bound2")
        rtts = rmm.rtts(realm)
        w = rtts.walk(ipa, level - 1)
        check(w.level < level - 1, "rtt_walk", RmiStatus.ERROR_RTT, w.level)
        check(w.entry.hipas is Hipas.TABLE, "rtte_state", RmiStatus.ERROR_RTT, level - 1)
        rtts.write_all(rtt, level, child_entries(w.entry, level))
        rmm.transition(call, g, GranuleState.RTT, realm=realm, ipa=ipa, level=level)
        if entry_is_valid(w.entry):
            invalidate(call, realm, ipa, level - 1)
        rtts.write(w.table, w.index, w.level, Rtte(Hipas.TABLE, addr=rtt))
    return ()


def rtt_destroy(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    rd, ipa, level = a[0], a[1], s64(a[2])
    with rmm.locked(owners=[rd], extra=lambda: _peek_table(rmm, rd, ipa, level)):
        realm = _structure_args(rmm, call, rd, ipa, level)
        rtts = rmm.rtts(realm)
        w = rtts.walk(ipa, level - 1)
        check(
            w.level < level - 1,
            "rtt_walk",
            RmiStatus.ERROR_RTT,
            w.level,
            out=(0, rtts.skip_non_live(w, ipa)),
        )
        check(
            w.entry.hipas is not Hipas.TABLE,
            "rtte_state",
            RmiStatus.ERROR_RTT,
            level - 1,
            out=(0, rtts.skip_non_live(w, ipa)),
        )
        child = w.entry.addr
        check(
            rtts.is_live(child, level),
            "rtt_live",
            RmiStatus.ERROR_RTT,
            level,
            out=(0, rtts.skip_non_live(w, ipa)),
        )
        replacement = (
            Rtte(Hipas.UNASSIGNED, Ripas.DESTROYED) if realm.is_protected(ipa) else UNASSIGNED_NS
        )
        rtts.write(w.table, w.index, w.level, replacement)
        invalidate(call, realm, ipa, level - 1)
        rmm.transition(call, rmm.tracked(child), GranuleState.DELEGATED)
        return (child, rtts.skip_non_live(w, ipa))


def rtt_fold(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    rd, ipa, level = a[0], a[1], s64(a[2])
    with rmm.locked(owners=[rd], extra=lambda: _peek_table(rmm, rd, ipa, level)):
        realm = _structure_args(rmm, call, rd, ipa, level)
        rtts = rmm.rtts(realm)
        w = rtts.walk(ipa, level - 1)
        check(w.level < level - 1, "rtt_walk", RmiStatus.ERROR_RTT, w.level)
        check(w.entry.hipas is not Hipas.TABLE, "rtte_state", RmiStatus.ERROR_RTT, level - 1)
        child = w.entry.addr
        folded = fold(rtts.read_all(child, level), level)
        check(folded is None, "rtte_homo", RmiStatus.ERROR_RTT, level)
        assert folded is not None
        invalidate(call, realm, ipa, level - 1)
        rtts.write(w.table, w.index, w.level, folded)
        rmm.transition(call, rmm.tracked(child), GranuleState.DELEGATED)
        return (child,)


def rtt_read_entry(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    rd, ipa, level = a[0], a[1], s64(a[2])
    with rmm.locked(owners=[rd]):
        realm = rd_realm(rmm, rd)
        call.realm = realm.id
        check(not realm.rtt_level_start <= level <= stage2.PAGE_LEVEL, "level_bound")
        check(not stage2.is_level_aligned(ipa, level), "ipa_align")
        check(ipa >= realm.ipa_limit, "ipa_bound")
        w = rmm.rtts(realm).walk(ipa, level)
        return (w.level, *read_entry_outputs(w.entry))


def read_entry_outputs(e: Rtte) -> tuple[int, int, int]:
    """(state, desc, ripas) as RMI_RTT_READ_ENTRY reports an entry."""
    if e.hipas is Hipas.UNASSIGNED:
        return (RttEntryState.UNASSIGNED, 0, e.ripas)
    if e.hipas is Hipas.ASSIGNED:
        return (RttEntryState.ASSIGNED, 0 if e.ripas is Ripas.DESTROYED else e.addr, e.ripas)
    if e.hipas is Hipas.UNASSIGNED_NS:
        return (RttEntryState.UNASSIGNED, 0, Ripas.EMPTY)
    if e.hipas is Hipas.ASSIGNED_NS:
        return (RttEntryState.ASSIGNED, host_ns_desc(e), Ripas.EMPTY)
    return (RttEntryState.TABLE, e.addr, Ripas.EMPTY)


def host_ns_desc_valid(desc: int) -> bool:
    """attr_valid: only output address, MemAttr[2:0] (not 0b100) and S2AP may be set."""
    if desc & ~(HOST_NS_ADDR_MASK | HOST_NS_ATTR_MASK):
        return False
    return desc & (0b111 << stage2.MEMATTR_SHIFT) != HOST_NS_MEMATTR_RESERVED


def _unprotected_args(rmm: Rmm, call: Call, rd: int, level: int) -> Realm:
    realm = rd_realm(rmm, rd)
    call.realm = realm.id
    check(not mapping_level(realm, level), "level_bound")
    return realm


def rtt_map_unprotected(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    rd, ipa, level, desc = a[0], a[1], s64(a[2]), a[3]
    with rmm.locked(owners=[rd]):
        check(not host_ns_desc_valid(desc), "attr_valid")
        realm = _unprotected_args(rmm, call, rd, level)
        oa = desc & HOST_NS_ADDR_MASK
        check(not stage2.is_level_aligned(oa, level), "addr_align")
        check(oa >> rmm.config.pa_width != 0, "addr_bound")
        check(not stage2.is_level_aligned(ipa, level), "ipa_align")
        check(not realm.is_unprotected(ipa), "ipa_bound")
        rtts = rmm.rtts(realm)
        w = rtts.walk(ipa, level)
        check(w.level < level, "rtt_walk", RmiStatus.ERROR_RTT, w.level)
        check(w.entry.hipas is not Hipas.UNASSIGNED_NS, "rtte_state", RmiStatus.ERROR_RTT, level)
        rtts.write(
            w.table,
            w.index,
            w.level,
            Rtte(Hipas.ASSIGNED_NS, addr=oa, attrs=desc & HOST_NS_ATTR_MASK),
        )
    return ()


def rtt_unmap_unprotected(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    rd, ipa, level = a[0], a[1], s64(a[2])
    with rmm.locked(owners=[rd]):
        realm = _unprotected_args(rmm, call, rd, level)
        check(not stage2.is_level_aligned(ipa, level), "ipa_align")
        check(not realm.is_unprotected(ipa), "ipa_bound")
        rtts = rmm.rtts(realm)
        w = rtts.walk(ipa, level)
        check(
            w.level < level,
            "rtt_walk",
            RmiStatus.ERROR_RTT,
            w.level,
            out=(rtts.skip_non_live(w, ipa),),
        )
        check(
            w.entry.hipas is not Hipas.ASSIGNED_NS,
            "rtte_state",
            RmiStatus.ERROR_RTT,
            level,
            out=(rtts.skip_non_live(w, ipa),),
        )
        rtts.write(w.table, w.index, w.level, UNASSIGNED_NS)
        invalidate(call, realm, ipa, level)
        return (rtts.skip_non_live(w, ipa),)
