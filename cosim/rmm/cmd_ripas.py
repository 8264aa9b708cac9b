"""RMI_RTT_INIT_RIPAS (B4.3.18: measured, realm NEW) and RMI_RTT_SET_RIPAS
(B4.3.21: completes a REC's RSI_IPA_STATE_SET request)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..arch import stage2
from ..arch.pas import GRANULE_SIZE
from .abi import U64_MASK, Ripas, RmiStatus
from .cmd_realm import rd_realm
from .cmd_rec import rec_arg
from .cmd_rtt import entry_is_valid, invalidate
from .errors import check
from .measurement import RIM_INDEX, Rim
from .realm import RealmState
from .rec import RecState
from .results import Call
from .rtte import Hipas, Rtte

if TYPE_CHECKING:
    from .rmm import Rmm


def rtt_init_ripas(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    """Failure conditions in the order of the spec's table, which meets its
    ordering constraints ("[rd_bound, rd_state] < [realm_state]", "... <
    [base_align, rtte_state]", "[top_gran_align] < [no_progress]")."""
    rd, base, top = a[0], a[1], a[2]
    with rmm.locked(owners=[rd]):
        realm = rd_realm(rmm, rd)
        call.realm = realm.id
        check(top <= base, "size_valid")
        # "top_bound: !AddrIsProtected(ToAddress(UInt(top) - RMM_GRANULE_SIZE), realm)"
        check(not realm.is_protected((top - GRANULE_SIZE) & U64_MASK), "top_bound")
        check(realm.state is not RealmState.NEW, "realm_state", RmiStatus.ERROR_REALM)
        rtts = rmm.rtts(realm)
        w = rtts.walk(base, stage2.PAGE_LEVEL)
        check(
            not stage2.is_level_aligned(base, w.level), "base_align", RmiStatus.ERROR_RTT, w.level
        )
        # "rtte_state: walk.rtte.state != UNASSIGNED" (the first entry only; its
        # RIPAS does not matter).
        check(w.entry.hipas is not Hipas.UNASSIGNED, "rtte_state", RmiStatus.ERROR_RTT, w.level)
        check(top % GRANULE_SIZE != 0, "top_gran_align")
        # walk_top = RttSkipEntriesWithRipas(Rtt(walk.rtt_addr), walk.level, base, top,
        # FALSE): up to the first TABLE entry, the end of the RTT or top.
        walk_top = rtts.skip_entries_with_ripas(w, top, stop_at_destroyed=False)
        check(base == walk_top, "no_progress", RmiStatus.ERROR_RTT, w.level)

        # Success: every entry of [base, walk_top) has RIPAS RAM ("rtte_ripas"), the
        # RIM is RimExtendRipas(realm, base, walk_top, walk.level): one descriptor
        # per entry (B3.46).
        size = stage2.entry_size(w.level)
        rim_slot = realm.measurements[RIM_INDEX]
        rim = bytes(rim_slot)
        measure = Rim(realm.hash_algo)
        count = (walk_top - base) // size
        for i, entry in enumerate(rtts.read_all(w.table, w.level, w.index + count)[w.index :]):
            if entry.ripas is not Ripas.RAM:
                rtts.write(w.table, w.index + i, w.level, Rtte(entry.hipas, Ripas.RAM, entry.addr))
            addr = base + i * size
            rim = measure.extend_ripas(rim, addr, addr + size)
        rim_slot[:] = rim
        return (walk_top,)


def rtt_set_ripas(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    """Failure conditions in the order of the spec's table ("[rec_bound,
    rec_gran_state] < [rec_state, rec_owner]" leaves rec_state and rec_owner
    unordered: rec_owner is checked first, as before).  base_align and
    no_progress fail whatever the RIPAS of the first entry: a deliberate
    deviation, see docs/rmm.md."""
    rd, rec_pa, base, top = a[0], a[1], a[2], a[3]
    with rmm.locked(owners=[rd, rec_pa]):
        realm = rd_realm(rmm, rd)
        call.realm = realm.id
        rec = rec_arg(rmm, rec_pa)
        check(rec.realm is not realm, "rec_owner", RmiStatus.ERROR_REC)
        check(rec.state is RecState.RUNNING, "rec_state", RmiStatus.ERROR_REC)
        check(top <= base, "size_valid")
        check(base != rec.ripas_addr, "base_bound")
        check(top > rec.ripas_top, "top_bound")
        rtts = rmm.rtts(realm)
        w = rtts.walk(base, stage2.PAGE_LEVEL)
        check(
            not stage2.is_level_aligned(base, w.level), "base_align", RmiStatus.ERROR_RTT, w.level
        )
        check(top % GRANULE_SIZE != 0, "top_gran_align")
        # walk_top = RttSkipEntriesWithRipas(..., base, top,
        #                                    rec.ripas_destroyed != CHANGE_DESTROYED)
        walk_top = rtts.skip_entries_with_ripas(w, top, stop_at_destroyed=not rec.ripas_destroyed)
        check(base == walk_top, "no_progress", RmiStatus.ERROR_RTT, w.level)

        # Success: "rtte_ripas: RttEntriesInRangeRipas(..., base, walk_top,
        # rec.ripas_value)", ripas_addr = out_top = MinAddress(top, walk_top).
        size = stage2.entry_size(w.level)
        target = rec.ripas_value
        count = (walk_top - base) // size
        for i, entry in enumerate(rtts.read_all(w.table, w.level, w.index + count)[w.index :]):
            if entry.ripas is target:
                continue
            new = Rtte(entry.hipas, target, entry.addr)
            if entry_is_valid(entry) and not entry_is_valid(new):
                invalidate(call, realm, base + i * size, w.level)
            rtts.write(w.table, w.index + i, w.level, new)
        out_top = min(top, walk_top)
        rec.ripas_addr = out_top
        return (out_top,)
