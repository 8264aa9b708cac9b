"""RTT structure and unprotected-mapping commands: RMI_RTT_CREATE (B4.3.15),
RMI_RTT_DESTROY (B4.3.16), RMI_RTT_FOLD (B4.3.17), RMI_RTT_READ_ENTRY
(B4.3.20), RMI_RTT_MAP_UNPROTECTED (B4.3.19), RMI_RTT_UNMAP_UNPROTECTED
(B4.3.22).

Failure conditions are checked in the order of each command's table in the
spec, which satisfies its ordering constraints ("[rd_bound, rd_state] <
[rtt_walk, rtte_state]", "[level_bound, ipa_bound] < [rtt_walk, rtte_state]").
An RMI_ERROR_RTT index is the level the walk reached (walk.level), as each
post-condition says; level -1 (LPA2) is packed as 0xFF.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from ..arch import stage2
from .abi import Ripas, RmiStatus, RttEntryState, s64
from .cmd_realm import rd_realm
from .errors import check, fail
from .granule import GranuleState
from .realm import Realm
from .results import Call, TlbInvalidation
from .rtt import RttWalk
from .rtte import HOST_NS_ATTR_MASK, UNASSIGNED_NS, Hipas, Rtte, RtteCodec, child_entries, fold

if TYPE_CHECKING:
    from .rmm import Rmm

LPA2_OA_LIMIT = 1 << stage2.MAX_OA_BITS
"""Without LPA2 a realm's RTTs can only hold 48-bit output addresses (A3.1.2)."""


def structure_level(realm: Realm, level: int) -> bool:
    """RttLevelIsValid and not RttLevelIsStarting (B3.67, B3.66): the levels
    RTT_CREATE, RTT_DESTROY and RTT_FOLD accept."""
    return realm.rtt_level_start < level <= stage2.PAGE_LEVEL


def mapping_level(realm: Realm, level: int) -> bool:
    """RttLevelIsBlockOrPage (B3.65): a level at which an RTTE can map memory
    (levels 1..3, A5.5.4), and that the realm's RTT tree has."""
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


def _walk_failed(w: RttWalk, label: str, out: tuple[int, ...] = ()) -> NoReturn:
    """rtt_walk / rtte_state: "ResultEqual(result, RMI_ERROR_RTT, walk.level)"."""
    fail(label, RmiStatus.ERROR_RTT, w.level, out=out)


