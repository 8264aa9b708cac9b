"""RMI_REALM_CREATE, RMI_REALM_ACTIVATE, RMI_REALM_DESTROY, RMI_REC_AUX_COUNT."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..arch import stage2
from ..arch.pas import GRANULE_SIZE
from .abi import (
    REALM_FLAG_LPA2,
    REALM_FLAG_PMU,
    REALM_FLAG_SVE,
    REALM_FLAGS_V1_0,
    HashAlgorithm,
    RmiStatus,
)
from .errors import check
from .granule import GranuleState
from .measurement import RIM_INDEX, Rim
from .realm import Realm, RealmState
from .results import Call
from .rtte import UNASSIGNED_EMPTY, UNASSIGNED_NS
from .structs import RmiRealmParams

if TYPE_CHECKING:
    from .rmm import Rmm

S2SZ_MIN = 32
S2SZ_MAX_ARCH = stage2.MAX_OA_BITS_LPA2


def rd_realm(rmm: Rmm, rd: int) -> Realm:
    """rd_align, rd_bound, rd_state: `rd` must be an RD granule."""
    g = rmm.granule_arg(rd, GranuleState.RD, "rd")
    assert g.realm is not None
    return g.realm


def rtt_geometry_valid(rmm: Rmm, s2sz: int, level: int, num: int) -> bool:
    """RttConfigIsValid (B3.55): the starting level and number of starting RTTs
    are consistent with s2sz (AArch64.S2InconsistentSL) and the platform can
    start a walk there (AArch64.S2InvalidSL: level -1 needs FEAT_LPA2 and
    52-bit PAs, level 0 PAs of 44 bits)."""
    if not stage2.min_start_level(rmm.config.lpa2) <= level <= stage2.PAGE_LEVEL:
        return False
    if rmm.config.pa_width < stage2.start_level_min_pa_bits(level):
        return False
    lo, hi = stage2.start_level_ipa_bits(level)
    if not lo <= s2sz <= hi:
        return False
    return num == stage2.num_start_tables(s2sz, level)


_HASH_ALGORITHMS = {int(a): a for a in HashAlgorithm}


def _params_valid(p: RmiRealmParams) -> bool:
    """RmiRealmParamsIsValid (B3.50): a valid encoding of the RmiRealmParams type."""
    return (
        p.flags & ~REALM_FLAGS_V1_0 == 0
        and p.hash_algo in _HASH_ALGORITHMS
        and S2SZ_MIN <= p.s2sz <= S2SZ_MAX_ARCH
        and p.num_bps != 0
        and p.num_wps != 0
    )


def _params_supported(rmm: Rmm, p: RmiRealmParams) -> bool:
    """RealmParamsSupported (B3.34) against RmiFeatureRegister0.  An IPA width
    above 48 bits needs the realm's LPA2 flag (A3.1.2: LPA2 is what allows "a
    larger IPA width")."""
    cfg = rmm.config
    feat = rmm.features0
    if p.flags & REALM_FLAG_LPA2 and not feat.lpa2:
        return False
    if p.s2sz > feat.s2sz:
        return False
    if p.s2sz > stage2.MAX_OA_BITS and not p.flags & REALM_FLAG_LPA2:
        return False
    if p.flags & REALM_FLAG_SVE and (not feat.sve_en or p.sve_vl > feat.sve_vl):
        return False
    if p.flags & REALM_FLAG_PMU and (
        not feat.pmu_en
        or p.pmu_num_ctrs > feat.pmu_num_ctrs
        or (p.pmu_num_ctrs == 0 and not cfg.pmu_hpmn0)
    ):
        return False
    if p.num_bps > feat.num_bps or p.num_wps > feat.num_wps:
        return False
    return _HASH_ALGORITHMS[p.hash_algo] in cfg.hash_algorithms


