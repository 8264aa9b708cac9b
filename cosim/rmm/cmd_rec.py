"""RMI_REC_CREATE, RMI_REC_DESTROY, RMI_REC_ENTER (checks and state), RMI_PSCI_COMPLETE."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..arch import gicv3
from ..arch.aarch64 import SCTLR_EL1_EE, SCTLR_EL1_RESET
from .abi import (
    MAX_REC_AUX_GRANULES,
    PSCI_AFFINITY_INFO_FIDS,
    PSCI_CPU_ON_FIDS,
    REALM_ERROR_INDEX_NEW,
    REALM_ERROR_INDEX_SYSTEM_OFF,
    REC_ENTER_EMUL_MMIO,
    REC_FLAG_RUNNABLE,
    REC_MPIDR_VALID_MASK,
    PsciAffinityState,
    PsciStatus,
    RmiStatus,
    s64,
    u64,
)
from .cmd_realm import rd_realm
from .errors import check
from .granule import GranuleState, is_granule_aligned
from .measurement import RIM_INDEX, Rim
from .realm import RealmState
from .rec import Rec, RecState, mpidr_el1_to_rec_mpidr, rec_mpidr_index
from .results import Call, EnterRealm
from .structs import RmiRecEnter, RmiRecParams, RmiRecRun

if TYPE_CHECKING:
    from .rmm import Rmm


def rec_arg(rmm: Rmm, pa: int, name: str = "rec", state_label: str = "rec_gran_state") -> Rec:
    g = rmm.granule_arg(pa, GranuleState.REC, name, state_label)
    assert g.rec is not None
    return g.rec


def rec_create(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    """B4.3.12.  Failure conditions in the order of the spec's table (its only
    ordering constraint: [rd_bound, rd_state] < [realm_state, num_recs])."""
    rd, rec_pa, params_ptr = a[0], a[1], a[2]
    p = rmm.read_ns_struct(params_ptr, "params", RmiRecParams)
    aux = list(p.aux[: p.num_aux]) if p.num_aux <= MAX_REC_AUX_GRANULES else []
    with rmm.locked(owners=[rd], pas=[rec_pa, *aux]):
        g_rec = rmm.granule_arg(rec_pa, GranuleState.DELEGATED, "rec", "rec_state")
        realm = rd_realm(rmm, rd)
        call.realm = realm.id
        check(realm.state is not RealmState.NEW, "realm_state", RmiStatus.ERROR_REALM)
        # "num_recs: realm.num_recs == (2 ^ ImplFeatures().max_recs_order) - 1"
        check(realm.num_recs >= rmm.config.max_recs, "num_recs", RmiStatus.ERROR_REALM)
        # "mpidr_index: RecIndex(params.mpidr) != realm.rec_index"; RecIndex (B3.38)
        # reads only the Aff fields: the reserved (SBZ) bits of RmiRecMpidr are ignored.
        check(rec_mpidr_index(p.mpidr) != realm.rec_index, "mpidr_index")
        check(p.num_aux != rmm.config.rec_aux_count, "num_aux")
        # AuxAligned, AuxAlias, AuxStateEqual (B3.10, B3.9, B3.13): each over the
        # whole list; an aux address that is not delegable fails aux_state.
        check(any(not is_granule_aligned(pa) for pa in aux), "aux_align")
        check(len({rec_pa, *aux}) != len(aux) + 1, "aux_alias")
        check(
            any(
                not rmm.delegable(pa) or rmm.granule_state(pa) is not GranuleState.DELEGATED
                for pa in aux
            ),
            "aux_state",
        )

        runnable = bool(p.flags & REC_FLAG_RUNNABLE)
        rec = Rec(
            realm=realm,
            pa=rec_pa,
            index=realm.rec_index,
            mpidr=p.mpidr & REC_MPIDR_VALID_MASK,
            aux=tuple(aux),
            runnable=runnable,
        )
        rec.context.reset(p.pc, p.gprs)
        realm.rec_index += 1
        realm.recs[rec.index] = rec
        rmm.transition(call, g_rec, GranuleState.REC, realm=realm, rec=rec)
        for pa in aux:
            rmm.transition(call, rmm.tracked(pa), GranuleState.REC_AUX, realm=realm, rec=rec)
        if runnable:
            rim = realm.measurements[RIM_INDEX]
            rim[:] = Rim(realm.hash_algo).extend_rec(bytes(rim), p.measured_bytes())
    return ()


def rec_destroy(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    rec_pa = a[0]

    def aux() -> tuple[int, ...]:
        rec = rmm.rec_at(rec_pa)
        return rec.aux if rec is not None else ()

    with rmm.locked(owners=[rec_pa], extra=aux):
        rec = rec_arg(rmm, rec_pa)
        realm = rec.realm
        call.realm = realm.id
        check(rec.state is RecState.RUNNING, "rec_state", RmiStatus.ERROR_REC)
        for pa in rec.aux:
            rmm.transition(call, rmm.tracked(pa), GranuleState.DELEGATED)
        rmm.transition(call, rmm.tracked(rec_pa), GranuleState.DELEGATED)
        del realm.recs[rec.index]
    return ()


def gic_state_valid(rmm: Rmm, enter: RmiRecEnter) -> bool:
    """The GICv3 state the host hands the realm: only the host-writable ICH_HCR
    bits, and list registers that describe distinct, valid, purely virtual
    interrupts."""
    if enter.gicv3_hcr & ~HOST_ICH_HCR_BITS:
        return False
    seen: set[int] = set()
    for lr in enter.gicv3_lrs[: rmm.config.num_lrs]:
        if gicv3.lr_state(lr) == 0:
            continue
        if lr & (gicv3.ICH_LR_HW | gicv3.ICH_LR_RES0_MASK):
            return False
        if lr & gicv3.ICH_LR_PINTID_MASK & ~gicv3.ICH_LR_EOI:
            return False
        vintid = gicv3.lr_vintid(lr)
        if gicv3.INTID_SPECIAL_FIRST <= vintid < gicv3.INTID_LPI_FIRST or vintid >> 16:
            return False
        if vintid in seen:
            return False
        seen.add(vintid)
    return True


HOST_ICH_HCR_BITS = (
    gicv3.ICH_HCR_UIE
    | gicv3.ICH_HCR_LRENPIE
    | gicv3.ICH_HCR_NPIE
    | gicv3.ICH_HCR_VGRP0EIE
    | gicv3.ICH_HCR_VGRP0DIE
    | gicv3.ICH_HCR_VGRP1EIE
    | gicv3.ICH_HCR_VGRP1DIE
    | gicv3.ICH_HCR_TDIR
)


def rec_enter(rmm: Rmm, call: Call, a: tuple[int, ...]) -> EnterRealm:
    rec_pa, run_ptr = a[0], a[1]
    with rmm.locked(owners=[rec_pa], pas=[run_ptr]):
        rmm.ns_buffer_check(run_ptr, "run")
        rec = rec_arg(rmm, rec_pa)
        realm = rec.realm
        call.realm = realm.id
        check(rec.state is RecState.RUNNING, "rec_state", RmiStatus.ERROR_REC)
        enter = RmiRecRun.read_enter(rmm.memory, run_ptr)
        check(
            realm.state is RealmState.NEW, "realm_new", RmiStatus.ERROR_REALM, REALM_ERROR_INDEX_NEW
        )
        check(
            realm.state is RealmState.SYSTEM_OFF,
            "system_off",
            RmiStatus.ERROR_REALM,
            REALM_ERROR_INDEX_SYSTEM_OFF,
        )
        check(not rec.runnable, "rec_runnable", RmiStatus.ERROR_REC)
        check(rec.psci_pending is not None, "rec_psci", RmiStatus.ERROR_REC)
        check(not gic_state_valid(rmm, enter), "rec_gicv3", RmiStatus.ERROR_REC)
        check(
            bool(enter.flags & REC_ENTER_EMUL_MMIO) and rec.emulatable_abort is None,
            "rec_mmio",
            RmiStatus.ERROR_REC,
        )
        rec.state = RecState.RUNNING
        rec.run_pa = run_ptr
        rec.cpu = call.cpu
        return EnterRealm(rec, run_ptr, enter)


def psci_complete(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    calling_pa, target_pa, status_arg = a[0], a[1], a[2]
    status = s64(status_arg)
    with rmm.locked(owners=[calling_pa, target_pa]):
        check(calling_pa == target_pa, "alias")
        calling = rec_arg(rmm, calling_pa, "calling", "calling_state")
        call.realm = calling.realm.id
        target = rec_arg(rmm, target_pa, "target", "target_state")
        request = calling.psci_pending
        check(request is None or calling.state is RecState.RUNNING, "pending")
        assert request is not None
        check(target.realm is not calling.realm, "owner")
        check(mpidr_el1_to_rec_mpidr(request.target_mpidr) != target.mpidr, "target")
        if request.fid in PSCI_CPU_ON_FIDS:
            permitted = (
                {PsciStatus.SUCCESS} if target.runnable else {PsciStatus.SUCCESS, PsciStatus.DENIED}
            )
        else:
            permitted = {PsciStatus.SUCCESS}
        check(status not in permitted, "status")

        if request.fid in PSCI_CPU_ON_FIDS:
            if target.runnable:
                result = PsciStatus.ALREADY_ON
            elif status == PsciStatus.DENIED:
                result = PsciStatus.DENIED
            else:
                ee = calling.context.sysregs.get("SCTLR_EL1", 0) & SCTLR_EL1_EE
                target.context.reset(request.entry, [request.context_id], SCTLR_EL1_RESET | ee)
                target.runnable = True
                result = PsciStatus.SUCCESS
        elif request.fid in PSCI_AFFINITY_INFO_FIDS:
            result = PsciAffinityState.ON if target.runnable else PsciAffinityState.OFF
        else:
            result = PsciStatus.SUCCESS
        gprs = calling.context.gprs
        gprs[0] = u64(result)
        gprs[1] = gprs[2] = gprs[3] = 0
        calling.psci_pending = None
    return ()
