"""RMI_RTT_INIT_RIPAS (measured, realm NEW) and RMI_RTT_SET_RIPAS (a REC's request)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..arch import stage2
from ..arch.pas import GRANULE_SIZE
from .abi import Ripas, RmiStatus
from .cmd_realm import rd_realm
from .cmd_rec import rec_arg
from .cmd_rtt import entry_is_valid, invalidate
from .errors import check
from .measurement import RIM_INDEX, Rim
from .realm import Realm, RealmState
from .rec import Rec, RecState
from .results import Call
from .rtt import RttWalk
from .rtte import Hipas, Rtte

if TYPE_CHECKING:
    from .rmm import Rmm


def _walk_base(rmm: Rmm, realm: Realm, base: int) -> RttWalk:
    """base_align: walk `base` towards level 3; `base` must start the entry there."""
    w = rmm.rtts(realm).walk(base, stage2.PAGE_LEVEL)
    check(not stage2.is_level_aligned(base, w.level), "base_align", RmiStatus.ERROR_RTT, w.level)
    return w


def rtt_init_ripas(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    rd, base, top = a[0], a[1], a[2]
    with rmm.locked(owners=[rd]):
        realm = rd_realm(rmm, rd)
        call.realm = realm.id
        check(top <= base, "size_valid")
        check(top > realm.par_top, "top_bound")
        check(realm.state is not RealmState.NEW, "realm_state", RmiStatus.ERROR_REALM)
        w = _walk_base(rmm, realm, base)
        check(
            w.entry.hipas is not Hipas.UNASSIGNED or w.entry.ripas is Ripas.DESTROYED,
            "rtte_state",
            RmiStatus.ERROR_RTT,
            w.level,
        )
        check(top % GRANULE_SIZE != 0, "top_gran_align")
        size = stage2.entry_size(w.level)
        check(base + size > top, "no_progress", RmiStatus.ERROR_RTT, w.level)

        rtts = rmm.rtts(realm)
        rim_slot = realm.measurements[RIM_INDEX]
        rim = bytes(rim_slot)
        measure = Rim(realm.hash_algo)
        addr = base
        for i in range(w.index, w.entries):
            entry = rtts.read(w.table, i, w.level)
            if (
                addr + size > top
                or entry.hipas is not Hipas.UNASSIGNED
                or entry.ripas is Ripas.DESTROYED
            ):
                break
            if entry.ripas is Ripas.EMPTY:
                rtts.write(w.table, i, w.level, Rtte(Hipas.UNASSIGNED, Ripas.RAM))
            rim = measure.extend_ripas(rim, addr, addr + size)
            addr += size
        rim_slot[:] = rim
        return (addr,)


def _set_ripas(entry: Rtte, rec: Rec) -> Rtte | None:
    """The entry after applying the REC's request, or None where the walk must stop."""
    if not entry.has_ripas:
        return None
    target = rec.ripas_value
    if entry.ripas is target:
        return entry
    if entry.ripas is Ripas.DESTROYED and not rec.ripas_destroyed:
        return None
    return Rtte(entry.hipas, target, entry.addr)


def rtt_set_ripas(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
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
        w = _walk_base(rmm, realm, base)
        check(top % GRANULE_SIZE != 0, "top_gran_align")
        size = stage2.entry_size(w.level)

        rtts = rmm.rtts(realm)
        addr = base
        for i in range(w.index, w.entries):
            entry = rtts.read(w.table, i, w.level)
            new = _set_ripas(entry, rec) if addr + size <= top else None
            if new is None:
                break
            if new != entry:
                if entry_is_valid(entry) and not entry_is_valid(new):
                    invalidate(call, realm, addr, w.level)
                rtts.write(w.table, i, w.level, new)
            addr += size
        check(addr == base, "no_progress", RmiStatus.ERROR_RTT, w.level)
        rec.ripas_addr = addr
        return (addr,)