def realm_create(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    rd, params_ptr = a[0], a[1]
    p = rmm.read_ns_struct(params_ptr, "params", RmiRealmParams)
    check(not _params_valid(p), "params_valid")
    check(not _params_supported(rmm, p), "params_supp")
    # "alias: AddrInRange(rd, params.rtt_base, (params.rtt_num_start - 1) *
    # RMM_GRANULE_SIZE)", AddrInRange (B3.1): "within [base, base+size]".
    check(p.rtt_base <= rd <= p.rtt_base + (p.rtt_num_start - 1) * GRANULE_SIZE, "alias")
    plausible = min(p.rtt_num_start, stage2.MAX_CONCATENATED_TABLES)
    roots = [p.rtt_base + i * GRANULE_SIZE for i in range(plausible)]
    with rmm.locked(pas=[rd, *roots]):
        g_rd = rmm.granule_arg(rd, GranuleState.DELEGATED, "rd")
        # "rtt_align: !AddrIsAligned(params.rtt_base, params.rtt_num_start *
        # RMM_GRANULE_SIZE)": concatenated tables are aligned to their total size
        # (rtt_num_start 0, which fails rtt_num_level, is held to one granule).
        check(p.rtt_base % (max(p.rtt_num_start, 1) * GRANULE_SIZE) != 0, "rtt_align")
        check(
            not rtt_geometry_valid(rmm, p.s2sz, p.rtt_level_start, p.rtt_num_start), "rtt_num_level"
        )
        # RttsStateEqual (B3.77): every starting RTT delegable and DELEGATED.
        check(
            len(roots) != p.rtt_num_start
            or any(rmm.granule_state(r) is not GranuleState.DELEGATED for r in roots),
            "rtt_state",
        )
        check(p.vmid >> rmm.config.vmid_bits != 0, "vmid_valid")

        algo = _HASH_ALGORITHMS[p.hash_algo]

        def make(realm_id: int) -> Realm:
            return Realm(
                id=realm_id,
                rd=rd,
                vmid=p.vmid,
                s2sz=p.s2sz,
                rtt_base=p.rtt_base,
                rtt_level_start=p.rtt_level_start,
                rtt_num_start=p.rtt_num_start,
                hash_algo=algo,
                rpv=bytes(p.rpv),
                flags=p.flags,
                lpa2=bool(p.flags & REALM_FLAG_LPA2),
                sve_en=bool(p.flags & REALM_FLAG_SVE),
                sve_vl=p.sve_vl if p.flags & REALM_FLAG_SVE else 0,
                pmu_en=bool(p.flags & REALM_FLAG_PMU),
                pmu_num_ctrs=p.pmu_num_ctrs if p.flags & REALM_FLAG_PMU else 0,
                num_bps=p.num_bps,
                num_wps=p.num_wps,
            )

        realm = rmm.register_realm(p.vmid, make)  # vmid_valid: VMID already in use
        call.realm = realm.id
        realm.measurements[RIM_INDEX][:] = Rim(algo).initial(p.measured_bytes())
        # Starting RTTs: protected entries UNASSIGNED/EMPTY, unprotected ones
        # UNASSIGNED_NS (B4.3.9.3 rtte_p_states, rtte_ripas, rtte_up_states).
        level = p.rtt_level_start
        rtts = rmm.rtts(realm)
        protected = realm.par_top >> stage2.level_shift(level)
        total = realm.root_entry_count()
        for i, root in enumerate(roots):
            first = i * stage2.ENTRIES_PER_TABLE
            n = max(min(total - first, stage2.ENTRIES_PER_TABLE), 0)
            n_prot = max(min(protected - first, n), 0)
            rtts.fill(root, 0, n_prot, level, UNASSIGNED_EMPTY)
            rtts.fill(root, n_prot, n - n_prot, level, UNASSIGNED_NS)
            rmm.transition(
                call,
                rmm.tracked(root),
                GranuleState.RTT,
                realm=realm,
                ipa=i * stage2.table_span(level),
                level=level,
            )
        rmm.transition(call, g_rd, GranuleState.RD, realm=realm)
    return ()


def realm_activate(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    rd = a[0]
    with rmm.locked(owners=[rd]):
        realm = rd_realm(rmm, rd)
        call.realm = realm.id
        check(realm.state is not RealmState.NEW, "realm_state", RmiStatus.ERROR_REALM)
        realm.state = RealmState.ACTIVE
    return ()


def realm_destroy(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    rd = a[0]

    def roots() -> list[int]:
        realm = rmm.realm_at(rd)
        return realm.root_rtts if realm is not None else []

    with rmm.locked(owners=[rd], extra=roots):
        realm = rd_realm(rmm, rd)
        call.realm = realm.id
        # RealmIsLive (A2.1.4): "The number of RECs owned by the Realm is not zero"
        # or "A starting level RTT of the Realm is live" (A5.5.8: an entry is
        # ASSIGNED or TABLE; NS mappings do not keep a realm alive).
        check(
            realm.num_recs != 0 or rmm.rtts(realm).starting_rtts_live(),
            "realm_live",
            RmiStatus.ERROR_REALM,
        )
        for root in realm.root_rtts:
            rmm.transition(call, rmm.tracked(root), GranuleState.DELEGATED)
        rmm.transition(call, rmm.tracked(rd), GranuleState.DELEGATED)
        rmm.unregister_realm(realm)
    return ()


def rec_aux_count(rmm: Rmm, call: Call, a: tuple[int, ...]) -> tuple[int, ...]:
    rd = a[0]
    with rmm.locked(owners=[rd]):
        realm = rd_realm(rmm, rd)
        call.realm = realm.id
        return (rmm.config.rec_aux_count,)