def rtt_create(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    rd, rtt, ipa, level = a[0], a[1], a[2], s64(a[3])
    with rmm.locked(owners=[rd], pas=[rtt]):
        realm = _structure_args(rmm, call, rd, ipa, level)
        g = rmm.granule_arg(rtt, GranuleState.DELEGATED, "rtt")
        # "rtt_bound2: (realm.feat_lpa2 == FEATURE_FALSE) && (UInt(rtt) >= 2^48)"
        check(rtt >= LPA2_OA_LIMIT and not realm.lpa2, "rtt_bound2")
        rtts = rmm.rtts(realm)
        w = rtts.walk(ipa, level - 1)
        if w.level < level - 1:
            _walk_failed(w, "rtt_walk")
        if w.entry.hipas is Hipas.TABLE:
            _walk_failed(w, "rtte_state")
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
        if w.level < level - 1:
            _walk_failed(w, "rtt_walk", (0, rtts.skip_non_live(w)))
        if w.entry.hipas is not Hipas.TABLE:
            _walk_failed(w, "rtte_state", (0, rtts.skip_non_live(w)))
        child = w.entry.addr
        # "rtt_live: RttIsLive(Rtt(walk.rtte.addr))" -> (RMI_ERROR_RTT, level), top == ipa.
        # An RTT is live if one of its entries is ASSIGNED or TABLE (A5.5.8):
        # an unprotected RTT holding only ASSIGNED_NS entries is destroyed.
        check(rtts.rtt_is_live(child, level), "rtt_live", RmiStatus.ERROR_RTT, level, out=(0, ipa))
        # A5.5.9: the parent RTTE becomes UNASSIGNED with RIPAS DESTROYED.  For an
        # Unprotected IPA the only non-live state is UNASSIGNED_NS (A5.5.4: an
        # UNASSIGNED RTTE "is identified by a Protected IPA"): see docs/rmm.md.
        replacement = (
            Rtte(Hipas.UNASSIGNED, Ripas.DESTROYED) if realm.is_protected(ipa) else UNASSIGNED_NS
        )
        rtts.write(w.table, w.index, w.level, replacement)
        invalidate(call, realm, ipa, level - 1)
        rmm.transition(call, rmm.tracked(child), GranuleState.DELEGATED)
        return (child, rtts.skip_non_live(w))


def rtt_fold(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    rd, ipa, level = a[0], a[1], s64(a[2])
    with rmm.locked(owners=[rd], extra=lambda: _peek_table(rmm, rd, ipa, level)):
        realm = _structure_args(rmm, call, rd, ipa, level)
        rtts = rmm.rtts(realm)
        w = rtts.walk(ipa, level - 1)
        if w.level < level - 1:
            _walk_failed(w, "rtt_walk")
        if w.entry.hipas is not Hipas.TABLE:
            _walk_failed(w, "rtte_state")
        child = w.entry.addr
        folded = fold(rtts.read_all(child, level), level)
        # "rtt_homo: !RttIsHomogeneous(Rtt(walk.rtte.addr))" -> (RMI_ERROR_RTT, level)
        check(folded is None, "rtt_homo", RmiStatus.ERROR_RTT, level)
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
        rtts = rmm.rtts(realm)
        w = rtts.walk(ipa, level)
        return (w.level & 0xFFFF_FFFF_FFFF_FFFF, *read_entry_outputs(rtts.codec, w.entry))


def read_entry_outputs(codec: RtteCodec, e: Rtte) -> tuple[int, int, int]:
    """(state, desc, ripas) as RMI_RTT_READ_ENTRY reports an entry (B4.3.20.3):
    state_prot "(walk.rtte.state == ASSIGNED || walk.rtte.state == TABLE)" ->
    rtte.addr == walk.rtte.addr, whatever the RIPAS; state_unprot adds MemAttr
    and S2AP; ripas_unprot -> RMI_EMPTY."""
    desc = codec.host_desc(e)
    if e.hipas is Hipas.UNASSIGNED:
        return (RttEntryState.UNASSIGNED, desc, e.ripas)
    if e.hipas is Hipas.ASSIGNED:
        return (RttEntryState.ASSIGNED, desc, e.ripas)
    if e.hipas is Hipas.UNASSIGNED_NS:
        return (RttEntryState.UNASSIGNED, desc, Ripas.EMPTY)
    if e.hipas is Hipas.ASSIGNED_NS:
        return (RttEntryState.ASSIGNED, desc, Ripas.EMPTY)
    return (RttEntryState.TABLE, desc, Ripas.EMPTY)


def _unprotected_args(rmm: Rmm, call: Call, rd: int, level: int) -> Realm:
    realm = rd_realm(rmm, rd)
    call.realm = realm.id
    check(not mapping_level(realm, level), "level_bound")
    return realm


def rtt_map_unprotected(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    rd, ipa, level, desc = a[0], a[1], s64(a[2]), a[3]
    with rmm.locked(owners=[rd]):
        realm = rd_realm(rmm, rd)
        call.realm = realm.id
        codec = rmm.rtts(realm).codec
        # attr_valid has no ordering constraint: it is checked once the realm's
        # descriptor format (LPA2 or not) is known, i.e. after rd_state.
        check(not codec.host_desc_valid(desc), "attr_valid")
        check(not mapping_level(realm, level), "level_bound")
        oa = codec.host_addr(desc)
        check(not stage2.is_level_aligned(oa, level), "addr_align")
        # "addr_bound: (realm.feat_lpa2 == FEATURE_FALSE) && (UInt(rtte.addr) >= 2^48)"
        check(oa >= LPA2_OA_LIMIT and not realm.lpa2, "addr_bound")
        check(not stage2.is_level_aligned(ipa, level), "ipa_align")
        check(not realm.is_unprotected(ipa), "ipa_bound")
        rtts = rmm.rtts(realm)
        w = rtts.walk(ipa, level)
        if w.level < level:
            _walk_failed(w, "rtt_walk")
        if w.entry.hipas is not Hipas.UNASSIGNED_NS:
            _walk_failed(w, "rtte_state")
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
        if w.level < level:
            _walk_failed(w, "rtt_walk", (rtts.skip_non_live(w),))
        if w.entry.hipas is not Hipas.ASSIGNED_NS:
            _walk_failed(w, "rtte_state", (rtts.skip_non_live(w),))
        rtts.write(w.table, w.index, w.level, UNASSIGNED_NS)
        invalidate(call, realm, ipa, level)
        return (rtts.skip_non_live(w),)
